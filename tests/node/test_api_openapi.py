"""The local API's OpenAPI document: generated from ``ROUTES``, valid, complete and true.

* It is valid OpenAPI 3.1, deterministic, and served (``GET /api/openapi.json``) as
  generated; its operations are exactly :data:`globe_node.api.ROUTES` and the routes
  the app registers, each with its permission, parameters, body and refusals.
* Every result schema agrees with the code that builds it: ``to_json`` of generated
  views validates, and so does every answer of a live node in a scenario that walks
  every route (a status, content type or body the document does not describe fails).
* Every pattern is the code's own rule, code point by code point where a class of
  characters decides, and the limits named for the message content are the
  protocol decoder's.
* Every declared limit is the one a live node enforces: at the limit the field's
  refusal is never given, one past it always is, word for word.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import re
import time
import typing
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

import aiohttp
import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from openapi_schema_validator import OAS31Validator
from openapi_spec_validator import validate as validate_spec

from globe_io.hubclient import request_payload
from globe_node import apimodels, apiprofile, apiresults
from globe_node.alerts import AlertView
from globe_node.api import ROUTES, create_api_app
from globe_node.apidoc import doc_path, openapi_document, problem_types, refusals
from globe_node.apiparams import (
    ApiRoute,
    Choice,
    ChoiceSet,
    Integer,
    JsonBody,
    QInt,
    QOptInt,
    QRequired,
    QText,
    Shape,
    Text,
)
from globe_node.apischema import nullable, view_schema
from globe_node.backup import BackupRecord, BackupsView
from globe_node.errors import Forbidden, Unauthenticated
from globe_node.peerheads import Behind
from globe_node.roles import GRANTS, Permission, Role
from globe_node.stats import CSV_COLUMNS
from globe_node.uploads import MAX_ATTACHMENT, UploadInfo, parse_upload_id
from globe_node.users import USER_NAME
from globe_node.views import (
    DeliveryView,
    InboxItem,
    InMeta,
    KeysView,
    KeyUpdateView,
    NodeStatus,
    OutboxItem,
    OutMeta,
    PrekeyView,
    RecipientState,
)
from globe_node.workviews import (
    CaseInfo,
    CasePage,
    NoteView,
    RequestPage,
    RequestView,
    SearchHit,
    SearchPage,
    StatsReport,
    StatsRow,
    ThreadItem,
)
from protocol import canonical
from protocol.bundle import verify_bundle
from protocol.canonical import MAX_INT
from protocol.errors import PROBLEM_BASE, GlobeError, MalformedError, UsageError, error_class
from protocol.ids import ISO_COUNTRIES, AuthorityId, MessageId
from protocol.messages import (
    MAX_CONTENT_SIZE,
    Consent,
    Handling,
    Kind,
    MessageContent,
    StatusState,
    StatusUpdate,
    Tlp,
    Urgency,
    check_attachment_name,
    check_media_type,
)
from tests.node.helpers import delivered, info
from tests.node.network import Net, RunningNode, add_user
from tests.support.waiting import eventually

METHODS = ("get", "put", "post", "delete", "patch", "head", "options", "trace")
DOC = openapi_document(ROUTES)


def operations(doc: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    for path, item in doc["paths"].items():
        for method in METHODS:
            if method in item:
                yield method.upper(), path, item[method]


def validator(schema: dict[str, Any]) -> OAS31Validator:
    """A validator of ``schema`` whose ``$ref`` s resolve in the document's components."""
    return OAS31Validator(
        {**schema, "components": DOC["components"]}, format_checker=OAS31Validator.FORMAT_CHECKER
    )


def component(name: str) -> OAS31Validator:
    return validator({"$ref": f"#/components/schemas/{name}"})


def deref(node: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in node:
        node = DOC["components"]["schemas"][node["$ref"].rsplit("/", 1)[1]]
    return node


# --- (1) the document ------------------------------------------------------------------------


def test_the_document_is_valid_openapi_3_1_and_deterministic() -> None:
    validate_spec(DOC)
    assert DOC["openapi"] == "3.1.0"
    assert json.loads(json.dumps(DOC, allow_nan=False)) == DOC
    assert openapi_document(ROUTES) == DOC
    assert DOC["components"]["securitySchemes"] == {
        "bearerAuth": {
            "type": "http",
            "scheme": "bearer",
            "description": DOC["components"]["securitySchemes"]["bearerAuth"]["description"],
        }
    }
    for word in ("Bearer", "problem+json", "null", "unknown one is refused", "PROTOCOL.md §2.8"):
        assert word in DOC["info"]["description"], word


def test_the_document_names_exactly_the_routes_of_the_table_and_of_the_app() -> None:
    declared = {(r.method, doc_path(r.path)) for r in ROUTES}
    documented = {(method, path) for method, path, _ in operations(DOC)}
    app = create_api_app(None, None)  # type: ignore[arg-type]
    served = {
        (route.method, doc_path(route.resource.canonical))
        for route in app.router.routes()
        if route.resource is not None
    }
    assert documented == declared == served
    assert len(documented) == len(ROUTES) == 48
    assert ("GET", "/api/messages/{id}/attachments/{n}") in documented
    ids = [op["operationId"] for _, _, op in operations(DOC)]
    assert len(set(ids)) == len(ids)


@pytest.mark.parametrize("route", ROUTES, ids=lambda r: f"{r.method} {r.path}")
def test_each_operation_states_its_route_declarations(route: ApiRoute) -> None:
    op = DOC["paths"][doc_path(route.path)][route.method.lower()]
    assert op["security"] == [{"bearerAuth": []}]
    roles = [role.value for role in Role if route.permission in GRANTS[role]]
    assert (
        f"`{route.permission.value}` permission (roles: {', '.join(roles)})" in (op["description"])
    )
    params = {(p["in"], p["name"]): p for p in op.get("parameters", [])}
    templated = {seg[1:-1] for seg in doc_path(route.path).split("/") if seg.startswith("{")}
    assert {n for (where, n) in params if where == "path"} == templated
    assert {n for (where, n) in params if where == "query"} == {q.name for q in route.query}
    for q in route.query:
        assert params[("query", q.name)]["schema"] == q.shape.schema()
        assert params[("query", q.name)]["required"] is q.shape.required
    assert ("requestBody" in op) is (route.body is not None)
    if isinstance(route.body, JsonBody):
        body = deref(op["requestBody"]["content"]["application/json"]["schema"])
        assert set(body["properties"]) == {f.name for f in route.body.fields}
        assert body["required"] == [f.name for f in route.body.fields if f.required]
        assert body["additionalProperties"] is False
        assert op["requestBody"]["required"] is bool(body["required"])
    statuses = {int(s) for s in op["responses"]}
    assert statuses == {route.reply.status, *refusals(route)}
    # authentication everywhere; the role check where some role lacks the permission
    assert Unauthenticated.slug in op["responses"]["401"]["description"]
    lacking = any(route.permission not in GRANTS[role] for role in Role)
    assert (f"`{Forbidden.slug}`" in op["responses"].get("403", {}).get("description", "")) is (
        lacking
    )
    for status, response in op["responses"].items():
        if int(status) >= 400:
            assert list(response["content"]) == ["application/problem+json"]
            assert response["content"]["application/problem+json"]["schema"] == {
                "$ref": "#/components/schemas/Problem"
            }
            for slug in re.findall(r"`([a-z-]+)`", response["description"]):
                assert PROBLEM_BASE + slug in {t["type"] for t in problem_types()}, slug
    assert "default" not in op["responses"]


#: The modules that define the refusals of the local API (globe_node/apidoc.py names them).
ERROR_MODULES = {
    "protocol.errors", "globe_io.errors", "globe_io.web", "globe_io.httpguard",
    "globe_node.errors", "globe_node.uploads",
}  # fmt: skip


def test_the_problem_schema_lists_every_registered_problem_type() -> None:
    problem = openapi_document(ROUTES)["components"]["schemas"]["Problem"]
    assert problem["required"] == ["type", "title", "status", "detail", "instance"]
    assert problem["properties"]["instance"]["format"] == "uri-reference"
    expected: set[str] = set()
    stack: list[type[GlobeError]] = [GlobeError]
    while stack:
        cls = stack.pop()
        stack.extend(cls.__subclasses__())
        if cls.__module__ in ERROR_MODULES and "slug" in vars(cls):
            expected.add(cls.type_uri())
    listed = [t["type"] for t in problem["x-problem-types"]]
    assert listed == sorted(expected)
    for t in problem["x-problem-types"]:  # each names the class the registry has for it
        assert error_class(t["slug"]).__name__ == t["class"]  # type: ignore[union-attr]
    assert {u.rsplit("/", 1)[1] for u in listed} >= {
        "unauthenticated", "forbidden", "upload-quota-exceeded", "header-fields-too-large",
        "method-not-allowed", "length-required", "directory-stale", "usage",
    }  # fmt: skip
    for uri in listed:
        assert uri in problem["description"]
    # every refusal any operation names is one of them
    for route in ROUTES:
        for classes in refusals(route).values():
            assert {c.type_uri() for c in classes} <= set(listed), route.path
    # and the document does not depend on what else was imported (a client's errors)
    import globe_node.apiclient  # noqa: PLC0415
    import globe_node.backup  # noqa: F401, PLC0415

    assert openapi_document(ROUTES) == DOC


def test_every_schema_is_used_and_every_reference_resolves() -> None:
    text = json.dumps(DOC)
    refs = set(re.findall(r'"\$ref": "#/components/schemas/([A-Za-z]+)"', text))
    assert refs == set(DOC["components"]["schemas"])


# --- (2) result schemas agree with to_json ---------------------------------------------------

AUTHORITY = st.sampled_from(["FR-PNF", "BR-PF", "KE-EACC"])
HEX = st.binary(min_size=16, max_size=16).map(bytes.hex)
HEX64 = st.binary(min_size=32, max_size=32).map(bytes.hex)
FLOATS = st.floats(allow_nan=False, allow_infinity=False)
#: view class -> (its component, strategies for fields a schema pattern constrains)
VIEWS: dict[type, tuple[str, dict[str, st.SearchStrategy[Any]]]] = {
    RecipientState: ("RecipientState", {}),
    InboxItem: ("InboxItem", {}),
    OutboxItem: ("OutboxItem", {}),
    DeliveryView: ("Delivery", {}),
    InMeta: ("InMeta", {}),
    OutMeta: ("OutMeta", {}),
    UploadInfo: ("Upload", {"id": HEX, "sha256": st.binary(min_size=32, max_size=32)}),
    RequestView: ("Request", {"counterpart": AUTHORITY, "message": HEX}),
    RequestPage: ("Requests", {}),
    CaseInfo: ("CaseInfo", {}),
    CasePage: ("Cases", {}),
    ThreadItem: ("ThreadItem", {"id": HEX}),
    NoteView: ("Note", {}),
    SearchHit: ("TextHit", {}),
    SearchPage: ("TextSearch", {}),
    StatsRow: ("StatsRow", {}),
    StatsReport: ("Stats", {}),
    AlertView: ("Alert", {}),
    Behind: ("Behind", {}),
    NodeStatus: ("NodeStatus", {"authority": AUTHORITY}),
    PrekeyView: ("SignedPrekey", {"id": st.just("mlkem768x25519:" + "0" * 32)}),
    KeyUpdateView: ("KeyUpdate", {
        "fingerprint": st.just(" ".join(["01234"] * 12)),
        "identity_key": st.just("ed25519:" + "1" * 32),
        "transport_key": st.just("ed25519:" + "2" * 32),
        "ka_key": st.just("mlkem768x25519:" + "3" * 32),
    }),
    KeysView: ("Keys", {
        "authority": AUTHORITY, "fingerprint": st.just(" ".join(["56789"] * 12)),
        "identity_key": st.just("ed25519:" + "a" * 32),
        "transport_key": st.just("ed25519:" + "b" * 32),
        "ka_key": st.just("mlkem768x25519:" + "c" * 32),
    }),
    BackupRecord: ("Backup", {
        "authority": AUTHORITY, "size": st.integers(0, MAX_INT), "sha256": HEX64,
    }),
    BackupsView: ("Backups", {
        "backups": st.lists(st.deferred(lambda: strategy(BackupRecord)), max_size=3).map(tuple),
    }),
}  # fmt: skip


def strategy(cls: type) -> st.SearchStrategy[Any]:
    """Instances of a view whose enumerated strings hold values its schema names."""
    name, overrides = VIEWS[cls]
    props = deref({"$ref": f"#/components/schemas/{name}"})["properties"]
    hints = typing.get_type_hints(cls)
    fields: dict[str, st.SearchStrategy[Any]] = {}
    for f in dataclasses.fields(cls):
        prop = props.get("from" if f.name == "sender" and "from" in props else f.name, {})
        if f.name in overrides:
            fields[f.name] = overrides[f.name]
        elif "enum" in deref(prop):
            fields[f.name] = st.sampled_from(deref(prop)["enum"])
        elif "enum" in deref(deref(prop).get("items", {})):  # a tuple of enumerated strings
            terms = st.sampled_from(deref(deref(prop)["items"])["enum"])
            fields[f.name] = st.lists(terms, max_size=3).map(tuple)
        else:
            fields[f.name] = of_type(hints[f.name])
    return st.builds(cls, **fields)


def of_type(hint: Any) -> st.SearchStrategy[Any]:
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    scalars: dict[Any, st.SearchStrategy[Any]] = {
        float: FLOATS,
        int: st.integers(-MAX_INT, MAX_INT),  # what JSON carries
    }
    if hint in VIEWS:
        out: st.SearchStrategy[Any] = st.deferred(lambda: strategy(hint))
    elif hint in scalars:
        out = scalars[hint]
    elif type(None) in args:
        (other,) = (a for a in args if a is not type(None))
        out = st.none() | of_type(other)
    elif origin is dict:
        out = st.dictionaries(st.text(max_size=4), of_type(args[1]), max_size=3)
    elif origin is tuple and args[1:] == (Ellipsis,):
        out = st.lists(of_type(args[0]), max_size=3).map(tuple)
    elif origin is tuple:
        out = st.tuples(*map(of_type, args))
    else:
        out = st.from_type(hint)
    return out


@pytest.mark.parametrize("cls", list(VIEWS), ids=lambda c: c.__name__)
@settings(max_examples=40, deadline=None, derandomize=True, database=None)
@given(data=st.data())
def test_to_json_of_every_view_validates_against_its_schema(cls: type, data: st.DataObject):
    view = data.draw(strategy(cls))
    component(VIEWS[cls][0]).validate(orjson.loads(orjson.dumps(view.to_json())))


def test_a_schema_that_disagrees_with_to_json_fails_validation() -> None:
    """The check has teeth: a key renamed by ``to_json`` and missed by a schema fails."""
    item = InboxItem("0" * 32, "BR-PF", "request", "s", "routine", "AMBER", None, 1, "hub",
                     False, "in-order", 0, None)  # fmt: skip
    wrong = view_schema(InboxItem)  # without rename={"sender": "from"}
    assert not validator(wrong).is_valid(item.to_json())
    assert component("InboxItem").is_valid(item.to_json())
    mutated = {**item.to_json(), "extra": 1}
    assert not component("InboxItem").is_valid(mutated)


@dataclass(frozen=True)
class _Odd:
    """A view with what the schema builder cannot state, or that to_json leaves out."""

    name: str
    tags: frozenset[str]
    secret: str | None


def test_the_schema_builder_states_only_what_it_knows() -> None:
    """A field of a type with no JSON form is refused by name (declare its schema), as is a
    declared property the view does not have; an omitted field is left out."""
    with pytest.raises(TypeError) as refused:
        view_schema(_Odd)
    assert str(refused.value) == "no schema for frozenset[str]: declare the property"
    with pytest.raises(TypeError) as refused:
        view_schema(_Odd, props={"tags": {"type": "array"}, "nope": {"type": "string"}})
    assert str(refused.value) == "_Odd has no properties ['nope']"
    tags = {"type": "array", "items": {"type": "string"}, "uniqueItems": True}
    schema = view_schema(_Odd, omit=("secret",), props={"tags": tags})
    assert (schema["required"], schema["properties"]["tags"]) == (["name", "tags"], tags)
    assert schema["description"] == _Odd.__doc__
    # null added to a schema of no single type: one or the other
    either = {"anyOf": [{"type": "string"}, {"type": "integer"}]}
    assert nullable(either) == {"anyOf": [either, {"type": "null"}]}
    assert nullable({"type": "string"}) == {"type": ["string", "null"]}
    assert nullable({"enum": ["a"]}) == {"enum": ["a", None]}


def test_message_content_as_shown_validates() -> None:
    content = MessageContent(
        kind=Kind.STATUS, subject="s", body="b", language="en", urgency=Urgency.URGENT,
        handling=Handling(Tlp.RED), case="C-1", in_reply_to=MessageId.parse("1" * 32),
        status=StatusUpdate(StatusState.ACKNOWLEDGED, 5),
    )  # fmt: skip
    component("MessageContent").validate(apiresults.content_json(content))
    asked = MessageContent(
        kind=Kind.CONSENT_REQUEST, subject="s", body="b", language="en",
        urgency=Urgency.ROUTINE, handling=Handling(Tlp.AMBER),
        consent=Consent(MessageId.parse("2" * 32), (AuthorityId.parse("BR-PF"),), "why"),
    )  # fmt: skip
    component("MessageContent").validate(apiresults.content_json(asked))


# --- (3) patterns are the code's rules -------------------------------------------------------


def pattern(schema: dict[str, Any]) -> re.Pattern[str]:
    return re.compile(deref(schema)["pattern"])


def test_text_patterns_are_the_protocol_rules_code_point_by_code_point() -> None:
    one_line = pattern(apimodels.SUBJECT_TEXT.schema())
    multiline = pattern(apimodels.REASON_TEXT.schema())
    name = re.compile(f"^(?:{apimodels.ATTACHMENT_NAME})$")
    for code in range(0x110000):
        c = chr(code)
        hidden = canonical.has_hidden_chars(c)
        assert (one_line.fullmatch(f"a{c}b") is not None) is not (hidden or c in "\t\n"), code
        assert (multiline.fullmatch(f"a{c}b") is not None) is not hidden, code
        try:
            check_attachment_name(f"a{c}b")
            allowed = True
        except MalformedError:
            allowed = False
        assert (name.fullmatch(f"a{c}b") is not None) is allowed, code
    declared = apimodels.UPLOAD_NAME.shape
    for special in (".", "..", "...", "a.", ".a", "a/b", "a\\b", "x" * 255, "x" * 256, ""):
        try:
            check_attachment_name(special)
            allowed = True
        except MalformedError:
            allowed = False
        try:
            declared.parse(special, "name")
            ok = True
        except UsageError:
            ok = False
        assert ok is allowed, special


IDS = [
    "FR-PNF", "BR-PF", "KE-EACC", "FR-A", "FR-" + "A" * 16, "FR-" + "A" * 17, "fr-pnf", "ZZ-PNF",
    "FRA-PNF", "FR_PNF", "FR-PNF\n", "FR-P-F", "FR-09", "", "FR-",
]  # fmt: skip


def test_identifier_patterns_are_the_parsers() -> None:
    authority = pattern({"$ref": "#/components/schemas/AuthorityId"})
    for text in IDS + [f"{c}-X1" for c in sorted(ISO_COUNTRIES)]:
        try:
            AuthorityId.parse(text)
            ok = True
        except GlobeError:
            ok = False
        assert (authority.fullmatch(text) is not None) is ok, text
    hex32 = pattern({"$ref": "#/components/schemas/UploadId"})
    assert hex32.pattern == pattern({"$ref": "#/components/schemas/MessageId"}).pattern
    for text in ("0" * 32, "f" * 32, "F" * 32, "0" * 31, "0" * 33, "g" * 32, "0" * 31 + "\n"):
        try:
            parse_upload_id(text)
            MessageId.parse(text)
            ok = True
        except GlobeError:
            ok = False
        assert (hex32.fullmatch(text) is not None) is ok, text
    user = pattern(apimodels.UserName().schema())
    assert user.pattern == f"^(?:{USER_NAME.pattern.removesuffix(chr(92) + 'Z')})$"
    media = apimodels.MEDIA.shape
    for text in (
        "text/plain", "application/pdf", "a" * 64 + "/b", "a" * 65 + "/b", MEDIA_AT,
        MEDIA_AT + "a", "Text/plain", "a/", "/b", "a/b/c", "a b/c",
    ):  # fmt: skip
        try:
            check_media_type(text)
            allowed = True
        except MalformedError:
            allowed = False
        try:
            media.parse(text, "media_type")
            ok = True
        except UsageError:
            ok = False
        assert ok is allowed, text


def content(**changes: Any) -> MessageContent:
    base: dict[str, Any] = {
        "kind": Kind.INFORMATION, "subject": "s", "body": "b", "language": "en",
        "urgency": Urgency.ROUTINE, "handling": Handling(Tlp.AMBER),
    }  # fmt: skip
    return MessageContent(**{**base, **changes})


def encodes(c: MessageContent) -> bool:
    try:
        c.encode()
    except UsageError:
        return False
    return True


def test_the_limits_named_for_message_content_are_the_protocol_decoders() -> None:
    n = apimodels.MAX_SUBJECT
    assert encodes(content(subject="a" * n))
    assert not encodes(content(subject="a" * (n + 1)))
    reply = {"kind": Kind.STATUS, "in_reply_to": MessageId.parse("1" * 32)}
    t = apimodels.MAX_TEXT
    for size, ok in ((t, True), (t + 1, False)):
        status = StatusUpdate(StatusState.DECLINED, None, "r" * size)
        assert encodes(content(**reply, status=status)) is ok
    c = apimodels.MAX_CONSENT_TO
    for size, ok in ((c, True), (c + 1, False)):
        to = tuple(AuthorityId.parse(f"FR-N{i:03d}") for i in range(size))
        asked = Consent(MessageId.parse("2" * 32), to, "why")
        assert encodes(content(kind=Kind.CONSENT_REQUEST, consent=asked)) is ok
    # the declared text limit is a bound, not a promise: the content as a whole decides
    assert not encodes(content(body="a" * apimodels.MAX_TEXT * 1000))
    assert apimodels.BODY_TEXT.max_len == MAX_CONTENT_SIZE


# --- (4) a live node: every answer documented, every limit the one enforced ------------------


@dataclass
class Api:
    """Calls to a live node's local API; every answer is checked against the document."""

    rn: RunningNode
    seen: set[tuple[str, str, int]] = field(default_factory=set)

    async def call(
        self,
        method: str,
        template: str,
        body: Any = None,
        *,
        token: str | None = None,
        data: bytes | None = None,
        params: dict[str, str] | None = None,
        path: dict[str, str] | None = None,
        **segments: str,
    ) -> tuple[int, Any]:
        """``method template`` with its segments filled in; (status, parsed answer)."""
        filled = {**(path or {}), **segments}
        target = template.format(**{k: quote(v, safe="") for k, v in filled.items()})
        url = f"http://127.0.0.1:{self.rn.config.api_port}{target}"
        payload = orjson.dumps(body) if body is not None else data
        sent = request_payload(payload) if payload else payload
        headers = {"Authorization": f"Bearer {token or self.rn.token}"}
        async with (
            aiohttp.ClientSession() as s,
            s.request(
                method, url, data=sent, headers=headers, params=params,
            ) as r,
        ):  # fmt: skip
            raw = await r.read()
            answer = self.check(method, template, r, raw, target)
        return r.status, answer

    def check(
        self, method: str, template: str, r: aiohttp.ClientResponse, raw: bytes, target: str
    ) -> Any:
        op = DOC["paths"][template][method.lower()]
        response = op["responses"].get(str(r.status))
        assert response is not None, (method, template, r.status, raw[:300])
        self.seen.add((method, template, r.status))
        for header, spec in response.get("headers", {}).items():
            assert re.search(spec["schema"]["pattern"], r.headers[header]), header
        media = list(response.get("content", {}))
        if not media:
            assert raw == b""
            return None
        if media == ["*/*"]:
            return raw
        assert r.content_type == media[0], (template, r.status, r.content_type)
        if not media[0].endswith("json"):  # an evidence bundle (PROTOCOL.md §9.3), a CSV
            return raw
        answer = orjson.loads(raw)
        validator(response["content"][media[0]]["schema"]).validate(answer)
        if r.status >= 400:
            assert answer["status"] == r.status
            assert answer["instance"] == target.split("?", maxsplit=1)[0]
            assert f"`{answer['type'].removeprefix(PROBLEM_BASE)}`" in response["description"]
        return answer


def refusal(answer: tuple[int, Any]) -> tuple[int, str, str]:
    status, body = answer
    return status, body["type"].removeprefix(PROBLEM_BASE), body["detail"]


@pytest.fixture
async def pair(net: Net) -> tuple[RunningNode, RunningNode]:
    fr = await net.member("FR-PNF", "Parquet national financier")
    br = await net.member("BR-PF", "Policia Federal")
    return fr, br


async def received(rn: RunningNode, mid: str) -> bool:
    return any(m.id == mid for m in await rn.n.inbox(limit=1000))


async def in_inbox(rn: RunningNode, pred: Callable[[Any], bool]) -> str:
    """The id of the first received message matching ``pred``, once there is one."""
    found: list[str] = []

    async def look() -> bool:
        found[:] = [m.id for m in await rn.n.inbox(limit=1000) if pred(m)]
        return bool(found)

    await eventually(look)
    return found[0]


@pytest.mark.slow
async def test_every_answer_of_a_live_node_is_documented(
    pair: tuple[RunningNode, RunningNode],
) -> None:
    """A scenario that reaches every route's success, and typical refusals, all validated."""
    fr, br = pair
    api, bra = Api(fr), Api(br)
    sup = await add_user(fr.n, "sup", "supervisor")
    ops = await add_user(fr.n, "ops", "operator")
    status, served = await api.call("GET", "/api/openapi.json", token=ops)
    assert (status, served) == (200, DOC)
    # the node, the directory, users
    await fr.n.alert("test", "an alert to list", None)
    assert (await api.call("GET", "/api/status"))[0] == 200
    status, found = await api.call("GET", "/api/directory/search", params={"country": "BR"})
    assert [m["authority"] for m in found["results"]] == ["BR-PF"]
    desk = {"offences": ["bribery"], "contacts": [{"role": "duty-desk", "hours": "24/7"}]}
    status, mine = await api.call("PUT", "/api/profile", desk, token=ops)
    assert (status, mine["profile"]["seq"], mine["profile"]["offences"]) == (200, 1, ["bribery"])
    assert await api.call("GET", "/api/profile") == (200, mine)
    assert (await api.call("GET", "/api/alerts"))[1]["alerts"][0]["kind"] == "test"
    assert (await api.call("POST", "/api/sync"))[0] == 200
    status, ping = await api.call("POST", "/api/ping/{authority}", authority="BR-PF")
    assert (status, ping["direct"]["ok"], ping["hub"]["ok"]) == (200, True, True)
    status, rotated = await api.call("POST", "/api/keys/rotate", {}, token=ops)
    assert status == 200
    status, keys = await api.call("GET", "/api/keys", token=ops)
    assert (status, keys["authority"], keys["certified"], keys["update"]) == (
        200, "FR-PNF", True, None,
    )  # fmt: skip
    assert (keys["prekey"]["id"], keys["prekey"]["published"]) == (rotated["prekey"], True)
    made = await api.call("POST", "/api/users", {"name": "ops2", "role": "operator"}, token=ops)
    assert made[0] == 201
    status, accounts = await api.call("GET", "/api/accounts", token=ops)
    assert [(u["name"], u["role"], u["password"]) for u in accounts["users"]] == [
        ("alice", "investigator", False), ("ops", "operator", False),
        ("ops2", "operator", False), ("sup", "supervisor", False),
    ]  # fmt: skip
    assert await api.call("GET", "/api/backups", token=ops) == (
        200, {"backups": [], "newest_age_s": None, "stale_after_s": 7 * 86400, "stale": True},
    )  # fmt: skip
    # uploads and a request with an attachment
    status, up = await api.call("POST", "/api/uploads", data=b"ledger", params={"name": "l.txt"})
    assert status == 201
    status, spare = await api.call("POST", "/api/uploads", data=b"", params={"name": "e"})
    assert (status, spare["size"]) == (201, 0)
    assert len((await api.call("GET", "/api/uploads"))[1]["uploads"]) == 2
    assert (await api.call("DELETE", "/api/uploads/{id}", id=spare["id"]))[0] == 204
    request = {
        "to": ["BR-PF"], "kind": "request", "subject": "Accounts", "body": "Please.",
        "tlp": "CLEAR", "case": "C-1", "deadline": int(time.time()) + 86400,
        "attachments": [up["id"]],
    }  # fmt: skip
    status, sent = await api.call("POST", "/api/messages", request)
    assert status == 201
    mid = sent["id"]
    await eventually(lambda: delivered(fr, mid, br))
    assert (await api.call("GET", "/api/outbox"))[1]["messages"][0]["id"] == mid
    assert (await api.call("GET", "/api/outbox/{id}", id=mid))[1]["id"] == mid
    assert (await api.call("POST", "/api/messages/{id}/retry", id=mid))[1] == {"queued": 0}
    # the recipient reads, answers, forwards and asks for consent
    assert (await bra.call("GET", "/api/inbox", params={"limit": "5"}))[1]["messages"][0][
        "id"
    ] == mid
    status, shown = await bra.call("GET", "/api/messages/{id}", id=mid)
    assert (status, shown["direction"], shown["meta"]["sender"]) == (200, "in", "FR-PNF")
    assert shown["content"]["attachments"] == [{
        "name": "l.txt", "size": 6, "media_type": "application/octet-stream",
        "sha256": "fe14010b4fe83303852f0467c919ef9a7ca089b91e96e3aad7d426dd87079297",
    }]  # fmt: skip
    template = "/api/messages/{id}/attachments/{n}"
    assert await bra.call("GET", template, id=mid, n="1") == (200, b"ledger")
    ack = {"state": "acknowledged", "expected": int(time.time()) + 3600}
    assert (await bra.call("POST", "/api/messages/{id}/status", ack, id=mid))[0] == 201
    answer = {"body": "Statements follow."}
    assert (await bra.call("POST", "/api/messages/{id}/reply", answer, id=mid))[0] == 201
    status, fwd = await bra.call("POST", "/api/messages/{id}/forward", {"to": ["FR-PNF"]}, id=mid)
    assert status == 201
    ask = {"to": ["FR-PNF"], "purpose": "A joint team."}
    assert (await bra.call("POST", "/api/messages/{id}/request-consent", ask, id=mid))[0] == 201
    status, consents = await bra.call("GET", "/api/messages/{id}/consents", id=mid)
    assert (status, consents["originator"], consents["required"]) == (200, "FR-PNF", False)
    assert [(a["to"], a["answer"]) for a in consents["asked"]] == [(["FR-PNF"], None)]
    # the originator sees the status, the answer, the forward and the consent request
    cr = await in_inbox(fr, lambda m: m.kind == "consent-request")
    await eventually(lambda: received(fr, fwd["id"]))
    status, forwarded = await api.call("GET", "/api/messages/{id}", id=fwd["id"])
    assert forwarded["content"]["forwarded"]["originator"] == "FR-PNF"
    status, asked = await api.call("GET", "/api/messages/{id}", id=cr)
    assert asked["content"]["consent"]["to"] == ["FR-PNF"]
    assert (await api.call("POST", "/api/messages/{id}/consent", {"decision": "granted"},
                           id=cr))[0] == 201  # fmt: skip
    status, mine = await api.call("GET", "/api/messages/{id}", id=mid)
    assert (mine["direction"], mine["meta"]["recipients"]["BR-PF"]["state"]) == ("out", "delivered")
    await in_inbox(fr, lambda m: m.kind == "status")
    await in_inbox(fr, lambda m: m.kind == "answer")
    for m in (await api.call("GET", "/api/inbox"))[1]["messages"]:
        await api.call("GET", "/api/messages/{id}", id=m["id"])
    assert (await api.call("GET", "/api/cases"))[1]["cases"][0]["case"] == "C-1"
    status, case = await api.call("GET", "/api/cases/{case}", case="C-1")
    assert case["requests"][0]["message"] == mid
    # the investigator's work: requests, cases, filing, search, statistics, users
    status, requests = await api.call("GET", "/api/requests", params={"status": "all"})
    assert [(r["message"], r["counterpart"], r["state"]) for r in requests["requests"]] == [
        (mid, "BR-PF", "answered")
    ]
    theirs = (await bra.call("GET", "/api/requests", params={"direction": "in"}))[1]
    assert (theirs["total"], theirs["requests"]) == (0, [])  # answered: no longer open
    status, opened = await api.call("POST", "/api/cases", {"case": "C-2", "title": "Second"})
    assert (status, opened["case"], opened["title"], opened["state"]) == (
        201,
        "C-2",
        "Second",
        "open",
    )
    status, renamed = await api.call(
        "POST", "/api/cases/{case}/rename", {"title": "Shell companies"}, case="C-2"
    )
    assert (status, renamed["title"]) == (200, "Shell companies")
    status, note = await api.call(
        "POST", "/api/cases/{case}/notes", {"body": "Ask KE."}, case="C-2"
    )
    assert (status, note["case"], note["user"], note["body"]) == (201, "C-2", "alice", "Ask KE.")
    loose = {"to": ["BR-PF"], "subject": "Ledger copies", "body": "Attached later."}
    status, uncased = await api.call("POST", "/api/messages", loose)
    assert status == 201
    assert await api.call(
        "POST", "/api/messages/{id}/file", {"case": "C-2"}, id=uncased["id"]
    ) == (200, {"message": uncased["id"], "case": "C-2", "team": None})  # fmt: skip
    status, assigned = await api.call(
        "POST", "/api/cases/{case}/assign", {"assignee": "sup"}, case="C-2"
    )
    assert (status, assigned["assignee"], assigned["message_count"]) == (200, "sup", 1)
    status, closed = await api.call("POST", "/api/cases/{case}/close", case="C-2")
    assert (status, closed["state"]) == (200, "closed")
    status, reopened = await api.call("POST", "/api/cases/{case}/reopen", case="C-2")
    assert (status, reopened["state"]) == (200, "open")
    status, found = await api.call("GET", "/api/search", params={"q": "ledger cop*"})
    assert [(h["kind"], h["id"], h["case"]) for h in found["hits"]] == [
        ("message", uncased["id"], "C-2")
    ]
    period = {"from": "0", "to": str(int(time.time()) + 60)}
    status, stats = await api.call("GET", "/api/stats", params=period)
    assert (status, stats["from"], stats["to"]) == (200, 0, int(period["to"]))
    asked = [r for r in stats["rows"] if (r["direction"], r["kind"]) == ("sent", "request")]
    assert [(r["counterpart"], r["count"], r["answered"], r["open"]) for r in asked] == [
        ("BR-PF", 1, 1, 0), (None, 1, 1, 0)
    ]  # fmt: skip
    status, table = await api.call("GET", "/api/stats/csv", params=period)
    lines = table.decode().split("\r\n")
    assert (status, lines[0], lines[-1]) == (200, ",".join(CSV_COLUMNS), "")
    assert lines[1:-1] == [
        ",".join("" if row[c] is None else str(row[c]) for c in CSV_COLUMNS)
        for row in stats["rows"]
    ]
    status, held = await api.call("POST", "/api/cases/{case}/hold", {"reason": "Court order 12."},
                                  case="C-2", token=sup)  # fmt: skip
    assert (status, held["case"], held["placed_by"], held["released"]) == (201, "C-2", "sup", None)
    status, holds = await api.call("GET", "/api/holds", token=sup)
    assert (status, [h["case"] for h in holds["holds"]]) == (200, ["C-2"])
    status, released = await api.call("POST", "/api/cases/{case}/release", case="C-2", token=sup)
    assert (status, released["released_by"]) == (200, "sup")
    status, users = await api.call("GET", "/api/users")
    assert [(u["name"], u["role"], u["teams"]) for u in users["users"]] == [
        ("alice", "investigator", []), ("ops", "operator", []), ("ops2", "operator", []),
        ("sup", "supervisor", []),
    ]  # fmt: skip
    status, audit = await api.call("GET", "/api/audit", token=sup)
    assert (status, audit["verified"]) == (200, True)
    # refusals are documented too
    unknown = "0" * 32
    assert refusal(await api.call("GET", "/api/messages/{id}", id=unknown)) == (
        404, "not-found", f"no message {unknown}"
    )  # fmt: skip
    assert refusal(await api.call("GET", "/api/messages/{id}", id="nope")) == (
        404, "not-found", "no message nope"
    )  # fmt: skip
    assert refusal(await api.call("GET", "/api/inbox", token=ops))[:2] == (403, "forbidden")
    assert refusal(await api.call("GET", "/api/status", token="forged"))[:2] == (  # noqa: S106
        401, "unauthenticated",
    )  # fmt: skip
    assert refusal(await api.call("POST", "/api/ping/{authority}", authority="fr-pnf"))[:2] == (
        400, "invalid-identifier",
    )  # fmt: skip
    assert refusal(await api.call("POST", "/api/sync", {"now": True})) == (
        400, "usage", "unknown field(s): 'now'"
    )  # fmt: skip
    assert refusal(await api.call("DELETE", "/api/uploads/{id}", id=unknown)) == (
        404, "not-found", f"no staged upload {unknown} of yours"
    )  # fmt: skip
    status, exported = await api.call("GET", "/api/cases/{case}/bundle", case="C-1")
    assert status == 200
    assert verify_bundle(exported).ok
    # legal holds (supervisors only)
    order = {"reason": "Court order 12/2026."}
    status, held = await api.call("POST", "/api/cases/{case}/hold", order, case="C-1", token=sup)
    assert (status, held["case"], held["placed_by"], held["released"]) == (201, "C-1", "sup", None)
    assert await api.call("GET", "/api/holds", token=sup) == (200, {"holds": [held]})
    again = await api.call("POST", "/api/cases/{case}/hold", order, case="C-1", token=sup)
    assert refusal(again)[:2] == (409, "state-conflict")
    status, freed = await api.call("POST", "/api/cases/{case}/release", {}, case="C-1", token=sup)
    assert (status, freed["released_by"]) == (200, "sup")
    every = {(r.method, doc_path(r.path), r.reply.status) for r in ROUTES}
    assert every <= api.seen | bra.seen, every - (api.seen | bra.seen)


def probes(shape: Shape[Any]) -> Iterator[tuple[str, Any, Any]]:
    """(which bound, a value at it, the value just past it) for each bound of ``shape``."""
    if isinstance(shape, Text):
        if shape.max_len is not None:
            yield "max", "a" * shape.max_len, "a" * (shape.max_len + 1)
        if shape.min_len:
            yield "min", "a" * shape.min_len, "a" * (shape.min_len - 1)
    elif isinstance(shape, Integer):
        yield "max", shape.maximum, shape.maximum + 1
        yield "min", shape.minimum, shape.minimum - 1
    elif isinstance(shape, apimodels.Authorities):
        ids = [f"FR-N{i:04d}" for i in range(shape.max_items + 1)]
        yield "max", ids[:-1], ids
        yield "min", ids[:1], []
    elif isinstance(shape, apimodels.UploadIds):
        ids = [f"{i:032x}" for i in range(shape.max_items + 1)]
        yield "max", ids[:-1], ids
    elif isinstance(shape, apiprofile.Contacts):
        desks = [{"role": "duty-desk"}] * (shape.max_items + 1)
        yield "max", desks[:-1], desks
    else:  # a choice, a set of choices or of terms, a user name (its pattern): no bound
        assert isinstance(shape, Choice | ChoiceSet | apiprofile.Terms | apimodels.UserName), shape


def declared_refusal(
    shape: Shape[Any], name: str, value: Any
) -> tuple[int, str] | tuple[int, str, str]:
    """What the declaration refuses ``value`` with (past 2^53-1: the strict decoder, first)."""
    if isinstance(value, int) and value > MAX_INT:
        return 400, "number-out-of-range"
    with pytest.raises(UsageError) as refused:
        shape.parse(value, name)
    return 400, "usage", refused.value.detail


#: Every bound of every body field: (route, field, bound).
BODY_BOUNDS = {
    ("/api/messages", "to", "max"), ("/api/messages", "to", "min"),
    ("/api/messages", "subject", "max"), ("/api/messages", "subject", "min"),
    ("/api/messages", "body", "max"), ("/api/messages", "deadline", "max"),
    ("/api/messages", "deadline", "min"), ("/api/messages", "attachments", "max"),
    ("/api/messages/{id}/reply", "body", "max"), ("/api/messages/{id}/reply", "subject", "max"),
    ("/api/messages/{id}/reply", "subject", "min"),
    ("/api/messages/{id}/reply", "attachments", "max"),
    ("/api/messages/{id}/status", "expected", "max"),
    ("/api/messages/{id}/status", "expected", "min"),
    ("/api/messages/{id}/status", "reason", "max"), ("/api/messages/{id}/status", "reason", "min"),
    ("/api/messages/{id}/status", "body", "max"),
    ("/api/messages/{id}/forward", "to", "max"), ("/api/messages/{id}/forward", "to", "min"),
    ("/api/messages/{id}/forward", "note", "max"),
    ("/api/messages/{id}/request-consent", "to", "max"),
    ("/api/messages/{id}/request-consent", "to", "min"),
    ("/api/messages/{id}/request-consent", "purpose", "max"),
    ("/api/messages/{id}/request-consent", "purpose", "min"),
    ("/api/messages/{id}/consent", "to", "max"), ("/api/messages/{id}/consent", "to", "min"),
    ("/api/messages/{id}/consent", "reason", "max"),
    ("/api/messages/{id}/consent", "reason", "min"),
    ("/api/messages/{id}/status", "deadline", "max"),
    ("/api/messages/{id}/status", "deadline", "min"),
    ("/api/profile", "contacts", "max"), ("/api/profile", "note", "max"),
    ("/api/profile", "note", "min"),
    ("/api/cases", "title", "max"), ("/api/cases", "title", "min"),
    ("/api/cases/{case}/rename", "title", "max"), ("/api/cases/{case}/rename", "title", "min"),
    ("/api/cases/{case}/notes", "body", "max"), ("/api/cases/{case}/notes", "body", "min"),
    ("/api/cases/{case}/hold", "reason", "max"), ("/api/cases/{case}/hold", "reason", "min"),
}  # fmt: skip
#: A media type of the most characters allowed (type and subtype of 64 each).
MEDIA_AT = "a" * 64 + "/" + "a" * 64
#: An authority id of the most characters allowed (a country and 16).
AUTHORITY_AT = "FR-" + "A" * 16
#: The value at the length bound of a text parameter whose pattern "a"s do not match.
TEXT_AT = {"media_type": MEDIA_AT, "counterpart": AUTHORITY_AT}
#: Every bound of every query parameter: (route, parameter, value).
QUERY_BOUNDS = {
    ("/api/inbox", "limit", "1"), ("/api/inbox", "limit", "1000"), ("/api/inbox", "limit", "0"),
    ("/api/inbox", "limit", "1001"), ("/api/outbox", "limit", "1"),
    ("/api/outbox", "limit", "1000"), ("/api/outbox", "limit", "0"),
    ("/api/outbox", "limit", "1001"), ("/api/uploads", "name", "a" * 255),
    ("/api/uploads", "name", "a" * 256), ("/api/uploads", "media_type", "a" * 64 + "/" + "a" * 64),
    ("/api/uploads", "media_type", "a" * 64 + "/" + "a" * 65),
    ("/api/directory/search", "language", "aa"), ("/api/directory/search", "language", "aaa"),
    ("/api/directory/search", "q", "a" * 200), ("/api/directory/search", "q", "a" * 201),
    ("/api/directory/search", "country", "a" * 100),
    ("/api/directory/search", "country", "a" * 101),
    ("/api/uploads", "name", ""),
    ("/api/requests", "due_within", "0"), ("/api/requests", "due_within", "3650"),
    ("/api/requests", "due_within", "-1"), ("/api/requests", "due_within", "3651"),
    ("/api/requests", "counterpart", AUTHORITY_AT),
    ("/api/requests", "counterpart", AUTHORITY_AT + "a"),
    ("/api/requests", "case", "a" * 64), ("/api/requests", "case", "a" * 65),
    ("/api/requests", "limit", "1"), ("/api/requests", "limit", "1000"),
    ("/api/requests", "limit", "0"), ("/api/requests", "limit", "1001"),
    ("/api/requests", "offset", "0"), ("/api/requests", "offset", "1000000"),
    ("/api/requests", "offset", "-1"), ("/api/requests", "offset", "1000001"),
    ("/api/cases", "team", "a" * 64), ("/api/cases", "team", "a" * 65),
    ("/api/cases", "assignee", "a" * 64), ("/api/cases", "assignee", "a" * 65),
    ("/api/cases", "limit", "1"), ("/api/cases", "limit", "1000"),
    ("/api/cases", "limit", "0"), ("/api/cases", "limit", "1001"),
    ("/api/cases", "offset", "0"), ("/api/cases", "offset", "1000000"),
    ("/api/cases", "offset", "-1"), ("/api/cases", "offset", "1000001"),
    ("/api/search", "q", "a" * 200), ("/api/search", "q", "a" * 201), ("/api/search", "q", ""),
    ("/api/search", "limit", "1"), ("/api/search", "limit", "1000"),
    ("/api/search", "limit", "0"), ("/api/search", "limit", "1001"),
    ("/api/search", "offset", "0"), ("/api/search", "offset", "1000000"),
    ("/api/search", "offset", "-1"), ("/api/search", "offset", "1000001"),
    *(
        (route, name, raw)
        for route in ("/api/inbox", "/api/outbox")
        for name, raw in (
            ("counterpart", AUTHORITY_AT), ("counterpart", AUTHORITY_AT + "a"),
            ("case", "a" * 64), ("case", "a" * 65), ("q", "a" * 200), ("q", "a" * 201),
            *((bound, raw) for bound in ("since", "until")
              for raw in ("0", str(MAX_INT), "-1", str(MAX_INT + 1))),
        )
    ),
    *(
        (stats, bound, raw)
        for stats in ("/api/stats", "/api/stats/csv")
        for bound in ("from", "to")
        for raw in ("0", str(MAX_INT), "-1", str(MAX_INT + 1))
    ),
}  # fmt: skip
#: What each route's query carries besides the parameter probed (the rest are defaults).
QUERY_BASES: dict[str, dict[str, str]] = {
    "/api/uploads": {"name": "f.bin"},
    "/api/search": {"q": "a"},
    "/api/stats": {"to": str(MAX_INT)},  # so that 'from' may reach its bound
    "/api/stats/csv": {"to": str(MAX_INT)},
}


@pytest.mark.slow
async def test_every_declared_limit_is_the_one_a_live_node_enforces(
    pair: tuple[RunningNode, RunningNode],
) -> None:
    """Walks the declarations of ``ROUTES``: each bound of each body field and query
    parameter, the JSON body cap and the upload cap, probed at and past the bound."""
    fr, br = pair
    api = Api(fr)
    ops = await add_user(fr.n, "ops", "operator")
    sup = await add_user(fr.n, "sup", "supervisor")
    theirs = str(await br.n.send([fr.me], info("for France", handling=Handling(Tlp.CLEAR))))
    mine = str(await fr.n.send([br.me], info("from France")))
    await eventually(lambda: received(fr, theirs))
    await eventually(lambda: received(br, mine))
    status, _ = await Api(br).call(
        "POST", "/api/messages/{id}/request-consent", {"to": ["KE-EACC"], "purpose": "p"}, id=mine
    )
    assert status == 201
    asked = await in_inbox(fr, lambda m: m.kind == "consent-request")
    assert (await api.call("POST", "/api/cases", {"case": "C-1"}))[0] == 201
    bases: dict[tuple[str, str], tuple[dict[str, Any], dict[str, str]]] = {
        ("POST", "/api/messages"): ({"to": ["BR-PF"], "subject": "s", "body": "b"}, {}),
        ("POST", "/api/messages/{id}/reply"): ({"body": "b"}, {"id": theirs}),
        ("POST", "/api/messages/{id}/status"): ({"state": "in-progress"}, {"id": theirs}),
        ("POST", "/api/messages/{id}/forward"): ({"to": ["BR-PF"]}, {"id": theirs}),
        ("POST", "/api/messages/{id}/request-consent"): (
            {"to": ["BR-PF"], "purpose": "p"}, {"id": theirs}
        ),
        ("POST", "/api/messages/{id}/consent"): ({"decision": "granted"}, {"id": asked}),
        ("POST", "/api/users"): ({"name": "someone", "role": "operator"}, {}),
        ("PUT", "/api/profile"): ({}, {}),
        ("POST", "/api/cases"): ({"case": "C-NEW"}, {}),
        ("POST", "/api/cases/{case}/rename"): ({"title": "t"}, {"case": "C-1"}),
        ("POST", "/api/cases/{case}/assign"): ({"assignee": "sup"}, {"case": "C-1"}),
        ("POST", "/api/cases/{case}/notes"): ({"body": "n"}, {"case": "C-1"}),
        ("POST", "/api/cases/{case}/hold"): ({"reason": "r"}, {"case": "C-1"}),
        ("POST", "/api/messages/{id}/file"): ({"case": "C-1"}, {"id": mine}),
    }  # fmt: skip
    bounds = Bounds(api, bases, {"operate": ops, "supervise": sup})
    assert await bounds.of_bodies() == BODY_BOUNDS
    assert await bounds.of_queries() == QUERY_BOUNDS
    # the JSON body cap: exactly at it is read, one byte more is not
    cap = apimodels.NEW_MESSAGE.max_bytes
    start = orjson.dumps(bases[("POST", "/api/messages")][0])
    at = start + b" " * (cap - len(start))
    assert (await api.call("POST", "/api/messages", data=at))[0] == 201
    assert refusal(await api.call("POST", "/api/messages", data=at + b" ")) == (
        413, "payload-too-large", f"body of {cap + 1} bytes exceeds {cap}"
    )  # fmt: skip
    # the upload cap, refused from the stated length before a byte of the body is read
    head = await raw_head(fr, "/api/uploads?name=big", MAX_ATTACHMENT + 1)
    assert head.split(b"\r\n", 1)[0] == b"HTTP/1.1 413 Request Entity Too Large"
    assert orjson.loads(head.partition(b"\r\n\r\n")[2])["detail"] == (
        f"an upload is at most {MAX_ATTACHMENT} bytes"
    )


async def raw_head(rn: RunningNode, target: str, length: int) -> bytes:
    """A POST that states ``length`` bytes and sends none; the answer (head and body)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", rn.config.api_port)
    try:
        writer.write(
            f"POST {target} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {rn.token}\r\n"
            f"Content-Length: {length}\r\n\r\n".encode()
        )
        await writer.drain()
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), timeout=10)
        size = int(re.search(rb"(?i)content-length: *([0-9]+)", head)[1])  # type: ignore[index]
        return head + await asyncio.wait_for(reader.readexactly(size), timeout=10)
    finally:
        writer.close()


def refusal_or_status(answer: tuple[int, Any]) -> tuple[int, ...] | tuple[int, str, str]:
    """A refusal's (status, slug, detail), or a success's (status,)."""
    status, body = answer
    return refusal(answer) if status >= 400 and isinstance(body, dict) else (status,)


@dataclass
class Bounds:
    """Probes both sides of every declared bound against a live node."""

    api: Api
    bases: dict[tuple[str, str], tuple[dict[str, Any], dict[str, str]]]
    tokens: dict[str, str]  # "operate", "supervise": who calls the routes others may not

    async def of_bodies(self) -> set[tuple[str, str, str]]:
        """Each body field's bounds: past one, the field's refusal word for word; at it, not."""
        api, bases = self.api, self.bases
        probed: set[tuple[str, str, str]] = set()
        for route in ROUTES:
            if not isinstance(route.body, JsonBody) or not route.body.fields:
                continue
            template = doc_path(route.path)
            base, path = bases[(route.method, template)]
            by = {Permission.OPERATE: "operate", Permission.HOLD: "supervise"}
            token = self.tokens.get(by.get(route.permission, ""))
            for f in route.body.fields:
                for bound, at, past in probes(f.shape):
                    want = declared_refusal(f.shape, f.name, past)
                    answers = []
                    for value in (at, past):
                        body = {**base, f.name: value}
                        if f.name == "deadline" and template == "/api/messages":
                            body["kind"] = "request"
                        answer = await api.call(
                            route.method, template, body, token=token, path=path
                        )
                        answers.append(refusal_or_status(answer))
                    # past the bound: the field's refusal, word for word; at it: never that
                    assert answers[1][: len(want)] == want, (template, f.name, bound, answers[1])
                    assert answers[0] != answers[1], (template, f.name, bound)
                    probed.add((template, f.name, bound))
        return probed

    async def of_queries(self) -> set[tuple[str, str, str]]:
        """Each query parameter's bounds: past one, its refusal; at it, the route's success."""
        api = self.api
        queried: set[tuple[str, str, str]] = set()
        for route in ROUTES:
            for q in route.query:
                shape = q.shape.text if isinstance(q.shape, QRequired) else q.shape
                cases: list[tuple[str, bool]] = []
                if isinstance(shape, QInt | QOptInt):
                    cases = [(str(shape.lo), False), (str(shape.hi), False),
                             (str(shape.lo - 1), True), (str(shape.hi + 1), True)]  # fmt: skip
                elif isinstance(shape, QText) and shape.choices is None:
                    at = TEXT_AT.get(q.name, "a" * shape.max_len)
                    cases = [(at, False), (at + "a", True)]
                    if isinstance(q.shape, QRequired):  # at least one character
                        cases.append(("", True))
                for raw, past in cases:
                    params = {**QUERY_BASES.get(route.path, {}), q.name: raw}
                    data = b"x" if route.path == "/api/uploads" else None
                    got = refusal_or_status(
                        await api.call(route.method, route.path, data=data, params=params)
                    )
                    if past:
                        with pytest.raises(UsageError) as refused:
                            q.shape.parse(raw, q.name)
                        assert got == (400, "usage", refused.value.detail), (route.path, q.name)
                    else:
                        assert got == (route.reply.status,), (route.path, q.name, raw[:10])
                    queried.add((route.path, q.name, raw))
        return queried
