"""What ``globe-hub check`` and ``globe-node check`` share: findings, the report and its exit
status, and the checks both deployments need (file modes, free disk, a URL that answers).

A **finding** is something wrong with a deployment, with a stable code for scripts
(``key-permissions``, ``clock-skew``, …) and a line for people saying what is wrong
and what to do.  The report lists every finding and what was checked; its exit status
is what a script or a monitoring probe reads:

* ``0`` nothing found;
* ``1`` findings (each one in the report);
* ``2`` the deployment could not be checked (its configuration does not read, its
  database does not open): the findings say why, and the rest was not checked.

Codes and their fixes are listed in docs/OPERATIONS.md, "Check a deployment".
"""

from __future__ import annotations

import os
import shutil
import stat
import sys
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

import orjson

if TYPE_CHECKING:  # the database layer (SQLAlchemy) only where a check reads a database
    from globe_io.database import SchemaState

__all__ = [
    "EXIT_CANNOT_CHECK",
    "EXIT_FINDINGS",
    "EXIT_OK",
    "EXPIRY_WARNING",
    "Finding",
    "Report",
    "disk_findings",
    "mode_findings",
    "schema_findings",
]

EXIT_OK: Final = 0
EXIT_FINDINGS: Final = 1
EXIT_CANNOT_CHECK: Final = 2
#: A certificate that ends within this many seconds is a finding (30 days).
EXPIRY_WARNING: Final = 30 * 86400


@dataclass(frozen=True, slots=True)
class Finding:
    """One thing wrong: a stable code and a sentence saying what and what to do."""

    code: str
    detail: str

    def to_json(self) -> dict[str, str]:
        """The ``--json`` form."""
        return {"code": self.code, "detail": self.detail}


@dataclass(slots=True)
class Report:
    """The findings of one check run, what was checked, and whether it could finish."""

    program: str
    findings: list[Finding] = field(default_factory=list)
    checked: list[str] = field(default_factory=list)
    complete: bool = True

    def add(self, checked: str, findings: Iterable[Finding] = ()) -> None:
        """Record that ``checked`` was looked at, and what it found."""
        self.checked.append(checked)
        self.findings.extend(findings)

    def stop(self, finding: Finding) -> Report:
        """Record a finding that leaves the rest uncheckable (exit status 2)."""
        self.findings.append(finding)
        self.complete = False
        return self

    @property
    def status(self) -> int:
        """The exit status: 0, 1 or 2 (module doc)."""
        if not self.complete:
            return EXIT_CANNOT_CHECK
        return EXIT_FINDINGS if self.findings else EXIT_OK

    def to_json(self) -> dict[str, Any]:
        """The ``--json`` document."""
        return {
            "status": ["ok", "findings", "cannot-check"][self.status],
            "exit_status": self.status,
            "findings": [f.to_json() for f in self.findings],
            "checked": self.checked,
        }

    def lines(self) -> list[str]:
        """The report for people."""
        out = [f"{self.program} check: {f.code}: {f.detail}" for f in self.findings]
        if not self.complete:
            out.append(f"{self.program} check: stopped: the rest could not be checked")
        elif not self.findings:
            out.append(f"{self.program} check: ok ({', '.join(self.checked)})")
        else:
            out.append(f"{self.program} check: {len(self.findings)} finding(s)")
        return out

    def emit(self, *, as_json: bool) -> int:
        """Print the report (JSON or lines) on stdout; return the exit status."""
        if as_json:
            sys.stdout.write(orjson.dumps(self.to_json(), option=orjson.OPT_INDENT_2).decode())
            sys.stdout.write("\n")
        else:
            sys.stdout.write("".join(f"{line}\n" for line in self.lines()))
        sys.stdout.flush()
        return self.status


def mode_findings(path: Path, code: str, what: str, *, mask: int = 0o077) -> list[Finding]:
    """A finding when ``path`` exists and grants any permission bit of ``mask`` (by
    default: anything to group or others), or is not owned by the user checking."""
    try:
        st = path.lstat()
    except FileNotFoundError:
        return []
    if stat.S_ISLNK(st.st_mode):
        return [Finding(code, f"{path} ({what}) is a symbolic link; keep the real file here")]
    mode = stat.S_IMODE(st.st_mode)
    out = []
    if mode & mask:
        wanted = mode & ~mask
        out.append(
            Finding(
                code,
                f"{path} ({what}) has mode {mode:04o}: others may read it; "
                f"run chmod {wanted:04o} {path}",
            )
        )
    if st.st_uid != os.geteuid():
        out.append(
            Finding(
                code,
                f"{path} ({what}) belongs to uid {st.st_uid}, not to the service user "
                f"(uid {os.geteuid()}) running this check",
            )
        )
    return out


def disk_findings(path: Path, min_free: int) -> list[Finding]:
    """A ``disk-low`` finding when the file system holding ``path`` has less than
    ``min_free`` bytes free for the service."""
    usage = shutil.disk_usage(path)
    if usage.free >= min_free:
        return []
    return [
        Finding(
            "disk-low",
            f"{usage.free} bytes free on the file system of {path} (minimum {min_free}): "
            "a full disk stops acknowledgements (they wait for durable commits); free space",
        )
    ]


def schema_findings(state: SchemaState, *, initialise: str, upgrade: str) -> list[Finding]:
    """What is wrong with a database's schema revision: never migrated (``initialise`` says
    how to), written by a newer release, or behind this release (``upgrade`` says what
    upgrades it)."""
    if state.current is None:
        return [Finding("schema-missing", f"the database was never migrated: {initialise}")]
    if not state.known:
        return [
            Finding(
                "schema-newer",
                f"the database is at revision {state.current}, which this release does not "
                "know: a newer release wrote it; upgrade again, or restore the backup taken "
                "before the upgrade (docs/OPERATIONS.md, 'Upgrade and roll back')",
            )
        ]
    if not state.up_to_date:
        return [
            Finding(
                "schema-outdated",
                f"the database is at revision {state.current}, this release at {state.head}: "
                f"{upgrade}",
            )
        ]
    return []
