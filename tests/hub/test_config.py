"""hub.toml: the ``[limits]`` table, its validation, and how ``open_hub`` applies it."""

from __future__ import annotations

from dataclasses import fields, replace
from pathlib import Path

import pytest

from globe_io.errors import ConfigError
from hub.blobs import BLOBS_KEY
from hub.config import CONFIG_NAME, HubConfig, Limits, default_database_url, load_config
from hub.config import render_config as render
from hub.server import HUB_KEY_PURPOSE, open_hub
from hub.web import ROUTER_KEY
from protocol.devnet import build_devnet
from protocol.keystore import KdfCost, seal_secret

PASSPHRASE = b"config test passphrase"

CUSTOM = Limits(
    max_body=128 * 1024,
    rate_per_second=2.5,
    burst=7,
    clock_skew=30,
    page_size=50,
    max_envelope=512 * 1024,
    mailbox_count=1234,
    mailbox_bytes=64 << 20,
    batch_max=64,
    max_blob=8 << 20,
    blob_quota=32 << 20,
    blob_grace=600,
)


def write(directory: Path, limits_toml: str) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / CONFIG_NAME).write_text(
        f'database_url = "{default_database_url(directory)}"\n\n[limits]\n{limits_toml}'
    )


def test_defaults_and_custom_limits_round_trip(tmp_path: Path) -> None:
    for limits in (Limits(), CUSTOM):
        config = HubConfig(
            directory=tmp_path, database_url=default_database_url(tmp_path), limits=limits
        )
        (tmp_path / CONFIG_NAME).write_text(render(config))
        assert load_config(tmp_path) == config
    text = (tmp_path / CONFIG_NAME).read_text()
    for f in fields(Limits):  # every limit is written out, so operators see all of them
        assert f"\n{f.name} = " in text


def test_limits_may_be_given_in_part(tmp_path: Path) -> None:
    write(tmp_path, "mailbox_count = 10\nblob_grace = 0\nbatch_max = 1\n")
    assert load_config(tmp_path).limits == replace(
        Limits(), mailbox_count=10, blob_grace=0, batch_max=1
    )


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("max_envelope = 100", "[limits] max_envelope must be an integer from 1024 to"),
        ("mailbox_count = 0", "[limits] mailbox_count must be an integer from 1 to"),
        ("mailbox_bytes = -5", "[limits] mailbox_bytes must be an integer from 1 to"),
        ("batch_max = 0", "[limits] batch_max must be an integer from 1 to 10000, not 0"),
        ("batch_max = 10001", "[limits] batch_max must be an integer from 1 to 10000, not 10001"),
        ("batch_max = 2.5", "[limits] batch_max must be an integer from 1 to 10000, not 2.5"),
        ("max_blob = 0", "[limits] max_blob must be an integer from 1 to"),
        ('blob_quota = "16G"', "[limits] blob_quota must be an integer from 1 to"),
        ("blob_grace = -1", "[limits] blob_grace must be an integer from 0 to"),
        ("blob_grace = true", "[limits] blob_grace must be an integer from 0 to"),
        ("max_body = 10", "[limits] max_body must be an integer from 1024 to"),
        ("rate_per_second = 0", "[limits] rate_per_second must be a number from 0.001 to"),
        ("page_size = 0", "[limits] page_size must be an integer from 1 to 100000, not 0"),
        ("batch_maximum = 5", "[limits] batch_maximum: unknown setting"),
    ],
)
def test_a_bad_limit_is_a_one_line_config_error(tmp_path: Path, line: str, message: str) -> None:
    write(tmp_path, line + "\n")
    with pytest.raises(ConfigError) as caught:
        load_config(tmp_path)
    detail = caught.value.detail
    assert detail.startswith(f"{tmp_path / CONFIG_NAME}: ")
    assert message in detail
    assert "\n" not in detail


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ('port = "8440"\n', "port must be an integer"),
        ("certificate_days = 0\n", "certificate_days must be from 1 to 1830, not 0"),
        ("limits = 5\n", "[limits] is a table"),
        ("http = 5\n", "[http] is a table"),
        ("[http]\nslow = 1\n", "[http] slow: unknown setting"),
        ('[http]\ntrusted_proxies = ["127.0.0.1/32", "::1/128"]\n', None),
    ],
)
def test_top_level_settings_and_tables(tmp_path: Path, text: str, problem: str | None) -> None:
    (tmp_path / CONFIG_NAME).write_text(
        f'database_url = "{default_database_url(tmp_path)}"\n' + text
    )
    if problem is None:
        assert load_config(tmp_path).http.trusted_proxies == ("127.0.0.1/32", "::1/128")
        return
    with pytest.raises(ConfigError) as caught:
        load_config(tmp_path)
    assert caught.value.detail == f"{tmp_path / CONFIG_NAME}: {problem}"


def test_every_wrong_setting_is_named_at_once(tmp_path: Path) -> None:
    (tmp_path / CONFIG_NAME).write_text(
        'port = 70000\ncolour = "blue"\n[limits]\nbatch_max = 0\n[http]\nmax_headers = 0\n'
    )
    with pytest.raises(ConfigError) as caught:
        load_config(tmp_path)
    assert caught.value.detail == (
        f"{tmp_path / CONFIG_NAME}: [limits] batch_max must be an integer from 1 to 10000, "
        "not 0; colour: unknown setting; database_url: missing; port must be a port, "
        "0-65535, not 70000; [http] HTTP limit max_headers must be an integer in (0, 1000]; "
        "got 0"
    )


async def test_open_hub_applies_the_limits(tmp_path: Path) -> None:
    net = build_devnet(b"config", members=[("FR-PNF", "Parquet national financier")])
    (tmp_path / "hub.key").write_bytes(
        seal_secret(net.hub.seed, PASSPHRASE, purpose=HUB_KEY_PURPOSE, cost=KdfCost(1, 8192))
    )
    (tmp_path / "genesis.json").write_bytes(net.genesis.encode())
    config = HubConfig(
        directory=tmp_path, database_url=default_database_url(tmp_path), limits=CUSTOM
    )
    (tmp_path / CONFIG_NAME).write_text(render(config))
    runtime = await open_hub(load_config(tmp_path), PASSPHRASE)
    try:
        router = runtime.app[ROUTER_KEY]
        assert (
            router.limits.max_envelope,
            router.limits.mailbox_count,
            router.limits.mailbox_bytes,
            router.limits.batch_max,
            router.limits.page_size,
        ) == (512 * 1024, 1234, 64 << 20, 64, 50)
        blobs = runtime.app[BLOBS_KEY]
        assert (blobs.max_blob, blobs.quota_bytes, blobs.grace) == (8 << 20, 32 << 20, 600)
    finally:
        await runtime.engine.dispose()
    # A configuration built in code is checked too.
    bad = replace(config, limits=replace(CUSTOM, batch_max=0))
    with pytest.raises(ConfigError, match=r"\[limits\] batch_max must be an integer"):
        await open_hub(bad, PASSPHRASE)
