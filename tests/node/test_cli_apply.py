"""``globe-node apply``: the application submitted to the hub and the hub's KEM challenge
answered, the application id kept, ``--status`` asked of the hub; an application that
is missing, invalid or made with other keys, and a hub answer without a challenge,
are refused.  The hub is a stand-in served on a port the kernel picked."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from globe_node.keys import NodeKeys
from protocol import canonical, crypto
from protocol.genesis import Genesis
from protocol.ids import AuthorityId
from protocol.membership import Application, kem_pop_challenge, make_application
from tests.node.helpers import Ran, init_args, mode, refused
from tests.support.servers import serve_app


def test_apply_needs_its_files(node: Path, run: Callable[..., Ran]) -> None:
    app = node / "application.json"
    app.write_bytes(b"{}")
    ran = run("apply", "--dir", node)
    assert ran.code == 1
    assert ran.err.startswith(f"globe-node: error: {app}: not a valid application (")
    assert ran.err.count("\n") == 1
    app.unlink()
    refused(
        run("apply", "--dir", node),
        f"{app} not found: this node has no application to submit",
    )
    (node / "genesis.json").unlink()
    refused(
        run("apply", "--dir", node),
        f"cannot read genesis {node / 'genesis.json'}: No such file or directory",
    )


def test_apply_refuses_an_application_of_other_keys(
    node: Path, run: Callable[..., Ran], genesis_bytes: bytes
) -> None:
    genesis = Genesis.decode(genesis_bytes)
    other = NodeKeys.generate()
    app = make_application(
        genesis=genesis, authority=AuthorityId.parse("FR-PNF"), name="Parquet national financier",
        kinds=["anti-corruption"], languages=["en"], contact="duty officer",
        legal_basis="UNCAC art. 36", endpoint=None, identity=other.identity,
        transport=other.transport, ka_key=other.ka.public_key, created=int(time.time()),
    )  # fmt: skip
    (node / "application.json").write_bytes(app.signed.encode())
    refused(run("apply", "--dir", node), "application.json was not made with this node's keys")


@pytest.fixture
async def hub_stand_in() -> AsyncIterator[tuple[str, dict[str, Any]]]:
    """A hub answering an application and its status with what the test put in the dict."""
    answers: dict[str, Any] = {}

    async def submit(_r: web.Request) -> web.Response:
        return web.json_response(answers["submit"], status=201)

    async def status(request: web.Request) -> web.Response:
        return web.json_response({**answers["status"], "id": request.match_info["id"]})

    app = web.Application()
    app.router.add_post("/v1/applications", submit)
    app.router.add_get("/v1/applications/{id}", status)
    async with serve_app(app) as served:
        yield served.url, answers


async def test_apply_refuses_a_hub_answer_without_a_challenge_and_shows_a_status(
    tmp_path: Path,
    genesis_file: Path,
    run: Callable[..., Ran],
    hub_stand_in: tuple[str, dict[str, Any]],
) -> None:
    url, answers = hub_stand_in
    directory = tmp_path / "n"
    ran = await asyncio.to_thread(run, *init_args(directory, genesis_file, "--hub-url", url))
    assert ran.code == 0, ran.err
    answers["submit"] = {"id": "a" * 32, "status": "awaiting-pop"}
    ran = await asyncio.to_thread(run, "apply", "--dir", directory)
    refused(ran, "the hub's answer has no application id and challenge")
    assert not (directory / "application.id").exists()
    (directory / "application.id").write_text("b" * 32 + "\n")
    answers["status"] = {"authority": "FR-PNF", "status": "rejected", "reason": "no\nlegal basis"}
    ran = await asyncio.to_thread(run, "apply", "--status", "--dir", directory)
    assert (ran.code, ran.err) == (0, "")
    assert ran.out == f"application {'b' * 32} for FR-PNF: rejected (no?legal basis)\n"


async def test_apply_submits_and_answers_the_challenge(
    tmp_path: Path, genesis_file: Path, genesis_bytes: bytes, run: Callable[..., Ran]
) -> None:
    genesis = Genesis.decode(genesis_bytes)
    seen: dict[str, Any] = {}

    async def submit(request: web.Request) -> web.Response:
        app = Application.decode(await request.read(), genesis)
        challenge, secret = kem_pop_challenge(app.ka_key, app.digest)
        seen.update(app=app, secret=secret)
        return web.json_response(
            {"id": "a" * 32, "authority": str(app.authority), "status": "awaiting-pop",
             "challenge": canonical.b64e(challenge)},
            status=201,
        )  # fmt: skip

    async def proof(request: web.Request) -> web.Response:
        answer = canonical.b64d((await request.json())["answer"], what="answer")
        assert crypto.constant_time_equal(answer, seen["secret"])
        seen["proved"] = True
        return web.json_response({"id": "a" * 32, "authority": "FR-PNF", "status": "pending"})

    async def status(request: web.Request) -> web.Response:
        return web.json_response(
            {"id": request.match_info["id"], "authority": "FR-PNF", "status": "pending",
             "reason": None}
        )  # fmt: skip

    app = web.Application()
    app.router.add_post("/v1/applications", submit)
    app.router.add_post("/v1/applications/{id}/proof", proof)
    app.router.add_get("/v1/applications/{id}", status)
    async with serve_app(app) as hub:
        directory = tmp_path / "node"
        ran = await asyncio.to_thread(
            run, *init_args(directory, genesis_file, "--hub-url", hub.url)
        )
        assert ran.code == 0, ran.err
        data = (await asyncio.to_thread(run, "apply", "--dir", directory, "--json")).json()
        assert data["id"] == "a" * 32
        assert data["status"] == "pending"
        assert seen["proved"] is True
        assert seen["app"].signed.encode() == (directory / "application.json").read_bytes()
        # the value the admins see for the application the hub received
        assert data["fingerprint"] == seen["app"].fingerprint()
        assert (directory / "application.id").read_text().strip() == "a" * 32
        assert mode(directory / "application.id") == 0o600
        ran = await asyncio.to_thread(run, "apply", "--status", "--dir", directory)
        assert ran.out == f"application {'a' * 32} for FR-PNF: pending\n"


def test_apply_status_needs_a_submitted_application(node: Path, run: Callable[..., Ran]) -> None:
    refused(
        run("apply", "--status", "--dir", node),
        f"{node / 'application.id'} not found: "
        "submit the application first with 'globe-node apply'",
    )
