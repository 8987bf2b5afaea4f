"""Property-based API testing: schemathesis drives a live node from its own OpenAPI document.

A real hub and two real member nodes (``FR-PNF``, the node under test, and
``BR-PF``) run on loopback from a thread of their own (tests/node/network.py's
:class:`Net`), and schemathesis generates requests from the document the node
serves at ``/api/openapi.json``: valid and invalid ones, through the explicit
examples, the coverage of boundaries, mutations and unexpected methods, and
fuzzing, with every check the installed schemathesis has, so that

* no generated request gets a 5xx,
* every answer is documented for its operation (status, content type, headers,
  schema; problems are ``application/problem+json`` with a valid ``instance``),
* whatever the document excludes is refused, and whatever it allows is not,
  bar the one exclusion below, whose reason is given where it is made.

Every request carries a real bearer token: the ``bearerAuth`` scheme is given a
placeholder, which a ``requests`` auth hook replaces with the token of a user
whose role holds the route's permission (an operator for ``operate`` routes, a
supervisor for the rest).  A request whose header schemathesis removed or
replaced (the ``ignored_auth`` probes) goes out as it is, and must be refused.

pytest's schemathesis integration parametrizes at collection time, before any
node runs, so the operations come from :func:`globe_node.apidoc.openapi_document`
and :func:`test_the_live_document_is_the_tested_one` pins them to the served bytes.
"""

from __future__ import annotations

import asyncio
import json
import re
import threading
import time
from collections import Counter
from collections.abc import Coroutine, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import CHECKS, load_all_checks
from schemathesis.core.result import Ok
from sqlalchemy import delete, select, update

from globe_node import db
from globe_node.api import ROUTES
from globe_node.apidoc import doc_path, openapi_document
from globe_node.roles import GRANTS, Permission, Role
from protocol.errors import PROBLEM_BASE
from tests.node.network import Net, RunningNode, add_user

T = TypeVar("T")
Case = schemathesis.Case[Any]

#: What schemathesis puts in ``Authorization``; :class:`Bearer` replaces it with a token.
PLACEHOLDER = "schemathesis-token"
PLACEHOLDER_AUTH = {"Authorization": f"Bearer {PLACEHOLDER}"}
#: Seconds to wait for the network's thread to do one thing (start, stop).
STEP_TIMEOUT = 60.0
#: Examples per operation in the fuzzing phase (the examples and coverage phases add theirs).
MAX_EXAMPLES = 50
#: Stateful scenarios, and steps in each.
SCENARIOS = 80
STEPS = 12
SEED = 20260612
HEALTH = [HealthCheck.too_slow, HealthCheck.filter_too_much, HealthCheck.data_too_large]

#: Refusal statuses accepted for invalid data: schemathesis's defaults, and 413, which
#: RFC 9110 §15.5.14 gives a body over the route's documented cap (a text field past its
#: ``maxLength`` in code points that take 12 bytes each as JSON escapes is also past the
#: 4 MiB body cap, which the decoder checks first).
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
        "auth": {"openapi": {"bearerAuth": {"bearer": PLACEHOLDER}}},
        "operations": [
            *_without(
                "positive_data_acceptance",
                "A new message's `deadline` must lie in the future, and its sealed content as "
                "a whole (every field, UTF-8 and JSON-escaped) must fit the protocol's 1 MiB "
                "bucket (PROTOCOL.md §8): neither is a property a JSON Schema can state (it "
                "has no 'now', and lengths count code points of one field), so a schema-valid "
                "body can be rightly refused with 400 `usage`.  The document says both; "
                "negative data, and every other check, still run on this operation.",
                "send",
            ),
            *_without(
                "positive_data_acceptance",
                "A case's `team` must be a team of this node (one some user is in, or the "
                "intake team) and its `assignee` a user of this node who sees that team: the "
                "users and teams are the node's state, which no schema can name, so a "
                "schema-valid name (`Eu`) is rightly refused with 400 `usage`.",
                "openCase",
                "assignCase",
            ),
            *_without(
                "positive_data_acceptance",
                "`q` must hold 1 to 16 words, a word being a run of Python's Unicode `\\w`: "
                "JSON Schema's ECMA-262 patterns have no such class, so a schema-valid `q` of "
                "punctuation alone (`*`) is rightly refused with 400 `usage`; the inbox's and "
                "the outbox's `q` filter is the same search.",
                "textSearch",
                "inbox",
                "outbox",
            ),
            *_without(
                "positive_data_acceptance",
                "The period's `to` may not lie before its `from`: a relation between two query "
                "parameters, which an OpenAPI parameter's schema (one per parameter) cannot "
                "state, so `from=9007199254740990&to=0` is rightly refused with 400 `usage`.",
                "stats",
                "statsCsv",
            ),
        ],
    }
)

schema = schemathesis.openapi.from_dict(openapi_document(ROUTES), config=CONFIG)


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
    """JSON as the node's clients write it: integers without a fraction.

    JSON Schema's data model cannot tell ``2`` from ``2.0`` (both are "integer"), so no
    document can exclude the second, and schemathesis sends it on purpose.  The node's
    one strict JSON decoder (PROTOCOL.md §2.8) refuses fractions in every body by design
    (the document says so in its introduction); its clients write integers as integers,
    and so does this test.  Non-integral numbers go out unchanged, and are refused.
    """
    if isinstance(value, bytes):  # a raw body, not JSON at all: sent as it is
        return value
    return json.dumps(_integers_as_integers(value), separators=(",", ":")).encode()


@dataclass(slots=True)
class LiveNode:
    """A hub and two nodes served from their own thread and event loop."""

    net: Net
    loop: asyncio.AbstractEventLoop
    node: RunningNode
    tokens: dict[Role, str]

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:<api port>`` of the node under test."""
        return f"http://127.0.0.1:{self.node.config.api_port}"

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        """Run ``coro`` on the network's loop and wait for it."""
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(STEP_TIMEOUT)


#: (method, pattern of the concrete path, permission) of every route.
_PATTERNS = [
    (r.method, re.compile("^" + re.sub(r"\\\{\w+\\\}", "[^/]+", re.escape(doc_path(r.path))) + "$"),
     r.permission)
    for r in ROUTES
]  # fmt: skip


def permission_of(method: str, path: str) -> Permission | None:
    """The permission of the route ``method path`` reaches (``None``: no route)."""
    for m, pattern, permission in _PATTERNS:
        if m == method and pattern.match(path):
            return permission
    return None


class Bearer(requests.auth.AuthBase):
    """Put the token of a user allowed to call the route in place of the placeholder."""

    def __init__(self, live: LiveNode) -> None:
        self.live = live

    def __call__(self, r: requests.PreparedRequest) -> requests.PreparedRequest:
        """Replace the placeholder (only it: a probe's missing or bogus header stays)."""
        if r.headers.get("Authorization") != f"Bearer {PLACEHOLDER}":
            return r
        path = urlsplit(r.path_url).path
        permission = permission_of(str(r.method), path)
        role = Role.OPERATOR if permission is Permission.OPERATE else Role.SUPERVISOR
        assert permission is None or permission in GRANTS[role]
        r.headers["Authorization"] = f"Bearer {self.live.tokens[role]}"
        return r


async def _start(root: Path) -> tuple[Net, RunningNode, dict[Role, str]]:
    net = Net(root)
    await net.start_hub()
    fr = await net.member("FR-PNF", "Parquet national financier")
    await net.member("BR-PF", "Policia Federal")
    tokens = {role: await add_user(fr.n, f"st-{role.value}", role.value) for role in Role}
    return net, fr, tokens


async def forget_cases(rn: RunningNode) -> None:
    """Take the node back to having no case: drop every case, note and legal hold, and
    unfile what a scenario filed (only scenarios file: the messages they send name none)."""
    store = rn.n.ctx.store
    async with store.write() as s:
        filed: list[str] = []
        for message in (db.InMessage, db.OutMessage):
            where = message.case.is_not(None)
            filed += (await s.execute(select(message.message_id).where(where))).scalars()
        for model in (db.InMessage, db.OutMessage, db.RequestRow):
            await s.execute(
                update(model).where(model.case.is_not(None)).values(case=None, team=None)
            )
        await s.execute(update(db.Alert).where(db.Alert.message_id.in_(filed)).values(team=None))
        for held in (db.NoteRow, db.LegalHold, db.CaseRow):
            await s.execute(delete(held))
    for mid in filed:
        rn.n.index.move("message", mid, None)


@pytest.fixture(scope="module")
def live_node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveNode]:
    """The network on loopback, from a thread with its own event loop.

    Schemathesis calls the node with blocking ``requests`` from the test's thread, so
    the node cannot run on the test's (idle) event loop.
    """
    root = tmp_path_factory.mktemp("schemathesis")
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, name="node-under-test", daemon=True)
    thread.start()
    try:
        started = asyncio.run_coroutine_threadsafe(_start(root), loop)
        net, node, tokens = started.result(STEP_TIMEOUT)
        live = LiveNode(net, loop, node, tokens)
        try:
            yield live
        finally:
            live.run(net.close())
    finally:
        loop.call_soon_threadsafe(loop.stop)
        thread.join(STEP_TIMEOUT)
        loop.close()


@pytest.fixture(scope="module")
def session(live_node: LiveNode) -> Iterator[requests.Session]:
    """A ``requests`` session that puts a real token in place of the placeholder."""
    with requests.Session() as s:
        s.auth = Bearer(live_node)
        yield s


def test_every_check_runs_but_the_named_exclusion() -> None:
    """All of this schemathesis's checks are on for every operation, bar :data:`EXCLUDED`."""
    load_all_checks()
    names = set(CHECKS.get_all_names())
    assert names >= {
        "not_a_server_error", "status_code_conformance", "content_type_conformance",
        "response_headers_conformance", "response_schema_conformance",
        "negative_data_rejection", "positive_data_acceptance", "missing_required_header",
        "unsupported_method", "allow_header_conformance", "use_after_free",
        "ensure_resource_availability", "ignored_auth", "object_level_authorization",
    }  # fmt: skip
    results = list(schema.get_all_operations())
    operations = [result.ok() for result in results if isinstance(result, Ok)]
    assert len(operations) == len(results) == len(ROUTES)
    for operation in operations:
        checks = schema.config.checks_config_for(operation=operation, phase=None)
        off = {name for name in names if not checks.get_by_name(name=name).enabled}
        assert off == EXCLUDED.get(operation.definition.raw["operationId"], set()), operation
    schema_blind = (
        "send", "openCase", "assignCase", "textSearch", "inbox", "outbox", "stats", "statsCsv",
    )  # fmt: skip
    assert {name: {"positive_data_acceptance"} for name in schema_blind} == EXCLUDED


def test_the_live_document_is_the_tested_one(
    live_node: LiveNode, session: requests.Session
) -> None:
    """The operations below are generated from exactly what the live node serves."""
    url = f"{live_node.base_url}/api/openapi.json"
    served = session.get(url, headers={"Authorization": f"Bearer {PLACEHOLDER}"}, timeout=10)
    assert served.status_code == 200
    assert served.headers["Content-Type"] == "application/json"
    assert served.json() == schema.raw_schema


def test_the_hook_puts_in_a_token_that_may_call_the_route(
    live_node: LiveNode, session: requests.Session
) -> None:
    """Placeholder: a token whose role holds the permission; missing or bogus: sent as is."""
    placeholder = {"Authorization": f"Bearer {PLACEHOLDER}"}
    for method, path, expected in (
        ("GET", "/api/inbox", 200),  # read: the supervisor
        ("GET", "/api/audit", 200),  # audit: the supervisor
        ("POST", "/api/keys/rotate", 200),  # operate: the operator
    ):
        got = session.request(method, live_node.base_url + path, headers=placeholder, timeout=10)
        assert got.status_code == expected, (path, got.text)
    for headers in ({}, {"Authorization": "Bearer forged"}):
        refused = session.get(f"{live_node.base_url}/api/status", headers=headers, timeout=10)
        assert refused.status_code == 401
        assert refused.headers["Content-Type"] == "application/problem+json"
        assert refused.json()["type"] == PROBLEM_BASE + "unauthenticated"


@pytest.mark.slow
@schema.parametrize()
@settings(
    max_examples=MAX_EXAMPLES,
    derandomize=True,
    deadline=None,
    database=None,
    suppress_health_check=HEALTH,
)
def test_document_and_node_agree(
    case: Case, live_node: LiveNode, session: requests.Session
) -> None:
    """Every generated request: no 5xx, a documented answer, invalid input refused."""
    case.call_and_validate(base_url=live_node.base_url, session=session)


@pytest.mark.slow
def test_what_the_node_creates_stays_reachable(
    live_node: LiveNode, session: requests.Session
) -> None:
    """Stateful: sequences over the document's links (a message sent -> read, its delivery,
    a retry, a forward; an upload -> its discard; a case opened -> read, noted, closed) and
    the ones schemathesis infers, with every check, the stateful ones
    (``ensure_resource_availability``, ``use_after_free``) included.

    A schema cannot name a member of this network, so a positive ``POST /api/messages``
    goes to ``BR-PF``, and a deadline it carries is moved into the future (as a request's):
    the scenarios then follow links from messages the node really sent.  Hypothesis
    replays choices and requires the same ones to draw the same way, so every scenario
    starts from the same lists the links are inferred from: no staged upload (each
    scenario's are discarded after it) and no case (a message sent here names none, and
    the cases a scenario opens, and what it files under them, are forgotten after it:
    the API deletes no case, so :func:`forget_cases` does it in the store).
    """
    seen: Counter[tuple[str, int]] = Counter()

    def discard_staged() -> None:
        listed = session.get(f"{live_node.base_url}/api/uploads", headers=PLACEHOLDER_AUTH)
        for upload in listed.json()["uploads"]:
            url = f"{live_node.base_url}/api/uploads/{upload['id']}"
            assert session.delete(url, headers=PLACEHOLDER_AUTH).status_code == 204

    def start_afresh() -> None:
        discard_staged()
        live_node.run(forget_cases(live_node.node))

    class Workflow(schema.as_state_machine()):  # type: ignore[misc]
        def setup(self) -> None:
            start_afresh()

        def teardown(self) -> None:
            start_afresh()

        def before_call(self, case: Case) -> None:
            meta = case.meta
            if meta is None or not meta.generation.mode.is_positive:
                return
            if case.operation.label == "POST /api/messages" and isinstance(case.body, dict):
                case.body["to"] = ["BR-PF"]
                case.body.pop("case", None)
                if case.body.get("deadline") is not None:
                    case.body["kind"] = "request"
                    case.body["deadline"] = int(time.time()) + 86400

        def get_call_kwargs(self, case: Case) -> dict[str, Any]:
            return {"base_url": live_node.base_url, "session": session}

        def after_call(self, response: schemathesis.Response, case: Case) -> None:
            super().after_call(response, case)
            seen[(case.operation.label, response.status_code)] += 1

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
    # Not vacuous: messages were sent and followed through their links, uploads discarded.
    assert seen[("POST /api/messages", 201)] > 0, seen
    assert seen[("GET /api/messages/{id}", 200)] > 0, seen
    assert seen[("GET /api/outbox/{id}", 200)] > 0, seen
    assert seen[("DELETE /api/uploads/{id}", 204)] > 0, seen
    assert seen[("POST /api/cases", 201)] > 0, seen
    assert seen[("GET /api/cases/{case}", 200)] > 0, seen
