"""What several node test modules share: messages and envelopes to send, looks into
a node's store, requests to its two listeners, and running ``globe-node`` in-process.

The network itself (hub, nodes, ports) is :mod:`tests.node.network`; the fixtures
that build on both are in ``conftest.py``.
"""

from __future__ import annotations

import io
import json
import sqlite3
import stat
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import aiohttp
import orjson
from sqlalchemy import func, select

from globe_io.hubclient import request_payload
from globe_node import db
from globe_node.audit import AuditLog
from globe_node.cases import Cases
from globe_node.config import NodeConfig, render_config
from globe_node.context import NodeContext
from globe_node.search import SearchIndex
from globe_node.worklists import Worklists
from protocol import canonical
from protocol.envelope import SealTo, seal_envelope
from protocol.errors import PROBLEM_BASE
from protocol.ids import MessageId
from protocol.keys import KemPublicKey, SigningKey
from protocol.messages import Handling, Kind, MessageContent, Tlp, Urgency
from protocol.requestauth import HEADER, sign_request
from tests.node.network import RunningNode

# --- messages and envelopes --------------------------------------------------------------------


def info(subject: str = "Payments to a shell company", **kw: Any) -> MessageContent:
    """An information message (TLP:AMBER, routine) with ``subject``; ``kw`` overrides fields."""
    base: dict[str, Any] = {
        "kind": Kind.INFORMATION, "subject": subject, "body": "Details follow.",
        "language": "en", "urgency": Urgency.ROUTINE, "handling": Handling(Tlp.AMBER),
    }  # fmt: skip
    base.update(kw)
    return MessageContent(**base)


def seal(
    sender: RunningNode,
    to: RunningNode,
    *,
    seq: int = 1,
    identity: RunningNode | None = None,
    dir_head: bytes | None = None,
    message_id: MessageId | None = None,
    prekey: KemPublicKey | None = None,
    subject: str = "Payments to a shell company",
) -> bytes:
    """An envelope from ``sender`` (signed with ``identity``'s key if given) to ``to``."""
    n = sender.n
    now = n.now()
    return seal_envelope(
        genesis=n.genesis, sender=n.me, identity=(identity or sender).keys.identity,
        recipients=[SealTo(to.me, seq, prekey or to.keys.ka.public_key)],
        content=info(subject).encode(), created=now, expires=now + 3600,
        dir_seq=n.state.seq, dir_head=n.state.head if dir_head is None else dir_head,
        message_id=message_id,
    )  # fmt: skip


#: A minimal valid ``POST /api/messages`` body (FR-PNF to BR-PF).
GOOD: Final[dict[str, Any]] = {"to": ["BR-PF"], "subject": "s", "body": "b"}


# --- a node's store ----------------------------------------------------------------------------


async def recipient_states(rn: RunningNode, mid: str) -> dict[str, str]:
    """The delivery state of each recipient of ``rn``'s message ``mid``."""
    async with rn.n.sessions() as s:
        rows = (
            (await s.execute(select(db.OutRecipient).where(db.OutRecipient.message_id == mid)))
            .scalars()
            .all()
        )
    return {r.recipient: r.state for r in rows}


async def delivered(rn: RunningNode, mid: str, *who: RunningNode) -> bool:
    """Whether ``rn`` holds a receipt for ``mid`` from each of ``who``."""
    states = await recipient_states(rn, mid)
    return all(states.get(str(w.me)) == "delivered" for w in who)


async def inbox_ids(rn: RunningNode) -> list[str]:
    return [m.id for m in await rn.n.inbox(limit=1000)]


async def count(rn: RunningNode, model: type[db.Base]) -> int:
    async with rn.n.sessions() as s:
        return int((await s.execute(select(func.count()).select_from(model))).scalar_one())


async def out_row(rn: RunningNode, mid: str, who: str) -> db.OutRecipient:
    """The outbox row of ``rn``'s message ``mid`` to ``who`` (it must exist)."""
    async with rn.n.sessions() as s:
        row = await s.get(db.OutRecipient, (mid, who))
    assert row is not None
    return row


async def alerts(rn: RunningNode) -> list[tuple[str, str]]:
    """``(kind, detail)`` of each of ``rn``'s alerts, newest first."""
    return [(a.kind, a.detail) for a in await rn.n.alerts()]


# --- requests to the two listeners -------------------------------------------------------------


async def raw(
    rn: RunningNode, method: str, path: str, data: bytes | None = None, *, token: str | None = None
) -> tuple[int, Any]:
    """A local API request with exactly ``data`` as its body."""
    url = f"http://127.0.0.1:{rn.config.api_port}{path}"
    headers = {"Authorization": f"Bearer {token or rn.token}"}
    async with (
        aiohttp.ClientSession() as s,
        s.request(method, url, data=request_payload(data or b""), headers=headers) as r,
    ):
        body = await r.read()
        return r.status, orjson.loads(body) if body else None


def problem(answer: tuple[int, Any]) -> tuple[int, str, str]:
    """(status, problem slug, detail) of a problem+json answer."""
    status, body = answer
    assert str(body["type"]).startswith(PROBLEM_BASE), body
    return status, str(body["type"])[len(PROBLEM_BASE) :], str(body["detail"])


async def post_inbox(
    to: RunningNode, body: bytes, *, signer: RunningNode | None, audience: str | None = None
) -> tuple[int, dict[str, object]]:
    """``POST /v1/inbox`` to ``to``'s peer listener, signed by ``signer`` (if any)."""
    url = f"{to.peer_url}/v1/inbox"
    headers = {"Content-Type": "application/octet-stream"}
    if signer is not None:
        headers[HEADER] = sign_request(
            key=signer.keys.transport, network=signer.n.genesis.digest,
            audience=audience or str(to.me), method="POST", target="/v1/inbox", body=body,
            created=int(time.time()),
        )  # fmt: skip
    data = io.BytesIO(body) if len(body) > 1 << 20 else body
    async with aiohttp.ClientSession() as s, s.post(url, data=data, headers=headers) as r:
        return r.status, await r.json(content_type=None)


async def peer_post(
    to: RunningNode, path: str, body: Any, *, key: SigningKey | None, header: str | None = None
) -> tuple[int, Any, str | None]:
    """POST to ``to``'s peer listener signed with ``key``; (status, JSON answer, header)."""
    url = f"{to.peer_url}{path}"
    headers = {"Content-Type": "application/octet-stream"}
    if header is None and key is not None:
        assert isinstance(body, bytes)
        header = sign_request(
            key=key, network=to.n.genesis.digest, audience=str(to.me), method="POST",
            target=path, body=body, created=int(time.time()),
        )  # fmt: skip
    if header is not None:
        headers[HEADER] = header
    async with aiohttp.ClientSession() as s, s.post(url, data=body, headers=headers) as r:
        return r.status, await r.json(content_type=None), header


# --- globe-node in-process ---------------------------------------------------------------------

#: The passphrase of the key files the command-line tests make (GLOBE_PASSPHRASE).
CLI_PASSPHRASE: Final = "correct horse battery staple"  # noqa: S105 - a test passphrase


@dataclass
class Ran:
    """One command: exit status and what it wrote."""

    code: int
    out: str
    err: str

    def json(self) -> Any:
        assert (self.code, self.err) == (0, ""), self.err
        return json.loads(self.out)


def init_args(directory: Path, genesis: Path, *extra: str | Path) -> list[str | Path]:
    """``globe-node init`` for FR-PNF into ``directory`` (cheap ``interactive`` key cost)."""
    return [
        "init", "--dir", directory, "--genesis", genesis, "--authority-id", "FR-PNF",
        "--name", "Parquet national financier", "--country", "FR",
        "--kind", "anti-corruption", "--kind", "mla-central", "--language", "fr",
        "--language", "en", "--contact", "duty officer, +33 1 00 00 00 00",
        "--legal-basis", "UNCAC art. 36", "--kdf", "interactive", *extra,
    ]  # fmt: skip


def refused(ran: Ran, detail: str) -> None:
    """The command refused with exactly ``detail`` (exit status 1, one line on stderr)."""
    assert (ran.code, ran.out, ran.err) == (1, "", f"globe-node: error: {detail}\n")


def usage(ran: Ran, detail: str) -> None:
    """The command line itself was wrong (exit status 2): ``detail`` ends the message."""
    assert ran.code == 2
    assert ran.out == ""
    assert ran.err.endswith(f"error: {detail}\n")


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def db_rows(path: Path, query: str) -> list[tuple[Any, ...]]:
    conn = sqlite3.connect(path)
    try:
        return conn.execute(query).fetchall()
    finally:
        conn.close()


def client_dir(directory: Path, api_port: int, token: str) -> Path:
    """A node directory for the daemon commands only: node.toml naming ``api_port``, a token."""
    directory.mkdir(exist_ok=True)
    config = NodeConfig(
        directory=directory, authority="FR-PNF", hub_url="http://127.0.0.1:8440", api_port=api_port
    )
    (directory / "node.toml").write_text(render_config(config))
    (directory / "api.token").write_text(token + "\n")
    return directory


# --- a stand-in daemon (the ``daemon`` fixture) ------------------------------------------------


@dataclass
class Daemon:
    """What the stand-in daemon answers, and what it was asked."""

    port: int = 0
    token: str = canonical.b64e(b"\x02" * 32)
    requests: list[tuple[str, str, Any]] = field(default_factory=list)
    answers: dict[str, Any] = field(default_factory=dict)


#: The body of every attachment the stand-in daemon serves (chunked: no length announced).
ATTACHMENT: Final = b"%PDF-1.7 attachment " * 4000

#: The messages the stand-in daemon shows: one received, one sent.
MESSAGES: Final[dict[str, Any]] = {
    "in1": {
        "direction": "in",
        "content": {
            "kind": "consent-decision", "subject": "Re: Consent", "body": "Granted.",
            "language": "fr", "urgency": "priority", "tlp": "AMBER", "restrictions": [],
            "case": None, "in_reply_to": "f" * 32, "deadline": None,
            "attachments": [{"name": "a.pdf", "size": len(ATTACHMENT),
                             "media_type": "application/pdf"}],
            "status": None,
            "consent": {"message": "e" * 32, "to": ["KE-EACC"], "decision": "granted"},
        },
        "meta": {"sender": "BR-PF", "received": 1_800_000_000, "via": "direct",
                 "order": "gap"},
    },
    "out1": {
        "direction": "out",
        "content": {
            "kind": "status", "subject": "Re: Accounts", "body": "Working on it.\n\x1b[31mred",
            "language": "en", "urgency": "urgent", "tlp": "RED",
            "restrictions": ["intelligence-only", "no-onward-dissemination"], "case": "C-9",
            "in_reply_to": None, "deadline": 1_900_000_000, "attachments": [],
            "status": {"state": "in-progress", "expected": 1_850_000_000},
            "consent": None,
        },
        "meta": {
            "sender": "FR-PNF", "created": 1_800_000_100,
            "recipients": {"KE-EACC": {"state": "queued"}, "BR-PF": {"state": "delivered"}},
        },
    },
}  # fmt: skip


__all__ = [
    "ATTACHMENT",
    "CLI_PASSPHRASE",
    "GOOD",
    "MESSAGES",
    "Daemon",
    "Ran",
    "alerts",
    "client_dir",
    "count",
    "db_rows",
    "delivered",
    "inbox_ids",
    "info",
    "init_args",
    "mode",
    "out_row",
    "peer_post",
    "post_inbox",
    "problem",
    "raw",
    "recipient_states",
    "refused",
    "seal",
    "usage",
]  # fmt: skip


def cases_of(ctx: NodeContext) -> Cases:
    """The node's case records, wired as the node wires them (for unit-level harnesses)."""
    return Cases(ctx=ctx, audit=AuditLog(ctx.store), index=SearchIndex(), worklists=Worklists(ctx))
