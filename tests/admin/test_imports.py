"""What each program loads: ``globe-admin`` runs on an admin workstation without the hub,
the node or the hub's database stack (SQLAlchemy, asyncpg, Alembic), and ``globe-hub``
imports its server and the database stack only inside the commands that need them.

Each case runs in a fresh interpreter, so modules another test imported do not count.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

ADMIN_FORBIDDEN = ["alembic", "asyncpg", "globe_node", "hub", "sqlalchemy"]
HUB_CLI_FORBIDDEN = ["alembic", "asyncpg", "globe_admin", "globe_node", "hub.server", "sqlalchemy"]


def loaded(code: str, names: list[str]) -> list[str]:
    """Which of ``names`` (or their submodules) ``sys.modules`` holds after ``code`` ran."""
    probe = (
        f"{code}\n"
        "import json, sys\n"
        f"names = {names!r}\n"
        "print(json.dumps(sorted(n for n in names"
        " if any(m == n or m.startswith(n + '.') for m in sys.modules))))\n"
    )
    ran = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=False, timeout=60
    )
    assert ran.returncode == 0, ran.stderr
    assert "Traceback" not in ran.stderr
    found: list[str] = json.loads(ran.stdout.splitlines()[-1])
    return found


@pytest.mark.parametrize(
    "code",
    [
        "import globe_admin.cli",
        "import globe_admin.__main__",
        # running commands (help of each, a refusal) loads nothing more
        "import globe_admin.cli as c\nfor a in (['--help'], ['approve', '--help'],"
        " ['log', '--genesis', 'missing.json', '--key', 'missing.key']):\n    c.main(a)",
    ],
    ids=["import", "python -m", "commands"],
)
def test_the_admin_tool_loads_neither_hub_node_nor_database(code: str) -> None:
    assert loaded(code, ADMIN_FORBIDDEN) == []


def test_the_hub_command_line_loads_its_server_only_to_serve() -> None:
    assert loaded("import hub.cli", HUB_CLI_FORBIDDEN) == []
    assert loaded("import hub.cli\nhub.cli.main(['--help'])", HUB_CLI_FORBIDDEN) == []


def test_the_probe_sees_a_module_that_is_loaded() -> None:
    """The probe itself works: a module the code does import is reported."""
    assert loaded("import hub.server", ["hub.server", "sqlalchemy"]) == ["hub.server", "sqlalchemy"]
