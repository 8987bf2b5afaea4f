"""The architecture, as contracts the code must keep (docs/ARCHITECTURE.md §1).

Every import in every module — at the top or inside a function — is checked
against the allowed dependencies of its package, for our own packages and for
the heavy third-party ones (a node or an admin workstation never needs the
hub's database stack; the sans-IO protocol needs no I/O library).
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

#: package -> the packages of ours it may import (besides itself).
OURS: dict[str, frozenset[str]] = {
    "protocol": frozenset(),
    "globe_io": frozenset({"protocol"}),
    "hub": frozenset({"protocol", "globe_io"}),
    "globe_node": frozenset({"protocol", "globe_io"}),
    "globe_admin": frozenset({"protocol", "globe_io"}),
    "globe_verify": frozenset({"protocol"}),
}

#: package -> third-party top-level modules it must never import.
FORBIDDEN: dict[str, frozenset[str]] = {
    "protocol": frozenset({"aiohttp", "sqlalchemy", "alembic", "asyncpg", "aiosqlite", "click",
                           "yarl", "multidict"}),
    "globe_io": frozenset({"sqlalchemy", "alembic", "asyncpg", "aiosqlite"}),
    "globe_admin": frozenset({"sqlalchemy", "alembic", "asyncpg", "aiosqlite"}),
    "globe_node": frozenset({"asyncpg"}),
    "hub": frozenset(),
    "globe_verify": frozenset({"aiohttp", "sqlalchemy", "alembic", "asyncpg", "aiosqlite",
                               "click", "yarl", "multidict"}),
}  # fmt: skip

#: The one module of a package allowed what the package otherwise may not import.
EXCEPTIONS: dict[str, frozenset[str]] = {
    "globe_io/database.py": frozenset({"sqlalchemy", "alembic"}),
}

PACKAGES = sorted(OURS)


def _imports(path: Path) -> list[tuple[int, str]]:
    """(line, top-level module) of every absolute import in the file."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    found: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name.split(".")[0]) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.append((node.lineno, node.module.split(".")[0]))
    return found


def _modules(package: str) -> list[Path]:
    return sorted(p for p in (ROOT / package).rglob("*.py") if "migrations" not in p.parts)


@pytest.mark.parametrize("package", PACKAGES)
def test_each_package_imports_only_what_its_layer_may(package: str) -> None:
    ours = set(OURS)
    allowed = OURS[package] | {package}
    violations = []
    for path in _modules(package):
        name = str(path.relative_to(ROOT))
        forbidden = FORBIDDEN[package] - EXCEPTIONS.get(name, frozenset())
        for line, module in _imports(path):
            if module in ours and module not in allowed:
                violations.append(f"{name}:{line} imports {module}")
            if module in forbidden:
                violations.append(f"{name}:{line} imports {module}")
    assert violations == []


def test_the_contracts_cover_every_package() -> None:
    shipped = {p.parent.name for p in ROOT.glob("*/__init__.py")} - {
        "tests",
        "bench",
        "demo",
        "fuzz",
    }
    assert shipped == set(OURS)


def test_the_layers_form_no_cycle() -> None:
    """protocol < globe_io < {hub, globe_node, globe_admin}: nothing imports upwards."""
    rank = {
        "protocol": 0, "globe_io": 1, "hub": 2, "globe_node": 2, "globe_admin": 2,
        "globe_verify": 1,
    }  # fmt: skip
    for package, allowed in OURS.items():
        assert all(rank[a] < rank[package] for a in allowed), package


@pytest.mark.parametrize(
    ("module", "absent"),
    [
        ("globe_admin.cli", ("sqlalchemy", "alembic", "asyncpg", "aiosqlite", "hub", "globe_node")),
        ("globe_node.server", ("hub", "asyncpg")),
        ("hub.cli", ("globe_node", "globe_admin")),
        ("protocol", ("aiohttp", "sqlalchemy", "asyncio")),
        ("globe_verify.cli", ("aiohttp", "sqlalchemy", "click", "asyncio", "globe_io")),
    ],
)
def test_what_each_entry_point_loads(module: str, absent: tuple[str, ...]) -> None:
    """Transitively, in a fresh interpreter: what each deployable drags in."""
    import subprocess  # noqa: PLC0415

    code = f"import sys, {module}; print(','.join(m for m in {list(absent)!r} if m in sys.modules))"
    ran = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=False
    )
    assert ran.returncode == 0, ran.stderr
    assert ran.stdout.strip() == ""
