"""Hub configuration: a TOML file in the hub directory (see docs/OPERATIONS.md)."""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Final

from globe_io.errors import ConfigError
from globe_io.httpguard import HttpLimits

__all__ = ["CONFIG_NAME", "KEYS", "HubConfig", "Limits", "load_config", "render_config"]

CONFIG_NAME = "hub.toml"
MIB = 1 << 20
GIB = 1 << 30


@dataclass(frozen=True, slots=True)
class Limits:
    """Request limits (DoS bounds are configuration, not constants)."""

    max_body: int = 64 * 1024  # bytes, any JSON endpoint
    rate_per_second: float = 20.0  # sustained requests per key (or per address if anonymous)
    burst: int = 100  # token-bucket depth
    clock_skew: int = 60  # seconds accepted either side for signed requests
    page_size: int = 500  # maximum log entries or search results per page
    max_envelope: int = 2 * MIB  # bytes per submitted envelope
    mailbox_count: int = 100_000  # items waiting per recipient
    mailbox_bytes: int = 2 * GIB  # bytes waiting per recipient
    batch_max: int = 256  # submissions per group commit
    max_blob: int = 2 * GIB  # bytes per attachment blob
    blob_quota: int = 16 * GIB  # bytes of blobs one authority may have stored at once
    blob_grace: int = 86400  # seconds a blob no accepted envelope lists is kept

    def check(self) -> None:
        """:class:`ConfigError` naming the first value out of its range."""
        problems = self.problems()
        if problems:
            raise ConfigError(problems[0])

    def problems(self) -> list[str]:
        """One line per value out of its range (empty: all are in range)."""
        out = []
        for name, (lo, hi) in _RANGES.items():
            value = getattr(self, name)
            number = isinstance(value, int | float) if name in _REAL else isinstance(value, int)
            if not number or isinstance(value, bool) or not lo <= value <= hi:
                kind = "a number" if name in _REAL else "an integer"
                out.append(f"[limits] {name} must be {kind} from {lo} to {hi}, not {value!r}")
        return out


#: Accepted ranges of the ``[limits]`` values.
_RANGES: dict[str, tuple[int | float, int | float]] = {
    "max_body": (1024, GIB),
    "rate_per_second": (0.001, 1e12),
    "burst": (1, 10**12),
    "clock_skew": (1, 86400),
    "page_size": (1, 100_000),
    "max_envelope": (1024, GIB),
    "mailbox_count": (1, 10**12),
    "mailbox_bytes": (1, 1 << 50),
    "batch_max": (1, 10_000),
    "max_blob": (1, 1 << 50),
    "blob_quota": (1, 1 << 50),
    "blob_grace": (0, 10 * 365 * 86400),
}
_REAL = frozenset({"rate_per_second"})


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
    http: HttpLimits = field(default_factory=HttpLimits)  # receiving requests (globe_io.httpguard)

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


#: Every top-level key ``hub.toml`` may hold (the tables included).
KEYS: Final = frozenset(f.name for f in fields(HubConfig)) - {"directory"}
_TYPES: Final = {
    "database_url": str, "host": str, "key_file": str, "genesis_file": str,
    "port": int, "certificate_days": int,
}  # fmt: skip


def load_config(directory: Path) -> HubConfig:
    """Read ``DIR/hub.toml``; :class:`ConfigError` naming *every* wrong setting otherwise.

    The message is one line, ``PATH: problem; problem; ...``, so that an operator
    fixes the file in one go instead of one start per mistake.
    """
    path = directory / CONFIG_NAME
    try:
        raw: dict[str, Any] = tomllib.loads(path.read_text("utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"{path} not found: run 'globe-hub init --dir {directory}'") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: {exc}") from None
    limits, problems = _limits(raw.pop("limits", {}))
    http, http_problems = _http(raw.pop("http", {}))
    problems += [f"{name}: unknown setting" for name in sorted(raw.keys() - KEYS)]
    problems += ["database_url: missing"] if "database_url" not in raw else []
    problems += _top_level(raw) + http_problems
    if problems:
        raise ConfigError(f"{path}: {'; '.join(problems)}")
    return HubConfig(directory=directory, limits=limits, http=http, **raw)


def _top_level(raw: dict[str, Any]) -> list[str]:
    out = []
    for name, kind in _TYPES.items():
        value = raw.get(name)
        if value is not None and (not isinstance(value, kind) or isinstance(value, bool)):
            out.append(f"{name} must be {'a string' if kind is str else 'an integer'}")
    port, days = raw.get("port", 0), raw.get("certificate_days", 730)
    if type(port) is int and not 0 <= port <= 65535:
        out.append(f"port must be a port, 0-65535, not {port}")
    if type(days) is int and not 1 <= days <= 5 * 366:
        out.append(f"certificate_days must be from 1 to {5 * 366}, not {days}")
    return out


def _limits(table: object) -> tuple[Limits, list[str]]:
    if not isinstance(table, dict):
        return Limits(), ["[limits] is a table"]
    known = {f.name for f in fields(Limits)}
    out = [f"[limits] {name}: unknown setting" for name in sorted(table.keys() - known)]
    limits = Limits(**{k: v for k, v in table.items() if k in known})
    return limits, out + limits.problems()


def _http(table: object) -> tuple[HttpLimits, list[str]]:
    if not isinstance(table, dict):
        return HttpLimits(), ["[http] is a table"]
    known = {f.name for f in fields(HttpLimits)}
    out = [f"[http] {name}: unknown setting" for name in sorted(table.keys() - known)]
    values = {k: v for k, v in table.items() if k in known}
    if isinstance(values.get("trusted_proxies"), list):
        values["trusted_proxies"] = tuple(values["trusted_proxies"])
    http = HttpLimits(**values)
    return http, out + [f"[http] {line}" for line in http.problems()]


def render_config(config: HubConfig) -> str:
    """The TOML text for ``config``."""
    lim = config.limits
    proxies = ", ".join(f'"{network}"' for network in config.http.trusted_proxies)
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
        f"max_envelope = {lim.max_envelope}\n"
        f"mailbox_count = {lim.mailbox_count}\n"
        f"mailbox_bytes = {lim.mailbox_bytes}\n"
        f"batch_max = {lim.batch_max}\n"
        f"max_blob = {lim.max_blob}\n"
        f"blob_quota = {lim.blob_quota}\n"
        f"blob_grace = {lim.blob_grace}\n\n"
        "[http]  # receiving requests: time limits, header bounds, trusted proxies\n"
        f"head_timeout = {config.http.head_timeout}\n"
        f"body_timeout = {config.http.body_timeout}\n"
        f"body_min_rate = {config.http.body_min_rate}\n"
        f"max_line_size = {config.http.max_line_size}\n"
        f"max_field_size = {config.http.max_field_size}\n"
        f"max_headers = {config.http.max_headers}\n"
        f"trusted_proxies = [{proxies}]\n"
    )
