"""Fixtures for the hub suite: every test runs against SQLite and PostgreSQL.

* ``pg_database`` (session): a fresh PostgreSQL database per test process,
  ``globe_test_<pid>_<hex>``, on the session's ``pg_server`` (tests/conftest.py:
  the system server, or a throwaway one; ``$GLOBE_TEST_PG``), migrated once and
  dropped at the end (after terminating its connections).  PostgreSQL support
  is a claimed feature, so no server makes the PostgreSQL tests *fail*, never
  skip.
* ``db_url`` (parametrized ``sqlite`` / ``postgresql``): a clean database
  for one test.  SQLite is a file in ``tmp_path``; PostgreSQL reuses the
  session database and ``TRUNCATE ... RESTART IDENTITY`` between tests
  (measured: about 60 ms, against about 300 ms to create and migrate a
  database per test).
* ``hub`` / ``make_hub``: three admins (threshold 2), a hub key and genesis,
  a :class:`HubService` on a :class:`FakeClock` tests can move, and an
  aiohttp client over the real app from :func:`hub.web.create_app`, served
  over loopback HTTP.  :class:`Hub` has helpers to sign requests as an admin
  or a member and to run a whole admission.
* Every app includes a :class:`hub.routing.Router` (the message routes), whose
  group-commit writer starts and stops with the app; ``make_hub(limits=
  RoutingLimits(...))`` sets its quotas.  The expiry sweep runs hourly in real
  time, i.e. never during a test: tests move the clock and call
  ``hub.router.expire()``.  :class:`Hub` seals envelopes between admitted
  members (to their certified key-agreement keys, from the test's own key
  material), signs receipts and talks to the mailbox routes.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import orjson
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from multidict import CIMultiDictProxy
from sqlalchemy import select
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError
from sqlalchemy.ext.asyncio import AsyncEngine

from hub import db
from hub.routing import Router, RoutingLimits
from hub.service import HubService, Principal
from hub.web import create_app
from protocol import canonical, labels
from protocol.directory import DirectoryState, verify_log
from protocol.envelope import SealTo, envelope_hash, parse_envelope, seal_envelope
from protocol.errors import PROBLEM_BASE
from protocol.genesis import Genesis, make_genesis
from protocol.ids import AuthorityId, MessageId
from protocol.keys import KemPrivateKey, SigningKey
from protocol.membership import (
    Action,
    Application,
    MembershipAction,
    kem_pop_answer,
    make_action,
    make_application,
)
from protocol.prekeys import SignedPrekey, make_prekey
from protocol.receipts import make_receipt
from protocol.requestauth import HEADER, HUB_AUDIENCE, sign_request
from protocol.signed import SignedObject
from tests.support.postgres import PgServer
from tests.support.waiting import run_sync

T = TypeVar("T")
RowT = TypeVar("RowT", bound=db.Base)

#: The fake clock's starting time (2026-05-28); the genesis is a day older.
T0 = 1_780_000_000
ADMIN_NAMES = ("Alice Admin", "Bruno Admin", "Chen Admin")
PROBLEM_JSON = "application/problem+json"


# --- PostgreSQL -------------------------------------------------------------------------------


def run_in_thread(factory: Callable[[], Coroutine[Any, Any, T]]) -> T:
    """Run a coroutine on a private event loop (safe whether or not a loop is running)."""
    return run_sync(factory)


async def _migrate(url: str) -> None:
    engine = db.make_engine(url)
    try:
        await db.migrate(engine)
    finally:
        await engine.dispose()


async def _truncate(pg: PgServer, database: str) -> None:
    tables = ", ".join(f'"{t.name}"' for t in db.Base.metadata.sorted_tables)
    conn = await pg.connect(database)
    try:
        await conn.execute(f"TRUNCATE {tables} RESTART IDENTITY")
    finally:
        await conn.close()


@pytest.fixture(scope="session")
def pg_database(pg_server: PgServer) -> Iterator[str]:
    """A fresh, migrated PostgreSQL database for this test process (SQLAlchemy URL).

    One per process: parallel workers never share it.  Dropped at the end.
    """
    name = run_sync(lambda: pg_server.create_database("test"))
    try:
        url = pg_server.url(name)
        run_sync(lambda: _migrate(url))
        yield url
    finally:
        run_sync(lambda: pg_server.drop_database(name))


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A clean, migrated (or migratable) database for one test, on each backend."""
    if request.param == "sqlite":
        return f"sqlite+aiosqlite:///{tmp_path / 'hub.db'}"
    url: str = request.getfixturevalue("pg_database")
    pg: PgServer = request.getfixturevalue("pg_server")
    database = make_url(url).database
    assert database is not None
    run_sync(lambda: _truncate(pg, database))
    return url


# --- the hub under test -------------------------------------------------------------------


class FakeClock:
    """A settable clock shared by the service and the rate limiter."""

    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        """Move time forward (or back, with a negative value)."""
        self.now += seconds


@dataclass(frozen=True, slots=True)
class Reply:
    """A fully read HTTP response."""

    status: int
    body: bytes
    headers: CIMultiDictProxy[str]
    content_type: str

    @property
    def json(self) -> Any:
        """The body parsed as JSON."""
        return orjson.loads(self.body)

    def ok(self, status: int = 200) -> Any:
        """Assert ``status`` and return the JSON body."""
        assert self.status == status, (self.status, self.body[:500])
        assert self.content_type == "application/json"
        return self.json

    def problem(self, status: int, slug: str) -> dict[str, Any]:
        """Assert an RFC 9457 problem with this status and type; return it."""
        assert self.status == status, (self.status, self.body[:500])
        assert self.content_type == PROBLEM_JSON
        body: dict[str, Any] = self.json
        assert body["type"] == PROBLEM_BASE + slug, body
        assert body["status"] == status
        assert isinstance(body["title"], str)
        assert isinstance(body["detail"], str)
        return body


@dataclass(slots=True)
class Applicant:
    """An applicant's private keys, its application and (once submitted) its id."""

    authority: AuthorityId
    name: str
    identity: SigningKey
    transport: SigningKey
    ka: KemPrivateKey
    application: Application
    app_id: str = ""
    challenge: bytes = b""


class Hub:
    """A running hub and helpers to talk to it as applicants, members and admins."""

    def __init__(
        self,
        *,
        genesis: Genesis,
        admins: list[SigningKey],
        hub_key: SigningKey,
        clock: FakeClock,
        engine: AsyncEngine,
        service: HubService,
        client: TestClient[web.Request, web.Application],
        router: Router | None = None,
    ) -> None:
        self.genesis = genesis
        self.admins = admins
        self.hub_key = hub_key
        self.clock = clock
        self.engine = engine
        self.service = service
        self.client = client
        self._router = router
        self._pair_seq: dict[tuple[AuthorityId, AuthorityId], int] = {}

    def now(self) -> int:
        """The fake clock, in whole seconds."""
        return int(self.clock())

    @property
    def router(self) -> Router:
        """The app's router (message acceptance, mailboxes, receipts, expiry)."""
        assert self._router is not None, "this hub was built without a router"
        return self._router

    @staticmethod
    def container(payload: bytes, *signers: SigningKey) -> bytes:
        """A signed-object container over an action payload, signed by ``signers``."""
        signed = SignedObject(payload, ())
        for key in signers:
            signed = signed.with_signature(labels.MEMBERSHIP_ACTION, key)
        return signed.encode()

    # -- HTTP ------------------------------------------------------------------------------

    def auth(
        self,
        key: SigningKey,
        method: str,
        target: str,
        body: bytes = b"",
        *,
        created: int | None = None,
        audience: str = HUB_AUDIENCE,
        network: bytes | None = None,
    ) -> str:
        """A ``Globe-Auth`` header value for this request."""
        return sign_request(
            key=key,
            network=self.genesis.digest if network is None else network,
            audience=audience,
            method=method,
            target=target,
            body=body,
            created=self.now() if created is None else created,
        )

    async def request(
        self,
        method: str,
        target: str,
        body: bytes | None = None,
        *,
        key: SigningKey | None = None,
        header: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> Reply:
        """Send a request (signed with ``key``, or with a given ``Globe-Auth`` ``header``)."""
        all_headers = dict(headers or {})
        if key is not None:
            header = self.auth(key, method, target, body or b"")
        if header is not None:
            all_headers[HEADER] = header
        async with self.client.request(method, target, data=body, headers=all_headers) as resp:
            data = await resp.read()
            return Reply(resp.status, data, resp.headers, resp.content_type)

    async def get(self, target: str) -> Reply:
        """An unauthenticated GET."""
        return await self.request("GET", target)

    async def admin(self, method: str, target: str, body: bytes = b"", *, admin: int = 0) -> Reply:
        """A request signed by admin number ``admin``."""
        return await self.request(method, target, body, key=self.admins[admin])

    async def as_member(
        self, member: Applicant, method: str, target: str, body: bytes = b""
    ) -> Reply:
        """A request signed by the member's transport key."""
        return await self.request(method, target, body, key=member.transport)

    async def raw_http(self, parts: Iterable[bytes], *, pause: float = 0.0) -> bytes:
        """Write ``parts`` on a raw connection (pausing between them); return the response."""
        assert self.client.port is not None
        reader, writer = await asyncio.open_connection(self.client.host, self.client.port)
        try:
            for i, part in enumerate(parts):
                if i and pause:
                    await asyncio.sleep(pause)
                writer.write(part)
                await writer.drain()
            return await asyncio.wait_for(_read_response(reader), timeout=10)
        finally:
            writer.close()
            await writer.wait_closed()

    # -- applications and admission -----------------------------------------------------------

    def applicant(
        self,
        authority: str = "FR-PNF",
        name: str = "Parquet national financier",
        *,
        kinds: list[str] | None = None,
        languages: list[str] | None = None,
        identity: SigningKey | None = None,
        transport: SigningKey | None = None,
        ka: KemPrivateKey | None = None,
    ) -> Applicant:
        """A new applicant with fresh keys (or the given ones) and a signed application."""
        identity = identity or SigningKey.generate()
        transport = transport or SigningKey.generate()
        ka = ka or KemPrivateKey.generate()
        aid = AuthorityId.parse(authority)
        app = make_application(
            genesis=self.genesis,
            authority=aid,
            name=name,
            kinds=kinds or ["anti-corruption"],
            languages=languages or ["fr"],
            contact=f"duty officer, {name}",
            legal_basis="UNCAC art. 36",
            endpoint=None,
            identity=identity,
            transport=transport,
            ka_key=ka.public_key,
            created=self.now(),
        )
        return Applicant(aid, name, identity, transport, ka, app)

    async def submit(self, applicant: Applicant) -> Reply:
        """POST the application; on success remember its id and KEM challenge."""
        reply = await self.request(
            "POST", "/v1/applications", applicant.application.signed.encode()
        )
        if reply.status == 201:
            applicant.app_id = reply.json["id"]
            applicant.challenge = canonical.b64d(reply.json["challenge"], what="challenge")
        return reply

    async def prove(self, applicant: Applicant, answer: bytes | None = None) -> Reply:
        """Answer the KEM challenge (correctly unless ``answer`` is given)."""
        if answer is None:
            answer = kem_pop_answer(applicant.ka, applicant.application.digest, applicant.challenge)
        body = orjson.dumps({"answer": canonical.b64e(answer)})
        return await self.request("POST", f"/v1/applications/{applicant.app_id}/proof", body)

    async def draft(self, app_id: str) -> bytes:
        """The admission draft the hub prepared, as an admin reads it."""
        got = (await self.admin("GET", f"/v1/admin/applications/{app_id}")).ok()
        assert got["draft"] is not None
        return canonical.b64d(got["draft"], what="draft")

    async def sign(self, payload: bytes, *admins: int) -> list[Reply]:
        """Each admin in turn signs ``payload`` and submits its own one-signature container."""
        replies = []
        for i in admins:
            body = self.container(payload, self.admins[i])
            replies.append(await self.admin("POST", "/v1/admin/actions", body, admin=i))
        return replies

    async def admit(
        self, authority: str = "FR-PNF", name: str = "Parquet national financier", **kw: Any
    ) -> Applicant:
        """The whole admission: application, proof of possession, two admin signatures."""
        applicant = self.applicant(authority, name, **kw)
        (await self.submit(applicant)).ok(201)
        (await self.prove(applicant)).ok()
        replies = await self.sign(await self.draft(applicant.app_id), 0, 1)
        assert replies[0].ok()["status"] == "open"
        assert replies[1].ok()["status"] == "appended"
        return applicant

    async def status_action(
        self, member: Applicant, action: Action, reason: str = "by decision of the admins"
    ) -> MembershipAction:
        """An unsigned suspend/reinstate/revoke, built from the verified log as admins do."""
        state = await self.directory()
        return make_action(
            genesis=self.genesis,
            action=action,
            authority=member.authority,
            prev=state.members[member.authority].last_action,
            issued=self.now(),
            reason=reason,
        )

    async def set_status(self, member: Applicant, action: Action, reason: str = "decided") -> None:
        """Suspend, reinstate or revoke with the quorum (admins 0 and 1)."""
        unsigned = await self.status_action(member, action, reason)
        replies = await self.sign(unsigned.signed.payload, 0, 1)
        assert replies[1].ok()["status"] == "appended"

    def prekey(
        self,
        member: Applicant,
        *,
        authority: AuthorityId | None = None,
        signer: SigningKey | None = None,
        start: int = 0,
        days: int = 30,
    ) -> SignedPrekey:
        """A prekey for ``member`` (signed by its identity key unless ``signer`` is given)."""
        return make_prekey(
            genesis=self.genesis,
            authority=authority or member.authority,
            identity=signer or member.identity,
            key=KemPrivateKey.generate().public_key,
            not_before=self.now() + start,
            not_after=self.now() + start + days * 86400,
        )

    # -- messages ---------------------------------------------------------------------------------

    def seal(
        self,
        sender: Applicant,
        *recipients: Applicant,
        content: bytes = b'{"text":"hello"}',
        created: int | None = None,
        expires: int | None = None,
        lifetime: int = 3600,
        message_id: MessageId | None = None,
        identity: SigningKey | None = None,
        genesis: Genesis | None = None,
    ) -> bytes:
        """An envelope from ``sender`` to ``recipients``, sealed to their certified KEM keys.

        Signed by the sender's identity key unless ``identity`` is given, for this
        network unless ``genesis`` is given; created now and valid for ``lifetime``
        seconds unless ``created``/``expires`` say otherwise.  Per-pair sequence
        numbers count up as a node's would.
        """
        created = self.now() if created is None else created
        expires = created + lifetime if expires is None else expires
        to = []
        for r in recipients:
            pair = (sender.authority, r.authority)
            self._pair_seq[pair] = self._pair_seq.get(pair, 0) + 1
            to.append(SealTo(r.authority, self._pair_seq[pair], r.ka.public_key))
        state = self.service.state
        return seal_envelope(
            genesis=genesis or self.genesis,
            sender=sender.authority,
            identity=identity or sender.identity,
            recipients=to,
            content=content,
            created=created,
            expires=expires,
            dir_seq=state.seq,
            dir_head=state.head,
            message_id=message_id,
        )

    def receipt(
        self,
        recipient: Applicant,
        envelope: bytes,
        *,
        signer: SigningKey | None = None,
        envelope_digest: bytes | None = None,
        time: int | None = None,
    ) -> bytes:
        """The recipient's signed delivery receipt for ``envelope`` (exact container bytes)."""
        header = parse_envelope(envelope).header
        return make_receipt(
            genesis=self.genesis,
            identity=signer or recipient.identity,
            message_id=header.message_id,
            envelope_hash=envelope_hash(envelope) if envelope_digest is None else envelope_digest,
            sender=header.sender,
            recipient=recipient.authority,
            time=self.now() if time is None else time,
        ).encode()

    async def send(self, sender: Applicant, envelope: bytes) -> Reply:
        """POST /v1/messages, signed by the sender's transport key."""
        return await self.as_member(sender, "POST", "/v1/messages", envelope)

    async def pull(
        self, member: Applicant, after: int | None = None, limit: int | None = None
    ) -> dict[str, Any]:
        """GET /v1/mailbox as ``member``; asserts 200 and returns the JSON page."""
        query = "&".join(
            f"{name}={value}"
            for name, value in (("after", after), ("limit", limit))
            if value is not None
        )
        target = "/v1/mailbox" + (f"?{query}" if query else "")
        page: dict[str, Any] = (await self.as_member(member, "GET", target)).ok()
        return page

    async def ack(
        self,
        member: Applicant,
        receipts: Iterable[bytes] = (),
        notices: Iterable[int] = (),
    ) -> Reply:
        """POST /v1/mailbox/ack as ``member`` with receipt containers and notice cursors."""
        body = orjson.dumps(
            {"receipts": [canonical.b64e(r) for r in receipts], "notices": list(notices)}
        )
        return await self.as_member(member, "POST", "/v1/mailbox/ack", body)

    @staticmethod
    def principal(member: Applicant) -> Principal:
        """Who ``member`` is once its transport key authenticated a request."""
        return Principal(member.transport.key_id, authority=member.authority)

    async def new_router(self, service: HubService, limits: RoutingLimits | None = None) -> Router:
        """A started router over ``service`` (stop it with ``await router.stop()``)."""
        router = Router(service, limits=limits or self.router.limits)
        await router.start()
        return router

    # -- the node's view ------------------------------------------------------------------------

    async def log_entries(self, limit: int | None = None) -> tuple[list[bytes], int]:
        """Every log entry through the paged API, and the number of pages read."""
        entries: list[bytes] = []
        since, pages = 0, 0
        while True:
            query = f"since={since}" + (f"&limit={limit}" if limit is not None else "")
            page = (await self.get(f"/v1/directory/log?{query}")).ok()
            pages += 1
            entries += [canonical.b64d(e, what="entry") for e in page["entries"]]
            if page["next"] is None:
                return entries, pages
            assert page["next"] == since + len(page["entries"])
            since = page["next"]

    async def directory(self) -> DirectoryState:
        """The directory as a node rebuilds it: log over HTTP plus the pinned genesis."""
        entries, _ = await self.log_entries()
        return verify_log(self.genesis, entries)

    # -- database -------------------------------------------------------------------------------

    async def rows(self, model: type[RowT]) -> list[RowT]:
        """All rows of a table, straight from the database."""
        async with self.service.sessions() as s:
            return list((await s.execute(select(model))).scalars().all())

    async def table_rows(self, *models: type[Any]) -> dict[str, list[tuple[Any, ...]]]:
        """Each table's rows as sorted tuples of their column values: a snapshot to compare
        (ORM objects compare by identity)."""
        return {
            m.__tablename__: sorted(
                tuple(getattr(r, c.key) for c in r.__table__.columns) for r in await self.rows(m)
            )
            for m in models
        }

    async def check_usage(self) -> None:
        """The router's in-memory quota accounting equals what the mailbox table holds."""
        rows: dict[str, tuple[int, int]] = {}
        for item in await self.rows(db.MailboxItem):
            count, size = rows.get(item.recipient, (0, 0))
            rows[item.recipient] = (count + 1, size + item.size)
        assert {r: u for r, u in self.router.depth().items() if u != (0, 0)} == rows

    def fail_commits(self, monkeypatch: pytest.MonkeyPatch) -> list[int]:
        """From now on every group commit runs its statements, then fails as a disk would at
        COMMIT; the sizes of the groups that failed, as they fail."""
        transaction = self.router._transaction
        failed: list[int] = []

        def broken(conn: Any, live: Any) -> Any:
            transaction(conn, live)  # every statement runs; the transaction then fails
            failed.append(len(live))
            raise OperationalError("COMMIT", {}, OSError("disk I/O error"))

        monkeypatch.setattr(self.router, "_transaction", broken)
        return failed

    async def new_service(self) -> HubService:
        """A second service over the same database, started (as after a restart)."""
        service = HubService(
            genesis=self.genesis, hub_key=self.hub_key, engine=self.engine, clock=self.clock
        )
        await service.start()
        return service


async def _read_response(reader: asyncio.StreamReader) -> bytes:
    """One whole HTTP/1.1 response with a Content-Length (whatever the segmentation)."""
    data = await reader.readuntil(b"\r\n\r\n")
    length = 0
    for line in data.decode("latin-1").split("\r\n"):
        name, _, value = line.partition(":")
        if name.strip().lower() == "content-length":
            length = int(value)
    return data + await reader.readexactly(length)


def make_network(clock: FakeClock) -> tuple[Genesis, list[SigningKey], SigningKey]:
    """Three admins (threshold 2), a hub key and the genesis they sign."""
    admins = [SigningKey.generate() for _ in ADMIN_NAMES]
    hub_key = SigningKey.generate()
    genesis = make_genesis(
        network_id="globe-test",
        name="GlobE Link hub tests",
        admins=[(n, k.verify_key) for n, k in zip(ADMIN_NAMES, admins, strict=True)],
        threshold=2,
        hub_key=hub_key.verify_key,
        hub_url="https://hub.globe-test.invalid",
        created=int(clock()) - 86400,
        signers=admins[:2],
    )
    return genesis, admins, hub_key


HubFactory = Callable[..., Awaitable[Hub]]


@pytest.fixture
async def make_hub(db_url: str) -> AsyncIterator[HubFactory]:
    """Build a hub on ``db_url``; keyword arguments go to :func:`create_app`."""
    opened: list[tuple[TestClient[web.Request, web.Application], AsyncEngine]] = []

    async def make(limits: RoutingLimits | None = None, **app_options: Any) -> Hub:
        clock = FakeClock(T0)
        genesis, admins, hub_key = make_network(clock)
        engine = db.make_engine(db_url)
        await db.migrate(engine)
        service = HubService(genesis=genesis, hub_key=hub_key, engine=engine, clock=clock)
        await service.start()
        app_options.setdefault("burst", 10_000)  # the fake clock never refills on its own
        app_options.setdefault("expiry_interval", 3600)  # real seconds: tests call expire()
        router = Router(service, limits=limits or RoutingLimits())
        app = create_app(service, clock=clock, router=router, **app_options)
        client = TestClient(TestServer(app))  # real HTTP over 127.0.0.1
        await client.start_server()  # runs the app's startup: the router's writer starts
        opened.append((client, engine))
        return Hub(
            genesis=genesis,
            admins=admins,
            hub_key=hub_key,
            clock=clock,
            engine=engine,
            service=service,
            client=client,
            router=router,
        )

    yield make
    for client, engine in opened:
        await client.close()  # runs the app's cleanup: the router's writer stops
        await engine.dispose()


@pytest.fixture
async def hub(make_hub: HubFactory) -> Hub:
    """A running hub with default limits and an empty log."""
    return await make_hub()
