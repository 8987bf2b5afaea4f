"""The error hierarchy (protocol/errors.py; docs/PROTOCOL.md §11).

One problem ``type`` URI per error class: a class that names a slug registers
it, a second class claiming the same slug is refused at definition time, and
:func:`error_class` maps a problem's slug back to its class.
"""

from __future__ import annotations

import pytest

from protocol import errors
from protocol.errors import (
    PROBLEM_BASE,
    DecryptionFailed,
    GlobeError,
    MalformedError,
    ProtocolError,
    RollbackDetected,
    UsageError,
    error_class,
)


@pytest.mark.parametrize(
    ("cls", "slug"),
    [
        (GlobeError, "error"),
        (UsageError, "usage"),
        (ProtocolError, "protocol"),
        (MalformedError, "malformed"),
        (DecryptionFailed, "decryption-failed"),
        (RollbackDetected, "rollback"),
    ],
)
def test_error_class_maps_each_slug_back_to_its_class(cls: type[GlobeError], slug: str) -> None:
    assert cls.slug == slug
    assert error_class(slug) is cls
    assert cls.type_uri() == PROBLEM_BASE + slug


def test_an_unknown_slug_names_no_class() -> None:
    assert error_class("no-such-problem") is None


def test_a_subclass_without_its_own_slug_registers_nothing() -> None:
    class LocalDetail(MalformedError):
        """A refinement that keeps its parent's problem type."""

    assert LocalDetail.slug == "malformed"
    assert error_class("malformed") is MalformedError
    assert LocalDetail("bad").to_problem()["type"] == PROBLEM_BASE + "malformed"


def test_a_second_class_claiming_a_slug_is_refused() -> None:
    with pytest.raises(TypeError) as info:

        class Impostor(ProtocolError):
            slug = "malformed"

    assert str(info.value) == (
        "problem slug 'malformed' of tests.protocol.test_errors."
        "test_a_second_class_claiming_a_slug_is_refused.<locals>.Impostor is already used by "
        "protocol.errors.MalformedError"
    )
    assert error_class("malformed") is MalformedError


def test_the_same_class_defined_again_takes_over_its_slug(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A module imported twice defines its classes twice: not a clash."""
    monkeypatch.setitem(errors._REGISTRY, "malformed", MalformedError)  # restored afterwards
    again = type(
        "MalformedError",
        (errors.DecodeError,),
        {"slug": "malformed", "__module__": "protocol.errors", "__qualname__": "MalformedError"},
    )
    assert again is not MalformedError
    assert error_class("malformed") is again


def test_problem_without_evidence() -> None:
    exc = DecryptionFailed("the tag does not verify")
    assert str(exc) == "the tag does not verify"
    assert exc.to_problem() == {
        "type": PROBLEM_BASE + "decryption-failed",
        "title": DecryptionFailed.title,
        "status": DecryptionFailed.status,
        "detail": "the tag does not verify",
    }


def test_problem_detail_defaults_to_the_title() -> None:
    exc = MalformedError()
    assert exc.detail == "Malformed field"
    assert str(exc) == "Malformed field"
    assert exc.to_problem()["detail"] == "Malformed field"


def test_problem_with_evidence_carries_it_base64url_unpadded() -> None:
    exc = ProtocolError("refused")
    exc.evidence = b"\xfb\xff\x00"
    problem = exc.to_problem()
    assert problem == {
        "type": PROBLEM_BASE + "protocol",
        "title": "Protocol violation",
        "status": 400,
        "detail": "refused",
        "evidence": "-_8A",
    }
