"""Values the node stores encrypted are bound to their place: a sealed value opens only
under its key and at the row and column it was sealed for, and a truncated one is
refused by name."""

from __future__ import annotations

import pytest

from globe_node.storage import StorageCipher
from protocol.errors import DecryptionFailed


def test_storage_cipher_binds_values_to_their_place() -> None:
    cipher = StorageCipher(b"\x07" * 32)
    sealed = cipher.seal(b"case material", "content:m1")
    assert len(sealed) == 12 + len(b"case material") + 16
    assert cipher.open(sealed, "content:m1") == b"case material"
    with pytest.raises(DecryptionFailed):
        cipher.open(sealed, "content:m2")  # moved to another row
    with pytest.raises(DecryptionFailed):
        StorageCipher(b"\x08" * 32).open(sealed, "content:m1")
    with pytest.raises(DecryptionFailed) as err:
        cipher.open(sealed[:27], "content:m1")
    assert err.value.detail == "stored content:m1 is truncated"
    with pytest.raises(ValueError, match=r"\Aa storage key is 32 bytes\Z"):
        StorageCipher(b"\x07" * 31)
