"""The ``globe-node`` command line against running daemons and a hub.

Each command runs in a worker thread (the CLI runs its own event loop) against
nodes served in the test's loop; outputs are checked exactly where they are
data (``--json``) and for their key lines where they are for people.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
import pytest

from globe_node.cli import main
from tests.node.helpers import delivered
from tests.node.network import Net, RunningNode, add_user
from tests.support.waiting import eventually

pytestmark = pytest.mark.slow


@dataclass(frozen=True)
class Ran:
    code: int
    out: str
    err: str

    def json(self) -> Any:
        assert self.code == 0, self.err
        return orjson.loads(self.out)


async def cli(
    capfd: pytest.CaptureFixture[str], rn: RunningNode, token: Path, *args: str | Path
) -> Ran:
    argv = [str(a) for a in args] + ["--dir", str(rn.config.directory), "--token-file", str(token)]
    capfd.readouterr()
    code = await asyncio.to_thread(main, argv)
    out, err = capfd.readouterr()
    return Ran(code, out, err)


async def token_file(rn: RunningNode, name: str, role: str) -> Path:
    path = rn.config.directory / f"{name}.token"
    path.write_text(await add_user(rn.n, name, role))
    os.chmod(path, 0o600)
    return path


def ids(messages: Sequence[dict[str, Any]]) -> list[str]:
    return [m["id"] for m in messages]


async def test_a_case_through_the_command_line(
    net: Net, tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    fr = await net.member("FR-PNF", "Parquet national financier")
    br = await net.member("BR-PF", "Policia Federal")
    ke = await net.member("KE-EACC", "Ethics and Anti-Corruption Commission", endpoint=False)
    fr_t = await token_file(fr, "fr-sup", "supervisor")
    br_t = await token_file(br, "br-sup", "supervisor")
    ke_t = await token_file(ke, "ke-sup", "supervisor")
    fr_op = await token_file(fr, "fr-op", "operator")

    status = (await cli(capfd, fr, fr_t, "status", "--json")).json()
    assert status["membership"] == "active"
    assert status["directory"]["members"] == 3
    human = await cli(capfd, fr, fr_t, "status")
    assert human.code == 0
    assert "FR-PNF" in human.out

    found = (await cli(capfd, fr, fr_t, "directory", "search", "--country", "BR", "--json")).json()
    assert [r["authority"] for r in found["results"]] == ["BR-PF"]
    assert found["results"][0]["status"] == "active"
    assert (await cli(capfd, fr, fr_t, "directory", "search", "--query", "kenya")).code == 0

    attachment = tmp_path / "statement.pdf"
    attachment.write_bytes(os.urandom(200_000))
    body = tmp_path / "body.txt"
    body.write_text("Please identify the account holders.\nDeadline as stated.")
    sent = (
        await cli(
            capfd, fr, fr_t, "send", "--to", "BR-PF", "KE-EACC", "--kind", "request",
            "--subject", "Account holders", "--body-file", body, "--attach", attachment,
            "--urgency", "priority", "--tlp", "AMBER", "--restriction", "intelligence-only",
            "--case", "FR-2026-7", "--wait", "60", "--json",
        )
    ).json()  # fmt: skip
    mid = sent["id"]
    # --wait returns once the hub holds the envelope (attachments always go that way).
    assert {who: st["via"] for who, st in sent["recipients"].items()} == {
        "BR-PF": "hub", "KE-EACC": "hub"
    }  # fmt: skip
    assert all(st["state"] in ("sent", "delivered") for st in sent["recipients"].values())
    await eventually(lambda: delivered(fr, mid, br, ke))

    inbox = (await cli(capfd, br, br_t, "inbox", "--json")).json()
    assert ids(inbox["messages"]) == [mid]
    assert inbox["messages"][0]["attachments"] == 1
    assert "Account holders" in (await cli(capfd, br, br_t, "inbox")).out
    save = tmp_path / "saved"
    save.mkdir()
    shown = (await cli(capfd, br, br_t, "show", mid, "--save-attachments", save, "--json")).json()
    assert shown["content"]["body"] == body.read_text()
    assert shown["content"]["restrictions"] == ["intelligence-only"]
    assert (save / "statement.pdf").read_bytes() == attachment.read_bytes()
    assert (await cli(capfd, br, br_t, "show", mid)).code == 0
    assert (await cli(capfd, br, br_t, "inbox", "--unread", "--json")).json()["messages"] == []

    ack = (
        await cli(capfd, br, br_t, "status-update", mid, "--state", "acknowledged",
                  "--expected", "2099-01-31", "--json")
    ).json()  # fmt: skip
    answer_body = tmp_path / "answer.txt"
    answer_body.write_text("Holders: two directors of the company.")
    ans = (await cli(capfd, br, br_t, "reply", mid, "--body-file", answer_body, "--json")).json()
    await eventually(lambda: delivered(br, ans["id"], fr))
    await eventually(lambda: delivered(br, ack["id"], fr))
    case = (await cli(capfd, fr, fr_t, "case", "FR-2026-7", "--json")).json()
    states = {r["counterpart"]: r["state"] for r in case["requests"]}
    assert states == {"BR-PF": "answered", "KE-EACC": "sent"}
    kinds = [m["kind"] for m in case["messages"]]
    assert kinds[0] == "request"
    assert sorted(kinds[1:]) == ["answer", "status"]  # same second: either order
    cases = (await cli(capfd, fr, fr_t, "cases", "--json")).json()["cases"]
    assert [(c["case"], c["open"]) for c in cases] == [("FR-2026-7", 1)]
    assert (await cli(capfd, fr, fr_t, "cases")).code == 0
    assert (await cli(capfd, fr, fr_t, "case", "FR-2026-7")).code == 0
    rows = (await cli(capfd, fr, fr_t, "stats", "--json")).json()["rows"]
    # Brazil's acknowledgement and answer came seconds after the request: how many, the run says
    first, answer = rows[4]["first_response_median_s"], rows[4]["answer_median_s"]
    assert 0 <= first <= answer < 120
    none = {"answered": 0, "declined": 0, "withdrawn": 0, "open": 0,
            "first_response_median_s": None, "first_response_p90_s": None,
            "answer_median_s": None, "answer_p90_s": None}  # fmt: skip
    times = {"first_response_median_s": first, "first_response_p90_s": first,
             "answer_median_s": answer, "answer_p90_s": answer}  # fmt: skip
    assert rows == [
        {"direction": "received", "counterpart": "BR-PF", "kind": "answer", "count": 1, **none},
        {"direction": "received", "counterpart": "BR-PF", "kind": "status", "count": 1, **none},
        {"direction": "received", "counterpart": None, "kind": "answer", "count": 1, **none},
        {"direction": "received", "counterpart": None, "kind": "status", "count": 1, **none},
        {"direction": "sent", "counterpart": "BR-PF", "kind": "request", "count": 1,
         **none, "answered": 1, **times},
        {"direction": "sent", "counterpart": "KE-EACC", "kind": "request", "count": 1,
         **none, "open": 1},
        {"direction": "sent", "counterpart": None, "kind": "request", "count": 2,
         **none, "answered": 1, "open": 1, **times},
    ]  # fmt: skip
    assert (await cli(capfd, fr, fr_t, "stats")).code == 0
    outbox = (await cli(capfd, fr, fr_t, "outbox", "--json")).json()["messages"]
    assert outbox[0]["recipients"]["BR-PF"]["state"] == "delivered"
    assert (await cli(capfd, fr, fr_t, "outbox")).code == 0

    # Kenya declines; France informs Brazil; Brazil asks consent to pass it on to Kenya.
    dec = await cli(capfd, ke, ke_t, "status-update", mid, "--state", "declined", "--json")
    assert dec.code == 1
    assert "reason" in dec.err
    declined = (
        await cli(capfd, ke, ke_t, "status-update", mid, "--state", "declined",
                  "--reason", "not competent", "--json")
    ).json()  # fmt: skip
    await eventually(lambda: delivered(ke, declined["id"], fr))
    info = (
        await cli(capfd, fr, fr_t, "send", "--to", "BR-PF", "--kind", "information",
                  "--subject", "Onward use restricted", "--body", "x", "--tlp", "RED", "--json")
    ).json()  # fmt: skip
    await eventually(lambda: delivered(fr, info["id"], br))
    refused = await cli(capfd, br, br_t, "forward", info["id"], "--to", "KE-EACC")
    assert refused.code == 1
    assert refused.err.startswith("globe-node: error: message ")
    assert refused.err.count("\n") == 1
    asked = (
        await cli(capfd, br, br_t, "request-consent", info["id"], "--to", "KE-EACC",
                  "--purpose", "joint team", "--json")
    ).json()  # fmt: skip
    await eventually(lambda: delivered(br, asked["id"], fr))
    refusal = (
        await cli(capfd, fr, fr_t, "consent", asked["id"], "--refuse", "--reason", "ongoing",
                  "--json")
    ).json()  # fmt: skip
    await eventually(lambda: delivered(fr, refusal["id"], br))
    assert (await cli(capfd, br, br_t, "forward", info["id"], "--to", "KE-EACC")).code == 1
    granted = (await cli(capfd, fr, fr_t, "consent", asked["id"], "--grant", "--json")).json()
    await eventually(lambda: delivered(fr, granted["id"], br))
    fwd = (await cli(capfd, br, br_t, "forward", info["id"], "--to", "KE-EACC", "--json")).json()
    await eventually(lambda: delivered(br, fwd["id"], ke))

    # Operations: ping, sync, retry, keys, alerts, audit, users.
    ping = (await cli(capfd, fr, fr_t, "ping", "BR-PF", "--json")).json()
    assert ping["direct"]["ok"] is True
    assert ping["hub"]["ok"] is True
    ping_ke = (await cli(capfd, fr, fr_t, "ping", "KE-EACC", "--json")).json()
    assert ping_ke["direct"] == {"ok": False, "ms": None, "error": "the peer publishes no endpoint"}
    assert (await cli(capfd, fr, fr_t, "ping", "BR-PF")).code == 0
    assert (await cli(capfd, fr, fr_t, "sync", "--json")).json()["added"] == 0
    assert (await cli(capfd, fr, fr_t, "retry", mid, "--json")).json() == {"queued": 0}
    rotated = (await cli(capfd, fr, fr_op, "keys", "rotate", "--json")).json()
    assert rotated["prekey"].startswith("mlkem768x25519:")
    denied = await cli(capfd, fr, fr_t, "keys", "rotate")
    assert (denied.code, denied.err) == (
        1, "globe-node: error: the supervisor role may not do this\n"
    )  # fmt: skip
    assert (await cli(capfd, fr, fr_t, "alerts", "--json")).json() == {"alerts": []}
    audit = (await cli(capfd, fr, fr_op, "audit", "--json")).json()
    assert audit["verified"] is True
    actions = [(e["user"], e["action"]) for e in audit["entries"]]
    assert ("fr-sup", "send") in actions
    assert ("fr-op", "rotate-prekey") in actions
    assert (await cli(capfd, fr, fr_op, "audit")).code == 0
    unknown = await cli(capfd, fr, fr_t, "show", "0" * 32)
    assert (unknown.code, unknown.err) == (1, f"globe-node: error: no message {'0' * 32}\n")


async def test_a_refused_upload_leaves_nothing_staged_and_wait_says_what_is_still_queued(
    net: Net, tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    """``send`` with files: when one upload is refused, those already staged are discarded;
    ``--wait`` that runs out names the message, which stays queued and is retried."""
    fr = await net.member("FR-PNF", "Parquet national financier", upload_quota=1000)
    await net.member("KE-EACC", "Ethics and Anti-Corruption Commission", endpoint=False)
    token = await token_file(fr, "fr-inv", "investigator")
    first, second = tmp_path / "first.txt", tmp_path / "second.txt"
    first.write_bytes(b"a" * 600)
    second.write_bytes(b"b" * 600)
    send = ("send", "--to", "KE-EACC", "--kind", "information", "--subject", "Files",
            "--body", "Two files.")  # fmt: skip
    ran = await cli(capfd, fr, token, *send, "--attach", first, second)
    assert (ran.code, ran.out) == (1, "")
    assert ran.err == (
        "globe-node: error: staged uploads would take 1200 bytes of the 1000 allowed: send or"
        " discard some first\n"
    )
    assert (await fr.api("GET", "/api/uploads"))[1] == {"uploads": []}
    assert await fr.n.outbox() == []
    # with the hub gone and no endpoint to try, the message stays queued
    await net.stop_hub()
    ran = await cli(capfd, fr, token, *send, "--wait", "0.5")
    (queued,) = await fr.n.outbox()
    assert (ran.code, ran.out) == (1, "")
    assert ran.err == (
        f"globe-node: error: message {queued.id} is still queued after 0.5 s; it stays in the"
        " outbox and is retried (see: globe-node outbox)\n"
    )
    assert {r: s.state for r, s in queued.recipients.items()} == {"KE-EACC": "queued"}
