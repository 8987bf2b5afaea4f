"""deploy/examples/: the example hub.toml and node.toml read with the real loaders, name
every setting the loaders accept (no more, no fewer), and explain each one in a comment."""

from __future__ import annotations

import shutil
import tomllib
from dataclasses import fields
from pathlib import Path

import pytest

from globe_io.httpguard import HttpLimits
from globe_node.config import KEYS as NODE_KEYS
from globe_node.config import Deadlines, RetentionPolicy, WebUiSettings
from globe_node.config import load_config as load_node_config
from hub.config import KEYS as HUB_KEYS
from hub.config import Limits
from hub.config import load_config as load_hub_config

EXAMPLES = Path(__file__).resolve().parents[2] / "deploy" / "examples"
TABLES = {
    "limits": Limits, "http": HttpLimits, "deadlines": Deadlines, "retention": RetentionPolicy,
    "webui": WebUiSettings,
}  # fmt: skip


def _accepted(keys: frozenset[str]) -> set[str]:
    out = set()
    for key in keys:
        if key in TABLES:
            out |= {f"{key}.{f.name}" for f in fields(TABLES[key])}
        else:
            out.add(key)
    return out


def _named(raw: dict[str, object]) -> set[str]:
    out = set()
    for key, value in raw.items():
        if isinstance(value, dict):
            out |= {f"{key}.{sub}" for sub in value}
        else:
            out.add(key)
    return out


@pytest.mark.parametrize(
    ("name", "keys", "load"),
    [("hub.toml", HUB_KEYS, load_hub_config), ("node.toml", NODE_KEYS, load_node_config)],
)
def test_the_example_reads_and_names_every_setting(name, keys, load, tmp_path: Path) -> None:
    shutil.copy(EXAMPLES / name, tmp_path / name)
    load(tmp_path)  # a ConfigError would name every wrong setting
    raw = tomllib.loads((EXAMPLES / name).read_text())
    assert _named(raw) == _accepted(keys)


@pytest.mark.parametrize("name", ["hub.toml", "node.toml"])
def test_every_setting_is_explained(name: str) -> None:
    block: list[str] = []
    for line in (EXAMPLES / name).read_text().splitlines():
        stripped = line.strip()
        if not stripped or stripped.startswith("["):
            block = []
            continue
        block.append(stripped)
        if not stripped.startswith("#"):
            assert any(x.startswith("#") for x in block), f"{name}: {stripped} has no comment"
