"""A small structure-aware mutator, deterministic for a given ``random.Random``.

Byte-level mutations alone rarely survive strict canonical decoding, so half of
the mutations work on the JSON inside the input: they decode it, change one value
(a number to a boundary, a string to hidden or non-ASCII text, a key dropped,
added or renamed, a list item repeated), and encode it again canonically.  A
signed-object container's ``payload`` (base64url of canonical JSON) is opened,
mutated and closed the same way, so mutations reach the fields behind it.

Used by the smoke test of the suite (``tests/protocol/test_fuzz_smoke.py``), by
``python -m fuzz.run --engine mutate``, and as the custom mutator of the atheris
runs, alternating with libFuzzer's own.
"""

from __future__ import annotations

import base64
import binascii
import random
from collections.abc import Sequence
from typing import Any, Final

import orjson

__all__ = ["Mutator"]

_INTERESTING_BYTES: Final = b'\x00\x01\x7f\x80\xff"\\{}[],:0-9aAz \n\t'
_NUMBERS: Final = (0, 1, 2, 255, 256, 65_535, 2**31 - 1, 2**32, 2**53 - 1, 2**53, 2**63, -1)
_STRINGS: Final = (
    "",
    "a",
    "FR-PNF",
    "\u202e",  # right-to-left override
    "\u200b",  # zero-width space
    "line\nbreak",
    "tab\t",
    "\x00",
    "é",
    "😀",
    "A" * 300,
    "ed25519:" + "0" * 32,
    "0" * 32,
    "AAAA",
    "https://example.invalid/x",
)
_KEYS: Final = ("type", "v", "id", "extra", "a", "zz", "network", "seq", "time", "reason")


class Mutator:
    """Mutates inputs, splicing from ``seeds``; the same ``rng`` state gives the same output."""

    def __init__(self, seeds: Sequence[bytes], rng: random.Random) -> None:
        self.seeds = [s for s in seeds if s] or [b"{}"]
        self.rng = rng

    def mutate(self, data: bytes, max_size: int = 1 << 20) -> bytes:
        """One to four mutations of ``data``, at most ``max_size`` bytes long."""
        out = data
        for _ in range(self.rng.randint(1, 4)):
            out = (self._json(out) if self.rng.random() < 0.5 else None) or self._bytes(out)
        return out[:max_size]

    # -- bytes ------------------------------------------------------------------------------

    def _bytes(self, data: bytes) -> bytes:  # noqa: PLR0911 - one branch per mutation
        rng = self.rng
        buf = bytearray(data)
        choice = rng.randrange(8)
        pos = rng.randrange(len(buf) + 1)
        if choice == 0 and buf:  # flip a bit
            i = min(pos, len(buf) - 1)
            buf[i] ^= 1 << rng.randrange(8)
            return bytes(buf)
        if choice == 1 and buf:  # an interesting byte
            buf[min(pos, len(buf) - 1)] = rng.choice(_INTERESTING_BYTES)
            return bytes(buf)
        if choice == 2:  # insert bytes
            return bytes(buf[:pos]) + bytes(rng.choices(_INTERESTING_BYTES, k=rng.randint(1, 4)))
        if choice == 3 and buf:  # delete a range
            end = min(len(buf), pos + rng.randint(1, 16))
            return bytes(buf[:pos] + buf[end:])
        if choice == 4 and buf:  # repeat a range
            end = min(len(buf), pos + rng.randint(1, 64))
            return bytes(buf[:end] + buf[pos:end] + buf[end:])
        if choice == 5:  # truncate
            return bytes(buf[:pos])
        if choice == 6:  # splice with another seed
            other = rng.choice(self.seeds)
            cut = rng.randrange(len(other) + 1)
            return bytes(buf[:pos]) + other[cut:]
        # overwrite a 1-, 2-, 4- or 8-byte field with a boundary value (binary framing)
        width = rng.choice((1, 2, 4, 8))
        value = rng.choice((0, 1, 2 ** (8 * width) - 1, 2 ** (8 * width - 1), rng.randrange(256)))
        field = value.to_bytes(width, "big")
        return bytes(buf[:pos]) + field + bytes(buf[pos + width :])

    # -- JSON ---------------------------------------------------------------------------------

    def _json(self, data: bytes) -> bytes | None:
        try:
            value = orjson.loads(data)
        except orjson.JSONDecodeError:
            return None
        if not isinstance(value, dict | list):
            return None
        if (
            isinstance(value, dict)
            and isinstance(value.get("payload"), str)
            and self.rng.random() < 0.7
        ):
            inner = _b64d(value["payload"])
            mutated = self._json(inner) if inner is not None else None
            if mutated is not None:
                value["payload"] = base64.urlsafe_b64encode(mutated).rstrip(b"=").decode("ascii")
                return orjson.dumps(value, option=orjson.OPT_SORT_KEYS)
        self._value(value, depth=0)
        return orjson.dumps(value, option=orjson.OPT_SORT_KEYS)

    def _value(self, node: dict[str, Any] | list[Any], depth: int) -> None:
        rng = self.rng
        keys: list[Any] = list(node) if isinstance(node, dict) else list(range(len(node)))
        if not keys or (depth < 6 and rng.random() < 0.15):
            self._structure(node)
            return
        key = rng.choice(keys)
        child = node[key]
        if isinstance(child, dict | list) and child and rng.random() < 0.8:
            self._value(child, depth + 1)
            return
        node[key] = self._leaf(child)

    def _structure(self, node: dict[str, Any] | list[Any]) -> None:
        rng = self.rng
        if isinstance(node, list):
            if node and rng.random() < 0.5:
                node.insert(rng.randrange(len(node) + 1), rng.choice(node))
            elif node:
                del node[rng.randrange(len(node))]
            else:
                node.append(self._leaf(None))
            return
        if node and rng.random() < 0.5:
            del node[rng.choice(list(node))]
        else:
            node[rng.choice(_KEYS)] = self._leaf(None)

    def _leaf(self, old: object) -> object:
        rng = self.rng
        roll = rng.random()
        if isinstance(old, bool) or roll < 0.05:
            return rng.choice((True, False, None, [], {}))
        if isinstance(old, int) and roll < 0.7:
            return rng.choice((old + 1, old - 1, *_NUMBERS))
        if isinstance(old, str) and roll < 0.8:
            return self._string(old)
        if roll < 0.9:
            return rng.choice(_NUMBERS)
        return rng.choice(_STRINGS)

    def _string(self, old: str) -> str:
        rng = self.rng
        if old and rng.random() < 0.6:
            raw = _b64d(old)
            if raw is not None and len(old) > 8:  # base64url bytes: change a byte, re-encode
                buf = bytearray(raw)
                if buf:
                    buf[rng.randrange(len(buf))] ^= 1 << rng.randrange(8)
                return base64.urlsafe_b64encode(bytes(buf)).rstrip(b"=").decode("ascii")
            i = rng.randrange(len(old))
            return old[:i] + rng.choice(_STRINGS)[:4] + old[i + 1 :]
        return rng.choice(_STRINGS)


def _b64d(text: str) -> bytes | None:
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError):
        return None
