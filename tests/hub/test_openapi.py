"""The OpenAPI document describes the hub API as create_app registers and serves it."""

from __future__ import annotations

import io
import itertools
import json
import os
import re
import string
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from openapi_schema_validator import OAS31Validator
from openapi_spec_validator import validate as validate_spec

from globe_io.errors import PayloadTooLarge, RateLimited
from hub import db
from hub import web as hub_web
from hub.blobs import BlobStore
from hub.openapi import ApiLimits, openapi_document, problem_types
from hub.push import Pusher
from hub.push import add_routes as add_push_routes
from hub.routing import Router, RoutingLimits
from hub.service import HubService
from hub.web import PROBLEM_TYPE, create_app
from protocol import canonical, labels
from protocol.devnet import DevNetwork, build_devnet
from protocol.envelope import SealTo, envelope_hash, parse_envelope, seal_envelope
from protocol.errors import (
    DecodeError,
    GlobeError,
    InvalidIdentifier,
    InvalidJson,
    MalformedError,
    NonCanonical,
    ReplayError,
    StorageError,
    Truncated,
    UnknownField,
    UnknownMember,
)
from protocol.ids import ISO_COUNTRIES, AuthorityId, MessageId
from protocol.keys import KemPrivateKey, SigningKey
from protocol.keyupdate import make_key_update
from protocol.membership import AUTHORITY_KINDS, kem_pop_answer, make_application
from protocol.prekeys import make_prekey
from protocol.profile import OFFENCE_AREAS, Contact, make_profile
from protocol.receipts import MAX_RECEIPT_SIZE, Evidence, EvidenceKind, make_receipt
from protocol.requestauth import HEADER, HUB_AUDIENCE, sign_request
from protocol.signed import SignedObject

METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")
# Streams and blobs are exercised by tests/hub/test_push.py and test_blobs.py, not by
# the live schema check here (a WebSocket and binary bodies have no JSON schema).
STREAMED = {("GET", "/v1/stream"), ("PUT", "/v1/blobs/{blob_id}"), ("GET", "/v1/blobs/{blob_id}")}
#: Successes that are not JSON: the upgrade, the raw ciphertext and the metrics text.
NOT_JSON = {("GET", "/v1/stream"), ("GET", "/v1/blobs/{blob_id}"), ("GET", "/metrics")}
AUTHENTICATED = {
    ("PUT", "/v1/blobs/{blob_id}"),
    ("GET", "/v1/blobs/{blob_id}"),
    ("PUT", "/v1/prekeys"),
    ("PUT", "/v1/profile"),
    ("POST", "/v1/messages"),
    ("POST", "/v1/messages/batch"),
    ("GET", "/v1/mailbox"),
    ("POST", "/v1/mailbox/ack"),
}
#: Small routing limits, so that the live test reaches 413 and 507 cheaply.
ROUTING = RoutingLimits(max_envelope=16 * 1024, mailbox_count=2)
#: What the fixture's app states in its document.
HUB_LIMITS = ApiLimits(max_envelope=ROUTING.max_envelope)


@dataclass
class Hub:
    net: DevNetwork
    service: HubService
    app: web.Application


@pytest.fixture
async def hub(tmp_path: Path) -> AsyncIterator[Hub]:
    """A started hub, with the message routes, on a fresh SQLite database.

    Its own fixture (not conftest's): the document is checked against one app on
    one backend, with a real clock.
    """
    net = build_devnet(b"openapi")
    engine = db.make_engine(f"sqlite+aiosqlite:///{tmp_path / 'hub.db'}")
    try:
        await db.migrate(engine)
        service = HubService(genesis=net.genesis, hub_key=net.hub, engine=engine, clock=time.time)
        await service.start()
        router = Router(service, limits=ROUTING)
        app = create_app(
            service,
            clock=time.monotonic,
            router=router,
            blobs=BlobStore(service, tmp_path / "blobs"),
            burst=1000,  # the live check makes more requests than the default burst allows
        )
        add_push_routes(app, Pusher(router, service))
        yield Hub(net, service, app)
    finally:
        await engine.dispose()


@pytest.fixture
def doc() -> dict[str, Any]:
    return openapi_document()


def _operations(doc: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    for path, item in doc["paths"].items():
        for method in METHODS:
            if method in item:
                yield method.upper(), path, item[method]


def _resolve(doc: dict[str, Any], ref: str) -> Any:
    assert ref.startswith("#/"), ref
    node: Any = doc
    for escaped in ref[2:].split("/"):
        part = escaped.replace("~1", "/").replace("~0", "~")
        assert isinstance(node, dict), ref
        assert part in node, f"{ref} does not resolve"
        node = node[part]
    return node


def _deref(doc: dict[str, Any], node: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in node:
        node = _resolve(doc, node["$ref"])
    return node


def _refs(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "$ref":
                assert isinstance(value, str)
                yield value
            else:
                yield from _refs(value)
    elif isinstance(node, list):
        for value in node:
            yield from _refs(value)


# --- (1) routes ----------------------------------------------------------------------------


async def test_document_names_exactly_the_registered_routes(hub: Hub, doc: dict[str, Any]):
    registered = {
        (route.method, route.resource.canonical)
        for route in hub.app.router.routes()
        if route.method != "HEAD" and route.resource is not None
    }
    documented = {(method, path) for method, path, _ in _operations(doc)}
    assert documented == registered
    assert len(registered) == 33
    assert {
        ("POST", "/v1/messages"),
        ("POST", "/v1/messages/batch"),
        ("GET", "/v1/mailbox"),
        ("POST", "/v1/mailbox/ack"),
    } <= registered


def test_signed_routes_and_only_those_require_globe_auth(doc: dict[str, Any]):
    scheme = doc["components"]["securitySchemes"]["GlobeAuth"]
    assert scheme["type"] == "apiKey"
    assert scheme["in"] == "header"
    assert scheme["name"] == HEADER == "Globe-Auth"
    for token in ("v1;kid=", ";created=", ";nonce=", ";sig=", "§10", f'"{HUB_AUDIENCE}"'):
        assert token in scheme["description"]
    for method, path, op in _operations(doc):
        signed = path.startswith("/v1/admin/") or (method, path) in AUTHENTICATED
        assert ("security" in op) == signed, (method, path)
        if signed:
            assert op["security"] == [{"GlobeAuth": []}]
            expected = {"401"} if (method, path) in STREAMED else {"401", "409", "413"}
            assert expected <= set(op["responses"]), (method, path)
    assert "security" not in doc  # public unless stated


def test_query_parameters_match_web_validation(doc: dict[str, Any]):
    def params(path: str) -> dict[str, dict[str, Any]]:
        return {p["name"]: p for p in doc["paths"][path]["get"].get("parameters", [])}

    log = params("/v1/directory/log")
    assert log["since"]["schema"] == {
        "type": "integer",
        "format": "int64",
        "minimum": 0,
        "maximum": 2**53 - 1,
        "default": 0,
    }
    assert (log["limit"]["schema"]["minimum"], log["limit"]["schema"]["maximum"]) == (1, 500)
    search = params("/v1/directory/search")
    assert set(search) == {"country", "kind", "offence", "language", "q", "inactive", "limit"}
    # Exactly the values hub.web accepts ("" is the same as absent).
    assert search["country"]["schema"]["maxLength"] == hub_web.SEARCH_COUNTRY.max_len == 100
    assert search["offence"]["schema"] == {"type": "string", "enum": ["", *sorted(OFFENCE_AREAS)]}
    assert search["kind"]["schema"] == {"type": "string", "enum": ["", *sorted(AUTHORITY_KINDS)]}
    assert search["language"]["schema"] == {
        "type": "string",
        "maxLength": 2,
        "pattern": "^(?:[a-z]{2})?$",
    }
    assert search["q"]["schema"]["maxLength"] == hub_web.SEARCH_TEXT.max_len == 200
    assert search["inactive"]["schema"] == {"type": "string", "examples": ["1"]}
    mailbox = params("/v1/mailbox")
    assert set(mailbox) == {"after", "limit"}
    assert mailbox["after"]["schema"]["default"] == 0
    assert mailbox["limit"]["schema"]["maximum"] == RoutingLimits().page_size
    assert mailbox["after"]["schema"]["maximum"] == 2**53 - 1
    audit = params("/v1/admin/audit")
    assert audit["limit"]["schema"]["maximum"] == hub_web.AUDIT_MAX == 10_000
    assert audit["limit"]["schema"]["default"] == hub_web.AUDIT_PAGE == 1000
    assert audit["since"]["schema"]["maximum"] == 2**53 - 1
    for admin_list in ("/v1/admin/applications", "/v1/admin/proposals"):
        assert params(admin_list)["status"]["schema"]["maxLength"] == 16
    for method, path, op in _operations(doc):
        templated = {seg[1:-1] for seg in path.split("/") if seg.startswith("{")}
        in_path = {p["name"] for p in op.get("parameters", []) if p["in"] == "path"}
        assert templated == in_path, (method, path)
        if any(p["in"] == "query" for p in op.get("parameters", [])):
            assert "400" in op["responses"], (method, path)


# --- (2) references ------------------------------------------------------------------------


def test_every_reference_resolves(doc: dict[str, Any]):
    refs = set(_refs(doc))
    assert refs
    for ref in refs:
        _resolve(doc, ref)
    schemas = doc["components"]["schemas"]
    used = {r.rsplit("/", 1)[1] for r in refs if r.startswith("#/components/schemas/")}
    assert used == set(schemas), "unused or missing schemas"


def test_every_response_has_a_resolvable_schema_and_errors_are_problems(doc: dict[str, Any]):
    for method, path, op in _operations(doc):
        assert op["responses"], (method, path)
        for status, response in op["responses"].items():
            resolved = _deref(doc, response)
            assert resolved["description"]
            if (method, path) in NOT_JSON and status in ("101", "200"):
                # An upgrade, raw ciphertext, or metrics text.
                assert set(resolved.get("content", {})) <= {
                    "application/octet-stream",
                    "text/plain",
                }
                continue
            content = resolved["content"]
            if int(status) >= 400:
                assert list(content) == [PROBLEM_TYPE], (method, path, status)
                schema = _deref(doc, content[PROBLEM_TYPE]["schema"])
                assert schema is doc["components"]["schemas"]["Problem"]
            else:
                assert list(content) == ["application/json"], (method, path, status)
                assert _deref(doc, content["application/json"]["schema"])
            if status in ("429", "503"):  # what globe_io.web.problem sends with them
                retry = resolved["headers"]["Retry-After"]
                assert retry["required"] is True
                assert retry["schema"] == {"type": "integer", "minimum": 1}
            else:
                assert "Retry-After" not in resolved.get("headers", {}), (method, path, status)
        # Closed responses: every status listed, nothing left to a catch-all.
        assert "default" not in op["responses"], (method, path)
        assert {"429", "500"} <= set(op["responses"]), (method, path)
    body_ops = {(m, p) for m, p, op in _operations(doc) if "requestBody" in op}
    assert body_ops == {
        ("POST", "/v1/applications"),
        ("POST", "/v1/applications/{app_id}/proof"),
        ("PUT", "/v1/prekeys"),
        ("PUT", "/v1/profile"),
        ("POST", "/v1/admin/applications/{app_id}/reject"),
        ("POST", "/v1/key-updates"),
        ("POST", "/v1/key-updates/{ku_id}/proof"),
        ("POST", "/v1/admin/key-updates/{ku_id}/reject"),
        ("POST", "/v1/admin/actions"),
        ("POST", "/v1/messages"),
        ("POST", "/v1/messages/batch"),
        ("POST", "/v1/mailbox/ack"),
        ("PUT", "/v1/blobs/{blob_id}"),
    }
    submit = doc["paths"]["/v1/messages"]["post"]
    assert list(submit["requestBody"]["content"]) == ["application/octet-stream"]
    assert {"400", "401", "403", "409", "410", "413", "503", "507"} <= set(submit["responses"])


def test_the_batch_route_is_documented_as_web_reads_it(doc: dict[str, Any]):
    """``POST /v1/messages/batch``: exactly the whole-request refusals ``post_messages_batch``
    can answer (no 403, 410, 503 or 507: those are per envelope, in the 200 answer)."""
    op = doc["paths"]["/v1/messages/batch"]["post"]
    assert (op["operationId"], op["tags"], op["security"]) == (
        "submitMessages",
        ["messages"],
        [{"GlobeAuth": []}],
    )
    assert set(op["responses"]) == {"200", "400", "401", "409", "413", "429", "500"}
    ok = op["responses"]["200"]["content"]["application/json"]["schema"]
    assert ok == {"$ref": "#/components/schemas/Submissions"}
    assert str(hub_web.BATCH_MAX_BODY) in op["responses"]["413"]["description"]
    assert (
        "POST /v1/messages/batch"
        in (doc["components"]["securitySchemes"]["GlobeAuth"]["description"])
    )
    for field in ("`status`", "`evidence`", "`type`", "`detail`", "`retry_after`"):
        assert field in op["description"], field
    body = op["requestBody"]
    assert body["required"] is True
    assert body["content"] == {
        "application/json": {"schema": {"$ref": "#/components/schemas/Batch"}}
    }
    schemas = doc["components"]["schemas"]
    batch = schemas["Batch"]
    assert (batch["required"], batch["additionalProperties"]) == (["envelopes"], False)
    envelopes = batch["properties"]["envelopes"]
    assert (envelopes["minItems"], envelopes["maxItems"]) == (1, hub_web.BATCH_MAX_ITEMS)
    assert envelopes["maxItems"] == 64
    item = envelopes["items"]
    assert (item["minLength"], "maxLength" in item) == (2, False)  # the size is per envelope
    assert item["pattern"] == schemas["Ack"]["properties"]["receipts"]["items"]["pattern"]
    results = schemas["Submissions"]["properties"]["results"]
    assert (results["minItems"], results["maxItems"]) == (1, hub_web.BATCH_MAX_ITEMS)
    assert results["items"] == {"$ref": "#/components/schemas/Submission"}
    submission = {**schemas["Submission"], "components": doc["components"]}
    assert submission["required"] == ["status"]
    validator = OAS31Validator(submission)
    evidence, problem = canonical.b64e(b"{}"), StorageError.type_uri()
    for item, valid in (
        ({"status": 201, "evidence": evidence}, True),
        ({"status": 200, "evidence": evidence}, True),
        ({"status": 403, "type": problem, "detail": "d", "evidence": evidence}, True),
        ({"status": 503, "type": problem, "detail": "d", "retry_after": 1}, True),
        ({"status": 201}, False),  # accepted: with its evidence
        ({"status": 201, "evidence": evidence, "detail": "d"}, False),  # and nothing else
        ({"status": 400, "detail": "d"}, False),  # refused: with its type
        ({"status": 302, "type": problem, "detail": "d"}, False),
        ({"status": 429, "type": problem, "detail": "d", "retry_after": 0}, False),
        ({"status": 400, "type": problem, "detail": "d", "other": 1}, False),
    ):
        assert validator.is_valid(item) is valid, item


def test_problem_schema_lists_every_error_class():
    problem = openapi_document()["components"]["schemas"]["Problem"]
    assert problem["required"] == ["type", "title", "status", "detail", "instance"]
    # The percent-encoded path (globe_io.web.instance_of): schemathesis validates the format.
    assert problem["properties"]["instance"]["format"] == "uri-reference"
    listed = {t["type"] for t in problem["x-problem-types"]}
    stack: list[type[GlobeError]] = [GlobeError]
    expected: set[str] = set()
    while stack:
        cls = stack.pop()
        stack.extend(cls.__subclasses__())
        if cls.__module__.split(".")[0] in {"protocol", "globe_io", "hub"} and "slug" in vars(cls):
            expected.add(cls.type_uri())
    assert {e.split("/")[-1] for e in expected} >= {
        "state-conflict", "rate-limited", "replay", "method-not-allowed", "http",
    }  # fmt: skip
    assert expected == listed
    for uri in listed:
        assert uri in problem["description"]
    assert problem["x-problem-types"] == problem_types()


# --- (3) the document ----------------------------------------------------------------------


def test_document_is_json_and_openapi_3_1(doc: dict[str, Any]):
    text = json.dumps(doc, allow_nan=False)
    assert json.loads(text) == doc
    assert doc["openapi"] == "3.1.0"
    assert doc["info"]["version"] == "1"
    assert doc["servers"] == [{"url": "/", "description": "This hub."}]
    for word in ("Globe-Auth", "problem+json", "canonical"):
        assert word in doc["info"]["description"]
    assert openapi_document() == doc  # deterministic
    validate_spec(doc)


# --- (4) served document and live responses ------------------------------------------------


async def test_served_document_is_openapi_document(hub: Hub):
    expected = openapi_document(HUB_LIMITS)
    async with TestClient(TestServer(hub.app)) as client:
        resp = await client.get("/v1/openapi.json")
        assert resp.status == 200
        assert resp.content_type == "application/json"
        assert await resp.read() == orjson.dumps(expected)
        assert await resp.json() == expected


async def test_served_document_states_this_hubs_limits(hub: Hub, tmp_path: Path):
    """The limits in the served document are the serving app's, not a second copy."""
    router = Router(hub.service, limits=RoutingLimits(page_size=3, max_envelope=4096))
    app = create_app(
        hub.service,
        clock=time.monotonic,
        max_body=2048,
        page_size=7,
        router=router,
        blobs=BlobStore(hub.service, tmp_path / "small-blobs", max_blob=10),
    )
    limits = ApiLimits(max_body=2048, page_size=7, mailbox_page=3, max_envelope=4096, max_blob=10)
    async with TestClient(TestServer(app)) as client:
        resp = await client.get("/v1/openapi.json")
        served = await resp.json()
        assert served == openapi_document(limits)
        assert served != openapi_document()
        paths = served["paths"]
        log_limit = paths["/v1/directory/log"]["get"]["parameters"][1]["schema"]
        assert (log_limit["maximum"], log_limit["default"]) == (7, 7)
        mailbox_limit = paths["/v1/mailbox"]["get"]["parameters"][1]["schema"]
        assert (mailbox_limit["maximum"], mailbox_limit["default"]) == (3, 3)
        assert (
            served["components"]["schemas"]["MailboxPage"]["properties"]["items"]["maxItems"] == 3
        )
        data = served["components"]["schemas"]["MailboxItem"]["properties"]["data"]
        assert data["maxLength"] == (4 * 4096 + 2) // 3
        assert "2048 bytes" in served["components"]["responses"]["PayloadTooLarge"]["description"]
        assert (
            "(10 bytes)" in paths["/v1/blobs/{blob_id}"]["put"]["responses"]["413"]["description"]
        )
        # The cap of an acknowledgement is never below what its item limits allow.
        ack_413 = paths["/v1/mailbox/ack"]["post"]["responses"]["413"]["description"]
        assert f"{hub_web.ACK_MAX_BODY} bytes" in ack_413
        over = await client.get("/v1/directory/log?limit=8")
        assert over.status == 400


def test_text_patterns_are_the_servers_rules(doc: dict[str, Any]):
    """Each pattern accepts exactly what the code it documents accepts, code point by code point."""
    search = {p["name"]: p for p in doc["paths"]["/v1/directory/search"]["get"]["parameters"]}
    visible = re.compile(search["q"]["schema"]["pattern"])
    reason = doc["components"]["schemas"]["Rejection"]["properties"]["reason"]
    not_blank = re.compile(reason["pattern"])
    for code in range(0x110000):
        char = chr(code)
        hidden = canonical.has_hidden_chars(char)
        assert (visible.fullmatch(f"a{char}b") is not None) is not hidden, hex(code)
        kept = not hidden and char.strip() != ""
        assert (not_blank.fullmatch(f" {char}\n") is not None) is kept, hex(code)
    assert not_blank.fullmatch("line one\n\tline two") is not None
    assert not_blank.fullmatch(" \n\t\u3000") is None


def test_base64url_patterns_are_canonical_b64d(doc: dict[str, Any]):
    """A string matches the base64url patterns iff ``canonical.b64d`` takes it."""
    ack = doc["components"]["schemas"]["Ack"]["properties"]["receipts"]["items"]
    bounded = re.compile(ack["pattern"])
    assert (ack["minLength"], ack["maxLength"]) == (2, (4 * MAX_RECEIPT_SIZE + 2) // 3)
    alphabet = string.ascii_letters + string.digits + "-_"
    for n in range(1, 4):  # every final group: the last character carries the spare bits
        for chars in itertools.product(alphabet, repeat=n):
            text = "AAAA" + "".join(chars)
            try:
                canonical.b64d(text, what="t")
            except DecodeError:
                assert bounded.fullmatch(text) is None, text
            else:
                assert bounded.fullmatch(text) is not None, text
    assert bounded.fullmatch("AAA=") is None  # unpadded only
    answer = doc["components"]["schemas"]["Proof"]["properties"]["answer"]
    exact = re.compile(answer["pattern"])
    for _ in range(200):
        secret = os.urandom(hub_web.POP_ANSWER_BYTES)
        assert exact.fullmatch(canonical.b64e(secret)) is not None
    assert exact.fullmatch(canonical.b64e(bytes(hub_web.POP_ANSWER_BYTES))[:-1] + "B") is None
    assert exact.fullmatch(canonical.b64e(bytes(hub_web.POP_ANSWER_BYTES + 1))) is None


def test_authority_id_pattern_is_authority_id_parse(doc: dict[str, Any]):
    pattern = re.compile(doc["components"]["schemas"]["AuthorityId"]["pattern"])
    samples = [f"{c}-{rest}" for c in sorted(ISO_COUNTRIES) for rest in ("PNF", "A1")]
    samples += ["XX-PNF", "ZZ-PNF", "fr-pnf", "FR-P", "FR-" + "A" * 17, "FR_PNF", "FRA-PNF"]
    samples += ["FR-" + "9" * 16, "QQ-AB", "EU-OLAF"]
    for text in samples:
        try:
            AuthorityId.parse(text)
        except InvalidIdentifier:
            assert pattern.fullmatch(text) is None, text
        else:
            assert pattern.fullmatch(text) is not None, text


class Checker:
    """Checks that a live response is documented for its operation and matches its schema."""

    def __init__(
        self,
        client: TestClient[web.Request, web.Application],
        net: DevNetwork,
        limits: ApiLimits = HUB_LIMITS,
    ) -> None:
        self.client = client
        self.net = net
        self.doc = openapi_document(limits)
        self.seen: set[tuple[str, str, int]] = set()

    async def call(
        self,
        method: str,
        template: str,
        status: int,
        *,
        path: str | None = None,
        body: bytes = b"",
        key: SigningKey | None = None,
        headers: dict[str, str] | None = None,
    ) -> Any:
        target = path or template
        all_headers = dict(headers or {})
        if key is not None:
            all_headers[HEADER] = sign_request(
                key=key,
                network=self.net.genesis.digest,
                audience=HUB_AUDIENCE,
                method=method,
                target=target,
                body=body,
                created=int(time.time()),
            )
        # aiohttp warns about (and blocks on) raw bodies over 1 MiB; a stream it is not.
        data = io.BytesIO(body) if len(body) > 1 << 20 else body
        resp = await self.client.request(method, target, data=data, headers=all_headers)
        raw = await resp.read()
        assert resp.status == status, (method, target, raw[:300])
        op = self.doc["paths"].get(template, {}).get(method.lower())
        if op is None:
            assert status == 405
            response = self.doc["components"]["responses"]["MethodNotAllowed"]
        else:
            assert str(status) in op["responses"], f"{method} {template}: {status} undocumented"
            response = _deref(self.doc, op["responses"][str(status)])
        content_type = resp.headers["Content-Type"].split(";")[0]
        media = response["content"][content_type]
        value = orjson.loads(raw)
        schema = {**media["schema"], "components": self.doc["components"]}
        OAS31Validator(schema).validate(value)
        for name, header in response.get("headers", {}).items():
            if header.get("required"):
                assert name in resp.headers
        if status >= 400:
            assert value["instance"] == target.split("?")[0]
            assert value["type"] in {t["type"] for t in problem_types()}
        self.seen.add((method, template, status))
        return value


async def test_live_responses_match_the_document(hub: Hub, monkeypatch: pytest.MonkeyPatch):
    net = hub.net
    admins = net.admins
    now = int(time.time())
    identity, transport = SigningKey.generate(), SigningKey.generate()
    ka = KemPrivateKey.generate()
    authority = AuthorityId.parse("FR-PNF")
    application = make_application(
        genesis=net.genesis,
        authority=authority,
        name="Parquet national financier",
        kinds=["anti-corruption"],
        languages=["en", "fr"],
        contact="duty officer",
        legal_basis="UNCAC art. 36",
        endpoint=None,
        identity=identity,
        transport=transport,
        ka_key=ka.public_key,
        created=now,
    )
    async with TestClient(TestServer(hub.app)) as client:
        c = Checker(client, net)
        await c.call("GET", "/healthz", 200)
        await c.call("GET", "/readyz", 200)
        await c.call("GET", "/v1/directory/genesis", 200)
        await c.call("GET", "/v1/openapi.json", 200)

        created = await c.call("POST", "/v1/applications", 201, body=application.signed.encode())
        app_id = created["id"]
        await c.call("POST", "/v1/applications", 409, body=application.signed.encode())
        await c.call("POST", "/v1/applications", 400, body=b"{}")
        one = "/v1/applications/{app_id}"
        assert (await c.call("GET", one, 200, path=f"/v1/applications/{app_id}"))["reason"] is None
        await c.call("GET", one, 404, path="/v1/applications/" + "0" * 32)
        await c.call("GET", one, 404, path="/v1/applications/nothex")

        proof = "/v1/applications/{app_id}/proof"
        answer = kem_pop_answer(
            ka, application.digest, canonical.b64d(created["challenge"], what="c")
        )
        bad = orjson.dumps({"answer": canonical.b64e(bytes(32))})
        await c.call("POST", proof, 400, path=f"/v1/applications/{app_id}/proof", body=bad)
        good = orjson.dumps({"answer": canonical.b64e(answer)})
        await c.call("POST", proof, 200, path=f"/v1/applications/{app_id}/proof", body=good)
        await c.call("POST", proof, 409, path=f"/v1/applications/{app_id}/proof", body=good)

        listed = await c.call("GET", "/v1/admin/applications", 200, key=admins[0])
        assert [a["id"] for a in listed["applications"]] == [app_id]
        await c.call("GET", "/v1/admin/applications", 401)
        await c.call(
            "GET",
            "/v1/admin/applications",
            400,
            path="/v1/admin/applications?status=" + "x" * 17,
            key=admins[0],
        )
        detail = await c.call(
            "GET",
            "/v1/admin/applications/{app_id}",
            200,
            path=f"/v1/admin/applications/{app_id}",
            key=admins[1],
        )
        draft = SignedObject(canonical.b64d(detail["draft"], what="draft"), ())
        first = draft.with_signature(labels.MEMBERSHIP_ACTION, admins[0]).encode()
        result = await c.call("POST", "/v1/admin/actions", 200, body=first, key=admins[0])
        assert result["status"] == "open"
        assert "seq" not in result
        second = draft.with_signature(labels.MEMBERSHIP_ACTION, admins[1]).encode()
        result = await c.call("POST", "/v1/admin/actions", 200, body=second, key=admins[1])
        assert (result["status"], result["seq"]) == ("appended", 1)
        await c.call("POST", "/v1/admin/actions", 409, body=second, key=admins[2])

        proposals = await c.call("GET", "/v1/admin/proposals", 200, key=admins[2])
        assert proposals["proposals"][0]["status"] == "appended"
        audit = await c.call("GET", "/v1/admin/audit", 200, key=admins[2])
        assert audit["records"]
        await c.call(
            "GET", "/v1/admin/audit", 400, path="/v1/admin/audit?limit=10001", key=admins[2]
        )

        log = await c.call("GET", "/v1/directory/log", 200)
        assert (len(log["entries"]), log["next"]) == (1, None)
        await c.call("GET", "/v1/directory/log", 400, path="/v1/directory/log?limit=0")
        await c.call("GET", "/v1/directory/log", 400, path="/v1/directory/log?since=-1")
        await c.call("GET", "/v1/directory/checkpoint", 200)
        found = await c.call(
            "GET", "/v1/directory/search", 200, path="/v1/directory/search?country=FR&inactive=1"
        )
        assert [m["authority"] for m in found["results"]] == ["FR-PNF"]
        long_name = "/v1/directory/search?country=" + "x" * 101
        await c.call("GET", "/v1/directory/search", 400, path=long_name)

        # Query rules, at their edges: exactly the documented schemas.
        top = 2**53 - 1
        for template, target in (
            ("/v1/directory/log", f"/v1/directory/log?since={top}"),
            ("/v1/directory/log", "/v1/directory/log?since=0000000000000000001"),
            ("/v1/directory/search", "/v1/directory/search?country=&kind=&language=&q="),
            ("/v1/directory/search", "/v1/directory/search?kind=anti-corruption&language=fr"),
            ("/v1/directory/search", "/v1/directory/search?q=a%09b&inactive=yes"),
        ):
            await c.call("GET", template, 200, path=target)
        for template, query in (
            ("/v1/directory/log", f"since={top + 1}"),
            ("/v1/directory/log", "since=1&since=2"),
            ("/v1/directory/log", "since=+1"),
            ("/v1/directory/search", "country=%E2%80%AEFrance"),
            ("/v1/directory/search", "offence=fraud"),
            ("/v1/directory/search", "kind=police"),
            ("/v1/directory/search", "language=EN"),
            ("/v1/directory/search", "language=f"),
            ("/v1/directory/search", "q=a%07b"),
            ("/v1/directory/search", "q=%E2%80%AE"),
            ("/v1/directory/search", "inactive=1&inactive=1"),
            ("/v1/directory/search", "limit=1&limit=2"),
        ):
            await c.call("GET", template, 400, path=f"{template}?{query}")
        await c.call(
            "GET", "/v1/admin/audit", 200, path=f"/v1/admin/audit?since={top}", key=admins[2]
        )
        # A control character in the path: the problem's instance is percent-encoded.
        await c.call("GET", one, 404, path="/v1/applications/%07%E2%80%AE")

        prekey = make_prekey(
            genesis=net.genesis,
            authority=authority,
            identity=identity,
            key=KemPrivateKey.generate().public_key,
            not_before=now,
            not_after=now + 86400,
        ).signed.encode()
        put = await c.call("PUT", "/v1/prekeys", 201, body=prekey, key=transport)
        assert put["authority"] == "FR-PNF"
        await c.call("PUT", "/v1/prekeys", 409, body=prekey, key=transport)
        await c.call("PUT", "/v1/prekeys", 401, body=prekey, key=identity)
        await c.call("PUT", "/v1/prekeys", 413, body=b"{" + b" " * 70_000 + b"}", key=transport)
        published = make_profile(
            genesis=net.genesis, authority=authority, seq=1, identity=identity,
            offences=["bribery"], contacts=[Contact(role="duty-desk", hours="24/7")],
        ).signed.encode()  # fmt: skip
        done = await c.call("PUT", "/v1/profile", 201, body=published, key=transport)
        assert (done["seq"], done["entry"]) == (1, 2)
        await c.call("PUT", "/v1/profile", 409, body=published, key=transport)  # replayed
        forged_by_transport = make_profile(
            genesis=net.genesis, authority=authority, seq=2, identity=transport
        ).signed.encode()
        await c.call("PUT", "/v1/profile", 403, body=forged_by_transport, key=transport)
        await c.call("PUT", "/v1/profile", 400, body=b"{}", key=transport)
        await c.call("PUT", "/v1/profile", 401, body=published)
        await c.call("PUT", "/v1/profile", 413, body=b"{" + b" " * 70_000 + b"}", key=transport)

        # A key update (PROTOCOL.md §6.8): asked, proven, listed, shown, rejected.
        new_identity, new_transport, new_ka = (
            SigningKey.generate(),
            SigningKey.generate(),
            KemPrivateKey.generate(),
        )
        request = make_key_update(
            genesis=net.genesis, authority=authority, current=identity, identity=new_identity,
            transport=new_transport, ka_key=new_ka.public_key, created=now,
        ).encode()  # fmt: skip
        ku = await c.call("POST", "/v1/key-updates", 201, body=request)
        assert ku["replaced"] == ["identity", "transport", "key-agreement"]
        assert await c.call("POST", "/v1/key-updates", 201, body=request) == ku  # the same
        second = make_key_update(
            genesis=net.genesis, authority=authority, current=identity,
            identity=SigningKey.generate(), transport=SigningKey.generate(),
            ka_key=KemPrivateKey.generate().public_key, created=now,
        ).encode()  # fmt: skip
        await c.call("POST", "/v1/key-updates", 409, body=second)  # one open per member
        await c.call("POST", "/v1/key-updates", 400, body=b"{}")
        forged = make_key_update(
            genesis=net.genesis, authority=authority, current=new_identity,
            identity=new_identity, transport=new_transport, ka_key=new_ka.public_key,
            created=now,
        ).encode()  # fmt: skip
        await c.call("POST", "/v1/key-updates", 401, body=forged)
        ku_one, ku_path = "/v1/key-updates/{ku_id}", f"/v1/key-updates/{ku['id']}"
        assert (await c.call("GET", ku_one, 200, path=ku_path))["status"] == "awaiting-pop"
        await c.call("GET", ku_one, 404, path="/v1/key-updates/" + "0" * 32)
        ku_proof = "/v1/key-updates/{ku_id}/proof"
        digest = SignedObject.decode(request, max_size=1 << 16, what="r").digest()
        secret = kem_pop_answer(new_ka, digest, canonical.b64d(ku["challenge"], what="c"))
        await c.call("POST", ku_proof, 400, path=f"{ku_path}/proof", body=bad)
        proven = orjson.dumps({"answer": canonical.b64e(secret)})
        await c.call("POST", ku_proof, 200, path=f"{ku_path}/proof", body=proven)
        await c.call("POST", ku_proof, 409, path=f"{ku_path}/proof", body=proven)
        listed = await c.call("GET", "/v1/admin/key-updates", 200, key=admins[0])
        assert [k["id"] for k in listed["key_updates"]] == [ku["id"]]
        shown = await c.call(
            "GET", "/v1/admin/key-updates/{ku_id}", 200,
            path=f"/v1/admin/key-updates/{ku['id']}", key=admins[0],
        )  # fmt: skip
        assert shown["draft"] is not None
        ku_reject = "/v1/admin/key-updates/{ku_id}/reject"
        why = orjson.dumps({"reason": "not asked by the authority"})
        await c.call(
            "POST", ku_reject, 200, path=f"/v1/admin/key-updates/{ku['id']}/reject", body=why,
            key=admins[0],
        )  # fmt: skip
        await c.call(
            "POST", ku_reject, 409, path=f"/v1/admin/key-updates/{ku['id']}/reject", body=why,
            key=admins[0],
        )  # fmt: skip
        keys = "/v1/prekeys/{authority}"
        assert len((await c.call("GET", keys, 200, path="/v1/prekeys/FR-PNF"))["prekeys"]) == 1
        await c.call("GET", keys, 403, path="/v1/prekeys/DE-BKA")
        await c.call("GET", keys, 400, path="/v1/prekeys/fr-pnf")

        reject = "/v1/admin/applications/{app_id}/reject"
        other = make_application(
            genesis=net.genesis,
            authority=AuthorityId.parse("DE-BKA"),
            name="Bundeskriminalamt",
            kinds=["anti-corruption"],
            languages=["de"],
            contact="duty officer",
            legal_basis="UNCAC art. 36",
            endpoint=None,
            identity=SigningKey.generate(),
            transport=SigningKey.generate(),
            ka_key=KemPrivateKey.generate().public_key,
            created=now,
        )
        other_id = (await c.call("POST", "/v1/applications", 201, body=other.signed.encode()))["id"]
        why = orjson.dumps({"reason": "not a competent authority"})
        path = f"/v1/admin/applications/{other_id}/reject"
        assert (await c.call("POST", reject, 200, path=path, body=why, key=admins[2]))[
            "status"
        ] == "rejected"
        status = await c.call("GET", one, 200, path=f"/v1/applications/{other_id}")
        assert status["reason"] == "not a competent authority"
        path = f"/v1/admin/applications/{app_id}/reject"
        await c.call("POST", reject, 409, path=path, body=why, key=admins[0])
        await c.call("POST", reject, 400, path=path, body=b"[]", key=admins[0])
        await c.call(
            "POST", reject, 404, path="/v1/admin/applications/x/reject", body=why, key=admins[0]
        )
        await c.call("POST", "/healthz", 405)

        # Messages: a second member, then envelopes, the mailbox and acknowledgements.
        es = AuthorityId.parse("ES-FCC")
        es_identity, es_transport = SigningKey.generate(), SigningKey.generate()
        es_ka = KemPrivateKey.generate()
        es_application = make_application(
            genesis=net.genesis,
            authority=es,
            name="Fiscalia contra la Corrupcion",
            kinds=["anti-corruption"],
            languages=["es"],
            contact="duty officer",
            legal_basis="UNCAC art. 36",
            endpoint=None,
            identity=es_identity,
            transport=es_transport,
            ka_key=es_ka.public_key,
            created=now,
        )
        es_created = await c.call(
            "POST", "/v1/applications", 201, body=es_application.signed.encode()
        )
        es_id = es_created["id"]
        es_answer = kem_pop_answer(
            es_ka, es_application.digest, canonical.b64d(es_created["challenge"], what="c")
        )
        es_proof = orjson.dumps({"answer": canonical.b64e(es_answer)})
        await c.call("POST", proof, 200, path=f"/v1/applications/{es_id}/proof", body=es_proof)
        es_detail = await c.call(
            "GET",
            "/v1/admin/applications/{app_id}",
            200,
            path=f"/v1/admin/applications/{es_id}",
            key=admins[0],
        )
        es_draft = SignedObject(canonical.b64d(es_detail["draft"], what="draft"), ())
        for i in (0, 1):
            signed = es_draft.with_signature(labels.MEMBERSHIP_ACTION, admins[i]).encode()
            await c.call("POST", "/v1/admin/actions", 200, body=signed, key=admins[i])

        def seal(
            to: AuthorityId = es,
            *,
            created: int = now,
            lifetime: int = 3600,
            mid: MessageId | None = None,
            content: bytes = b'{"text":"hello"}',
        ) -> bytes:
            return seal_envelope(
                genesis=net.genesis,
                sender=authority,
                identity=identity,
                recipients=[SealTo(to, 1, es_ka.public_key)],
                content=content,
                created=created,
                expires=created + lifetime,
                dir_seq=hub.service.state.seq,
                dir_head=hub.service.state.head,
                message_id=mid,
            )

        messages = "/v1/messages"
        env = seal()
        mid = parse_envelope(env).header.message_id
        evidence = await c.call("POST", messages, 201, body=env, key=transport)
        assert await c.call("POST", messages, 200, body=env, key=transport) == evidence
        await c.call("POST", messages, 409, body=seal(mid=mid, content=b"{}"), key=transport)
        await c.call("POST", messages, 400, body=b"GLBX" + env[4:], key=transport)
        await c.call("POST", messages, 401, body=env)
        await c.call("POST", messages, 403, body=seal(AuthorityId.parse("DE-BKA")), key=transport)
        await c.call("POST", messages, 410, body=seal(created=now - 7200), key=transport)
        big = bytes(ROUTING.max_envelope + 1)
        await c.call("POST", messages, 413, body=big, key=transport)
        await c.call("POST", messages, 201, body=seal(), key=transport)
        await c.call("POST", messages, 507, body=seal(), key=transport)  # 2 items waiting

        mailbox = "/v1/mailbox"
        page = await c.call("GET", mailbox, 200, key=es_transport)
        assert [i["kind"] for i in page["items"]] == ["envelope", "envelope"]
        assert canonical.b64d(page["items"][0]["data"], what="envelope") == env
        await c.call("GET", mailbox, 400, path="/v1/mailbox?limit=0", key=es_transport)
        last = await c.call("GET", mailbox, 200, path=f"/v1/mailbox?after={top}", key=es_transport)
        assert (last["items"], last["cursor"]) == ([], top)
        await c.call("GET", mailbox, 401)
        ack = "/v1/mailbox/ack"
        receipt = make_receipt(
            genesis=net.genesis,
            identity=es_identity,
            message_id=mid,
            envelope_hash=envelope_hash(env),
            sender=authority,
            recipient=es,
            time=int(time.time()),
        ).encode()
        body = orjson.dumps(
            {"receipts": [canonical.b64e(receipt), canonical.b64e(b"junk")], "notices": []}
        )
        result = await c.call("POST", ack, 200, body=body, key=es_transport)
        assert (result["released"], len(result["refused"])) == ([str(mid)], 1)
        await c.call("POST", ack, 400, body=b"{}", key=es_transport)
        await c.call("POST", ack, 401, body=body)
        (notice,) = (await c.call("GET", mailbox, 200, key=transport))["items"]
        assert notice["kind"] == "receipt"
        drop = orjson.dumps({"receipts": [], "notices": [notice["cursor"]]})
        assert (await c.call("POST", ack, 200, body=drop, key=transport))["notices"] == 1

        # The item limit, not max_body, decides an acknowledgement (both documented).
        largest = canonical.b64e(bytes(MAX_RECEIPT_SIZE))
        many = orjson.dumps({"receipts": [largest] * 20, "notices": [2**53 - 1]})
        assert len(many) > 64 * 1024
        assert len((await c.call("POST", ack, 200, body=many, key=es_transport))["refused"]) == 20
        too_many = orjson.dumps({"receipts": ["AA"] * 501, "notices": []})
        await c.call("POST", ack, 400, body=too_many, key=es_transport)
        for receipts, notices in (
            ([largest + "AA"], []),  # over MAX_RECEIPT_SIZE
            ([""], []),
            (["AB"], []),  # stray bits
            ([], [-1]),
            ([], [2**53]),
            ([], [True]),
        ):
            bad = orjson.dumps({"receipts": receipts, "notices": notices})
            await c.call("POST", ack, 400, body=bad, key=es_transport)
        padded = b'{"receipts":[],"notices":[]}' + b" " * hub_web.ACK_MAX_BODY
        await c.call("POST", ack, 413, body=padded, key=es_transport)

        # Several envelopes in one request, each judged as POST /v1/messages judges it alone.
        batch = "/v1/messages/batch"

        def envelopes(*items: bytes | str) -> bytes:
            return orjson.dumps(
                {"envelopes": [i if isinstance(i, str) else canonical.b64e(i) for i in items]}
            )

        fresh = seal()
        # A defect anywhere refuses the whole request and submits nothing (fresh stays new).
        for bad_body, refusal in (
            (envelopes(fresh, "AB"), NonCanonical),  # stray bits
            (envelopes(fresh, ""), MalformedError),
            (orjson.dumps({"envelopes": [canonical.b64e(fresh), 1]}), MalformedError),
            (envelopes(), MalformedError),
            (envelopes(*["AA"] * 65), MalformedError),
            (orjson.dumps({"envelopes": [canonical.b64e(fresh)], "more": 1}), UnknownField),
            (orjson.dumps({"envelopes": canonical.b64e(fresh)}), MalformedError),
            (orjson.dumps({}), MalformedError),
            (orjson.dumps([canonical.b64e(fresh)]), MalformedError),
            (b"", InvalidJson),
        ):
            problem = await c.call("POST", batch, 400, body=bad_body, key=transport)
            assert problem["type"] == refusal.type_uri(), bad_body[:80]
        to_stranger = seal(AuthorityId.parse("DE-BKA"))
        submitted = await c.call(
            "POST", batch, 200, body=envelopes(fresh, env, to_stranger, b"junk", big),
            key=transport,
        )  # fmt: skip
        results = submitted["results"]
        assert [r["status"] for r in results] == [201, 200, 403, 400, 413]
        assert [sorted(r) for r in results] == [
            ["evidence", "status"],
            ["evidence", "status"],
            ["detail", "evidence", "status", "type"],
            ["detail", "status", "type"],
            ["detail", "status", "type"],
        ]
        accepted = Evidence.decode(canonical.b64d(results[0]["evidence"], what="e"), net.genesis)
        assert (accepted.kind, accepted.message_id, accepted.envelope_hash) == (
            EvidenceKind.ACCEPTED,
            parse_envelope(fresh).header.message_id,
            envelope_hash(fresh),
        )
        # The exact resubmission: the original evidence of the single route.
        assert orjson.loads(canonical.b64d(results[1]["evidence"], what="e")) == evidence
        rejected = Evidence.decode(canonical.b64d(results[2]["evidence"], what="e"), net.genesis)
        assert (rejected.kind, rejected.message_id, rejected.reason) == (
            EvidenceKind.REJECTED,
            parse_envelope(to_stranger).header.message_id,
            UnknownMember.slug,
        )
        assert [r.get("type") for r in results[2:]] == [
            UnknownMember.type_uri(),
            MalformedError.type_uri(),
            PayloadTooLarge.type_uri(),
        ]
        waiting = (await c.call("GET", mailbox, 200, key=es_transport))["items"]
        assert len(waiting) == 2
        assert canonical.b64d(waiting[1]["data"], what="envelope") == fresh
        await c.call("POST", batch, 401, body=envelopes(env))
        once = envelopes(env)
        replay_headers = {
            HEADER: sign_request(
                key=transport, network=net.genesis.digest, audience=HUB_AUDIENCE,
                method="POST", target=batch, body=once, created=int(time.time()),
            )
        }  # fmt: skip
        again = await c.call("POST", batch, 200, body=once, headers=replay_headers)
        assert [r["status"] for r in again["results"]] == [200]
        replayed = await c.call("POST", batch, 409, body=once, headers=replay_headers)
        assert replayed["type"] == ReplayError.type_uri()
        # The cap is BATCH_MAX_BODY, exactly (whitespace pads the JSON).
        at_cap = b'{"envelopes":["AA"]}'.ljust(hub_web.BATCH_MAX_BODY)
        (truncated,) = (await c.call("POST", batch, 200, body=at_cap, key=transport))["results"]
        assert (truncated["status"], truncated["type"]) == (400, Truncated.type_uri())
        over = await c.call("POST", batch, 413, body=at_cap + b" ", key=transport)
        assert over["type"] == PayloadTooLarge.type_uri()

        # Attachment blobs: stored (an empty one too), described as documented.
        blob = "/v1/blobs/{blob_id}"
        stored = await c.call(
            "PUT", blob, 201, path=f"/v1/blobs/{'ab' * 16}", body=b"ciphertext", key=transport
        )
        assert (stored["id"], stored["size"]) == ("ab" * 16, 10)
        empty = await c.call("PUT", blob, 201, path=f"/v1/blobs/{'cd' * 16}", key=transport)
        assert empty["size"] == 0
        await c.call("PUT", blob, 409, path=f"/v1/blobs/{'ab' * 16}", body=b"x", key=transport)
        await c.call("PUT", blob, 400, path="/v1/blobs/AB", body=b"x", key=transport)

        # Last (the buckets stay drained): the request's own token covers the first envelope,
        # each other takes one of the sender key's bucket; one left without is refused alone.
        monkeypatch.setattr(hub.app[hub_web.BUCKETS_KEY], "burst", 2)
        limited = await c.call("POST", batch, 200, body=envelopes(env, env, env), key=transport)
        assert [r["status"] for r in limited["results"]] == [200, 200, 429]
        assert {k: v for k, v in limited["results"][2].items() if k != "detail"} == {
            "status": 429,
            "type": RateLimited.type_uri(),
            "retry_after": 1,
        }

        documented_ok = {
            (m, p, int(s))
            for m, p, op in _operations(c.doc)
            for s in op["responses"]
            if s.startswith("2") and (m, p) not in NOT_JSON
        }
        assert documented_ok <= c.seen, documented_ok - c.seen


async def test_rate_limit_is_documented(hub: Hub):
    app = create_app(hub.service, clock=time.monotonic, burst=1, rate_per_second=0.01)
    async with TestClient(TestServer(app)) as client:
        c = Checker(client, hub.net)
        await c.call("GET", "/healthz", 200)
        problem = await c.call("GET", "/healthz", 429)
        assert problem["type"].endswith("/rate-limited")


async def test_storage_failure_is_documented(hub: Hub, monkeypatch: pytest.MonkeyPatch):
    async def unavailable(_since: int, _limit: int) -> dict[str, Any]:
        raise StorageError("the database is gone")

    monkeypatch.setattr(hub.service, "log_page", unavailable)
    async with TestClient(TestServer(hub.app)) as client:
        c = Checker(client, hub.net)
        problem = await c.call("GET", "/v1/directory/log", 503)  # Retry-After checked too
        assert problem["type"] == StorageError.type_uri()
