"""Hub configuration: a TOML file in the hub directory (see docs/OPERATIONS.md)."""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hub.errors import ConfigError

__all__ = ["CONFIG_NAME", "HubConfig", "Limits", "load_config", "render_config"]

CONFIG_NAME = "hub.toml"


@dataclass(frozen=True, slots=True)
class Limits:
    """Request limits (DoS bounds are configuration, not constants)."""

    max_body: int = 64 * 1024  # bytes, any JSON endpoint
    rate_per_second: float = 20.0  # sustained requests per key (or per address if anonymous)
    burst: int = 100  # token-bucket depth
    clock_skew: int = 60  # seconds accepted either side for signed requests
    page_size: int = 500  # maximum log entries or search results per page


@dataclass(frozen=True, slots=True)
class HubConfig:
    """Everything ``globe-hub serve`` needs."""

    directory: Path
    database_url: str
    host: str = "127.0.0.1"
    port: int = 8440
    key_file: str = "hub.key"
    genesis_file: str = "genesis.json"
    certificate_days: int = 730
    limits: Limits = field(default_factory=Limits)

    @property
    def key_path(self) -> Path:
        """The passphrase-sealed hub signing key."""
        return self.directory / self.key_file

    @property
    def genesis_path(self) -> Path:
        """The installed genesis file."""
        return self.directory / self.genesis_file


def default_database_url(directory: Path) -> str:
    """SQLite in the hub directory."""
    return f"sqlite+aiosqlite:///{(directory / 'hub.db').resolve()}"


def load_config(directory: Path) -> HubConfig:
    """Read ``DIR/hub.toml``; :class:`ConfigError` with a clear message otherwise."""
    path = directory / CONFIG_NAME
    try:
        raw: dict[str, Any] = tomllib.loads(path.read_text("utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"{path} not found: run 'globe-hub init --dir {directory}'") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: {exc}") from None
    try:
        limits = Limits(**raw.pop("limits", {}))
        return HubConfig(directory=directory, limits=limits, **raw)
    except TypeError as exc:
        raise ConfigError(f"{path}: {exc}") from None


def render_config(config: HubConfig) -> str:
    """The TOML text for ``config``."""
    lim = config.limits
    return (
        "# GlobE Link hub configuration (docs/OPERATIONS.md)\n"
        f'database_url = "{config.database_url}"\n'
        f'host = "{config.host}"\n'
        f"port = {config.port}\n"
        f'key_file = "{config.key_file}"\n'
        f'genesis_file = "{config.genesis_file}"\n'
        f"certificate_days = {config.certificate_days}\n\n"
        "[limits]\n"
        f"max_body = {lim.max_body}\n"
        f"rate_per_second = {lim.rate_per_second}\n"
        f"burst = {lim.burst}\n"
        f"clock_skew = {lim.clock_skew}\n"
        f"page_size = {lim.page_size}\n"
    )
