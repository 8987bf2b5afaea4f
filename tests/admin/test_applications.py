"""``globe-admin show`` and ``approve`` against a real hub: an admin signs the hub's draft
admission only while it certifies exactly the application, now (docs/PROTOCOL.md §6.3)."""

from __future__ import annotations

from globe_io.cli import iso
from protocol.membership import Certificate, MembershipAction
from protocol.signed import SignedObject
from tests.admin.desk import Desk
from tests.admin.runner import assert_refused


async def draft_certificate(desk: Desk, app_id: str) -> Certificate:
    """The certificate of the draft admission the hub prepared for ``app_id``."""
    draft = (await desk.client(desk.admins[0]).admin_application(app_id)).draft
    assert draft is not None
    certificate = MembershipAction.from_signed(SignedObject(draft, ()), desk.genesis).certificate
    assert certificate is not None
    return certificate


async def test_a_draft_is_signed_only_while_it_is_current(desk: Desk) -> None:
    desk.clock.offset = -40 * 86400  # DE-BKA proved its key 40 days ago; still pending
    stale = await desk.apply("DE-BKA")
    desk.clock.offset = 0
    fresh = await desk.apply("FR-PNF")
    old = await draft_certificate(desk, stale.app_id)
    new = await draft_certificate(desk, fresh.app_id)

    shown = (await desk.admin("show", fresh.app_id, "--json")).json()
    assert shown["draft"] == {
        "present": True, "matches": True,
        "detail": "the draft admission certifies exactly this application",
        "serial": new.serial, "not_before": new.not_before, "not_after": new.not_after,
    }  # fmt: skip
    assert (
        f"\ndraft        matches the application (serial {new.serial}, valid "
        f"{iso(new.not_before)} to {iso(new.not_after)})\n"
    ) in (await desk.admin("show", fresh.app_id)).out

    too_old = (
        f"the draft certificate starts {iso(old.not_before)}: not within 30 days before and "
        "one day after now"
    )
    assert (await desk.admin("show", stale.app_id, "--json")).json()["draft"] == {
        "present": True, "matches": False, "detail": too_old,
    }  # fmt: skip
    assert (
        f"\ndraft        DOES NOT MATCH: {too_old}\n"
        in (await desk.admin("show", stale.app_id)).out
    )
    assert_refused(await desk.admin("approve", stale.app_id), too_old)
    assert await desk.proposals() == []

    first = await desk.admin("approve", fresh.app_id)
    assert (first.code, first.out, first.err) == (
        0, "FR-PNF: admit signature 1 of 2; 1 more admin(s) must sign\n", "",
    )  # fmt: skip
    second = (await desk.admin("approve", fresh.app_id, "--json", key=2)).json()
    assert (second["status"], second["seq"], second["signatures"]) == ("appended", 1, 2)
    state = await desk.directory()
    assert [str(a) for a in state.members] == ["FR-PNF"]
    assert state.member(fresh.authority).certificate == new
    listed = (await desk.admin("applications", "--json")).json()["applications"]
    assert sorted((a["authority"], a["status"]) for a in listed) == [
        ("DE-BKA", "pending"), ("FR-PNF", "approved"),
    ]  # fmt: skip
