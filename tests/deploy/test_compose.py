"""deploy/compose/compose.yaml: validated by the compose tool's own ``config`` check —
``docker compose`` where the docker CLI has the compose plugin, else Debian's
``docker-compose`` (both validate offline, no engine needed); and its shape: PostgreSQL,
two hub workers on it behind one proxy, one node, passphrases as files."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

COMPOSE = Path(__file__).resolve().parents[2] / "deploy" / "compose" / "compose.yaml"


def _compose_command() -> list[str] | None:
    docker = shutil.which("docker")
    if docker is not None:
        ran = subprocess.run([docker, "compose", "version"], capture_output=True, check=False)
        if ran.returncode == 0:
            return [docker, "compose"]
    legacy = shutil.which("docker-compose")
    return [legacy] if legacy is not None else None


@pytest.mark.skipif(
    _compose_command() is None,
    reason="neither 'docker compose' nor docker-compose is installed (.ci/run installs it)",
)
def test_compose_config_validates() -> None:
    command = _compose_command()
    assert command is not None
    ran = subprocess.run(
        [*command, "-f", str(COMPOSE), "-p", "globe-link", "config", "--quiet"],
        capture_output=True, text=True, timeout=120, check=False, cwd=COMPOSE.parent,
    )  # fmt: skip
    assert (ran.returncode, ran.stderr) == (0, "")


def test_the_network_it_describes() -> None:
    doc = yaml.safe_load(COMPOSE.read_text())
    services = doc["services"]
    assert {"postgres", "setup", "hub-1", "hub-2", "proxy", "admit", "node"} <= set(services)
    for worker in ("hub-1", "hub-2"):  # two hub workers share the one database
        assert services[worker]["networks"] == ["db", "front"]
        assert "--passphrase-file" in services[worker]["command"]
    assert doc["networks"]["db"]["internal"] is True
    proxy = (COMPOSE.parent / "proxy.conf").read_text()
    assert "server hub-1:8441;" in proxy
    assert "server hub-2:8442;" in proxy
    for name, service in services.items():
        assert "environment" not in service or "PASSPHRASE" not in str(service["environment"]), name
