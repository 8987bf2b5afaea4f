"""The OpenAPI document describes the hub API as create_app registers and serves it."""

from __future__ import annotations

import json
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

from hub import db
from hub.blobs import BlobStore
from hub.openapi import openapi_document, problem_types
from hub.push import Pusher
from hub.push import add_routes as add_push_routes
from hub.routing import Router, RoutingLimits
from hub.service import HubService
from hub.web import PROBLEM_TYPE, create_app
from protocol import canonical, labels
from protocol.devnet import DevNetwork, build_devnet
from protocol.envelope import SealTo, envelope_hash, parse_envelope, seal_envelope
from protocol.errors import GlobeError
from protocol.ids import AuthorityId, MessageId
from protocol.keys import KemPrivateKey, SigningKey
from protocol.membership import kem_pop_answer, make_application
from protocol.prekeys import make_prekey
from protocol.receipts import make_receipt
from protocol.requestauth import HEADER, HUB_AUDIENCE, sign_request
from protocol.signed import SignedObject

METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")
# Streams and blobs are exercised by tests/hub/test_push.py and test_blobs.py, not by
# the live schema check here (a WebSocket and binary bodies have no JSON schema).
STREAMED = {("GET", "/v1/stream"), ("PUT", "/v1/blobs/{blob_id}"), ("GET", "/v1/blobs/{blob_id}")}
#: Responses that are not JSON: the three above and the metrics text.
NOT_JSON = {*STREAMED, ("GET", "/metrics")}
AUTHENTICATED = {
    ("PUT", "/v1/blobs/{blob_id}"),
    ("GET", "/v1/blobs/{blob_id}"),
    ("PUT", "/v1/prekeys"),
    ("POST", "/v1/messages"),
    ("GET", "/v1/mailbox"),
    ("POST", "/v1/mailbox/ack"),
}
#: Small routing limits, so that the live test reaches 413 and 507 cheaply.
ROUTING = RoutingLimits(max_envelope=16 * 1024, mailbox_count=2)


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
    assert len(registered) == 25
    assert {("POST", "/v1/messages"), ("GET", "/v1/mailbox"), ("POST", "/v1/mailbox/ack")} <= (
        registered
    )


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
    assert set(search) == {"country", "kind", "language", "q", "inactive", "limit"}
    assert [search[n]["schema"]["maxLength"] for n in ("country", "kind", "language", "q")] == [
        2,
        32,
        2,
        200,
    ]
    mailbox = params("/v1/mailbox")
    assert set(mailbox) == {"after", "limit"}
    assert mailbox["after"]["schema"]["default"] == 0
    assert mailbox["limit"]["schema"]["maximum"] == RoutingLimits().page_size
    audit = params("/v1/admin/audit")
    assert audit["limit"]["schema"]["maximum"] == 10_000
    assert audit["limit"]["schema"]["default"] == 1000
    assert params("/v1/admin/applications")["status"]["schema"]["maxLength"] == 16
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
            if (method, path) in NOT_JSON and status in ("101", "201", "200"):
                # An upgrade, an empty "stored", raw ciphertext, or metrics text.
                assert set(resolved.get("content", {})) <= {
                    "application/octet-stream",
                    "text/plain",
                }
                continue
            content = resolved["content"]
            if status == "default" or int(status) >= 400:
                assert list(content) == [PROBLEM_TYPE], (method, path, status)
                schema = _deref(doc, content[PROBLEM_TYPE]["schema"])
                assert schema is doc["components"]["schemas"]["Problem"]
            else:
                assert list(content) == ["application/json"], (method, path, status)
                assert _deref(doc, content["application/json"]["schema"])
            if status == "429":
                assert resolved["headers"]["Retry-After"]["schema"]["type"] == "integer"
        assert {"429", "500", "default"} <= set(op["responses"]), (method, path)
    body_ops = {(m, p) for m, p, op in _operations(doc) if "requestBody" in op}
    assert body_ops == {
        ("POST", "/v1/applications"),
        ("POST", "/v1/applications/{app_id}/proof"),
        ("PUT", "/v1/prekeys"),
        ("POST", "/v1/admin/applications/{app_id}/reject"),
        ("POST", "/v1/admin/actions"),
        ("POST", "/v1/messages"),
        ("POST", "/v1/mailbox/ack"),
        ("PUT", "/v1/blobs/{blob_id}"),
    }
    submit = doc["paths"]["/v1/messages"]["post"]
    assert list(submit["requestBody"]["content"]) == ["application/octet-stream"]
    assert {"400", "401", "403", "409", "410", "413", "503", "507"} <= set(submit["responses"])


def test_problem_schema_lists_every_error_class():
    problem = openapi_document()["components"]["schemas"]["Problem"]
    assert problem["required"] == ["type", "title", "status", "detail", "instance"]
    listed = {t["type"] for t in problem["x-problem-types"]}
    stack: list[type[GlobeError]] = [GlobeError]
    expected: set[str] = set()
    while stack:
        cls = stack.pop()
        stack.extend(cls.__subclasses__())
        if cls.__module__.split(".")[0] in {"protocol", "hub"} and "slug" in vars(cls):
            expected.add(cls.type_uri())
    assert {e.split("/")[-1] for e in expected} >= {"state-conflict", "rate-limited", "replay"}
    assert expected <= listed
    assert {t["slug"] for t in problem["x-problem-types"]} - {
        e.split("/")[-1] for e in expected
    } == {"method-not-allowed", "http"}
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
    async with TestClient(TestServer(hub.app)) as client:
        resp = await client.get("/v1/openapi.json")
        assert resp.status == 200
        assert resp.content_type == "application/json"
        assert await resp.read() == orjson.dumps(openapi_document())
        assert await resp.json() == openapi_document()


class Checker:
    """Checks that a live response is documented for its operation and matches its schema."""

    def __init__(self, client: TestClient[web.Request, web.Application], net: DevNetwork) -> None:
        self.client = client
        self.net = net
        self.doc = openapi_document()
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
        resp = await self.client.request(method, target, data=body, headers=all_headers)
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


async def test_live_responses_match_the_document(hub: Hub):
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
        await c.call("GET", "/v1/directory/search", 400, path="/v1/directory/search?country=FRA")

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
