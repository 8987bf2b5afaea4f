"""What the admin tool says about the hub's answer to a signature (globe_admin.session.outcome)."""

from __future__ import annotations

import pytest

from globe_admin.session import outcome
from globe_io.errors import CommandError
from globe_io.hubapi import ActionResult
from protocol.ids import AuthorityId
from protocol.membership import Action

FR = AuthorityId.parse("FR-PNF")


def _result(status: str, signatures: int, seq: int | None = None) -> ActionResult:
    return ActionResult(proposal="ab" * 32, action="suspend", authority="FR-PNF",
                        signatures=signatures, threshold=3, status=status, seq=seq)  # fmt: skip


@pytest.mark.parametrize(
    ("result", "action", "lines"),
    [
        (_result("open", 1), Action.SUSPEND,
         ["FR-PNF: suspend signature 1 of 3; 2 more admin(s) must sign"]),
        (_result("appended", 3, seq=12), Action.SUSPEND, ["FR-PNF suspended at log entry 12"]),
        (_result("appended", 3, seq=1), Action.ADMIT, ["FR-PNF admitted at log entry 1"]),
    ],
)  # fmt: skip
def test_the_outcome_of_a_signature(result: ActionResult, action: Action, lines: list[str]):
    assert outcome(result, action, FR) == lines


def test_an_append_without_its_log_position_is_refused():
    with pytest.raises(CommandError, match=r"^the hub's answer has no valid 'seq'$"):
        outcome(_result("appended", 3), Action.REVOKE, FR)
