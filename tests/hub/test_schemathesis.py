"""Property-based API testing: schemathesis drives a live hub from its own OpenAPI document.

A real hub (conftest's :class:`Hub`: genesis, three admins, two admitted members with
envelopes waiting for each other, the message, push and blob routes) is served over
loopback HTTP from a thread of its own, and schemathesis generates requests from the
document that hub serves at ``/v1/openapi.json``: valid ones and invalid ones, through
every phase (explicit examples, coverage of boundaries, mutations and unexpected
methods, fuzzing, then stateful sequences over the links it infers) with every check
the installed schemathesis has, so that

* no generated request gets a 5xx,
* every response is documented for its operation (status, content type, headers,
  schema; problems are ``application/problem+json`` whose ``instance`` is a valid
  ``uri-reference``, formats are validated),
* whatever the document excludes is refused, and whatever it allows is not.

Signed routes get a real ``Globe-Auth`` signature: the ``GlobeAuth`` scheme is given a
placeholder value, which a ``requests`` auth hook replaces with a signature over the
request exactly as it goes on the wire (an admin key for ``/v1/admin/*``, a member's
transport key otherwise).  A request whose header schemathesis removed or replaced
(the ``ignored_auth`` probes) goes out as it is, and must be refused.

pytest's schemathesis integration parametrizes at collection time, before any hub
runs, so the operations come from :func:`hub.openapi.openapi_document` and
:func:`test_the_live_document_is_the_tested_one` pins them to the served bytes.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import threading
from collections import Counter
from collections.abc import Coroutine, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit

import pytest
import requests
import schemathesis
from aiohttp.test_utils import TestClient, TestServer
from hypothesis import HealthCheck, settings
from schemathesis.checks import CHECKS, load_all_checks
from schemathesis.core.result import Ok

from globe_io.errors import NotFound
from hub import db
from hub.blobs import BlobStore
from hub.openapi import openapi_document
from hub.push import Pusher
from hub.push import add_routes as add_push_routes
from hub.routing import Router, RoutingLimits
from hub.service import HubService
from hub.web import create_app
from protocol import canonical
from protocol.errors import AuthError
from protocol.keys import SigningKey
from protocol.membership import kem_pop_answer
from protocol.requestauth import HEADER, HUB_AUDIENCE, sign_request
from tests.hub.conftest import T0, Applicant, FakeClock, Hub, make_network

T = TypeVar("T")
Case = schemathesis.Case[Any]

#: What schemathesis puts in ``Globe-Auth``; :class:`GlobeSigner` replaces it with a signature.
PLACEHOLDER = "schemathesis-sign-me"
#: Seconds to wait for the hub thread to do one thing (start, admit, stop).
STEP_TIMEOUT = 60.0
#: Examples per operation in the fuzzing phase (the examples and coverage phases add theirs).
MAX_EXAMPLES = 100
#: Stateful scenarios, and steps in each.
SCENARIOS = 30
STEPS = 6
SEED = 20260528
HEALTH = [HealthCheck.too_slow, HealthCheck.filter_too_much, HealthCheck.data_too_large]

#: Refusal statuses accepted for invalid data: schemathesis's defaults, and 413, which
#: RFC 9110 §15.5.14 gives a body over the route's documented cap (e.g. more items than
#: ``maxItems`` whose strings also push the body past the cap).
NEGATIVE_REFUSALS = ["400", "401", "403", "404", "405", "406", "409", "413", "415", "422"]
NEGATIVE_REFUSALS += ["428", "429", "5xx"]


#: Operation id -> the checks turned off for it alone (filled by :func:`_without`).
EXCLUDED: dict[str, set[str]] = {}


def _without(check: str, reason: str, *operation_ids: str) -> list[dict[str, Any]]:
    """Turn one check off for the named operations only; ``reason`` says why, for the reader."""
    assert reason
    for operation_id in operation_ids:
        EXCLUDED.setdefault(operation_id, set()).add(check)
    return [
        {"include-operation-id": operation_id, "checks": {check: {"enabled": False}}}
        for operation_id in operation_ids
    ]


CONFIG = schemathesis.Config.from_dict(
    {
        "seed": SEED,
        "request-timeout": 10,
        "generation": {"deterministic": True, "database": "none"},
        "checks": {
            "enabled": True,  # every check this schemathesis has, none left out globally
            "negative_data_rejection": {"expected-statuses": NEGATIVE_REFUSALS},
        },
        "auth": {"openapi": {"GlobeAuth": {"api_key": PLACEHOLDER}}},
        "operations": [
            *_without(
                "positive_data_acceptance",
                "A schema-valid body is not a valid signed object or envelope: its signatures "
                "must verify under keys the generator does not hold (a JSON Schema cannot say "
                "'signed by'), so the hub rightly refuses it (400/401).  Negative data, and "
                "every other check, still run on these operations.",
                "submitApplication",
                "submitKeyUpdate",
                "putPrekey",
                "putProfile",
                "adminSubmitAction",
                "submitMessage",
            ),
            *_without(
                "positive_data_acceptance",
                "The WebSocket opening handshake is connection machinery (RFC 6455 §4.1), not "
                "parameters a document can require: every plain HTTP request to the stream is "
                "rightly refused with the documented 400, and a real handshake would switch "
                "protocols under the HTTP client.",
                "stream",
            ),
        ],
    }
)

schema = schemathesis.openapi.from_dict(openapi_document(), config=CONFIG)


def _integers_as_integers(value: Any) -> Any:
    """``value`` with every whole float (``2.0``) as the integer it equals (``2``)."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, list):
        return [_integers_as_integers(v) for v in value]
    if isinstance(value, dict):
        return {k: _integers_as_integers(v) for k, v in value.items()}
    return value


@schemathesis.serializer("application/json")
def _strict_json(_ctx: schemathesis.SerializationContext, value: Any) -> bytes:
    """JSON as the hub's clients write it: compact, keys sorted, integers without a fraction.

    JSON Schema's data model cannot tell ``2`` from ``2.0`` (both are "integer"), so no
    document can exclude the second, and schemathesis sends it on purpose.  The hub's
    one strict JSON decoder (PROTOCOL.md §2.8) refuses fractions in every body by design
    (the document says so in its introduction); its clients write integers as
    integers, and so does this test.  Non-integral numbers go out unchanged, and are
    refused.  Compact sorted output is also the canonical form of an ASCII signed-object
    container (§2), so a genuine container survives the round trip byte for byte.
    """
    if isinstance(value, bytes):  # a raw body, not JSON at all: sent as it is
        return value
    compact = json.dumps(_integers_as_integers(value), sort_keys=True, separators=(",", ":"))
    return compact.encode()


@dataclass(slots=True)
class LiveHub:
    """A hub served from its own thread and event loop, and the members that talk to it."""

    hub: Hub
    loop: asyncio.AbstractEventLoop
    member: Applicant
    peer: Applicant

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:<port>``."""
        return str(self.hub.client.make_url("")).rstrip("/")

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        """Run ``coro`` on the hub's loop and wait for it."""
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(STEP_TIMEOUT)


class GlobeSigner(requests.auth.AuthBase):
    """Sign a request carrying the placeholder ``Globe-Auth`` over its exact target and body."""

    def __init__(self, live: LiveHub) -> None:
        self.live = live

    def key_for(self, path: str) -> SigningKey:
        """Admin routes take an admin key; every other signed route a member's transport key."""
        if path.startswith("/v1/admin/"):
            return self.live.hub.admins[0]
        return self.live.member.transport

    def __call__(self, r: requests.PreparedRequest) -> requests.PreparedRequest:
        """Replace the placeholder (only it: a probe's missing or bogus header stays)."""
        if r.headers.get(HEADER) != PLACEHOLDER:
            return r
        if r.body is None or isinstance(r.body, bytes):
            body = r.body or b""
        elif isinstance(r.body, str):
            body = r.body.encode()
        else:  # pragma: no cover - schemathesis sends whole bodies, never streams
            raise TypeError("a streamed body cannot be signed before it is sent")
        target = r.path_url  # path and query exactly as requests sends them
        r.headers[HEADER] = sign_request(
            key=self.key_for(urlsplit(target).path),
            network=self.live.hub.genesis.digest,
            audience=HUB_AUDIENCE,
            method=str(r.method),
            target=target,
            body=body,
            created=self.live.hub.now(),
        )
        return r


async def _start(db_url: str, blob_dir: Path) -> tuple[Hub, Applicant, Applicant]:
    """A hub as ``hub.server.open_hub`` wires it, with two members and mail for each."""
    clock = FakeClock(T0)
    genesis, admins, hub_key = make_network(clock)
    engine = db.make_engine(db_url)
    await db.migrate(engine)
    service = HubService(genesis=genesis, hub_key=hub_key, engine=engine, clock=clock)
    await service.start()
    router = Router(service, limits=RoutingLimits())
    app = create_app(
        service,
        clock=clock,
        router=router,
        burst=10**9,  # the fake clock never refills a bucket
        expiry_interval=3600,  # real seconds: never during the test
        blobs=BlobStore(service, blob_dir),
    )
    add_push_routes(app, Pusher(router, service))
    client = TestClient(TestServer(app, host="127.0.0.1", port=0))
    await client.start_server()
    hub = Hub(
        genesis=genesis,
        admins=admins,
        hub_key=hub_key,
        clock=clock,
        engine=engine,
        service=service,
        client=client,
        router=router,
    )
    member = await hub.admit("FR-PNF", "Parquet national financier")
    peer = await hub.admit("ES-FCC", "Fiscalia contra la Corrupcion", languages=["es"])
    (await hub.send(member, hub.seal(member, peer))).ok(201)
    (await hub.send(peer, hub.seal(peer, member))).ok(201)
    return hub, member, peer


async def _stop(hub: Hub) -> None:
    await hub.client.close()
    await hub.engine.dispose()


@pytest.fixture(scope="module")
def live_hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveHub]:
    """A hub on SQLite served over loopback (port 0) from a thread with its own event loop.

    Schemathesis calls the hub with blocking ``requests`` from the test's thread, so the
    hub cannot run on the test's (idle) event loop.
    """
    tmp_path = tmp_path_factory.mktemp("schemathesis")
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, name="hub-under-test", daemon=True)
    thread.start()
    try:
        db_url = f"sqlite+aiosqlite:///{tmp_path / 'hub.db'}"
        started = asyncio.run_coroutine_threadsafe(_start(db_url, tmp_path / "blobs"), loop)
        hub, member, peer = started.result(STEP_TIMEOUT)
        live = LiveHub(hub, loop, member, peer)
        try:
            yield live
        finally:
            live.run(_stop(live.hub))
    finally:
        loop.call_soon_threadsafe(loop.stop)
        thread.join(STEP_TIMEOUT)
        loop.close()


@pytest.fixture(scope="module")
def session(live_hub: LiveHub) -> Iterator[requests.Session]:
    """A ``requests`` session that signs what carries the placeholder."""
    with requests.Session() as s:
        s.auth = GlobeSigner(live_hub)
        yield s


def test_every_check_runs_but_the_named_exclusions() -> None:
    """All of this schemathesis's checks are on for every operation, bar :data:`EXCLUDED`."""
    load_all_checks()
    names = set(CHECKS.get_all_names())
    assert names >= {
        "not_a_server_error",
        "status_code_conformance",
        "content_type_conformance",
        "response_headers_conformance",
        "response_schema_conformance",
        "negative_data_rejection",
        "positive_data_acceptance",
        "missing_required_header",
        "unsupported_method",
        "allow_header_conformance",
        "use_after_free",
        "ensure_resource_availability",
        "ignored_auth",
        "object_level_authorization",
    }
    results = list(schema.get_all_operations())
    operations = [result.ok() for result in results if isinstance(result, Ok)]
    assert len(operations) == len(results)  # every operation of the document loads
    assert len(operations) == 33
    for operation in operations:
        checks = schema.config.checks_config_for(operation=operation, phase=None)
        off = {name for name in names if not checks.get_by_name(name=name).enabled}
        assert off == EXCLUDED.get(operation.definition.raw["operationId"], set()), operation
    assert sum(map(len, EXCLUDED.values())) == 7


def test_the_live_document_is_the_tested_one(live_hub: LiveHub) -> None:
    """The operations below are generated from exactly what the live hub serves."""
    served = requests.get(f"{live_hub.base_url}/v1/openapi.json", timeout=10)
    assert served.status_code == 200
    assert served.headers["Content-Type"] == "application/json"
    assert served.json() == schema.raw_schema


def test_the_signer_signs_only_the_placeholder(
    live_hub: LiveHub, session: requests.Session
) -> None:
    """Placeholder: signed (member or admin key); missing or bogus header: sent as it is."""
    url = f"{live_hub.base_url}/v1/mailbox?after=0"
    signed = session.get(url, headers={HEADER: PLACEHOLDER}, timeout=10)
    assert signed.status_code == 200, signed.text
    assert [i["kind"] for i in signed.json()["items"]] == ["envelope"]
    for headers in ({}, {HEADER: "v1;kid=ed25519:00"}):
        refused = session.get(url, headers=headers, timeout=10)
        assert refused.status_code == 401
        assert refused.headers["Content-Type"] == "application/problem+json"
        assert refused.json()["type"] == AuthError.type_uri()
    audit = f"{live_hub.base_url}/v1/admin/audit?limit=1"
    admin = session.get(audit, headers={HEADER: PLACEHOLDER}, timeout=10)
    assert admin.status_code == 200, admin.text
    assert len(admin.json()["records"]) == 1


@pytest.mark.slow
@schema.parametrize()
@settings(
    max_examples=MAX_EXAMPLES,
    derandomize=True,
    deadline=None,
    database=None,
    suppress_health_check=HEALTH,
)
def test_document_and_server_agree(
    case: Case, live_hub: LiveHub, session: requests.Session
) -> None:
    """Every generated request: no 5xx, a documented answer, invalid input refused."""
    case.call_and_validate(base_url=live_hub.base_url, session=session)


@pytest.mark.slow
def test_what_the_hub_creates_stays_reachable(live_hub: LiveHub, session: requests.Session) -> None:
    """Stateful: sequences over the inferred links (an application → its status, its admin
    view, its proof, its rejection; a blob → its download), with every check, the
    stateful ones (``ensure_resource_availability``, ``use_after_free``) included.

    A schema cannot generate a validly signed application, so a positive
    ``POST /v1/applications`` carries a fresh, genuine one (a new authority each time):
    the scenarios then follow links from resources the hub really created.
    """
    numbers = itertools.count()
    seen: Counter[tuple[str, int]] = Counter()
    #: Applications the hub accepted: id -> (applicant, the KEM challenge it was sent).
    accepted: dict[str, tuple[Applicant, bytes]] = {}
    submitted: dict[str, Applicant] = {}

    class Workflow(schema.as_state_machine()):  # type: ignore[misc]
        def before_call(self, case: Case) -> None:
            meta = case.meta
            if meta is None or not meta.generation.mode.is_positive:
                return
            if case.operation.label == "POST /v1/applications":
                n = next(numbers)
                applicant = live_hub.hub.applicant(f"DE-W{n}", f"Workflow authority {n}")
                submitted[case.id] = applicant
                # As an object: the serializer writes it back to the same canonical bytes.
                case.body = json.loads(applicant.application.signed.encode())
            elif case.operation.label == "POST /v1/applications/{app_id}/proof":
                found = accepted.get(str((case.path_parameters or {}).get("app_id")))
                if found is not None:  # the genuine answer: only the applicant can open it
                    applicant, challenge = found
                    secret = kem_pop_answer(applicant.ka, applicant.application.digest, challenge)
                    case.body = {"answer": canonical.b64e(secret)}

        def get_call_kwargs(self, case: Case) -> dict[str, Any]:
            return {"base_url": live_hub.base_url, "session": session}

        def after_call(self, response: schemathesis.Response, case: Case) -> None:
            super().after_call(response, case)
            seen[(case.operation.label, response.status_code)] += 1
            applicant = submitted.pop(case.id, None)
            if applicant is not None and response.status_code == 201:
                created = response.json()
                challenge = canonical.b64d(created["challenge"], what="challenge")
                accepted[created["id"]] = (applicant, challenge)

    Workflow.run(
        settings=settings(
            max_examples=SCENARIOS,
            stateful_step_count=STEPS,
            derandomize=True,
            deadline=None,
            database=None,
            suppress_health_check=HEALTH,
        )
    )
    # Not vacuous: applications were created, proven and followed through their links.
    assert seen[("POST /v1/applications", 201)] > 0, seen
    assert seen[("GET /v1/applications/{app_id}", 200)] > 0, seen
    assert seen[("GET /v1/admin/applications/{app_id}", 200)] > 0, seen
    assert seen[("POST /v1/applications/{app_id}/proof", 200)] > 0, seen
    assert seen[("POST /v1/admin/applications/{app_id}/reject", 200)] > 0, seen


def test_schemathesis_checks_the_instance_format() -> None:
    """``Problem.instance`` is a ``uri-reference``: a raw control character fails the check."""
    case = schema["/v1/applications/{app_id}"]["GET"].Case(path_parameters={"app_id": "0" * 32})

    def not_found(instance: str) -> schemathesis.Response:
        problem = {
            "type": NotFound.type_uri(),
            "title": NotFound.title,
            "status": 404,
            "detail": "no such application",
            "instance": instance,
        }
        request = requests.Request("GET", f"http://127.0.0.1/v1/applications/{'0' * 32}")
        return schemathesis.Response(
            status_code=404,
            headers={"content-type": ["application/problem+json"]},
            content=json.dumps(problem).encode(),
            request=request.prepare(),
            elapsed=0.0,
            verify=True,
        )

    case.validate_response(not_found("/v1/applications/%07"))  # as globe_io.web encodes it
    with pytest.raises(schemathesis.errors.FailureGroup) as raised:
        case.validate_response(not_found("/v1/applications/\x07"))
    (failure,) = raised.value.exceptions
    assert 'is not a "uri-reference"' in str(failure)
