"""The node's configuration file, ``node.toml``: every field survives a round trip, and
each invalid value, missing field, unknown field or undecodable file is refused with
the file's path and the field's rule."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from globe_io.httpguard import HttpLimits
from globe_node.config import Deadlines, NodeConfig, load_config, render_config
from globe_node.errors import ConfigError
from protocol.messages import Urgency


def write_config(directory: Path, text: str) -> Path:
    directory.mkdir(exist_ok=True)
    path = directory / "node.toml"
    path.write_text('authority = "FR-PNF"\nhub_url = "http://127.0.0.1:8440"\n' + text)
    return path


def test_config_round_trip_keeps_every_field(tmp_path: Path) -> None:
    config = NodeConfig(
        directory=tmp_path, authority="FR-PNF", hub_url="https://hub.example.org/globe",
        peer_host="0.0.0.0", peer_port=8460, api_host="::1", api_port=18450,  # noqa: S104
        directory_max_age=3600, sync_interval=2.5, prekey_lifetime=5 * 86400,
        prekey_rotate_before=86400, prekey_grace=3 * 86400, message_lifetime=86400,
        retry_base=0.5, retry_max=60.0, direct_timeout=1.5,
        deadlines=Deadlines(urgent=3600, priority=7200, routine=10800),
    )  # fmt: skip
    (tmp_path / "node.toml").write_text(render_config(config))
    assert load_config(tmp_path) == config
    assert load_config(tmp_path).deadlines.for_urgency(Urgency.PRIORITY) == 7200


@pytest.mark.parametrize(
    ("text", "detail"),
    [
        ("api_port = \"8450\"\n", "api_port must be a non-negative integer"),
        ("peer_port = -1\n", "peer_port must be a non-negative integer"),
        ("directory_max_age = true\n", "directory_max_age must be a non-negative integer"),
        ("sync_interval = 0\n", "sync_interval must be a positive number"),
        ("retry_base = -1.5\n", "retry_base must be a positive number"),
        ("retry_max = inf\n", "retry_max must be a positive number"),
        ("direct_timeout = \"5\"\n", "direct_timeout must be a positive number"),
        ("api_port = 70000\n", "api_port must be a port, 0-65535"),
        ("peer_port = 65536\n", "peer_port must be a port, 0-65535"),
        ("message_lifetime = 59\n", "message_lifetime must be 60 s to 30 days"),
        ("message_lifetime = 2592001\n", "message_lifetime must be 60 s to 30 days"),
        (
            "prekey_lifetime = 86400\nprekey_rotate_before = 86400\n",
            "prekey_lifetime must exceed prekey_rotate_before",
        ),
        (
            "prekey_lifetime = 7776000\n",
            "prekey_lifetime is at most 90 days less a minute",
        ),
        ("api_port = 0\n", "api_port must name a port (1-65535)"),
        ("deadlines = 5\n", "[deadlines] is a table"),
        ("[deadlines]\nurgent = 0\n", "[deadlines] urgent must be a positive integer (seconds)"),
        ("[deadlines]\nurgent = 1.5\n", "[deadlines] urgent must be a positive integer (seconds)"),
        ("colour = \"blue\"\n", "colour: unknown setting"),
        ("allow_private_endpoints = 1\n", "allow_private_endpoints must be true or false"),
        ("[deadlines]\nsoon = 60\n", "[deadlines] soon: unknown setting"),
        ("http = 1\n", "[http] is a table"),
        ("[http]\nslow = 1\n", "[http] slow: unknown setting"),
        ("metrics_port = 65536\n", "metrics_port must be a port, 0-65535"),
        (
            "[http]\ntrusted_proxies = \"10.0.0.1\"\n",
            "[http] trusted_proxies must be a list of networks, e.g. [\"127.0.0.1/32\"]",
        ),
        (
            "[http]\ntrusted_proxies = [\"10.0.0.1/8\"]\n",
            "[http] trusted_proxies: '10.0.0.1/8' is not an IP network in CIDR form"
            " (for example \"127.0.0.1/32\")",
        ),
    ],
)  # fmt: skip
def test_config_validation_errors_name_the_file_and_the_field(
    tmp_path: Path, text: str, detail: str
) -> None:
    path = write_config(tmp_path / "n", text)
    with pytest.raises(ConfigError) as err:
        load_config(tmp_path / "n")
    assert err.value.detail == f"{path}: {detail}"


def test_config_missing_required_field(tmp_path: Path) -> None:
    d = tmp_path / "n"
    d.mkdir()
    (d / "node.toml").write_text('hub_url = "http://127.0.0.1:8440"\n')
    with pytest.raises(ConfigError) as err:
        load_config(d)
    assert err.value.detail == f"{d / 'node.toml'}: authority: missing"


def test_config_names_every_wrong_setting_at_once(tmp_path: Path) -> None:
    path = write_config(
        tmp_path / "n",
        'colour = "blue"\nsync_interval = 0\napi_port = "x"\n'
        '[deadlines]\nurgent = 0\n[http]\nmax_headers = 0\ntrusted_proxies = ["nowhere"]\n',
    )
    with pytest.raises(ConfigError) as err:
        load_config(tmp_path / "n")
    assert err.value.detail == (
        f"{path}: [deadlines] urgent must be a positive integer (seconds); "
        "colour: unknown setting; "
        "sync_interval must be a positive number; "
        "api_port must be a non-negative integer; "
        "[http] HTTP limit max_headers must be an integer in (0, 1000]; got 0; "
        "[http] trusted_proxies: 'nowhere' is not an IP network in CIDR form"
        ' (for example "127.0.0.1/32")'
    )


def test_config_with_trusted_proxies_round_trips(tmp_path: Path) -> None:
    config = NodeConfig(
        directory=tmp_path, authority="FR-PNF", hub_url="https://hub.example.org",
        metrics_port=9450, http=HttpLimits(trusted_proxies=("127.0.0.1/32", "::1/128")),
    )  # fmt: skip
    (tmp_path / "node.toml").write_text(render_config(config))
    assert load_config(tmp_path) == config


def test_config_that_is_not_toml_or_not_utf8(tmp_path: Path) -> None:
    path = write_config(tmp_path / "n", "api_port = \n")
    try:
        tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as exc:
        expected = f"{path}: {exc}"
    with pytest.raises(ConfigError) as err:
        load_config(tmp_path / "n")
    assert err.value.detail == expected
    path.write_bytes(b'authority = "FR-\xff"\n')
    with pytest.raises(ConfigError) as err:
        load_config(tmp_path / "n")
    assert err.value.detail.startswith(f"{path}: 'utf-8' codec can't decode byte 0xff")


@pytest.mark.parametrize("field", ["authority", "hub_url", "api_host", "peer_host"])
def test_config_string_fields_must_be_strings(tmp_path: Path, field: str) -> None:
    d = tmp_path / "n"
    d.mkdir()
    values = {"authority": '"FR-PNF"', "hub_url": '"http://127.0.0.1:8440"', field: "42"}
    (d / "node.toml").write_text("".join(f"{k} = {v}\n" for k, v in values.items()))
    with pytest.raises(ConfigError) as err:
        load_config(d)
    assert err.value.detail == f"{d / 'node.toml'}: {field} must be a string"
