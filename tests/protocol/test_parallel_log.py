"""Verifying the log with signatures checked on a thread pool gives exactly the
results of sequential verification: same state, same first error, same prefix."""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from protocol import canonical
from protocol.devnet import DevNetwork, build_devnet
from protocol.directory import DirectoryState
from protocol.errors import GlobeError
from protocol.membership import Action, make_entry
from protocol.signed import SignedObject

from .conftest import NOW


@pytest.fixture(scope="module")
def log_net() -> DevNetwork:
    net = build_devnet(b"parallel", members=[(f"FR-A{i:03d}", f"Authority {i}") for i in range(12)])
    net.set_status("FR-A003", Action.SUSPEND, "inquiry", NOW)
    net.set_status("FR-A003", Action.REINSTATE, "cleared", NOW)
    return net


def _strip_signatures(net: DevNetwork, entries: list[bytes], index: int) -> list[bytes]:
    """Entry ``index`` re-made with its action's signatures removed (chain kept valid)."""
    obj = canonical.decode(entries[index], max_size=1 << 20, what="entry")
    signed = SignedObject.from_json(obj["action"], what="action")
    out = list(entries)
    out[index] = make_entry(
        genesis=net.genesis,
        seq=index + 1,
        prev=bytes(canonical.b64d(str(obj["prev"]), what="prev")),
        time=int(str(obj["time"])),
        action=SignedObject(signed.payload, signed.signatures[:1]),
    )
    return out


def _flip(entries: list[bytes], index: int, offset: int) -> list[bytes]:
    out = list(entries)
    data = bytearray(out[index])
    data[offset] ^= 0x01
    out[index] = bytes(data)
    return out


CASES: list[tuple[str, Callable[[DevNetwork, list[bytes]], list[bytes]]]] = [
    ("valid", lambda n, e: e),
    ("quorum missing at 5", lambda n, e: _strip_signatures(n, e, 5)),
    ("byte flipped at 7", lambda n, e: _flip(e, 7, 200)),
    ("undecodable at 2", lambda n, e: _flip(e, 2, 0)),
    ("entries swapped", lambda n, e: [*e[:4], e[5], e[4], *e[6:]]),
    ("entry dropped", lambda n, e: [*e[:6], *e[7:]]),
    ("entry repeated", lambda n, e: [*e[:9], e[8], *e[9:]]),
    ("quorum missing at 0 and broken at 1", lambda n, e: _flip(_strip_signatures(n, e, 0), 1, 9)),
]


def _run(net: DevNetwork, entries: list[bytes], executor: Any) -> tuple[Any, int, bytes]:
    state = DirectoryState(net.genesis)
    outcome: Any = "ok"
    try:
        state.extend(entries, executor=executor)
    except GlobeError as exc:
        outcome = (type(exc), exc.detail)
    return outcome, state.seq, state.head


@pytest.mark.parametrize(("name", "mutate"), CASES, ids=[c[0] for c in CASES])
def test_parallel_matches_sequential(log_net, name, mutate):
    entries = mutate(log_net, list(log_net.entries))
    sequential = _run(log_net, entries, None)
    with ThreadPoolExecutor(max_workers=2) as pool:
        parallel = _run(log_net, entries, pool)
    assert parallel == sequential
    if name == "valid":
        assert sequential == ("ok", len(log_net.entries), log_net.directory.head)
    else:
        assert sequential[0] != "ok"
