"""What every unit of the node shares: configuration, keys, storage and injected time.

The clock, the monotonic clock and the random source are passed in (never read
from the standard library inside a unit), so tests pin them and a unit's
decisions are reproducible.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from globe_node.config import NodeConfig
from globe_node.keys import NodeKeys
from globe_node.storage import StorageCipher
from globe_node.store import Store
from protocol.genesis import Genesis
from protocol.ids import AuthorityId

__all__ = ["NodeContext"]


@dataclass(slots=True)
class NodeContext:
    """One node's shared state and injected sources of time and randomness."""

    config: NodeConfig
    keys: NodeKeys
    genesis: Genesis
    store: Store
    clock: Callable[[], float] = time.time
    monotonic: Callable[[], float] = time.monotonic
    rng: random.Random = field(default_factory=random.SystemRandom)
    me: AuthorityId = field(init=False)
    cipher: StorageCipher = field(init=False)

    def __post_init__(self) -> None:
        self.me = AuthorityId.parse(self.config.authority)
        self.cipher = StorageCipher(self.keys.storage)

    def now(self) -> int:
        """The current time in whole seconds."""
        return int(self.clock())

    def jitter(self) -> float:
        """A factor in [0.5, 1] that spreads retries out (not a secret)."""
        return self.rng.uniform(0.5, 1.0)

    def blob_path(self, sender: AuthorityId | str, blob: str) -> Path:
        """Where the (still blob-encrypted) file of ``sender``'s blob is kept.

        Blob ids are chosen by senders, so the sender is part of the name: an
        envelope naming another sender's blob id can never reach that file.
        """
        return self.config.blob_dir / f"{sender}.{blob}"
