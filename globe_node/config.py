"""Node configuration: ``DIR/node.toml`` (see docs/OPERATIONS.md, "Running a node")."""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from globe_io.httpguard import HttpLimits
from globe_node.errors import ConfigError
from protocol.messages import Urgency

__all__ = ["CONFIG_NAME", "Deadlines", "NodeConfig", "load_config", "render_config"]

CONFIG_NAME = "node.toml"
GIB = 1 << 30
HOUR = 3600
DAY = 24 * HOUR


@dataclass(frozen=True, slots=True)
class Deadlines:
    """Default answer deadlines by urgency, in seconds (BRIEF §4)."""

    urgent: int = 8 * HOUR
    priority: int = 3 * DAY
    routine: int = 7 * DAY

    def for_urgency(self, urgency: Urgency) -> int:
        """The default deadline, in seconds after sending, for ``urgency``."""
        return int(getattr(self, urgency.value))


@dataclass(frozen=True, slots=True)
class NodeConfig:
    """Everything ``globe-node run`` needs besides the passphrase."""

    directory: Path
    authority: str
    hub_url: str
    peer_host: str = "127.0.0.1"  # the direct-delivery listener (POST /v1/inbox)
    peer_port: int = 0  # 0: no listener (the node publishes no endpoint)
    api_host: str = "127.0.0.1"  # the local API for the CLI and the web UI
    api_port: int = 8450
    directory_max_age: int = DAY  # refuse to send when the verified head is older
    sync_interval: float = 30.0  # seconds between directory syncs and mailbox pulls
    prekey_lifetime: int = 7 * DAY
    prekey_rotate_before: int = 2 * DAY  # publish the next prekey this long before expiry
    prekey_grace: int = 7 * DAY  # keep a private prekey this long after it expired
    message_lifetime: int = 7 * DAY  # envelope expiry after creation (at most 30 days)
    retry_base: float = 1.0  # outbox backoff: base * 2**attempt, capped, with jitter
    retry_max: float = 300.0
    direct_timeout: float = 5.0  # a peer that does not answer in time: relay via the hub
    allow_private_endpoints: bool = False  # post to loopback/private peer addresses (test nets)
    peer_rate: float = 50.0  # peer listener: requests per second per address and per member
    peer_burst: int = 200
    upload_lifetime: int = DAY  # a staged upload no message took is erased after this
    upload_quota: int = 8 * GIB  # bytes of staged uploads the node holds at once
    deadlines: Deadlines = field(default_factory=Deadlines)
    http: HttpLimits = field(default_factory=HttpLimits)  # receiving requests, both listeners

    @property
    def db_path(self) -> Path:
        """The node database."""
        return self.directory / "node.db"

    @property
    def key_path(self) -> Path:
        """The passphrase-sealed key file."""
        return self.directory / "keys.sealed"

    @property
    def genesis_path(self) -> Path:
        """The pinned genesis."""
        return self.directory / "genesis.json"

    @property
    def blob_dir(self) -> Path:
        """Attachment files (blob-encrypted) and their downloads."""
        return self.directory / "blobs"

    @property
    def token_path(self) -> Path:
        """The operator token the CLI uses on this machine (mode 0600)."""
        return self.directory / "api.token"


_INT_FIELDS = {
    f.name for f in fields(NodeConfig) if f.type in ("int", int) and f.name != "directory"
}
_FLOAT_FIELDS = {f.name for f in fields(NodeConfig) if f.type in ("float", float)}


_STR_FIELDS = {f.name for f in fields(NodeConfig) if f.type in ("str", str)}
_BOOL_FIELDS = {f.name for f in fields(NodeConfig) if f.type in ("bool", bool)}


def _check(raw: dict[str, Any], path: Path) -> None:
    for name, value in raw.items():
        if name in _STR_FIELDS and not isinstance(value, str):
            raise ConfigError(f"{path}: {name} must be a string")
        if name in _BOOL_FIELDS and not isinstance(value, bool):
            raise ConfigError(f"{path}: {name} must be true or false")
        if name in _INT_FIELDS and (type(value) is not int or value < 0):
            raise ConfigError(f"{path}: {name} must be a non-negative integer")
        if name in _FLOAT_FIELDS and (
            type(value) not in (int, float) or not 0 < value < float("inf")
        ):
            raise ConfigError(f"{path}: {name} must be a positive number")
    if not 0 <= raw.get("peer_port", 0) <= 65535 or not 0 <= raw.get("api_port", 8450) <= 65535:
        raise ConfigError(f"{path}: ports are 0-65535")
    lifetime = raw.get("message_lifetime", 7 * DAY)
    if not 60 <= lifetime <= 30 * DAY:
        raise ConfigError(f"{path}: message_lifetime must be 60 s to 30 days")
    if raw.get("prekey_lifetime", 7 * DAY) <= raw.get("prekey_rotate_before", 2 * DAY):
        raise ConfigError(f"{path}: prekey_lifetime must exceed prekey_rotate_before")
    if raw.get("prekey_lifetime", 7 * DAY) > 90 * DAY - 60:  # PROTOCOL.md §6.6
        raise ConfigError(f"{path}: prekey_lifetime is at most 90 days less a minute")
    if raw.get("api_port", 8450) == 0:
        raise ConfigError(f"{path}: api_port must name a port (1-65535)")


def load_config(directory: Path) -> NodeConfig:
    """Read ``DIR/node.toml``; :class:`ConfigError` with a clear message otherwise."""
    path = directory / CONFIG_NAME
    try:
        raw: dict[str, Any] = tomllib.loads(path.read_text("utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"{path} not found: run 'globe-node init --dir {directory}'") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: {exc}") from None
    deadlines = raw.pop("deadlines", {})
    http_table = raw.pop("http", {})
    if not isinstance(http_table, dict):
        raise ConfigError(f"{path}: [http] is a table")
    _check(raw, path)
    if not isinstance(deadlines, dict) or any(
        type(v) is not int or v <= 0 for v in deadlines.values()
    ):
        raise ConfigError(f"{path}: [deadlines] values are positive integers (seconds)")
    try:
        http = HttpLimits(**http_table)
        http.check()
        return NodeConfig(directory=directory, deadlines=Deadlines(**deadlines), http=http, **raw)
    except TypeError as exc:
        raise ConfigError(f"{path}: {exc}") from None
    except ConfigError as exc:
        raise ConfigError(f"{path}: [http] {exc.detail}") from None


def render_config(config: NodeConfig) -> str:
    """The TOML text for ``config``."""
    lines = ["# GlobE Link node configuration (docs/OPERATIONS.md)"]
    for f in fields(NodeConfig):
        if f.name in ("directory", "deadlines", "http"):
            continue
        value = getattr(config, f.name)
        if isinstance(value, bool):
            lines.append(f"{f.name} = {'true' if value else 'false'}")
        else:
            lines.append(
                f'{f.name} = "{value}"' if isinstance(value, str) else f"{f.name} = {value}"
            )
    d = config.deadlines
    lines += ["", "[deadlines]", f"urgent = {d.urgent}", f"priority = {d.priority}"]
    lines.append(f"routine = {d.routine}")
    h = config.http
    lines += ["", "[http]  # receiving requests: time limits and header bounds"]
    lines += [f"{f.name} = {getattr(h, f.name)}" for f in fields(HttpLimits)]
    return "\n".join(lines) + "\n"
