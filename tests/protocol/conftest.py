"""Shared fixtures for protocol tests: deterministic development networks."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from protocol.devnet import GENESIS_TIME, DevNetwork, build_devnet

MEMBERS = [
    ("FR-PNF", "Parquet national financier"),
    ("DE-BKA", "Bundeskriminalamt"),
    ("ES-FCC", "Fiscalia contra la Corrupcion"),
    ("IT-ANAC", "Autorita Nazionale Anticorruzione"),
]

#: A time at which every devnet certificate and prekey is valid.
NOW = GENESIS_TIME + 7200


@pytest.fixture(scope="session")
def net() -> DevNetwork:
    """A shared, read-only network of four members (threshold 2 of 3). Do not mutate."""
    return build_devnet(b"tests", members=MEMBERS)


@pytest.fixture
def fresh_net() -> Callable[..., DevNetwork]:
    """Factory for a private network a test may mutate."""

    def make(seed: bytes = b"fresh", **kwargs: object) -> DevNetwork:
        return build_devnet(seed, members=MEMBERS, **kwargs)  # type: ignore[arg-type]

    return make


@pytest.fixture
def now() -> int:
    """A valid 'now' for the devnet."""
    return NOW
