"""``globe-node users add|list``: users made in the node database as the daemon makes
them (a token shown once, its hash stored), listed, and refused for a duplicate or a
bad name, a missing or damaged database, or a missing node directory."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.node.helpers import Ran, db_rows, refused


def test_users_add_and_list(node: Path, run: Callable[..., Ran]) -> None:
    ran = run("users", "add", "alice", "--role", "investigator", "--dir", node)
    assert ran.code == 0, ran.err
    token = ran.out.splitlines()[1]
    digest = hashlib.sha256(token.encode()).digest()
    assert db_rows(
        node / "node.db", "SELECT name, role, token_hash FROM users WHERE name='alice'"
    ) == [("alice", "investigator", digest)]
    data = run("users", "add", "bob", "--role", "supervisor", "--dir", node, "--json").json()
    assert data["name"] == "bob"
    assert data["role"] == "supervisor"
    assert (hashlib.sha256(data["token"].encode()).digest(),) in db_rows(
        node / "node.db", "SELECT token_hash FROM users"
    )
    listed = run("users", "list", "--dir", node, "--json").json()["users"]
    assert [(u["name"], u["role"]) for u in listed] == [
        ("alice", "investigator"), ("bob", "supervisor"), ("operator", "operator")
    ]  # fmt: skip
    refused(
        run("users", "add", "alice", "--role", "operator", "--dir", node),
        "user 'alice' already exists",
    )
    refused(
        run("users", "add", "no spaces", "--role", "operator", "--dir", node),
        "user name 'no spaces': 1-64 of letters, digits and . _ @ - (starting alphanumeric)",
    )


def test_users_commands_refuse_a_missing_or_damaged_database(
    node: Path, run: Callable[..., Ran]
) -> None:
    db = node / "node.db"
    for suffix in ("-wal", "-shm"):
        db.with_name(db.name + suffix).unlink(missing_ok=True)
    db.write_bytes(b"this is not a database, it is long enough to be read" * 10)
    refused(run("users", "list", "--dir", node), f"database {db}: file is not a database")
    refused(
        run("users", "add", "bob", "--role", "investigator", "--dir", node),
        f"database {db}: file is not a database",
    )
    db.unlink()
    refused(run("users", "list", "--dir", node), f"{db} not found: run 'globe-node init' first")


def test_users_list_defaults_to_the_node_directory_variable(
    node: Path, run: Callable[..., Ran], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GLOBE_NODE_DIR", str(node))
    ran = run("users", "list")
    assert ran.code == 0, ran.err
    assert ran.out.startswith("operator                 operator      20")
    monkeypatch.delenv("GLOBE_NODE_DIR")
    monkeypatch.chdir(node.parent)
    refused(
        run("users", "list"),
        "globe-node/node.toml not found: run 'globe-node init --dir globe-node'",
    )
