"""Shared pieces of the vector generator (tests/vectors/generate.py).

The devnet, the pinned random streams, the fixed message of the envelope vectors,
the collectors of refusal and acceptance cases, the byte specifications of large
inputs, and the pool that keeps HPKE ciphertexts stable across regenerations.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

from protocol import canonical, crypto, errors
from protocol.devnet import GENESIS_TIME, DevMember, DevNetwork, build_devnet
from protocol.ids import KeyId
from protocol.keys import KemPrivateKey, SigningKey
from protocol.membership import Action
from protocol.messages import (
    Attachment,
    Handling,
    Kind,
    MessageContent,
    Restriction,
    Tlp,
    Urgency,
)
from protocol.signed import SignedObject, sign_object

Json = dict[str, Any]

VECTOR_DIR: Final = Path(__file__).resolve().parent

#: The devnet seed and its members (admitted in this order by build_devnet).
SEED: Final = b"globe vectors v1"
MEMBERS: Final = [
    ("FR-PNF", "Parquet national financier"),
    ("DE-BKA", "Bundeskriminalamt"),
    ("ES-FCC", "Fiscalia contra la Corrupcion"),
]
#: Admitted after build_devnet, so that one sender can seal to three recipients.
FOURTH: Final = ("IT-ANAC", "Autorita Nazionale Anticorruzione")
ADMIT_AT: Final = GENESIS_TIME + 3600  # build_devnet's default admission time
SUSPEND_AT: Final = GENESIS_TIME + 4000
REINSTATE_AT: Final = GENESIS_TIME + 5000
SUSPEND_REASON: Final = "Designation under review by the national coordinator"
REINSTATE_REASON: Final = "Designation confirmed"
#: The "now" at which every vector is verified (certificates and prekeys are valid).
NOW: Final = GENESIS_TIME + 7200
ENVELOPE_CREATED: Final = NOW - 60
ENVELOPE_EXPIRES: Final = ENVELOPE_CREATED + 7 * 86400

#: Plaintext bytes per chunk in attachment.json (the smallest a reader accepts).
ATTACHMENT_CHUNK: Final = 4096
#: Two full chunks and a final chunk of 1,000 bytes.
ATTACHMENT_SIZE: Final = 2 * ATTACHMENT_CHUNK + 1000


def h(data: bytes) -> str:
    """Binary values are lower-case hex in every vector file."""
    return data.hex()


def rng_seed(name: str) -> bytes:
    """The seed of :func:`rng_for`."""
    return SEED + b"/" + name.encode("ascii")


def rng_for(name: str) -> crypto.Rng:
    """The pinned rng of one vector: ``deterministic_rng(b"globe vectors v1/" + name)``."""
    return crypto.deterministic_rng(rng_seed(name))


def expect(error: str, check: Callable[[], object]) -> str:
    """Run ``check`` and require it to raise exactly ``protocol.errors.<error>``."""
    cls = getattr(errors, error)
    try:
        check()
    except errors.GlobeError as exc:
        if type(exc) is not cls:
            raise AssertionError(f"expected {error}, got {type(exc).__name__}: {exc}") from exc
        return error
    raise AssertionError(f"expected {error}, nothing was raised")


def always(key: KemPrivateKey) -> Callable[[KeyId], KemPrivateKey | None]:
    """A private-key lookup that returns ``key`` whatever key id the header names."""
    return lambda _kid: key


def by_key_id(*keys: KemPrivateKey) -> Callable[[KeyId], KemPrivateKey | None]:
    """A recipient's key store: the private key whose id the header names, if held."""
    held = {k.key_id: k for k in keys}
    return held.get


def render(content: Json) -> str:
    """The text of a vector file: pretty-printed, sorted keys, trailing newline."""
    return json.dumps(content, indent=2, sort_keys=True) + "\n"


# --- the network ---------------------------------------------------------------------------


def build_network() -> DevNetwork:
    """The devnet every structure vector uses: 6 log entries, 4 active members.

    IT-ANAC is admitted by ``net.admit`` after ``build_devnet`` returns: it draws from
    the same rng stream, right after ES-FCC (docs/PROTOCOL.md §12).
    """
    net = build_devnet(SEED, members=list(MEMBERS))
    net.admit(*FOURTH)  # entry 4; same bytes as passing it to build_devnet
    net.set_status("ES-FCC", Action.SUSPEND, SUSPEND_REASON, SUSPEND_AT)  # entry 5
    net.set_status("ES-FCC", Action.REINSTATE, REINSTATE_REASON, REINSTATE_AT)  # entry 6
    return net


def member(net: DevNetwork, authority: str) -> DevMember:
    return net.members[authority]


@dataclass(frozen=True, slots=True)
class AttachmentInputs:
    """The key, blob id and plaintext of attachment.json (its first three rng outputs)."""

    key: bytes
    blob_id: str
    plaintext: bytes


def attachment_inputs() -> AttachmentInputs:
    rng = rng_for("attachment")
    return AttachmentInputs(rng(32), rng(16).hex(), rng(ATTACHMENT_SIZE))


def message_content() -> MessageContent:
    """The fixed message sealed in the envelope vectors.

    Its one attachment is the blob of attachment.json: same key, blob id, size and
    SHA-256, so the envelope header lists that blob id in ``blobs`` (§7.2, §8.4).
    """
    a = attachment_inputs()
    attachment = Attachment(
        name="releves-bancaires-2025.bin",
        size=len(a.plaintext),
        media_type="application/octet-stream",
        sha256=crypto.sha256(a.plaintext),
        key=a.key,
        blob=a.blob_id,
    )
    return MessageContent(
        kind=Kind.REQUEST,
        subject="Bank records: Société Anonyme Exemple (case FR-PNF/2026/0042)",
        body=(
            "Dear colleagues,\n\n"
            "we ask for the account-opening documents and statements for 2024-2025 of the\n"
            "company named above (IBAN DE89 3704 0044 0532 0130 00).\n\n"
            "Intelligence only: a formal MLA request will follow.\n"
            "— PNF, bureau de l'entraide pénale internationale"
        ),
        language="en",
        urgency=Urgency.PRIORITY,
        handling=Handling(Tlp.AMBER, frozenset({Restriction.INTELLIGENCE_ONLY})),
        case="FR-PNF/2026/0042",
        deadline=GENESIS_TIME + 30 * 86400,
        attachments=(attachment,),
    )


# --- signed objects ------------------------------------------------------------------------


def resign(payload: Json, label: bytes, signers: list[SigningKey]) -> bytes:
    """The container bytes of ``payload`` (encoded canonically) signed by ``signers``."""
    return sign_object(payload, label, signers).encode()


def sign_raw(payload: bytes, label: bytes, signers: list[SigningKey]) -> bytes:
    """The container of exactly ``payload`` (which need not be canonical) signed by ``signers``."""
    obj = SignedObject(payload, ())
    for key in signers:
        obj = obj.with_signature(label, key)
    return obj.encode()


def payload_of(signed: SignedObject) -> Json:
    return dict(signed.payload_json(what="vector"))


def strip(signed: SignedObject, keep: int) -> SignedObject:
    return SignedObject(signed.payload, signed.signatures[:keep])


# --- large inputs --------------------------------------------------------------------------


def padded(field: str, data: bytes) -> Json:
    """``{field: hex}``, or for an input ending in a long run of spaces (a size cap plus one
    byte), ``{field: hex of the rest, "pad_spaces": n}``: the input is the field's bytes
    followed by ``n`` spaces (0x20).  Caps are checked before parsing, so the spaces never
    matter to anything but the size."""
    body = data.rstrip(b" ")
    n = len(data) - len(body)
    if n < 1024:
        return {field: h(data)}
    return {field: h(body), "pad_spaces": n}


def unpad(case: Json, field: str) -> bytes:
    """The bytes of a case's input (see :func:`padded`)."""
    spaces: int = case.get("pad_spaces", 0)
    return bytes.fromhex(case[field]) + b" " * spaces


# --- cases ---------------------------------------------------------------------------------


def mutate(data: bytes, mutation: Json) -> bytes:  # noqa: PLR0911 - one branch per op
    """Apply a recorded mutation (also used by the tests on the committed envelopes)."""
    op = mutation["op"]
    if op == "none":
        return data
    if op == "xor":
        out = bytearray(data)
        out[mutation["offset"]] ^= mutation["mask"]
        return bytes(out)
    if op == "set":
        patch = bytes.fromhex(mutation["bytes"])
        off = mutation["offset"]
        return data[:off] + patch + data[off + len(patch) :]
    if op == "truncate":
        return data[: mutation["length"]]
    if op == "append":
        return data + bytes.fromhex(mutation["bytes"])
    if op == "steps":
        for step in mutation["steps"]:
            data = mutate(data, step)
        return data
    if op == "insert":
        off = mutation["offset"]
        return data[:off] + bytes.fromhex(mutation["bytes"]) + data[off:]
    raise ValueError(f"unknown mutation {op!r}")


@dataclass
class Cases:
    """Collects refusal cases, checking each against the implementation first.

    Every case names the ``rule`` it pins (``§n.m: what``), which the conformance
    matrix of tests/vectors/README.md groups by structure and slug.
    """

    items: list[Json] = field(default_factory=list)

    def add(
        self,
        name: str,
        structure: str,
        error: str,
        check: Callable[[], object],
        *,
        rule: str,
        **inputs: Any,
    ) -> None:
        assert all(c["name"] != name for c in self.items), name
        assert rule.startswith("§"), rule
        expect(error, check)
        self.items.append(
            {"name": name, "structure": structure, "error": error, "rule": rule, **inputs}
        )


@dataclass
class Accepts:
    """Collects inputs that must be accepted (boundaries and deliberate leniencies)."""

    items: list[Json] = field(default_factory=list)

    def add(
        self, name: str, structure: str, check: Callable[[], object], *, rule: str, **inputs: Any
    ) -> None:
        assert all(c["name"] != name for c in self.items), name
        assert rule.startswith("§"), rule
        check()
        self.items.append({"name": name, "structure": structure, "rule": rule, **inputs})


# --- HPKE ciphertexts ----------------------------------------------------------------------


class HpkePool:
    """HPKE ciphertexts already committed in tests/vectors, reused while they stay valid.

    HPKE encapsulation randomness cannot be injected (``cryptography`` draws it), so
    a fresh seal gives new bytes every run.  The generator therefore takes, for each
    ``info``, a committed ciphertext that still opens to the expected plaintext under
    the intended private key, and seals afresh only when none does (a new or changed
    vector).  Everything that covers the ciphertexts (outer signatures, envelope
    bytes and hashes) is deterministic given them, so regenerating reproduces the
    committed files exactly.
    """

    def __init__(self, committed: dict[str, list[bytes]] | None = None) -> None:
        self._by_info = committed or {}

    @classmethod
    def from_files(cls, directory: Path = VECTOR_DIR) -> HpkePool:
        pool: dict[str, list[bytes]] = {}
        for path in sorted(directory.glob("*.json")):
            for info, ct in _ciphertexts(json.loads(path.read_text(encoding="utf-8"))):
                pool.setdefault(info, []).append(bytes.fromhex(ct))
        return cls(pool)

    def seal(self, private: KemPrivateKey, info: bytes, plaintext: bytes) -> bytes:
        """A ciphertext of ``plaintext`` to ``private``'s public key under ``info``."""
        for candidate in self._by_info.get(info.hex(), []):
            try:
                if private.open(candidate, info) == plaintext:
                    return candidate
            except errors.DecryptionFailed:
                continue
        sealed = private.public_key.seal(plaintext, info)
        self._by_info.setdefault(info.hex(), []).append(sealed)
        return sealed


def _ciphertexts(value: object) -> Iterator[tuple[str, str]]:
    """Every (info, ciphertext) pair recorded in a vector file."""
    if isinstance(value, dict):
        if isinstance(value.get("wrap_info"), str) and isinstance(value.get("wrapped_key"), str):
            yield value["wrap_info"], value["wrapped_key"]
        if isinstance(value.get("info"), str) and isinstance(value.get("challenge"), str):
            yield value["info"], value["challenge"]
        for item in value.values():
            yield from _ciphertexts(item)
    elif isinstance(value, list):
        for item in value:
            yield from _ciphertexts(item)


def b64(data: bytes) -> str:
    return canonical.b64e(data)
