"""``globe-admin keygen``, ``genesis`` and ``sign-genesis`` on one workstation, no hub:
where a passphrase comes from and what it must be, and every argument of the genesis
checked before anything is written.  Key files use the ``interactive`` Argon2id cost."""

from __future__ import annotations

import io
import sys
from pathlib import Path

from protocol import canonical
from protocol.keys import SigningKey
from tests.admin.runner import PASSPHRASE, Ran, admin_cli, assert_refused


def test_passphrase_sources_and_rules(tmp_path, monkeypatch) -> None:
    monkeypatch.delenv("GLOBE_ADMIN_PASSPHRASE", raising=False)
    monkeypatch.setenv("GLOBE_ADMIN_PASSPHRASE", PASSPHRASE)
    from_env = admin_cli("keygen", "--out", tmp_path / "env.key", "--kdf-cost", "interactive")
    assert from_env.code == 0, from_env.err
    monkeypatch.delenv("GLOBE_ADMIN_PASSPHRASE")

    class Tty(io.StringIO):
        def isatty(self) -> bool:
            return True

    answers = iter([PASSPHRASE, PASSPHRASE, PASSPHRASE, "something else"])
    monkeypatch.setattr(sys, "stdin", Tty())
    monkeypatch.setattr("getpass.getpass", lambda prompt="": next(answers))
    prompted = admin_cli("keygen", "--out", tmp_path / "tty.key", "--kdf-cost", "interactive")
    assert prompted.code == 0, prompted.err
    assert_refused(
        admin_cli("keygen", "--out", tmp_path / "mismatch.key"), "the two passphrases differ"
    )
    monkeypatch.setattr("getpass.getpass", lambda prompt="": "short")
    assert_refused(
        admin_cli("keygen", "--out", tmp_path / "short.key"),
        "the passphrase for the admin key needs at least 8 characters",
    )
    empty = tmp_path / "empty"
    empty.write_text("\n")
    assert_refused(
        admin_cli("keygen", "--out", tmp_path / "x.key", "--passphrase-file", empty),
        f"passphrase file {empty} is empty",
    )
    missing = tmp_path / "missing"
    assert_refused(
        admin_cli("keygen", "--out", tmp_path / "x.key", "--passphrase-file", missing),
        f"cannot read passphrase file {missing}: No such file or directory",
    )
    assert_refused(
        admin_cli("keygen", "--out", tmp_path / "no" / "x.key"),
        f"directory {tmp_path / 'no'} does not exist",
    )
    assert not (tmp_path / "mismatch.key").exists()
    assert not (tmp_path / "short.key").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["empty", "env.key", "tty.key"]


def test_genesis_arguments_are_checked(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("GLOBE_ADMIN_PASSPHRASE", PASSPHRASE)
    keys = [tmp_path / f"k{i}.key" for i in range(2)]
    pubs = [admin_cli("keygen", "--out", k, "--kdf-cost", "interactive", "--json").json()
            for k in keys]  # fmt: skip
    hub_pub = tmp_path / "hub.pub"
    hub_pub.write_text(canonical.b64e(bytes(SigningKey.generate().verify_key)) + "\n")
    out = tmp_path / "g.json"

    def genesis(*admins: str, threshold: str = "1", hub_key: str | Path = hub_pub, **kw) -> Ran:
        sign = kw.get("sign", [])
        return admin_cli(
            "genesis", "--network-id", "globe-x", "--name", "X", "--admin", *admins,
            "--threshold", threshold, "--hub-url", "https://hub.example.org",
            "--hub-key", hub_key, "--out", out, *(["--sign", *sign] if sign else []),
        )  # fmt: skip

    a, b = f"a={pubs[0]['public_key']}", f"b={pubs[1]['public_key']}"
    assert_refused(genesis(a, a), "--admin: every admin needs a distinct name")
    assert_refused(genesis(a, b, "c" + a[1:]), "--admin: every admin needs a distinct key")
    assert_refused(
        genesis(a, b, threshold="3"), "--threshold must be between 1 and 2 (the admins named)"
    )
    assert_refused(genesis("x=abc"), "--admin x=abc: not a base64url Ed25519 public key")
    assert_refused(genesis(a, hub_key="nope"), "--hub-key: not a base64url Ed25519 public key")
    assert_refused(
        genesis(a, sign=[keys[1]]), f"{keys[1]} is not one of the admins named with --admin"
    )
    assert_refused(
        admin_cli("genesis", "--network-id", "Bad_Id", "--name", "X", "--admin", a,
            "--threshold", "1", "--hub-url", "https://h.example", "--hub-key", hub_pub,
            "--out", out),
        "network id must be 3-63 of a-z, 0-9 and '-'",
    )  # fmt: skip
    dash = next(  # a hub key whose base64url starts with '-' is still read as a value
        k for k in (canonical.b64e(bytes(SigningKey.generate().verify_key)) for _ in range(5000))
        if k.startswith("-")
    )  # fmt: skip
    done = genesis(a, b, sign=[keys[0]], hub_key=dash)
    assert done.code == 0, done.err
    assert "1 of 1 signatures; the genesis is valid: network globe-x (X)" in done.out
    assert_refused(genesis(a), f"{out} already exists; refusing to overwrite it")
    again = admin_cli("sign-genesis", out, "--key", keys[0], "--json").json()
    assert again["signatures"] == 1
    data = out.read_bytes()
    start = data.index(b'"sig":"') + 7
    flipped = b"B" if data[start : start + 1] == b"A" else b"A"
    out.write_bytes(data[:start] + flipped + data[start + 1 :])
    assert_refused(
        admin_cli("sign-genesis", out, "--key", keys[1]),
        f"{out}: the signature by {pubs[0]['key_id']} does not verify",
    )
    assert_refused(
        admin_cli("sign-genesis", tmp_path / "none.json", "--key", keys[1]),
        f"cannot read genesis {tmp_path / 'none.json'}: No such file or directory",
    )


def test_admin_key_files_that_do_not_open(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("GLOBE_ADMIN_PASSPHRASE", PASSPHRASE)
    key = tmp_path / "k.key"
    pub = admin_cli("keygen", "--out", key, "--kdf-cost", "interactive", "--json").json()
    hub_key = canonical.b64e(bytes(SigningKey.generate().verify_key))
    genesis = tmp_path / "g.json"
    unsigned = admin_cli(
        "genesis", "--network-id", "globe-x", "--name", "X", "--admin", f"a={pub['public_key']}",
        "--threshold", "1", "--hub-url", "https://hub.example.org", "--hub-key", hub_key,
        "--out", genesis, "--json",
    ).json()  # fmt: skip
    assert (unsigned["signatures"], unsigned["valid"]) == (0, False)
    missing = tmp_path / "none.key"
    assert_refused(
        admin_cli("sign-genesis", genesis, "--key", missing),
        f"cannot read admin key {missing}: No such file or directory",
    )
    garbage = tmp_path / "garbage.key"
    garbage.write_bytes(b"not a key file")
    ran = admin_cli("sign-genesis", genesis, "--key", garbage)
    assert (ran.code, ran.out) == (1, "")
    assert ran.err.startswith(f"globe-admin: error: {garbage}: not a valid admin key file (")
    monkeypatch.setenv("GLOBE_ADMIN_PASSPHRASE", "not the passphrase")
    assert_refused(
        admin_cli("sign-genesis", genesis, "--key", key),
        f"{key}: wrong passphrase, or the key file was altered",
    )
