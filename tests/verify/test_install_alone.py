"""``globe-verify`` installs and runs on its own: only protocol/, globe_verify/ and the
distributions verify/pyproject.toml declares (with theirs), in an empty environment without
aiohttp, SQLAlchemy, click or anything of the node and the hub."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import tomllib
import venv
from importlib import metadata
from pathlib import Path

import pytest

from tests.vectors.bundle_parts import exchange
from tests.vectors.vectorlib import HpkePool, build_network

ROOT = Path(__file__).resolve().parents[2]


def _declared() -> tuple[list[str], list[str]]:
    """(package patterns, distribution names) of verify/pyproject.toml."""
    project = tomllib.loads((ROOT / "verify" / "pyproject.toml").read_text("utf-8"))
    include = project["tool"]["setuptools"]["packages"]["find"]["include"]
    names = [re.split(r"[<>=!~; \[]", d, maxsplit=1)[0] for d in project["project"]["dependencies"]]
    return include, names


def _closure(names: list[str]) -> set[str]:
    """The distributions ``names`` need, transitively (without extras or markers that fail)."""
    seen: set[str] = set()
    todo = list(names)
    while todo:
        name = todo.pop().lower().replace("_", "-")
        if name in seen:
            continue
        seen.add(name)
        for req in metadata.requires(name) or []:
            if "extra ==" in req:
                continue
            todo.append(re.split(r"[<>=!~; \[(]", req, maxsplit=1)[0])
    return seen


def _top_levels(dist: str) -> set[str]:
    return {
        Path(str(f)).parts[0]
        for f in metadata.files(dist) or []
        if not str(f).startswith("..") and Path(str(f)).parts[0] != "__pycache__"
    }


@pytest.mark.slow
def test_the_verifier_runs_in_an_environment_of_its_own(tmp_path: Path) -> None:
    include, deps = _declared()
    assert include == ["protocol*", "globe_verify*"]
    assert sorted(deps) == ["cryptography", "orjson", "pynacl"]
    env = tmp_path / "env"
    venv.EnvBuilder(with_pip=False).create(env)
    python = env / "bin" / "python"
    site = Path(subprocess.run(
        [python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        capture_output=True, text=True, check=True,
    ).stdout.strip())  # fmt: skip
    installed = tmp_path / "installed"
    installed.mkdir()
    for pattern in include:  # what the distribution ships: the two packages, nothing else
        shutil.copytree(ROOT / pattern.rstrip("*"), installed / pattern.rstrip("*"),
                        ignore=shutil.ignore_patterns("__pycache__"))  # fmt: skip
    here = Path(str(metadata.distribution("pynacl").locate_file("")))
    for dist in _closure(deps):
        for top in _top_levels(dist):
            (installed / top).symlink_to(here / top)
    (site / "globe_verify_alone.pth").write_text(f"{installed}\n", "utf-8")
    data = exchange(build_network(), HpkePool()).bundle()
    (tmp_path / "case.zip").write_bytes(data)
    fingerprint = build_network().genesis.fingerprint()

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [python, *args], capture_output=True, text=True, cwd=tmp_path, timeout=120,
            env={"PATH": "/usr/bin:/bin", "PYTHONNOUSERSITE": "1"}, check=False,
        )  # fmt: skip

    ran = run("-m", "globe_verify", "case.zip", "--genesis-fingerprint", fingerprint)
    assert (ran.returncode, ran.stderr) == (0, "")
    assert ran.stdout.startswith("GlobE Link evidence bundle: VERIFIED\n")
    assert "pinned: it matches" in ran.stdout
    absent = run("-c", "import sys, globe_verify.cli; import importlib.util as u; print(sorted("
                 "m for m in ('aiohttp', 'sqlalchemy', 'click', 'globe_io', 'globe_node', 'hub')"
                 " if u.find_spec(m)))")  # fmt: skip
    assert (absent.returncode, absent.stdout.strip()) == (0, "[]")
    assert sys.executable != str(python)
