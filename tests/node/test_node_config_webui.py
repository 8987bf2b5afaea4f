"""``[webui]`` in ``node.toml``: ``allowed_hosts`` round-trips lowercased, every wrong value
is refused naming the table and the rule, and the web UI's Host check takes the names
(with the bare name for the scheme's own port)."""

from __future__ import annotations

from pathlib import Path

import pytest

from globe_node.config import (
    MAX_ALLOWED_HOSTS,
    NodeConfig,
    WebUiSettings,
    load_config,
    render_config,
)
from globe_node.errors import ConfigError
from globe_node.webui.app import public_hosts
from tests.node.test_node_config import write_config

RULE = (
    f'[webui] allowed_hosts must be a list of at most {MAX_ALLOWED_HOSTS} "host:port" (a DNS'
    " name, an IPv4 address or a bracketed IPv6 address; a port 1-65535)"
)


def test_allowed_hosts_round_trip(tmp_path: Path) -> None:
    config = NodeConfig(
        directory=tmp_path, authority="FR-PNF", hub_url="https://hub.example.org",
        webui=WebUiSettings(allowed_hosts=("globe.example.org:443", "10.0.0.5:8443",
                                           "[2001:db8::1]:443")),
    )  # fmt: skip
    (tmp_path / "node.toml").write_text(render_config(config))
    assert load_config(tmp_path) == config


def test_no_webui_table_allows_no_other_names(tmp_path: Path) -> None:
    write_config(tmp_path / "n", "")
    assert load_config(tmp_path / "n").webui == WebUiSettings(allowed_hosts=())


def test_names_are_read_lowercased(tmp_path: Path) -> None:
    write_config(tmp_path / "n", '[webui]\nallowed_hosts = ["Globe.Example.ORG:443"]\n')
    assert load_config(tmp_path / "n").webui.allowed_hosts == ("globe.example.org:443",)


@pytest.mark.parametrize(
    ("text", "detail"),
    [
        ('allowed_hosts = ["globe.example.org"]', RULE),
        ('allowed_hosts = ["globe.example.org:0"]', RULE),
        ('allowed_hosts = ["globe.example.org:65536"]', RULE),
        ('allowed_hosts = ["*:443"]', RULE),
        ('allowed_hosts = ["globe.example.org:443/ui"]', RULE),
        ('allowed_hosts = ["-globe.example.org:443"]', RULE),
        ('allowed_hosts = ["globe..example.org:443"]', RULE),
        ('allowed_hosts = ["2001:db8::1:443"]', RULE),
        ('allowed_hosts = ["[2001:db8::g]:443"]', RULE),
        (f'allowed_hosts = ["{"a" * 63}.{"b" * 63}.{"c" * 63}.{"d" * 63}:443"]', RULE),
        ("allowed_hosts = [443]", RULE),
        ('allowed_hosts = "globe.example.org:443"', RULE),
        ("allowed_hosts = [" + ", ".join(['"h.example:443"'] * (MAX_ALLOWED_HOSTS + 1)) + "]",
         RULE),
        ("colour = 1", "[webui] colour: unknown setting"),
    ],
    ids=[
        "no-port", "port-0", "port-too-big", "wildcard", "a-path", "leading-hyphen",
        "empty-label", "bare-ipv6", "bad-ipv6", "name-too-long", "not-a-string",
        "not-a-list", "too-many", "unknown",
    ],
)  # fmt: skip
def test_a_wrong_webui_setting_is_refused(tmp_path: Path, text: str, detail: str) -> None:
    path = write_config(tmp_path / "n", f"[webui]\n{text}\n")
    with pytest.raises(ConfigError) as err:
        load_config(tmp_path / "n")
    assert err.value.detail == f"{path}: {detail}"


def test_webui_must_be_a_table(tmp_path: Path) -> None:
    path = write_config(tmp_path / "n", 'webui = "on"\n')
    with pytest.raises(ConfigError) as err:
        load_config(tmp_path / "n")
    assert err.value.detail == f"{path}: [webui] is a table"


def test_the_host_check_takes_each_name_and_the_bare_name_of_a_schemes_port() -> None:
    assert public_hosts(["globe.example.org:443", "intranet.example:80", "ui.example:8443"]) == {
        "globe.example.org:443", "globe.example.org", "intranet.example:80", "intranet.example",
        "ui.example:8443",
    }  # fmt: skip
    assert public_hosts([]) == frozenset()
