"""Evidence bundles of a case, or of one exchange in it (PROTOCOL.md §9.3).

:meth:`Bundles.export` gathers what the node holds about the case's messages (the
exact envelopes, the signed contents and inner signatures, the receipts, the hub's
evidence, the attachments or only their digests), the membership log up to the last
hub checkpoint that confirmed it, and signs a manifest with the node's identity key.
Before a byte is written it checks the export's handling rule (§9.3.6: restricted
material of another authority only with that authority's consent, which then goes in
the bundle) and verifies the whole bundle with the verifier's own code
(:func:`protocol.bundle.verify_items`); a refusal is typed, audited, and nothing is
sent.  :meth:`Bundles.stream` then yields the ZIP file, decrypting each attachment as
it goes (twice read, never written in the clear): the daemon writes no file, the
caller saves the bytes where it likes.

The rows are read here with one read-only query per kind (the store's tables, not
its methods): a bundle is a read of what the node already holds.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

from sqlalchemy import select

from globe_io.errors import Conflict, NotFound, RemoteError
from globe_node import db
from globe_node.audit import AuditLog
from globe_node.context import NodeContext
from globe_node.directory import Directory
from protocol import canonical
from protocol.attachments import AttachmentDecryptor
from protocol.bundle import (
    BundleMessage,
    assemble,
    attachment_name,
    export_requires_consent,
    layout,
    message_items,
    message_prefix,
    sign_manifest,
    verify_items,
)
from protocol.bundlezip import (
    MAX_CONTAINER_SIZE,
    MemberSpec,
    container_parts,
    container_size,
    crc32,
)
from protocol.crypto import Sha256
from protocol.custody import Item
from protocol.envelope import decode_header
from protocol.errors import (
    ConsentRequired,
    CryptoError,
    GlobeError,
    LogStale,
    StorageError,
    TransportError,
    UsageError,
)
from protocol.ids import AuthorityId, MessageId
from protocol.membership import Checkpoint
from protocol.messages import Attachment, ConsentDecision, Handling, Kind, MessageContent

__all__ = ["Bundles", "Export"]

_CHUNK: Final = 1 << 20


@dataclass
class _Held:
    """A message this node holds, as a bundle carries it."""

    message_id: str
    sender: AuthorityId
    envelope: bytes
    data: bytes  # the exact content
    content: MessageContent
    signature: bytes
    receipts: list[tuple[AuthorityId, bytes]] = field(default_factory=list)
    evidence: list[bytes] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class _Source:
    """Where a streamed attachment member comes from: its blob file and manifest entry."""

    path: Path
    attachment: Attachment


@dataclass(frozen=True, slots=True)
class Export:
    """A verified bundle, ready to stream: its size, file name and what it holds."""

    filename: str
    size: int
    manifest_digest: str
    messages: int
    specs: tuple[MemberSpec, ...]
    sources: dict[str, _Source]
    #: messages of the case left out because a retention rule purged them (their signed
    #: content and envelope are gone, so nothing about them could be verified)
    purged: tuple[str, ...] = ()


class Bundles:
    """Export the node's evidence about a case as a bundle (§9.3)."""

    def __init__(self, *, ctx: NodeContext, directory: Directory, audit: AuditLog) -> None:
        self.ctx = ctx
        self.directory = directory
        self.audit = audit

    async def export(self, case: str, *, message: str | None, included: bool, user: str) -> Export:
        """Gather, check and sign the bundle of ``case`` (or of the exchange that ``message``
        starts in it); refused with a typed error, audited, before anything is written."""
        what = f"case {case}" + (f" message {message}" if message else "")
        try:
            exported = await self._export(case, message=message, included=included)
        except GlobeError as exc:
            await self.audit.append(self.ctx.now(), user, "export-refused",
                                    f"bundle of {what}: {exc.slug}: {exc.detail}")  # fmt: skip
            raise
        mode = "included" if included else "digests only"
        left_out = (
            f", {len(exported.purged)} purged left out ({', '.join(exported.purged)})"
            if exported.purged else ""
        )  # fmt: skip
        await self.audit.append(
            self.ctx.now(), user, "export",
            f"bundle of {what}: {exported.messages} messages{left_out}, attachments {mode},"
            f" manifest {exported.manifest_digest}",
        )  # fmt: skip
        return exported

    async def _export(self, case: str, *, message: str | None, included: bool) -> Export:
        with contextlib.suppress(TransportError, RemoteError):
            await self.directory.sync()  # a checkpoint as fresh as the hub gives
        held, purged = await self._case(case)
        if message is not None and message in purged:
            raise Conflict(
                f"message {message} was purged under a retention rule: its signed content is"
                " gone, so it cannot be exported"
            )
        if not held:
            raise Conflict(
                f"every message of case {case} was purged under a retention rule: nothing"
                " verifiable is left to export"
            )
        if message is not None:
            held = _exchange(held, message)
        held = [*held, *await self._consents(held)]
        items, sources = await self._items(held, included)
        checkpoint = await self._checkpoint()
        entries = (await self.ctx.store.load_log())[: checkpoint.seq]
        all_items = assemble(genesis=self.ctx.genesis, entries=entries,
                             checkpoint=checkpoint.signed.encode(), items=items)  # fmt: skip
        manifest = sign_manifest(
            all_items, genesis=self.ctx.genesis, exporter=self.ctx.me,
            identity=self.ctx.keys.identity, created=self.ctx.now(), case=case,
            message=None if message is None else MessageId.parse(message), included=included,
        )  # fmt: skip
        checked = _self_check(manifest, all_items)
        specs = tuple(layout(manifest, all_items))
        size = container_size(specs)
        if size > MAX_CONTAINER_SIZE:
            raise UsageError(
                f"the bundle would be {size} bytes, more than a bundle holds"
                f" ({MAX_CONTAINER_SIZE}): export with attachment digests only, or one exchange"
                " at a time"
            )
        name = case.replace("/", "_") + (f"-{message[:8]}" if message else "") + ".bundle.zip"
        return Export(name, size, checked, len(held), specs, sources, purged)

    async def stream(self, export: Export) -> AsyncIterator[bytes]:
        """The bundle's bytes; each attachment decrypted again as it is sent, and refused
        (the stream stops short) if it is no longer the file that was checked."""
        for part in container_parts(export.specs):
            if isinstance(part, MemberSpec):
                async for chunk in _plaintext(part, export.sources[part.name]):
                    yield chunk
            else:
                yield part

    # -- what the node holds ---------------------------------------------------------------

    async def _case(self, case: str) -> tuple[list[_Held], tuple[str, ...]]:
        """The messages of ``case`` a bundle can carry, and those purged (sorted ids)."""
        async with self.ctx.store.read() as s:
            ins = list((await s.execute(
                select(db.InMessage).where(db.InMessage.case == case))).scalars())  # fmt: skip
            outs = list((await s.execute(
                select(db.OutMessage).where(db.OutMessage.case == case))).scalars())  # fmt: skip
        if not ins and not outs:  # a case opened here that holds no message yet
            raise NotFound(f"case {case} holds no message: there is nothing to export")
        purged = tuple(sorted(
            [r.message_id for r in ins if r.purged is not None]
            + [r.message_id for r in outs if r.purged is not None]
        ))  # fmt: skip
        ins = [r for r in ins if r.purged is None]
        outs = [r for r in outs if r.purged is None]
        return [*[self._in(r) for r in ins], *await self._outs(outs)], purged

    def _open(self, sealed: bytes, message_id: str) -> tuple[bytes, MessageContent]:
        data = self.ctx.cipher.open(sealed, f"content:{message_id}")
        return data, MessageContent.decode(data)

    def _in(self, row: db.InMessage) -> _Held:
        data, content = self._open(row.content, row.message_id)
        held = _Held(row.message_id, AuthorityId.parse(row.sender), row.envelope, data, content,
                     _signature(row.inner_signature, row.message_id))  # fmt: skip
        held.receipts.append((self.ctx.me, row.receipt))
        return held

    async def _outs(self, rows: Sequence[db.OutMessage]) -> list[_Held]:
        ids = [r.message_id for r in rows]
        query = select(db.OutRecipient).where(db.OutRecipient.message_id.in_(ids))
        async with self.ctx.store.read() as s:
            recipients = list((await s.execute(query)).scalars())
        out = []
        for row in rows:
            data, content = self._open(row.content, row.message_id)
            held = _Held(row.message_id, self.ctx.me, row.envelope, data, content,
                         _signature(row.inner_signature, row.message_id))  # fmt: skip
            mine = sorted((r for r in recipients if r.message_id == row.message_id),
                          key=lambda r: r.recipient)  # fmt: skip
            held.receipts = [(AuthorityId.parse(r.recipient), r.receipt) for r in mine if r.receipt]
            held.evidence = list(dict.fromkeys(r.evidence for r in mine if r.evidence))
            out.append(held)
        return out

    async def _consents(self, held: Sequence[_Held]) -> list[_Held]:
        """For each restricted proof of another authority, that authority's grant of a
        consent request this node sent naming itself (§9.3.6); none: ``consent-required``."""
        have = {h.message_id for h in held}
        async with self.ctx.store.read() as s:
            decisions = list((await s.execute(select(db.InMessage).where(
                db.InMessage.kind == Kind.CONSENT_DECISION.value))).scalars())  # fmt: skip
            asked = list((await s.execute(select(db.OutMessage).where(
                db.OutMessage.kind == Kind.CONSENT_REQUEST.value))).scalars())  # fmt: skip
        grants = [self._in(d) for d in decisions]
        requests = {r.message_id: r for r in asked}
        extra: list[_Held] = []
        for author, mid, handling in (p for h in held for p in _proofs(h)):
            if author == self.ctx.me or not export_requires_consent(handling):
                continue
            grant = _grant(grants, author, mid, self.ctx.me)
            request = None if grant is None else requests.get(str(grant.content.in_reply_to))
            mine = None if request is None else (await self._outs([request]))[0]
            if mine is None or not _asks(mine.content, mid, self.ctx.me):
                raise ConsentRequired(
                    f"message {mid} of {author} is TLP:{handling.tlp.value}: only its originator"
                    " exports it, or holders with its consent: ask with 'request-consent"
                    f" {mid} --to {self.ctx.me}' and a purpose naming the export"
                )
            for h in (grant, mine):
                if h is not None and h.message_id not in have:
                    have.add(h.message_id)
                    extra.append(h)
        return extra

    async def _items(
        self, held: Sequence[_Held], included: bool
    ) -> tuple[list[Item], dict[str, _Source]]:
        items: list[Item] = []
        sources: dict[str, _Source] = {}
        for h in held:
            m = BundleMessage(h.envelope, h.data, h.signature, tuple(h.receipts),
                              tuple(h.evidence))  # fmt: skip
            items += message_items(m)
            if not included:
                continue
            prefix = message_prefix(h.sender, MessageId.parse(h.message_id))
            for index, att in enumerate(h.content.attachments, start=1):
                name = attachment_name(prefix, index)
                source = _Source(self.ctx.blob_path(h.sender, att.blob), att)
                items.append(await asyncio.to_thread(_digests, name, source))
                sources[name] = source
        return items, sources

    async def _checkpoint(self) -> Checkpoint:
        stored = await self.ctx.store.meta("checkpoint")
        if stored is None:
            raise LogStale(
                "no hub checkpoint has confirmed this node's directory yet: the hub must be"
                " reachable once before a bundle can prove who was a member"
            )
        return Checkpoint.decode(canonical.b64d(stored, what="checkpoint"), self.ctx.genesis)


def _signature(signature: bytes | None, message_id: str) -> bytes:
    if signature is None:
        raise Conflict(
            f"message {message_id} was stored before this node kept signatures: its origin"
            " cannot be proven, so it cannot go in a bundle"
        )
    return signature


def _exchange(held: Sequence[_Held], message: str) -> list[_Held]:
    """``message`` and every message of the case that replies to it, at any depth."""
    if all(h.message_id != message for h in held):
        raise NotFound(f"no message {message} in this case")
    chosen = {message}
    grew = True
    while grew:
        more = {h.message_id for h in held if str(h.content.in_reply_to) in chosen}
        grew = not more <= chosen
        chosen |= more
    return [h for h in held if h.message_id in chosen]


def _proofs(h: _Held) -> Iterable[tuple[AuthorityId, MessageId, Handling]]:
    """Each signed content ``h`` carries: its own, and a forward's original."""
    yield h.sender, MessageId.parse(h.message_id), h.content.handling
    fwd = h.content.forwarded
    if fwd is not None:
        header = decode_header(fwd.origin.header)
        yield header.sender, header.message_id, MessageContent.decode(fwd.origin.content).handling


def _grant(
    grants: Sequence[_Held], author: AuthorityId, mid: MessageId, me: AuthorityId
) -> _Held | None:
    for g in grants:
        c = g.content.consent
        if (
            g.sender == author
            and c is not None
            and c.decision is ConsentDecision.GRANTED
            and c.message == mid
            and me in c.to
        ):
            return g
    return None


def _asks(content: MessageContent, mid: MessageId, me: AuthorityId) -> bool:
    c = content.consent
    return (
        content.kind is Kind.CONSENT_REQUEST and c is not None and c.message == mid and me in c.to
    )


def _self_check(manifest: Item, items: Sequence[Item]) -> str:
    """The verifier's own check of what is about to be written (refused if it fails); the
    manifest's digest, which names the bundle in the audit log."""
    report = verify_items(manifest, items)
    if report.ok and report.provenance is not None:
        return report.provenance.manifest_digest
    first = report.failures[0]
    if isinstance(first.exc, LogStale | ConsentRequired):
        raise first.exc
    raise Conflict(f"the bundle would not verify ({first.line()}): nothing was written")


def _digests(name: str, source: _Source) -> Item:
    """Decrypt an attachment once to learn its CRC-32 and check its SHA-256 (thread)."""
    att = source.attachment
    dec = AttachmentDecryptor(att.key, att.blob)
    crc, size = 0, 0
    digest = Sha256()
    try:
        f = source.path.open("rb")
    except FileNotFoundError:
        raise NotFound(
            f"attachment {att.name!r} is no longer on this node: export with digests only"
        ) from None
    altered = Conflict(f"attachment {att.name!r} does not match its digest on this node")
    try:
        with f:
            for chunk in iter(lambda: f.read(_CHUNK), b""):
                plain = dec.update(chunk)
                crc, size = crc32(plain, crc), size + len(plain)
                digest.update(plain)
        plain = dec.finalize()
    except CryptoError:  # the file at rest was altered: the node's state, not the request
        raise altered from None
    crc, size = crc32(plain, crc), size + len(plain)
    digest.update(plain)
    if (size, digest.digest()) != (att.size, att.sha256):
        raise altered
    return Item(name, None, size, digest.digest(), crc)


async def _plaintext(spec: MemberSpec, source: _Source) -> AsyncIterator[bytes]:
    att = source.attachment
    dec = AttachmentDecryptor(att.key, att.blob)
    crc, size = 0, 0
    f = await asyncio.to_thread(source.path.open, "rb")
    try:
        while chunk := await asyncio.to_thread(f.read, _CHUNK):
            if plain := dec.update(chunk):
                crc, size = crc32(plain, crc), size + len(plain)
                yield plain
    finally:
        f.close()
    if last := dec.finalize():
        crc, size = crc32(last, crc), size + len(last)
        yield last
    if (crc, size) != (spec.crc, spec.size):
        raise StorageError(f"attachment {att.name!r} changed while the bundle was sent")
