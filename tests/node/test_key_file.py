"""The next keys of a key update beside the current ones in ``keys.sealed``, and the daemon's
handle on the file (globe_node/keys.py; PROTOCOL.md §6.8)."""

from __future__ import annotations

from pathlib import Path

import pytest

from globe_node.keys import KeyFile, NextKeys, NodeKeys, file_cost, key_file_lock, save_keys
from protocol.errors import StorageError
from protocol.keystore import INTERACTIVE, KdfCost

PASSPHRASE = b"correct horse battery staple"
CHEAP = KdfCost(1, 8192)


def _keys() -> NodeKeys:
    current = NodeKeys.generate()
    return current.with_next(NextKeys.generate(current, keep=frozenset({"transport"}), created=7))


def test_next_keys_travel_with_the_current_ones() -> None:
    keys = _keys()
    assert keys.next is not None
    assert keys.next.transport is keys.transport
    assert keys.next.identity.seed != keys.identity.seed
    again = NodeKeys.decode(keys.encode())
    assert again.encode() == keys.encode()
    assert again.next is not None
    assert again.next.to_json() == keys.next.to_json()
    promoted = keys.promoted()
    assert (promoted.identity.seed, promoted.storage, promoted.next) == (
        keys.next.identity.seed, keys.storage, None,
    )  # fmt: skip
    assert NodeKeys.decode(promoted.encode()).encode() == promoted.encode()
    with pytest.raises(StorageError):
        promoted.promoted()


def test_the_daemon_rewrites_the_file_only_while_it_holds_what_it_replaces(
    tmp_path: Path,
) -> None:
    path = tmp_path / "keys.sealed"
    keys = _keys()
    save_keys(path, keys, PASSPHRASE, CHEAP)
    handle = KeyFile(path, PASSPHRASE)
    stamp = handle.stamp()
    loaded = handle.load()
    assert loaded is not None
    assert loaded.encode() == keys.encode()
    assert "correct horse" not in repr(handle)
    promoted = keys.promoted()
    # Another command holds the lock: left for later.
    with key_file_lock(path):
        assert handle.rewrite(promoted, replacing=keys) is False
    # The file holds other keys than those the daemon replaces: left alone.
    assert handle.rewrite(promoted, replacing=promoted) is False
    assert handle.rewrite(promoted, replacing=keys) is True
    assert handle.stamp() != stamp
    assert (handle.load() or keys).encode() == promoted.encode()
    assert file_cost(path) == CHEAP  # the costs the file had
    # A passphrase changed since: nothing opens, nothing is written.
    save_keys(path, promoted, b"another passphrase entirely", INTERACTIVE)
    assert handle.load() is None
    assert handle.rewrite(keys, replacing=promoted) is False
