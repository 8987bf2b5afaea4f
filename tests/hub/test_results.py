"""The hub API's typed results (globe_io.hubapi): one declaration per answer gives the JSON
the hub writes, the strict reader its client uses and the schema the document states."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import orjson
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from openapi_schema_validator import OAS31Validator

from globe_io import hubapi
from globe_io.hubapi import (
    AckRefusal,
    AckResult,
    ActionResult,
    ApplicationCreated,
    ApplicationDetail,
    ApplicationList,
    ApplicationState,
    ApplicationStatus,
    ApplicationSummary,
    AuditRecord,
    AuditRecords,
    BlobStored,
    ContactPoint,
    Health,
    KeyUpdateCreated,
    KeyUpdateDetail,
    KeyUpdateList,
    KeyUpdateState,
    KeyUpdateStatus,
    KeyUpdateSummary,
    LogPage,
    MailboxItem,
    MailboxPage,
    MatchReason,
    MemberProfile,
    MemberSummary,
    Prekeys,
    PrekeyStored,
    ProfilePublished,
    Proposal,
    ProposalList,
    Readiness,
    SearchResults,
    Submission,
    Submissions,
)
from globe_io.hubclient import HubClient
from globe_io.wire import WireResult, one_of, wire_fields
from hub.apidoc.results import COMPONENTS, result_schema
from hub.openapi import openapi_document
from protocol import canonical
from protocol.errors import PROBLEM_BASE, MalformedError, NonCanonical, UnknownField
from protocol.ids import KeyId
from protocol.keys import SigningKey
from protocol.signed import Signature, SignedObject

APP_ID = "0123456789abcdef" * 2
PROPOSAL_ID = "89abcdef01234567" * 4
KID = KeyId.parse("ed25519:" + "ab" * 16)
FINGERPRINT = " ".join(["01234"] * 12)
SIGNED = SignedObject(b'{"type":"action","v":1}', (Signature(KID, bytes(range(64))),))
SUMMARY = ApplicationSummary(
    id=APP_ID, authority="FR-PNF", name="Parquet national financier", country="FR",
    kinds=("anti-corruption",), languages=("en", "fr"), status="pending", reason=None,
    created=1_700_000_000, fingerprint=FINGERPRINT,
)  # fmt: skip
DETAIL = ApplicationDetail.of(SUMMARY, application=b'{"payload":""}', contact="duty officer",
                              draft=b'{"type":"action"}')  # fmt: skip
KEY_UPDATE = KeyUpdateSummary(
    id=APP_ID, authority="FR-PNF", replaced=("identity", "key-agreement"), status="pending",
    reason=None, created=1_700_000_000, fingerprint=FINGERPRINT,
)  # fmt: skip
KEY_UPDATE_DETAIL = KeyUpdateDetail.of(KEY_UPDATE, request=b'{"payload":""}', draft=None)
MEMBER = MemberSummary(
    authority="FR-PNF", name="Parquet national financier", country="FR",
    kinds=("anti-corruption", "fiu"), languages=("fr",), status="active",
    identity_key=str(KID), fingerprint=FINGERPRINT, not_after=1_800_000_000,
)  # fmt: skip
CONTACT = ContactPoint(role="duty-desk", label="Permanence", hours="24/7", languages=("en", "fr"),
                       email="permanence@pnf.example", phone="+33140000000")  # fmt: skip
PROFILE = MemberProfile(
    seq=2, published=1_700_000_003, offences=("bribery",), time_zone="Europe/Paris",
    contacts=(CONTACT,), note="Ask the desk.",
)  # fmt: skip
REASON = MatchReason(field="country", value="Francia", match="exact", language="es")
PROFILED = MemberSummary(
    authority="FR-PNF", name="Parquet national financier", country="FR",
    kinds=("anti-corruption",), languages=("fr",), status="active", identity_key=str(KID),
    fingerprint=FINGERPRINT, not_after=1_800_000_000, profile=PROFILE, reasons=(REASON,),
)  # fmt: skip
OPEN = ActionResult(proposal=PROPOSAL_ID, action="admit", authority="FR-PNF", signatures=1,
                    threshold=2, status="open")  # fmt: skip
APPENDED = ActionResult(proposal=PROPOSAL_ID, action="suspend", authority="FR-PNF", signatures=2,
                        threshold=2, status="appended", seq=7)  # fmt: skip
PROPOSAL = Proposal(proposal=PROPOSAL_ID, authority="FR-PNF", action="admit", status="open",
                    seq=None, signed=SIGNED, created=1_700_000_001)  # fmt: skip
RECORD = AuditRecord(
    id=1, time=1_700_000_002, actor="alice", action="sign-action", subject="FR-PNF",
    detail={"proposal": PROPOSAL_ID, "signatures": 1},
)  # fmt: skip
ITEM = MailboxItem(3, "envelope", b"GLBE envelope bytes")

#: One value of every result, with the component that documents it.
SAMPLES: list[tuple[WireResult, str]] = [
    (Health(), "Health"),
    (Readiness(seq=4), "Readiness"),
    (ApplicationCreated(id=APP_ID, authority="FR-PNF", challenge=bytes(1168)),
     "ApplicationCreated"),
    (ApplicationStatus(id=APP_ID, authority="FR-PNF", status="rejected", reason="no basis"),
     "ApplicationStatus"),
    (ApplicationState(id=APP_ID, authority="FR-PNF", status="pending"), "ApplicationState"),
    (SUMMARY, "AdminApplicationSummary"),
    (DETAIL, "AdminApplication"),
    (ApplicationList(applications=(SUMMARY,)), "AdminApplicationList"),
    (KeyUpdateCreated(id=APP_ID, authority="FR-PNF", replaced=("key-agreement",),
                      fingerprint=FINGERPRINT, challenge=bytes(1168)), "KeyUpdateCreated"),
    (KeyUpdateStatus(id=APP_ID, authority="FR-PNF", status="approved", reason=None),
     "KeyUpdateStatus"),
    (KeyUpdateState(id=APP_ID, authority="FR-PNF", status="rejected"), "KeyUpdateState"),
    (KEY_UPDATE, "AdminKeyUpdateSummary"),
    (KEY_UPDATE_DETAIL, "AdminKeyUpdate"),
    (KeyUpdateList(key_updates=(KEY_UPDATE,)), "AdminKeyUpdateList"),
    (OPEN, "ActionResult"),
    (APPENDED, "ActionResult"),
    (PROPOSAL, "Proposal"),
    (ProposalList(proposals=(PROPOSAL,)), "ProposalList"),
    (RECORD, "AuditRecord"),
    (AuditRecords(records=(RECORD,)), "AuditRecords"),
    (LogPage(entries=(b'{"seq":1}', b'{"seq":2}'), next=2), "LogPage"),
    (MEMBER, "MemberSummary"),
    (SearchResults(results=(MEMBER,)), "SearchResults"),
    (CONTACT, "ContactPoint"),
    (PROFILE, "MemberProfile"),
    (REASON, "MatchReason"),
    (SearchResults(results=(PROFILED,)), "SearchResults"),
    (ProfilePublished(authority="FR-PNF", seq=2, entry=9, time=1_700_000_003), "ProfilePublished"),
    (PrekeyStored(authority="FR-PNF", key_id=str(KID), not_after=1_800_000_000), "PrekeyPut"),
    (Prekeys(authority="FR-PNF", prekeys=(b'{"prekey":1}',)), "Prekeys"),
    (ITEM, "MailboxItem"),
    (MailboxPage(items=(ITEM,), cursor=3), "MailboxPage"),
    (AckResult(released=("ab" * 16,), refused=(AckRefusal(type=PROBLEM_BASE + "not-found",
                                                           detail="gone"),), notices=2),
     "AckResult"),
    (BlobStored(id=APP_ID, size=10, sha256=bytes(32)), "BlobStored"),
    (Submission(status=201, evidence=b'{"evidence":1}'), "Submission"),
    (Submission(status=409, evidence=b'{"evidence":2}', type=PROBLEM_BASE + "conflict",
                detail="taken"), "Submission"),
    (Submissions(results=(
        Submission(status=200, evidence=b'{"evidence":3}'),
        Submission(status=429, type=PROBLEM_BASE + "rate-limited", detail="slow", retry_after=2),
    )), "Submissions"),
]  # fmt: skip


def _ids(case: tuple[WireResult, str]) -> str:
    return type(case[0]).__name__


@pytest.mark.parametrize(("result", "component"), SAMPLES, ids=[_ids(c) for c in SAMPLES])
def test_each_result_reads_back_exactly_from_its_json(result: WireResult, component: str):
    wire = orjson.loads(orjson.dumps(result.to_json()))
    assert type(result).from_json(wire, what="answer") == result


@pytest.mark.parametrize(("result", "component"), SAMPLES, ids=[_ids(c) for c in SAMPLES])
def test_each_result_is_what_the_document_states(result: WireResult, component: str):
    doc = openapi_document()
    schema = {"$ref": f"#/components/schemas/{component}", "components": doc["components"]}
    OAS31Validator(schema).validate(orjson.loads(orjson.dumps(result.to_json())))
    documented = doc["components"]["schemas"][component]
    assert list(documented["properties"]) == [f.name for f in wire_fields(type(result))]


def test_every_result_class_is_documented_and_sampled():
    classes = {
        value
        for name in hubapi.__all__
        if isinstance(value := getattr(hubapi, name), type) and issubclass(value, WireResult)
    }
    sampled = {type(result) for result, _ in SAMPLES}
    assert classes - sampled == {AckRefusal}  # inline in AckResult, not a component
    assert {c for c in COMPONENTS if issubclass(c, WireResult)} == sampled


@pytest.mark.parametrize(
    ("result", "wire"),
    [
        (OPEN, {"proposal": PROPOSAL_ID, "action": "admit", "authority": "FR-PNF",
                "signatures": 1, "threshold": 2, "status": "open"}),
        (APPENDED, {"proposal": PROPOSAL_ID, "action": "suspend", "authority": "FR-PNF",
                    "signatures": 2, "threshold": 2, "status": "appended", "seq": 7}),
        (PROPOSAL, {"proposal": PROPOSAL_ID, "authority": "FR-PNF", "action": "admit",
                    "status": "open", "seq": None, "signed": SIGNED.to_json(),
                    "created": 1_700_000_001}),
        (MEMBER, {"authority": "FR-PNF", "name": "Parquet national financier", "country": "FR",
                  "kinds": ["anti-corruption", "fiu"], "languages": ["fr"], "status": "active",
                  "identity_key": str(KID), "fingerprint": FINGERPRINT,
                  "not_after": 1_800_000_000}),
        (ApplicationStatus(id=APP_ID, authority="FR-PNF", status="pending", reason=None),
         {"id": APP_ID, "authority": "FR-PNF", "status": "pending", "reason": None}),
        (LogPage(entries=(b"\xff\xfe",), next=None), {"entries": ["__4"], "next": None}),
        (ITEM, {"cursor": 3, "kind": "envelope", "data": canonical.b64e(b"GLBE envelope bytes")}),
        (Health(), {"status": "ok"}),
    ],
    ids=["open-omits-seq", "appended", "proposal-seq-null", "member-omits-optional",
         "status-reason-null", "bytes-as-base64url", "mailbox-item", "health"],
)  # fmt: skip
def test_the_json_written(result: WireResult, wire: dict[str, Any]):
    written = result.to_json()
    assert written == wire
    assert list(written) == list(wire)  # the keys in the order the hub always wrote them


def _with(result: WireResult, **changes: Any) -> dict[str, Any]:
    return {**result.to_json(), **changes}


def _without(result: WireResult, key: str) -> dict[str, Any]:
    return {k: v for k, v in result.to_json().items() if k != key}


@pytest.mark.parametrize(
    ("cls", "value", "error", "detail"),
    [
        (ActionResult, [], MalformedError, "answer: must be an object"),
        (ActionResult, _without(OPEN, "threshold"), MalformedError,
         "answer: missing field 'threshold'"),
        (ActionResult, _with(OPEN, extra=1), UnknownField, "answer: unknown field(s) ['extra']"),
        (ActionResult, _with(OPEN, seq=None), MalformedError,
         "answer.seq: must be absent rather than null"),
        (ActionResult, _with(OPEN, signatures=True), MalformedError,
         "answer.signatures: must be an integer"),
        (ActionResult, _with(OPEN, signatures=1.0), MalformedError,
         "answer.signatures: must be an integer"),
        (ActionResult, _with(OPEN, status="superseded"), MalformedError,
         "answer.status: must be one of open, appended"),
        (ApplicationStatus, _with(SUMMARY, status="pending") | {"reason": 3}, UnknownField,
         "answer: unknown field(s) ['country', 'created', 'fingerprint', 'kinds', 'languages', "
         "'name']"),
        (ApplicationStatus, {"id": APP_ID, "authority": "FR-PNF", "status": "pending",
                             "reason": 3}, MalformedError, "answer.reason: must be a string"),
        (ApplicationDetail, _with(DETAIL, draft="AB=="), MalformedError,
         "answer.draft: not unpadded base64url"),
        (ApplicationDetail, _with(DETAIL, draft="AB"), NonCanonical,
         "answer.draft: base64url has stray bits"),
        (ApplicationList, {"applications": [SUMMARY.to_json(), 1]}, MalformedError,
         "answer.applications[1]: must be an object"),
        (SearchResults, {"results": [_with(MEMBER, kinds=["fiu", 7])]}, MalformedError,
         "answer.results[0].kinds[1]: must be a string"),
        (SearchResults, {"results": {}}, MalformedError, "answer.results: must be an array"),
        (ProposalList, {"proposals": [_with(PROPOSAL, signed={"payload": "", "sigs": 1})]},
         MalformedError, "answer.proposals[0].signed.sigs: must be an array"),
        (AuditRecords, {"records": [_with(RECORD, detail=[])]}, MalformedError,
         "answer.records[0].detail: must be an object"),
        (Health, {"status": "down"}, MalformedError, "answer.status: must be one of ok"),
    ],
)  # fmt: skip
def test_a_reader_refuses_any_other_shape(
    cls: type[WireResult], value: Any, error: type[Exception], detail: str
):
    with pytest.raises(error) as refused:
        cls.from_json(value, what="answer")
    assert type(refused.value) is error
    assert str(refused.value) == detail


@dataclass(frozen=True, slots=True)
class _Floaty(WireResult):
    ratio: float


@dataclass(frozen=True, slots=True)
class _Chosen(WireResult):
    count: int = one_of(("1", "2"))


@dataclass(frozen=True, slots=True)
class _Loose(WireResult):
    anything: str


def test_a_result_must_declare_types_the_wire_can_carry():
    with pytest.raises(TypeError, match="no JSON form for <class 'float'>"):
        _Floaty(0.5).to_json()
    with pytest.raises(TypeError, match="one_of\\(\\) marks a str field"):
        _Chosen(1).to_json()
    with pytest.raises(TypeError, match="is not a dataclass"):
        wire_fields(int)


def test_the_document_cannot_drift_from_the_classes():
    with pytest.raises(TypeError, match=r"Health writes no \['seq'\]"):
        result_schema(Health, "Liveness.", {"seq": {"type": "integer"}})
    with pytest.raises(TypeError, match="declare the schema of 'anything'"):
        result_schema(_Loose, "Loose.", {})


# --- the client reads admin answers strictly ---------------------------------------------------


@pytest.fixture
async def odd_hub() -> AsyncIterator[tuple[str, dict[str, Any]]]:
    """A stand-in hub answering whatever JSON the test puts under each path."""
    answers: dict[str, Any] = {}

    async def handler(request: web.Request) -> web.Response:
        return web.json_response(answers[request.path])

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", handler)
    async with TestServer(app) as server:
        yield str(server.make_url("")).rstrip("/"), answers


@pytest.mark.parametrize(
    ("path", "answer", "call", "refusal"),
    [
        ("/v1/admin/applications", {"applications": [_with(SUMMARY, status="lost")]},
         lambda hub: hub.admin_applications(),
         (MalformedError, "hub response applications.applications[0].status: must be one of "
                          "awaiting-pop, pending, approved, rejected")),
        ("/v1/admin/applications/" + APP_ID, _without(DETAIL, "draft"),
         lambda hub: hub.admin_application(APP_ID),
         (MalformedError, "hub response application: missing field 'draft'")),
        ("/v1/admin/actions", _with(OPEN, seq=None),
         lambda hub: hub.admin_submit_action(b"{}"),
         (MalformedError, "hub response action.seq: must be absent rather than null")),
        ("/v1/admin/applications/" + APP_ID + "/reject",
         {"id": APP_ID, "authority": "FR-PNF", "status": "rejected", "reason": "no"},
         lambda hub: hub.admin_reject(APP_ID, "no"),
         (UnknownField, "hub response rejection: unknown field(s) ['reason']")),
        ("/v1/admin/proposals", {"proposals": [_with(PROPOSAL, seq="7")]},
         lambda hub: hub.admin_proposals(),
         (MalformedError, "hub response proposals.proposals[0].seq: must be an integer")),
        ("/v1/admin/audit", {"records": [RECORD.to_json()], "next": 2},
         lambda hub: hub.admin_audit(),
         (UnknownField, "hub response audit: unknown field(s) ['next']")),
        ("/readyz", {"status": "ready"}, lambda hub: hub.readyz(),
         (MalformedError, "hub response readiness: missing field 'seq'")),
    ],
    ids=["applications", "application", "action", "reject", "proposals", "audit", "readyz"],
)  # fmt: skip
async def test_the_client_refuses_an_answer_of_another_shape(
    odd_hub: tuple[str, dict[str, Any]], path: str, answer: Any, call: Any,
    refusal: tuple[type[Exception], str],
):  # fmt: skip
    error, detail = refusal
    base, answers = odd_hub
    answers[path] = answer
    async with HubClient(base, network=bytes(32), key=SigningKey.generate()) as hub:
        with pytest.raises(error) as refused:
            await call(hub)
    assert type(refused.value) is error
    assert str(refused.value) == detail


async def test_the_client_reads_the_typed_answers(odd_hub: tuple[str, dict[str, Any]]):
    base, answers = odd_hub
    answers.update({
        "/v1/admin/applications": {"applications": [SUMMARY.to_json()]},
        "/v1/admin/applications/" + APP_ID: DETAIL.to_json(),
        "/v1/admin/actions": APPENDED.to_json(),
        "/v1/admin/proposals": {"proposals": [PROPOSAL.to_json()]},
        "/v1/admin/audit": {"records": [RECORD.to_json()]},
        "/v1/directory/search": {"results": [MEMBER.to_json()]},
    })  # fmt: skip
    async with HubClient(base, network=bytes(32), key=SigningKey.generate()) as hub:
        assert await hub.admin_applications() == ApplicationList(applications=(SUMMARY,))
        assert await hub.admin_application(APP_ID) == DETAIL
        assert await hub.admin_submit_action(b"{}") == APPENDED
        assert await hub.admin_proposals("open") == ProposalList(proposals=(PROPOSAL,))
        assert await hub.admin_audit() == AuditRecords(records=(RECORD,))
        assert await hub.search() == SearchResults(results=(MEMBER,))
