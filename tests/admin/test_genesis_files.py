"""``globe-admin genesis`` and ``sign-genesis`` with the files the ceremony passes around:
public keys read from ``.pub`` files, unnamed admins, one passphrase prompt per key file,
a second admin's signature added in place, and a file that is no genesis."""

from __future__ import annotations

import io
import json
import sys
from pathlib import Path

import pytest

from protocol import canonical, labels
from protocol.genesis import Genesis
from protocol.keys import SigningKey
from protocol.signed import SignedObject
from tests.admin.runner import PASSPHRASE, admin_cli, assert_refused

OTHER_PASSPHRASE = "a second admin's passphrase"  # noqa: S105 - a test passphrase


class Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def keygen(path: Path, passphrase: str, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    monkeypatch.setenv("GLOBE_ADMIN_PASSPHRASE", passphrase)
    made: dict[str, str] = admin_cli(
        "keygen", "--out", path, "--kdf-cost", "interactive", "--json"
    ).json()
    monkeypatch.delenv("GLOBE_ADMIN_PASSPHRASE")
    return made


def test_unnamed_admins_prompted_signers_then_a_second_signature(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("GLOBE_ADMIN_PASSPHRASE", raising=False)
    keys = [tmp_path / "a.key", tmp_path / "b.key", tmp_path / "c.key"]
    pubs = [keygen(k, p, monkeypatch) for k, p in zip(
        keys, (PASSPHRASE, OTHER_PASSPHRASE, PASSPHRASE), strict=True)]  # fmt: skip
    hub_pub = tmp_path / "hub.pub"
    hub_key = SigningKey.generate().verify_key
    hub_pub.write_text(canonical.b64e(bytes(hub_key)) + "\n")
    out = tmp_path / "genesis.json"

    # No passphrase file or variable: one prompt per key file, each with its own passphrase.
    prompts: list[str] = []
    answers = iter([PASSPHRASE, OTHER_PASSPHRASE])

    def getpass(prompt: str = "") -> str:
        prompts.append(prompt)
        return next(answers)

    monkeypatch.setattr(sys, "stdin", Tty())
    monkeypatch.setattr("getpass.getpass", getpass)
    made = admin_cli(
        "genesis", "--network-id", "globe-files", "--name", "Files", "--admin",
        pubs[0]["public_key"], pubs[1]["public_key"], f"carol={pubs[2]['public_key']}",
        "--threshold", "3", "--hub-url", "https://hub.example.org", "--hub-key", hub_pub,
        "--out", out, "--sign", keys[0], keys[1], "--json",
    ).json()  # fmt: skip
    assert prompts == [f"Passphrase for {keys[0]}: ", f"Passphrase for {keys[1]}: "]
    assert made["admins"] == [
        {"name": "admin-1", "key_id": pubs[0]["key_id"]},
        {"name": "admin-2", "key_id": pubs[1]["key_id"]},
        {"name": "carol", "key_id": pubs[2]["key_id"]},
    ]
    assert (made["signatures"], made["threshold"], made["valid"], made["signed_by"]) == (
        2, 3, False, ["admin-1", "admin-2"],
    )  # fmt: skip

    # The third admin adds a signature in place: the genesis is now valid.
    monkeypatch.setenv("GLOBE_ADMIN_PASSPHRASE", PASSPHRASE)
    signed = admin_cli("sign-genesis", out, "--key", keys[2])
    assert (signed.code, signed.err) == (0, "")
    genesis = Genesis.decode(out.read_bytes())
    assert signed.out.splitlines()[:3] == [
        f"genesis signed by carol: {out}",
        "3 of 3 signatures; the genesis is valid: network globe-files (Files)",
        f"fingerprint: {genesis.fingerprint()}",
    ]
    assert [a.name for a in genesis.admins] == ["admin-1", "admin-2", "carol"]
    assert genesis.hub_key == hub_key
    again = json.loads(admin_cli("sign-genesis", out, "--key", keys[0], "--json").out)
    assert (again["signatures"], again["valid"]) == (3, True)
    assert Genesis.decode(out.read_bytes()) == genesis
    stranger = tmp_path / "d.key"
    keygen(stranger, PASSPHRASE, monkeypatch)
    monkeypatch.setenv("GLOBE_ADMIN_PASSPHRASE", PASSPHRASE)
    assert_refused(
        admin_cli("sign-genesis", out, "--key", stranger),
        f"{stranger} is not one of the admins named in {out}",
    )
    assert Genesis.decode(out.read_bytes()) == genesis


def test_files_that_are_not_what_they_claim(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    key = tmp_path / "a.key"
    pub = keygen(key, PASSPHRASE, monkeypatch)
    sealed = key.read_bytes()
    monkeypatch.setenv("GLOBE_ADMIN_PASSPHRASE", PASSPHRASE)
    assert_refused(
        admin_cli("keygen", "--out", key, "--kdf-cost", "interactive"),
        f"{key} already exists; refusing to overwrite a key file",
    )
    assert key.read_bytes() == sealed
    monkeypatch.setenv("GLOBE_ADMIN_PASSPHRASE", PASSPHRASE)
    latin1 = tmp_path / "hub.pub"
    latin1.write_bytes(b"\xe9" + pub["public_key"].encode())
    ran = admin_cli(
        "genesis", "--network-id", "globe-files", "--name", "Files", "--admin",
        f"a={pub['public_key']}", "--threshold", "1", "--hub-url", "https://hub.example.org",
        "--hub-key", latin1, "--out", tmp_path / "g.json",
    )  # fmt: skip
    assert_refused(
        ran,
        f"--hub-key: cannot read {latin1}: 'ascii' codec can't decode byte 0xe9 in position 0: "
        "ordinal not in range(128)",
    )
    assert not (tmp_path / "g.json").exists()
    # A signed object, but of something else than a genesis.
    other = tmp_path / "other.json"
    other.write_bytes(
        SignedObject(canonical.encode({"type": "profile", "v": 1}), ())
        .with_signature(labels.GENESIS, SigningKey.generate())
        .encode()
    )
    before = other.read_bytes()
    assert_refused(
        admin_cli("sign-genesis", other, "--key", key),
        f"{other}: not a genesis (genesis: type must be 'genesis')",
    )
    assert other.read_bytes() == before
