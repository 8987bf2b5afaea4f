"""``globe-node init``: a private node directory with sealed keys, an API token, the
configuration and a signed application, and both fingerprints printed; each bad
argument or existing file refused, and nothing left behind by a failed init."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable
from pathlib import Path

import pytest

from globe_io.errors import CommandError
from globe_node.cli import setup as setup_cli
from globe_node.config import load_config
from globe_node.keys import load_keys
from protocol import canonical
from protocol.genesis import Genesis
from protocol.ids import AuthorityId
from protocol.membership import Application, authority_fingerprint
from tests.node.helpers import CLI_PASSPHRASE, Ran, db_rows, init_args, mode, refused, usage

FINGERPRINT = re.compile(r"(\d{5} ){11}\d{5}\Z")


def test_init_creates_a_private_node_directory(
    tmp_path: Path, genesis_file: Path, genesis_bytes: bytes, run: Callable[..., Ran]
) -> None:
    directory = tmp_path / "node"
    data = run(
        *init_args(directory, genesis_file, "--endpoint", "https://node.example.org/globe"),
        "--peer-port", "8460", "--api-port", "18450", "--json",
    ).json()  # fmt: skip
    assert mode(directory) == 0o700
    for name in ("keys.sealed", "api.token", "node.toml", "genesis.json", "application.json"):
        assert mode(directory / name) == 0o600, name
    assert mode(directory / "blobs") == 0o700
    genesis = Genesis.decode(genesis_bytes)
    assert (directory / "genesis.json").read_bytes() == genesis_bytes
    assert data["genesis_fingerprint"] == genesis.fingerprint()
    assert FINGERPRINT.match(data["fingerprint"])
    keys = load_keys(directory / "keys.sealed", CLI_PASSPHRASE.encode())
    assert data["fingerprint"] == authority_fingerprint(
        authority=AuthorityId.parse("FR-PNF"),
        identity=keys.identity.verify_key,
        transport=keys.transport.verify_key,
        ka=keys.ka.public_key,
    )
    config = load_config(directory)
    assert (config.authority, config.hub_url) == ("FR-PNF", genesis.hub_url)
    assert (config.peer_port, config.api_port) == (8460, 18450)
    app = Application.decode((directory / "application.json").read_bytes(), genesis)
    assert str(app.authority) == "FR-PNF"
    assert app.kinds == ("anti-corruption", "mla-central")
    assert app.languages == ("en", "fr")
    assert app.endpoint == "https://node.example.org/globe"
    assert app.identity_key == keys.identity.verify_key
    assert app.ka_key == keys.ka.public_key
    assert app.fingerprint() == data["fingerprint"]
    token = (directory / "api.token").read_text().strip()
    assert len(canonical.b64d(token, what="token")) == 32
    assert db_rows(directory / "node.db", "SELECT name, role, token_hash FROM users") == [
        ("operator", "operator", hashlib.sha256(token.encode()).digest())
    ]


def test_init_prints_both_fingerprints(
    tmp_path: Path, genesis_file: Path, run: Callable[..., Ran]
) -> None:
    ran = run(*init_args(tmp_path / "n", genesis_file))
    assert ran.code == 0
    assert ran.err == ""
    assert re.search(r"genesis fingerprint: (\d{5} ){11}\d{5}\n", ran.out)
    assert re.search(r"node fingerprint: +(\d{5} ){11}\d{5}\n", ran.out)


def test_init_refuses_an_existing_node(
    node: Path, genesis_file: Path, run: Callable[..., Ran]
) -> None:
    before = (node / "keys.sealed").read_bytes()
    ran = run(*init_args(node, genesis_file))
    refused(ran, f"{node} already holds a node (node.toml exists); refusing to overwrite it")
    assert (node / "keys.sealed").read_bytes() == before


def test_init_refuses_a_country_mismatch(
    tmp_path: Path, genesis_file: Path, run: Callable[..., Ran]
) -> None:
    args = init_args(tmp_path / "n", genesis_file)
    args[args.index("--country") + 1] = "DE"
    refused(run(*args), "--country DE does not match the authority id FR-PNF (country FR)")
    assert not (tmp_path / "n").exists()


def test_init_refuses_a_bad_genesis_and_cleans_up(tmp_path: Path, run: Callable[..., Ran]) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text("{}")
    ran = run(*init_args(tmp_path / "n", bad))
    assert ran.code == 1
    assert ran.err.startswith(f"globe-node: error: {bad}: not a valid genesis (")
    assert ran.err.count("\n") == 1
    assert not (tmp_path / "n").exists()


@pytest.mark.parametrize(
    ("args", "detail"),
    [
        (["--peer-port", "http"], "argument --peer-port: not a TCP port: 'http'"),
        (["--peer-port", "65536"], "argument --peer-port: not a TCP port: '65536'"),
        (["--api-port", "0"], "argument --api-port: the API needs a port (1-65535)"),
    ],
)
def test_init_refuses_a_port_that_is_not_one(
    tmp_path: Path, genesis_file: Path, run: Callable[..., Ran], args: list[str], detail: str
) -> None:
    usage(run(*init_args(tmp_path / "n", genesis_file, *args)), detail)
    assert not (tmp_path / "n").exists()


@pytest.mark.parametrize(
    ("languages", "detail"),
    [
        (["fr", "FRA"], "--language: not an ISO 639-1 code (two lower-case letters): 'FRA'"),
        (
            [a + b for a in "abcd" for b in "wxyz"] + ["en"],
            "--language: at most 16 languages",
        ),
    ],
)
def test_init_refuses_bad_or_too_many_languages(
    tmp_path: Path, genesis_file: Path, run: Callable[..., Ran], languages: list[str], detail: str
) -> None:
    extra: list[str | Path] = []
    for lang in languages:
        extra += ["--language", lang]
    refused(run(*init_args(tmp_path / "n", genesis_file, *extra)), detail)
    assert not (tmp_path / "n").exists()


def test_init_refuses_a_file_as_directory(
    tmp_path: Path, genesis_file: Path, run: Callable[..., Ran]
) -> None:
    target = tmp_path / "file"
    target.write_text("x")
    refused(run(*init_args(target, genesis_file)), f"{target} exists and is not a directory")
    assert target.read_text() == "x"


def test_init_cleans_up_what_it_wrote_in_an_existing_directory(
    tmp_path: Path, genesis_file: Path, run: Callable[..., Ran]
) -> None:
    target = tmp_path / "n"
    target.mkdir()
    (target / "notes.txt").write_text("keep me")
    (target / "blobs").write_text("a file where the blob directory goes")
    ran = run(*init_args(target, genesis_file))
    refused(ran, f"{target / 'blobs'}: File exists")
    assert sorted(p.name for p in target.iterdir()) == ["blobs", "notes.txt"]


@pytest.mark.parametrize("existing", [False, True])
def test_init_removes_everything_when_the_database_fails(
    tmp_path: Path,
    genesis_file: Path,
    run: Callable[..., Ran],
    monkeypatch: pytest.MonkeyPatch,
    existing: bool,
) -> None:
    def no_database(db_path: Path) -> None:
        db_path.write_bytes(b"half a database")
        raise CommandError(f"cannot create the database {db_path}: disk I/O error")

    monkeypatch.setattr(setup_cli, "create_database", no_database)
    target = tmp_path / "n"
    if existing:
        target.mkdir()
    refused(
        run(*init_args(target, genesis_file)),
        f"cannot create the database {target / 'node.db'}: disk I/O error",
    )
    if existing:
        assert list(target.iterdir()) == []
    else:
        assert not target.exists()
