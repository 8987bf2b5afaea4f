"""deploy/systemd/: every unit passes ``systemd-analyze verify`` with no warning, and keeps
the hardening, the credential and the readiness protocol the daemons implement."""

from __future__ import annotations

import configparser
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

UNITS = Path(__file__).resolve().parents[2] / "deploy" / "systemd"
BIN = Path(sys.executable).parent
ANALYZE = shutil.which("systemd-analyze")
DAEMONS = ("globe-hub@.service", "globe-node.service")


def _installed(tmp_path: Path) -> Path:
    """The units as installed, the programs at this environment's paths (verify wants them)."""
    for unit in UNITS.iterdir():
        text = unit.read_text().replace("/opt/globe-link/bin", str(BIN))
        text = text.replace("/opt/globe-link/deploy/postgresql/backup.sh", "/bin/true")
        (tmp_path / unit.name).write_text(text)
    return tmp_path


@pytest.mark.skipif(
    ANALYZE is None, reason="systemd-analyze is not installed (.ci/run installs it)"
)
def test_every_unit_verifies_without_a_warning(tmp_path: Path) -> None:
    installed = _installed(tmp_path)
    names = sorted(p.name.replace("@.", "@8441.") for p in installed.iterdir())
    assert len(names) == 9
    ran = subprocess.run(
        [str(ANALYZE), "verify", "--man=no", *names], cwd=installed, capture_output=True,
        text=True, timeout=120, check=False,
    )  # fmt: skip
    assert (ran.returncode, ran.stdout, ran.stderr) == (0, "", "")


@pytest.mark.skipif(
    ANALYZE is None, reason="systemd-analyze is not installed (.ci/run installs it)"
)
def test_verify_catches_a_broken_unit(tmp_path: Path) -> None:
    installed = _installed(tmp_path)
    broken = installed / "globe-node.service"
    broken.write_text(broken.read_text().replace(str(BIN), "/nonexistent"))
    ran = subprocess.run(
        [str(ANALYZE), "verify", "--man=no", "globe-node.service"], cwd=installed,
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert ran.returncode != 0
    assert "/nonexistent/globe-node is not executable" in ran.stderr


def _service(name: str) -> dict[str, list[str]]:
    parser = configparser.ConfigParser(strict=False, interpolation=None, delimiters=("=",))
    parser.optionxform = str  # type: ignore[assignment,method-assign]
    values: dict[str, list[str]] = {}
    for line in (UNITS / name).read_text().splitlines():
        if "=" in line and not line.startswith(("#", "[")):
            key, value = line.split("=", 1)
            values.setdefault(key, []).append(value)
    return values


@pytest.mark.parametrize("name", DAEMONS)
def test_the_daemons_units_are_hardened_and_use_the_credential(name: str) -> None:
    unit = _service(name)
    for key, value in [
        ("Type", "notify"), ("NoNewPrivileges", "yes"), ("ProtectSystem", "strict"),
        ("PrivateTmp", "yes"), ("ProtectHome", "yes"), ("Restart", "on-failure"),
        ("SystemCallFilter", "@system-service"), ("UMask", "0077"),
    ]:  # fmt: skip
        assert value in unit[key], (name, key)
    assert unit["User"] != ["root"]
    assert unit["StateDirectory"]
    assert unit["LogsDirectory"]
    assert unit["LoadCredential"][0].startswith("passphrase:/etc/")
    assert "--passphrase-file %d/passphrase" in unit["ExecStart"][0]
    assert "Environment" not in unit  # never the passphrase in the environment


def test_the_node_sockets_name_every_listener() -> None:
    names = {_service(f"globe-node-{n}.socket")["FileDescriptorName"][0] for n in
             ("api", "peer", "metrics")}  # fmt: skip
    assert names == {"api", "peer", "metrics"}
