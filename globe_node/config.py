"""Node configuration: ``DIR/node.toml`` (see docs/OPERATIONS.md, "Running a node")."""

from __future__ import annotations

import ipaddress
import json
import re
import tomllib
from dataclasses import dataclass, field, fields
from enum import Enum
from pathlib import Path
from typing import Any, Final

from globe_io.httpguard import HttpLimits
from globe_node.errors import ConfigError
from globe_node.roles import NAME_RE
from protocol.messages import Kind, Restriction, Tlp, Urgency

__all__ = [
    "CONFIG_NAME",
    "KEYS",
    "CaseScope",
    "Deadlines",
    "NodeConfig",
    "PurgeScope",
    "RetentionPolicy",
    "RetentionRule",
    "Since",
    "WebUiSettings",
    "load_config",
    "render_config",
]

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


class PurgeScope(Enum):
    """What a retention rule removes from a message (docs/OPERATIONS.md §11.11)."""

    ATTACHMENTS = "attachments"  # the attachment files and their keys
    CONTENT = "content"  # subject, body, names and texts too (the attachments with them)


class Since(Enum):
    """From when a retention rule counts its days."""

    MESSAGE = "message"  # the message's time here: received, or created for a sent one
    CASE_CLOSED = "case-closed"  # the closing of the case it is filed under (while closed)


class CaseScope(Enum):
    """Which messages a retention rule looks at, by their case."""

    ANY = "any"
    NONE = "none"  # filed under no case
    FILED = "filed"  # filed under a case


@dataclass(frozen=True, slots=True)
class RetentionRule:
    """One ``[[retention.rules]]``: what to purge of which messages, how long after what.

    A message matches when its kind, TLP level and case are among those named (an empty
    set names every one) and it carries one of ``restrictions`` (if any are named).
    """

    name: str
    purge: PurgeScope
    after_days: int
    since: Since = Since.MESSAGE
    kinds: frozenset[Kind] = frozenset()
    tlp: frozenset[Tlp] = frozenset()
    restrictions: frozenset[Restriction] = frozenset()
    cases: CaseScope = CaseScope.ANY


@dataclass(frozen=True, slots=True)
class RetentionPolicy:
    """``[retention]``: the rules, and whether the daemon applies them once a day.

    No rule by default: the node keeps everything until its operator says what the law
    lets it drop, because a purge cannot be undone and keeping too long can be.
    """

    daily: bool = False  # the daemon purges once a day, at ``at``
    at: str = "03:00"  # UTC, HH:MM
    rules: tuple[RetentionRule, ...] = ()


@dataclass(frozen=True, slots=True)
class WebUiSettings:
    """``[webui]``: the web UI served under ``/ui`` on the local API listener."""

    # "host:port" names the UI also answers to (a TLS proxy that is not a trusted proxy
    # passing the browser's Host on), lowercased; docs/OPERATIONS.md §11.5a
    allowed_hosts: tuple[str, ...] = ()


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
    metrics_host: str = "127.0.0.1"  # Prometheus metrics (counts only, no case material)
    metrics_port: int = 0  # 0: no metrics listener
    # the team that sees cases and messages not yet assigned to a team (compartments)
    intake_team: str = "intake"
    reminder_due_soon: int = DAY  # "due soon": less than this (or a quarter of the time) left
    # argv of a local command told of each reminder (JSON on stdin); no shell, no PATH lookup
    reminder_command: tuple[str, ...] = ()
    reminder_timeout: float = 10.0  # seconds the command may take before it is killed
    deadlines: Deadlines = field(default_factory=Deadlines)
    http: HttpLimits = field(default_factory=HttpLimits)  # receiving requests, both listeners
    retention: RetentionPolicy = field(default_factory=RetentionPolicy)  # purges, holds apart
    webui: WebUiSettings = field(default_factory=WebUiSettings)

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
#: Every top-level key ``node.toml`` may hold (the tables included).
KEYS = frozenset(f.name for f in fields(NodeConfig)) - {"directory"}
_PORTS = ("peer_port", "api_port", "metrics_port")


def _types(raw: dict[str, Any]) -> list[str]:
    """One line per value of the wrong type or sign."""
    out = []
    for name, value in raw.items():
        if name in _STR_FIELDS and not isinstance(value, str):
            out.append(f"{name} must be a string")
        elif name in _BOOL_FIELDS and not isinstance(value, bool):
            out.append(f"{name} must be true or false")
        elif name in _INT_FIELDS and (type(value) is not int or value < 0):
            out.append(f"{name} must be a non-negative integer")
        elif name in _FLOAT_FIELDS and (
            type(value) not in (int, float) or not 0 < value < float("inf")
        ):
            out.append(f"{name} must be a positive number")
    return out


def _ranges(raw: dict[str, Any]) -> list[str]:
    """One line per value outside its range or in contradiction with another."""
    out = [f"{name} must be a port, 0-65535" for name in _PORTS if raw.get(name, 0) > 65535]
    if raw.get("api_port", 8450) == 0:
        out.append("api_port must name a port (1-65535)")
    lifetime = raw.get("message_lifetime", 7 * DAY)
    if not 60 <= lifetime <= 30 * DAY:
        out.append("message_lifetime must be 60 s to 30 days")
    if raw.get("prekey_lifetime", 7 * DAY) <= raw.get("prekey_rotate_before", 2 * DAY):
        out.append("prekey_lifetime must exceed prekey_rotate_before")
    if raw.get("prekey_lifetime", 7 * DAY) > 90 * DAY - 60:  # PROTOCOL.md §6.6
        out.append("prekey_lifetime is at most 90 days less a minute")
    return out


def _deadlines(table: object) -> tuple[Deadlines, list[str]]:
    if not isinstance(table, dict):
        return Deadlines(), ["[deadlines] is a table"]
    known = {f.name for f in fields(Deadlines)}
    out = [f"[deadlines] {name}: unknown setting" for name in sorted(table.keys() - known)]
    out += [
        f"[deadlines] {name} must be a positive integer (seconds)"
        for name, value in sorted(table.items())
        if name in known and (type(value) is not int or value <= 0)
    ]
    return (Deadlines(**table) if not out else Deadlines()), out


def _http(table: object) -> tuple[HttpLimits, list[str]]:
    if not isinstance(table, dict):
        return HttpLimits(), ["[http] is a table"]
    known = {f.name for f in fields(HttpLimits)}
    out = [f"[http] {name}: unknown setting" for name in sorted(table.keys() - known)]
    values = {k: v for k, v in table.items() if k in known}
    if isinstance(values.get("trusted_proxies"), list):
        values["trusted_proxies"] = tuple(values["trusted_proxies"])
    http = HttpLimits(**values)
    out += [f"[http] {line}" for line in http.problems()]
    return http, out


def load_config(directory: Path) -> NodeConfig:
    """Read ``DIR/node.toml``; :class:`ConfigError` naming *every* wrong setting otherwise.

    The message is one line, ``PATH: problem; problem; ...``, so an operator fixes
    the file in one go instead of one start per mistake.
    """
    path = directory / CONFIG_NAME
    try:
        raw: dict[str, Any] = tomllib.loads(path.read_text("utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"{path} not found: run 'globe-node init --dir {directory}'") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: {exc}") from None
    deadlines, problems = _deadlines(raw.pop("deadlines", {}))
    http, http_problems = _http(raw.pop("http", {}))
    retention, retention_problems = _retention(raw.pop("retention", {}))
    webui, webui_problems = _webui(raw.pop("webui", {}))
    problems += [f"{name}: unknown setting" for name in sorted(raw.keys() - KEYS)]
    problems += [f"{name}: missing" for name in ("authority", "hub_url") if name not in raw]
    typed = _types(raw)
    problems += typed + (_ranges(raw) if not typed else []) + http_problems
    problems += _workflow(raw) + retention_problems + webui_problems
    if problems:
        raise ConfigError(f"{path}: {'; '.join(problems)}")
    return NodeConfig(
        directory=directory, deadlines=deadlines, http=http, retention=retention, webui=webui,
        **raw,
    )  # fmt: skip


#: Names ``[webui] allowed_hosts`` may hold at most.
MAX_ALLOWED_HOSTS: Final = 32
_LABEL: Final = r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?"
#: A DNS name, an IPv4 address or a bracketed IPv6 address, then a port.
_HOST_PORT: Final = re.compile(rf"({_LABEL}(?:\.{_LABEL})*|\[[0-9a-f:.]+\]):([0-9]{{1,5}})\Z")


def _allowed_host(value: object) -> str | None:
    """``value`` lowercased if it is ``host:port`` (a name of at most 253 characters, or
    an IP address; a port 1-65535), else None."""
    if not isinstance(value, str):
        return None
    found = _HOST_PORT.match(value.lower())
    if found is None or not 1 <= int(found.group(2)) <= 65535 or len(found.group(1)) > 253:
        return None
    host = found.group(1)
    if host.startswith("["):
        try:
            ipaddress.IPv6Address(host[1:-1])
        except ValueError:
            return None
    return value.lower()


def _webui(table: object) -> tuple[WebUiSettings, list[str]]:
    if not isinstance(table, dict):
        return WebUiSettings(), ["[webui] is a table"]
    known = {f.name for f in fields(WebUiSettings)}
    out = [f"[webui] {name}: unknown setting" for name in sorted(table.keys() - known)]
    names = table.get("allowed_hosts", [])
    hosts = [_allowed_host(n) for n in names] if isinstance(names, list) else [None]
    if len(hosts) > MAX_ALLOWED_HOSTS or None in hosts:
        out.append(
            f'[webui] allowed_hosts must be a list of at most {MAX_ALLOWED_HOSTS} "host:port"'
            " (a DNS name, an IPv4 address or a bracketed IPv6 address; a port 1-65535)"
        )
    if out:
        return WebUiSettings(), out
    return WebUiSettings(allowed_hosts=tuple(h for h in hosts if h is not None)), []


#: The longest retention a rule may name, in days (a century).
MAX_RETENTION_DAYS: Final = 36_500
_AT_RE: Final = re.compile(r"([01][0-9]|2[0-3]):[0-5][0-9]\Z", re.ASCII)
_RULE_KEYS: Final = frozenset(f.name for f in fields(RetentionRule))


def _names(enum: type[Enum]) -> str:
    return ", ".join(str(m.value) for m in enum)


def _choice(rule: dict[str, Any], name: str, enum: type[Enum], default: Enum | None) -> Any:
    """The member of ``enum`` ``rule[name]`` names; None if it names none."""
    value = rule.get(name, None if default is None else default.value)
    return next((m for m in enum if m.value == value), None)


def _members(rule: dict[str, Any], name: str, enum: type[Enum]) -> frozenset[Any] | None:
    """The members of ``enum`` the list ``rule[name]`` names; None if it is not such a list."""
    values = rule.get(name, [])
    known = {m.value: m for m in enum}
    if not isinstance(values, list) or not all(isinstance(v, str) and v in known for v in values):
        return None
    return frozenset(known[v] for v in values)


def _rule(i: int, rule: object, seen: dict[str, int]) -> tuple[RetentionRule | None, list[str]]:
    """One ``[[retention.rules]]`` table, each wrong setting named."""
    where = f"[retention] rule {i}"
    if not isinstance(rule, dict):
        return None, [f"{where} is a table"]
    out = [f"{where}: {name}: unknown setting" for name in sorted(rule.keys() - _RULE_KEYS)]
    out += [f"{where}: {k}: missing" for k in ("name", "purge", "after_days") if k not in rule]
    name = rule.get("name", "")
    if "name" in rule and not (isinstance(name, str) and NAME_RE.match(name)):
        out.append(f"{where}: name must be 1-64 of A-Z a-z 0-9 . _ @ - (starting with a letter"
                   " or digit)")  # fmt: skip
    elif name in seen:
        out.append(f"{where}: name {name!r} is rule {seen[name]}'s already")
    elif isinstance(name, str):
        seen[name] = i
    purge = _choice(rule, "purge", PurgeScope, None)
    if "purge" in rule and purge is None:
        out.append(f'{where}: purge must be "content" or "attachments"')
    days = rule.get("after_days", 0)
    if type(days) is not int or not 0 <= days <= MAX_RETENTION_DAYS:
        out.append(f"{where}: after_days must be an integer from 0 to {MAX_RETENTION_DAYS}")
    since = _choice(rule, "since", Since, Since.MESSAGE)
    if since is None:
        out.append(f'{where}: since must be "message" or "case-closed"')
    cases = _choice(rule, "cases", CaseScope, CaseScope.ANY)
    if cases is None:
        out.append(f'{where}: cases must be "any", "none" or "filed"')
    elif since is Since.CASE_CLOSED and cases is CaseScope.NONE:
        out.append(f'{where}: since "case-closed" needs messages filed under a case, not'
                   ' cases = "none"')  # fmt: skip
    sets = {}
    for key, enum in (("kinds", Kind), ("tlp", Tlp), ("restrictions", Restriction)):
        sets[key] = _members(rule, key, enum)
        if sets[key] is None:
            out.append(f"{where}: {key} must be a list of: {_names(enum)}")
    if out:
        return None, out
    return RetentionRule(
        name=name, purge=purge, after_days=days, since=since, kinds=sets["kinds"] or frozenset(),
        tlp=sets["tlp"] or frozenset(), restrictions=sets["restrictions"] or frozenset(),
        cases=cases,
    ), []  # fmt: skip


def _retention(table: object) -> tuple[RetentionPolicy, list[str]]:
    if not isinstance(table, dict):
        return RetentionPolicy(), ["[retention] is a table"]
    known = {f.name for f in fields(RetentionPolicy)}
    out = [f"[retention] {name}: unknown setting" for name in sorted(table.keys() - known)]
    daily = table.get("daily", False)
    if not isinstance(daily, bool):
        out.append("[retention] daily must be true or false")
    at = table.get("at", "03:00")
    if not isinstance(at, str) or not _AT_RE.match(at):
        out.append('[retention] at must be a time of day, "HH:MM" (UTC)')
    raw_rules = table.get("rules", [])
    rules: list[RetentionRule] = []
    if not isinstance(raw_rules, list):
        out.append("[retention] rules must be a list of tables ([[retention.rules]])")
        raw_rules = []
    seen: dict[str, int] = {}
    for i, raw in enumerate(raw_rules, start=1):
        rule, problems = _rule(i, raw, seen)
        out += problems
        if rule is not None:
            rules.append(rule)
    if out:
        return RetentionPolicy(), out
    return RetentionPolicy(daily=daily, at=at, rules=tuple(rules)), []


#: Words of a reminder command, and the longest one.
MAX_COMMAND_WORDS = 64
MAX_COMMAND_WORD = 4096


def _workflow(raw: dict[str, Any]) -> list[str]:
    """The intake team's name and the reminder command (made a tuple in ``raw``)."""
    out = []
    if not NAME_RE.match(str(raw.get("intake_team", "intake"))):
        out.append("intake_team must be a team name (1-64 of A-Z a-z 0-9 . _ @ -)")
    words = raw.get("reminder_command", [])
    if (
        not isinstance(words, list)
        or len(words) > MAX_COMMAND_WORDS
        or not all(isinstance(w, str) and 0 < len(w) <= MAX_COMMAND_WORD for w in words)
        or any("\x00" in w for w in words)
        or (words and not words[0].startswith("/"))
    ):
        out.append(
            f"reminder_command must be a list of at most {MAX_COMMAND_WORDS} words, the first"
            " an absolute path (it runs without a shell)"
        )
    else:
        raw["reminder_command"] = tuple(words)
    return out


def render_config(config: NodeConfig) -> str:
    """The TOML text for ``config``."""
    lines = ["# GlobE Link node configuration (docs/OPERATIONS.md)"]
    for f in fields(NodeConfig):
        if f.name in ("directory", "deadlines", "http", "retention", "webui"):
            continue
        value = getattr(config, f.name)
        if isinstance(value, tuple):  # reminder_command: TOML basic strings (JSON's escapes)
            lines.append(f"{f.name} = [{', '.join(json.dumps(w) for w in value)}]")
        elif isinstance(value, bool):
            lines.append(f"{f.name} = {'true' if value else 'false'}")
        else:
            lines.append(
                f'{f.name} = "{value}"' if isinstance(value, str) else f"{f.name} = {value}"
            )
    d = config.deadlines
    lines += ["", "[deadlines]", f"urgent = {d.urgent}", f"priority = {d.priority}"]
    lines.append(f"routine = {d.routine}")
    h = config.http
    lines += ["", "[http]  # receiving requests: time limits, header bounds, trusted proxies"]
    lines += [
        f"{f.name} = {getattr(h, f.name)}"
        for f in fields(HttpLimits)
        if f.name != "trusted_proxies"
    ]
    proxies = ", ".join(f'"{network}"' for network in h.trusted_proxies)
    lines.append(f"trusted_proxies = [{proxies}]")
    hosts = ", ".join(f'"{name}"' for name in config.webui.allowed_hosts)
    lines += ["", "[webui]  # docs/OPERATIONS.md §11.5a", f"allowed_hosts = [{hosts}]"]
    return "\n".join(lines + _render_retention(config.retention)) + "\n"


def _render_retention(policy: RetentionPolicy) -> list[str]:
    def listed(members: frozenset[Any]) -> str:
        return "[" + ", ".join(json.dumps(v) for v in sorted(m.value for m in members)) + "]"

    lines = ["", "[retention]  # docs/OPERATIONS.md §11.11; no rule: nothing is ever purged"]
    lines += [f"daily = {'true' if policy.daily else 'false'}", f'at = "{policy.at}"']
    for r in policy.rules:
        lines += [
            "", "[[retention.rules]]", f'name = "{r.name}"', f'purge = "{r.purge.value}"',
            f"after_days = {r.after_days}", f'since = "{r.since.value}"',
            f"kinds = {listed(r.kinds)}", f"tlp = {listed(r.tlp)}",
            f"restrictions = {listed(r.restrictions)}", f'cases = "{r.cases.value}"',
        ]  # fmt: skip
    return lines
