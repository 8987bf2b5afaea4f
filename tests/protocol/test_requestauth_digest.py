"""Request authentication over a streamed body: sign and verify by the body's SHA-256."""

from __future__ import annotations

import pytest

from protocol import crypto
from protocol.errors import AuthError, UsageError
from protocol.keys import SigningKey
from protocol.requestauth import HUB_AUDIENCE, parse_request_auth, sign_request, verify_request

NET = bytes(range(32))
BODY = b"ciphertext chunk " * 1000
TARGET = "/v1/blobs/" + "a" * 32


def _verify(
    header: str, key: SigningKey, body: bytes = b"", body_digest: bytes | None = None
) -> None:
    verify_request(
        parse_request_auth(header), key=key.verify_key, network=NET, audience=HUB_AUDIENCE,
        method="PUT", target=TARGET, body=body, body_digest=body_digest, now=100,
    )  # fmt: skip


def test_digest_and_body_are_interchangeable():
    key = SigningKey.generate()
    by_body = sign_request(
        key=key, network=NET, audience=HUB_AUDIENCE, method="PUT", target=TARGET,
        body=BODY, created=100,
    )  # fmt: skip
    by_digest = sign_request(
        key=key, network=NET, audience=HUB_AUDIENCE, method="PUT", target=TARGET,
        body=b"", body_digest=crypto.sha256(BODY), created=100,
    )  # fmt: skip
    for header in (by_body, by_digest):
        _verify(header, key, body=BODY)
        _verify(header, key, body_digest=crypto.sha256(BODY))
        with pytest.raises(AuthError):
            _verify(header, key, body_digest=crypto.sha256(BODY + b"x"))


def test_body_and_digest_together_or_a_short_digest_is_misuse():
    key = SigningKey.generate()
    header = sign_request(
        key=key, network=NET, audience=HUB_AUDIENCE, method="PUT", target=TARGET,
        body=BODY, created=100,
    )  # fmt: skip
    with pytest.raises(UsageError):
        _verify(header, key, body=BODY, body_digest=crypto.sha256(BODY))
    with pytest.raises(UsageError):
        _verify(header, key, body_digest=crypto.sha256(BODY)[:31])
    with pytest.raises(UsageError):
        sign_request(
            key=key, network=NET, audience=HUB_AUDIENCE, method="PUT", target=TARGET,
            body=BODY, body_digest=crypto.sha256(BODY), created=100,
        )  # fmt: skip
