"""Evidence bundles: one file that proves a case's messages to someone who trusts neither
authority (PROTOCOL.md §9.3).

A bundle is a ZIP file (:mod:`protocol.bundlezip`) whose first member is a manifest
signed by the exporting node's identity key under ``globe/v1/bundle``.  The other
members are the network's genesis, the membership log from entry 1 to a hub
checkpoint, the checkpoint, and per message its exact envelope, signed content,
inner signature, delivery receipts, hub evidence and (by choice) attachments.

:func:`verify_bundle` checks all of it offline, from the bytes alone: every claim
against the genesis (optionally pinned by its fingerprint), never against the
exporter; :func:`verify_items` is the same check on items at hand, which an
exporter runs before it writes anything.  The answer is a :class:`BundleReport`:
the chain of custody that verified, and one :class:`~protocol.custody.Failure`
per refusal, in the order of §9.3.5.  :func:`build_bundle` makes a bundle from
parts in memory; a node streaming large attachments uses :func:`assemble`,
:func:`sign_manifest` and :func:`layout` instead.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Final

from protocol import canonical, labels
from protocol.bundlezip import MAX_MEMBERS, MemberSpec, encode_container, parse_container
from protocol.canonical import ObjectReader
from protocol.crypto import BytesLike
from protocol.custody import (
    CONTENT,
    ENVELOPE,
    SIGNATURE,
    Context,
    Failure,
    Item,
    MemberFacts,
    MessageFacts,
    Timeline,
    Verified,
    check_message,
    consent_basis,
    export_requires_consent,
)
from protocol.envelope import parse_envelope
from protocol.errors import (
    BadSignature,
    ChainBroken,
    ForkDetected,
    GenesisMismatch,
    GlobeError,
    ItemAltered,
    ItemMissing,
    ItemUnlisted,
    LogStale,
    MalformedError,
    RollbackDetected,
    UnsupportedVersion,
    UsageError,
)
from protocol.genesis import Genesis
from protocol.ids import AuthorityId, MessageId
from protocol.keys import SigningKey
from protocol.membership import Checkpoint
from protocol.messages import CASE_RE
from protocol.signed import SignedObject, sign_object

__all__ = [
    "CHECKPOINT",
    "GENESIS",
    "MANIFEST",
    "MAX_MANIFEST_SIZE",
    "NAME_RE",
    "BundleMessage",
    "BundleReport",
    "Manifest",
    "Provenance",
    "assemble",
    "attachment_name",
    "build_bundle",
    "export_requires_consent",
    "layout",
    "log_name",
    "message_items",
    "message_prefix",
    "sign_manifest",
    "verify_bundle",
    "verify_items",
]

MANIFEST: Final = "manifest.json"
GENESIS: Final = "genesis.json"
CHECKPOINT: Final = "checkpoint.json"
MAX_MANIFEST_SIZE: Final = 16 * 1024 * 1024
_AUTH: Final = r"[A-Z]{2}-[A-Z0-9]{2,16}"
#: Every name a bundle member may have (§9.3.2).
NAME_RE: Final = re.compile(
    r"(?:manifest\.json|genesis\.json|checkpoint\.json|log/[0-9]{8}\.json"
    rf"|messages/{_AUTH}/[0-9a-f]{{32}}/(?:envelope\.bin|content\.json|signature\.bin"
    rf"|receipt-{_AUTH}\.json|evidence-[1-9][0-9]{{0,2}}\.json|attachment-[1-9][0-9]?))\Z",
    re.ASCII,
)
_MESSAGE_RE: Final = re.compile(rf"(messages/{_AUTH}/[0-9a-f]{{32}}/)(.+)\Z", re.ASCII)
_INCLUDED: Final = "included"
_DIGESTS: Final = "digests"


# --- names ------------------------------------------------------------------------------------


def log_name(seq: int) -> str:
    """The member holding log entry ``seq``: ``log/00000001.json``."""
    return f"log/{seq:08d}.json"


def message_prefix(sender: AuthorityId, message_id: MessageId) -> str:
    """The directory of a message's members: ``messages/<sender>/<id>/``."""
    return f"messages/{sender}/{message_id}/"


def attachment_name(prefix: str, index: int) -> str:
    """A message's attachment ``index`` (from 1, in the content's order)."""
    return f"{prefix}attachment-{index}"


# --- the manifest -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Manifest:
    """A decoded manifest (its signature is checked against the log, :meth:`verify`)."""

    signed: SignedObject
    network: bytes
    exporter: AuthorityId
    created: int
    case: str | None
    message: MessageId | None
    included: bool
    items: tuple[tuple[str, bytes, int], ...]  # name, SHA-256, size

    @classmethod
    def decode(cls, data: bytes) -> Manifest:
        """Strictly decode a manifest (§9.3.3); its signature is not checked here."""
        what = "bundle manifest"
        signed = SignedObject.decode(data, max_size=MAX_MANIFEST_SIZE, what=what)
        r = ObjectReader(signed.payload_json(what=what), what)
        if r.string("type", max_len=32) != "bundle":
            raise MalformedError(f"{what}: type must be 'bundle'")
        if r.integer("v") != 1:
            raise UnsupportedVersion(f"{what}: only version 1 is supported")
        network = r.blob("network", length=32)
        exporter = AuthorityId.parse(r.string("exporter", max_len=19))
        created = r.integer("created")
        case = r.string("case", max_len=64) if r.has("case") else None
        if case is not None and not CASE_RE.match(case):
            raise MalformedError(f"{what}.case: 1-64 of A-Z a-z 0-9 . _ / -")
        message = MessageId.parse(r.string("message", max_len=32)) if r.has("message") else None
        mode = r.string("attachments", max_len=16)
        if mode not in (_INCLUDED, _DIGESTS):
            raise MalformedError(f"{what}.attachments: '{_INCLUDED}' or '{_DIGESTS}'")
        items = tuple(_item(i) for i in r.objects("items", min_items=1, max_items=MAX_MEMBERS - 1))
        r.done()
        names = [n for n, _, _ in items]
        if names != sorted(set(names)):
            raise MalformedError(f"{what}.items: sorted by name, each once")
        return cls(signed, network, exporter, created, case, message, mode == _INCLUDED, items)

    def verify(self, timeline: Timeline) -> None:
        """The exporter's current identity key (as of the checkpoint) signed it."""
        if len(self.signed.signatures) != 1:
            raise BadSignature("bundle manifest: must carry exactly the exporter's signature")
        key = timeline.state.member(self.exporter).certificate.identity_key
        self.signed.verify_by(labels.BUNDLE, key)


def _item(r: ObjectReader) -> tuple[str, bytes, int]:
    name = r.string("name", max_len=255)
    sha = r.blob("sha256", length=32)
    size = r.integer("size")
    r.done()
    if name == MANIFEST or not NAME_RE.match(name):
        raise MalformedError(f"bundle manifest.items: {name!r} is no name a bundle item has")
    return name, sha, size


def sign_manifest(
    items: Sequence[Item],
    *,
    genesis: Genesis,
    exporter: AuthorityId,
    identity: SigningKey,
    created: int,
    case: str | None = None,
    message: MessageId | None = None,
    included: bool = True,
) -> Item:
    """The manifest listing ``items`` (sorted by name), signed by the exporter's identity key."""
    payload: dict[str, object] = {
        "type": "bundle",
        "v": 1,
        "network": canonical.b64e(genesis.digest),
        "exporter": str(exporter),
        "created": created,
        "attachments": _INCLUDED if included else _DIGESTS,
        "items": [
            {"name": i.name, "sha256": canonical.b64e(i.sha256), "size": i.size} for i in items
        ],
    }
    if case is not None:
        payload["case"] = case
    if message is not None:
        payload["message"] = str(message)
    return Item.of(MANIFEST, sign_object(payload, labels.BUNDLE, [identity]).encode())


# --- building ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class BundleMessage:
    """One message as a bundle carries it (exact bytes each): the envelope, the content and
    its inner signature; the receipts (by recipient), the hub's evidence and the attachments'
    plaintexts in the content's order (none: digests only)."""

    envelope: bytes
    content: bytes
    signature: bytes
    receipts: tuple[tuple[AuthorityId, bytes], ...] = ()
    evidence: tuple[bytes, ...] = ()
    attachments: tuple[bytes, ...] = ()


def message_items(message: BundleMessage) -> list[Item]:
    """The items of one message (its attachments too, if it carries their bytes)."""
    h = parse_envelope(message.envelope).header
    prefix = message_prefix(h.sender, h.message_id)
    out = [
        Item.of(prefix + ENVELOPE, message.envelope),
        Item.of(prefix + CONTENT, message.content),
        Item.of(prefix + SIGNATURE, message.signature),
    ]
    out += [Item.of(f"{prefix}receipt-{who}.json", data) for who, data in message.receipts]
    out += [Item.of(f"{prefix}evidence-{i}.json", e) for i, e in enumerate(message.evidence, 1)]
    out += [Item.of(attachment_name(prefix, i), a) for i, a in enumerate(message.attachments, 1)]
    return out


def assemble(
    *, genesis: Genesis, entries: Sequence[bytes], checkpoint: bytes, items: Sequence[Item]
) -> list[Item]:
    """Every item but the manifest, sorted by name: the genesis, the log, the checkpoint and
    the messages' ``items``."""
    out = [Item.of(GENESIS, genesis.encode()), Item.of(CHECKPOINT, checkpoint)]
    out += [Item.of(log_name(seq), e) for seq, e in enumerate(entries, start=1)]
    out += items
    names = [i.name for i in out]
    if len(set(names)) != len(names):
        raise UsageError("a bundle holds each item once")
    return sorted(out, key=lambda i: i.name)


def layout(manifest: Item, items: Sequence[Item]) -> list[MemberSpec]:
    """The container's members: the manifest, then ``items`` in order (an item without bytes
    is one the caller streams)."""
    return [
        MemberSpec(i.name, i.size, i.crc, None if i.data is None else bytes(i.data))
        for i in (manifest, *items)
    ]


def build_bundle(
    *,
    genesis: Genesis,
    entries: Sequence[bytes],
    checkpoint: bytes,
    messages: Sequence[BundleMessage],
    exporter: AuthorityId,
    identity: SigningKey,
    created: int,
    case: str | None = None,
    message: MessageId | None = None,
    included: bool = True,
) -> bytes:
    """A whole bundle from parts in memory."""
    items = assemble(
        genesis=genesis, entries=entries, checkpoint=checkpoint,
        items=[i for m in messages for i in message_items(m)],
    )  # fmt: skip
    manifest = sign_manifest(
        items, genesis=genesis, exporter=exporter, identity=identity, created=created,
        case=case, message=message, included=included,
    )  # fmt: skip
    return encode_container(layout(manifest, items))


# --- the report -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Provenance:
    """The network, the export and the membership log a bundle rests on."""

    network_id: str
    network_name: str
    genesis_fingerprint: str
    pinned: bool
    exporter: str
    exported: int
    case: str | None
    message: str | None
    attachments_included: bool
    log_seq: int
    log_head: str
    checkpoint_time: int
    manifest_digest: str


@dataclass(frozen=True, slots=True)
class BundleReport:
    """The outcome of a verification: what verified, and every refusal in check order."""

    provenance: Provenance | None
    messages: tuple[MessageFacts, ...] = ()
    members: tuple[MemberFacts, ...] = ()
    failures: tuple[Failure, ...] = ()

    @property
    def ok(self) -> bool:
        """Whether everything verified."""
        return not self.failures

    def raise_first(self) -> None:
        """Raise the first refusal's error, if any."""
        if self.failures:
            raise self.failures[0].exc

    def to_json(self) -> dict[str, object]:
        """The report as JSON-ready data (``globe-verify --json``)."""
        return {
            "ok": self.ok,
            "provenance": None if self.provenance is None else _plain(self.provenance),
            "messages": [_plain(m) for m in self.messages],
            "members": [_plain(m) for m in self.members],
            "failures": [f.to_json() for f in self.failures],
        }


def _plain(value: object) -> object:
    """Dataclasses, tuples and scalars as JSON-ready data."""
    fields = getattr(value, "__dataclass_fields__", None)
    if fields is not None:
        return {name: _plain(getattr(value, name)) for name in fields}
    if isinstance(value, tuple):
        return [_plain(v) for v in value]
    return value


# --- verifying --------------------------------------------------------------------------------


def verify_bundle(data: BytesLike, *, pinned: str | None = None) -> BundleReport:
    """Verify a whole bundle (a buffer: bytes or a memory map) offline; see §9.3.5.

    ``pinned`` is the genesis fingerprint the verifier expects (twelve groups of five
    digits; spacing is ignored).
    """
    try:
        members = parse_container(data, name_ok=lambda n: NAME_RE.match(n) is not None)
        if members[0].name != MANIFEST:
            raise MalformedError(f"bundle: the first member is {members[0].name}, not {MANIFEST}")
    except GlobeError as exc:
        return BundleReport(None, failures=(Failure.of(exc, None),))
    items = [Item.of(m.name, m.data, stated_crc=m.stated_crc) for m in members]
    return verify_items(items[0], items[1:], pinned=pinned)


def verify_items(
    manifest: Item, items: Sequence[Item], *, pinned: str | None = None
) -> BundleReport:
    """Verify a bundle's items (the manifest, and the others in container order)."""
    run = _Run(pinned)
    with contextlib.suppress(_Stop):
        run.go(manifest, items)
    return run.report()


class _Stop(Exception):
    """A refusal after which nothing else can be checked."""


@dataclass
class _Run:
    """One verification: the state the steps of §9.3.5 share."""

    pinned: str | None
    failures: list[Failure] = field(default_factory=list)
    provenance: Provenance | None = None
    timeline: Timeline | None = None
    verified: list[Verified] = field(default_factory=list)

    def fail(self, exc: GlobeError, item: str | None) -> None:
        failure = Failure.of(exc, item)
        if all((f.slug, f.item) != (failure.slug, failure.item) for f in self.failures):
            self.failures.append(failure)

    def fatal(self, exc: GlobeError, item: str | None) -> _Stop:
        self.fail(exc, item)
        return _Stop()

    def go(self, manifest_item: Item, items: Sequence[Item]) -> None:
        try:
            manifest = Manifest.decode(manifest_item.raw())
        except GlobeError as exc:
            raise self.fatal(exc, MANIFEST) from None
        by_name = {i.name: i for i in items}
        self._listing(manifest, items)
        genesis = self._genesis(manifest, by_name)
        timeline, checkpoint = self._log(genesis, items, by_name)
        self.timeline = timeline
        try:
            manifest.verify(timeline)
        except GlobeError as exc:
            self.fail(exc, MANIFEST)
        self._digests(manifest, items)
        self.provenance = Provenance(
            str(genesis.network_id), genesis.name, genesis.fingerprint(), self.pinned is not None,
            str(manifest.exporter), manifest.created, manifest.case,
            None if manifest.message is None else str(manifest.message), manifest.included,
            timeline.state.seq, timeline.state.head.hex(), checkpoint.time,
            manifest.signed.digest().hex(),
        )  # fmt: skip
        self._messages(manifest, items, timeline)
        self._freshness(checkpoint)
        consent_basis(self.verified, manifest.exporter, self.fail)
        if manifest.message is not None and all(
            v.message_id != manifest.message for v in self.verified
        ):
            self.fail(MalformedError(f"the exported exchange {manifest.message} is not in it"),
                      MANIFEST)  # fmt: skip

    def _listing(self, manifest: Manifest, items: Sequence[Item]) -> None:
        listed = [n for n, _, _ in manifest.items]
        held = [i.name for i in items]
        for name in sorted(set(listed) - set(held)):
            self.fail(ItemMissing("the manifest lists it; the bundle does not hold it"), name)
        for name in sorted(set(held) - set(listed)):
            self.fail(ItemUnlisted("the bundle holds it; the manifest does not list it"), name)
        if [n for n in held if n in set(listed)] != [n for n in listed if n in set(held)]:
            raise self.fatal(MalformedError("bundle: members not in the manifest's order"), None)

    def _genesis(self, manifest: Manifest, by_name: dict[str, Item]) -> Genesis:
        try:
            genesis = Genesis.decode(_required(by_name, GENESIS).raw())
        except GlobeError as exc:
            raise self.fatal(exc, GENESIS) from None
        if self.pinned is not None and _digits(self.pinned) != _digits(genesis.fingerprint()):
            raise self.fatal(
                GenesisMismatch(
                    f"the bundle's network {genesis.network_id} has fingerprint"
                    f" {genesis.fingerprint()}, not the pinned {self.pinned}"
                ),
                GENESIS,
            )
        if manifest.network != genesis.digest:
            raise self.fatal(MalformedError("the manifest names another network"), MANIFEST)
        return genesis

    def _log(
        self, genesis: Genesis, items: Sequence[Item], by_name: dict[str, Item]
    ) -> tuple[Timeline, Checkpoint]:
        timeline = Timeline(genesis)
        for seq, item in enumerate((i for i in items if i.name.startswith("log/")), start=1):
            try:
                if item.name != log_name(seq):
                    raise ChainBroken(f"the log slice has no entry {seq}: it is not entries 1..n")
                timeline.apply(item.raw())
            except GlobeError as exc:
                raise self.fatal(exc, item.name) from None
        try:
            checkpoint = Checkpoint.decode(_required(by_name, CHECKPOINT).raw(), genesis)
            n = timeline.state.seq
            if checkpoint.seq > n:
                raise RollbackDetected(
                    f"the slice ends at entry {n}; the checkpoint is at {checkpoint.seq}"
                )
            if checkpoint.seq < n or checkpoint.head != timeline.state.head:
                raise (
                    ForkDetected("the checkpoint's head is not the slice's")
                    if checkpoint.seq == n
                    else MalformedError(f"the slice goes past the checkpoint at {checkpoint.seq}")
                )
        except GlobeError as exc:
            raise self.fatal(exc, CHECKPOINT) from None
        return timeline, checkpoint

    def _digests(self, manifest: Manifest, items: Sequence[Item]) -> None:
        stated = {n: (sha, size) for n, sha, size in manifest.items}
        for i in items:
            want = stated.get(i.name)
            if want is not None and (not i.crc_ok or (i.sha256, i.size) != want):
                self.fail(ItemAltered("its bytes are not those the manifest lists"), i.name)

    def _messages(self, manifest: Manifest, items: Sequence[Item], timeline: Timeline) -> None:
        groups: dict[str, dict[str, Item]] = {}
        for i in items:
            m = _MESSAGE_RE.match(i.name)
            if m is not None:
                groups.setdefault(m.group(1), {})[m.group(2)] = i
        ctx = Context(timeline, manifest.exporter, manifest.included, self.fail)
        for prefix in sorted(groups):
            checked = check_message(prefix, groups[prefix], ctx)
            if checked is not None:
                self.verified.append(checked)

    def _freshness(self, checkpoint: Checkpoint) -> None:
        times = [t for v in self.verified for t in v.times]
        if times:
            latest, item = max(times)
            if checkpoint.time < latest:
                self.fail(LogStale(
                    f"the checkpoint is dated {checkpoint.time}, before {latest}: a later change"
                    " of membership could be missing from the slice"), item)  # fmt: skip

    def report(self) -> BundleReport:
        # Times are whole seconds: within one, what opens a thread comes before its replies.
        messages = sorted(
            (v.facts for v in self.verified),
            key=lambda f: (f.created, f.in_reply_to is not None, f.sender, f.message_id),
        )
        return BundleReport(self.provenance, tuple(messages), self._members(), tuple(self.failures))

    def _members(self) -> tuple[MemberFacts, ...]:
        if self.timeline is None or self.provenance is None:
            return ()
        used = {self.provenance.exporter}
        for f in (v.facts for v in self.verified):
            used |= {f.sender, *(r.recipient for r in f.receipts)}
            if f.forwarded is not None:
                used.add(f.forwarded.sender)
        out = []
        for name in sorted(used):
            stages = self.timeline.stages(AuthorityId.parse(name))
            if stages:
                out.append(MemberFacts(name, stages[-1].certificate.name, tuple(
                    (s.seq, s.time, s.action.value, s.status.value, s.certificate.serial,
                     str(s.certificate.identity_key.key_id)) for s in stages)))  # fmt: skip
        return tuple(out)


def _required(by_name: dict[str, Item], name: str) -> Item:
    item = by_name.get(name)
    if item is None:
        raise ItemMissing(f"a bundle holds {name}")
    return item


def _digits(fingerprint: str) -> str:
    return "".join(c for c in fingerprint if not c.isspace())
