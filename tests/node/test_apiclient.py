"""The local API client the command line uses (:mod:`globe_node.apiclient`), against a
stand-in daemon that misbehaves in each way the client must report: too slow, not JSON,
not an object, a problem without a usable detail, too large, a download cut short or
of the wrong length -- and against no daemon at all."""

from __future__ import annotations

import asyncio
import gzip
import os
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest
from aiohttp import web

from globe_node import apiclient
from globe_node.apiclient import ApiClient, ApiError, DaemonNotRunning
from tests.node.network import ReservedPort
from tests.support.servers import serve_app

PAYLOAD = os.urandom(200_000)


@pytest.fixture
async def stand_in() -> AsyncIterator[str]:
    """A daemon that answers each path in one particular (mostly wrong) way."""
    released = asyncio.Event()

    async def slow(_r: web.Request) -> web.Response:
        await released.wait()  # answers only once the test is over
        return web.json_response({})

    async def text(_r: web.Request) -> web.Response:
        return web.Response(text="<html>hello</html>", content_type="text/html")

    async def array(_r: web.Request) -> web.Response:
        return web.json_response([1, 2])

    async def empty(_r: web.Request) -> web.Response:
        return web.Response(status=204)

    async def big(_r: web.Request) -> web.Response:
        return web.json_response({"x": "y" * 5000})

    def problem(body: bytes, status: int = 409) -> Callable[[web.Request], Awaitable[web.Response]]:
        async def handler(_r: web.Request) -> web.Response:
            return web.Response(body=body, status=status, content_type="application/problem+json")

        return handler

    async def plain_error(_r: web.Request) -> web.Response:
        return web.Response(text='{"detail": "not from a problem"}', status=500)

    async def gzipped(_r: web.Request) -> web.Response:
        return web.Response(
            body=gzip.compress(PAYLOAD),
            headers={"Content-Encoding": "gzip", "Content-Type": "application/octet-stream"},
        )

    async def file(_r: web.Request) -> web.Response:
        return web.Response(body=PAYLOAD, content_type="application/octet-stream")

    async def cut(request: web.Request) -> web.StreamResponse:
        resp = web.StreamResponse(headers={"Content-Length": str(len(PAYLOAD))})
        await resp.prepare(request)
        await resp.write(PAYLOAD[:1000])
        assert request.transport is not None
        request.transport.close()
        return resp

    app = web.Application()
    app.router.add_get("/slow", slow)
    app.router.add_get("/text", text)
    app.router.add_get("/array", array)
    app.router.add_get("/empty", empty)
    app.router.add_get("/big", big)
    app.router.add_get("/problem/junk", problem(b"{not json"))
    app.router.add_get("/problem/title", problem(b'{"title": "Conflict", "detail": "  "}'))
    app.router.add_get("/problem/none", problem(b'{"type": "x", "detail": 5}'))
    app.router.add_get("/problem/list", problem(b'["detail"]'))
    app.router.add_get("/problem/lines", problem(b'{"detail": "two\\n  lines"}', 403))
    app.router.add_get("/plain-error", plain_error)
    app.router.add_get("/gzipped", gzipped)
    app.router.add_get("/file", file)
    app.router.add_get("/cut", cut)
    async with serve_app(app) as served:
        try:
            yield served.url
        finally:
            released.set()


async def api_error(client: ApiClient, path: str) -> ApiError:
    with pytest.raises(ApiError) as err:
        await client.get(path)
    return err.value


async def test_the_client_reports_each_kind_of_wrong_answer(stand_in: str) -> None:
    async with ApiClient(stand_in + "/", "t", timeout=0.3) as client:
        assert client.base_url == stand_in
        err = await api_error(client, "/slow")
        assert err.detail == f"the node daemon at {stand_in} did not answer within 0.3 s"
        err = await api_error(client, "/text")
        assert err.detail == "the node daemon's answer to GET /text is not JSON"
        err = await api_error(client, "/array")
        assert err.detail == "the node daemon's answer to GET /array is not a JSON object"
        assert await client.get("/empty") == {}
        err = await api_error(client, "/problem/junk")
        assert (err.detail, err.http_status) == (
            "the node daemon answered HTTP 409 to GET /problem/junk", 409
        )  # fmt: skip
        assert (await api_error(client, "/problem/title")).detail == "Conflict"
        err = await api_error(client, "/problem/none")
        assert err.detail == "the node daemon answered HTTP 409 to GET /problem/none"
        err = await api_error(client, "/problem/list")
        assert err.detail == "the node daemon answered HTTP 409 to GET /problem/list"
        err = await api_error(client, "/problem/lines")
        assert (err.detail, err.http_status) == ("two lines", 403)
        err = await api_error(client, "/plain-error")
        assert err.detail == "the node daemon answered HTTP 500 to GET /plain-error"


async def test_the_client_limits_the_size_of_an_answer(
    stand_in: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(apiclient, "MAX_JSON", 1000)
    async with ApiClient(stand_in, "t") as client:
        err = await api_error(client, "/big")
    assert err.detail == "the node daemon's answer exceeds 1000 bytes"


async def test_the_client_closes_without_having_connected() -> None:
    client = ApiClient("http://127.0.0.1:9", "t")
    await client.close()
    await client.close()
    assert client._session is None


async def test_a_download_reports_progress_and_leaves_no_file_when_it_fails(
    stand_in: str, tmp_path: Path
) -> None:
    seen: list[tuple[int, int | None]] = []
    async with ApiClient(stand_in, "t", timeout=5) as client:
        size = await client.download("/file", tmp_path / "f", lambda d, t: seen.append((d, t)))
        assert size == len(PAYLOAD)
        assert (tmp_path / "f").read_bytes() == PAYLOAD
        assert seen[-1] == (len(PAYLOAD), len(PAYLOAD))
        assert [d for d, _ in seen] == sorted(d for d, _ in seen)
        # refused: the problem detail, and no file
        with pytest.raises(ApiError) as err:
            await client.download("/problem/lines", tmp_path / "g")
        assert err.value.detail == "two lines"
        # a body whose decoded size is not the announced length
        with pytest.raises(ApiError) as err:
            await client.download("/gzipped", tmp_path / "h")
        compressed = len(gzip.compress(PAYLOAD))
        assert err.value.detail.startswith("the download of /gzipped stopped after ")
        assert err.value.detail.endswith(f" of {compressed}")
        # the connection dropped half way
        with pytest.raises(ApiError) as err:
            await client.download("/cut", tmp_path / "i")
        assert err.value.detail.startswith(f"cannot talk to the node daemon at {stand_in}: ")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["f"]


async def test_without_a_daemon_the_client_says_to_start_one(tmp_path: Path) -> None:
    with ReservedPort() as nothing_listens:
        base = nothing_listens.url
        async with ApiClient(base, "t") as client:
            with pytest.raises(DaemonNotRunning) as err:
                await client.download("/file", tmp_path / "f")
    assert err.value.detail == (
        f"the node daemon is not running at {base}: start it with 'globe-node run'"
    )
    assert list(tmp_path.iterdir()) == []


@pytest.fixture
async def uploads_stand_in() -> AsyncIterator[tuple[str, list[tuple[str, bytes]]]]:
    """A daemon whose ``POST /api/uploads`` answers as its ``name`` says; the text
    exports; and what it was sent."""
    received: list[tuple[str, bytes]] = []

    async def upload(request: web.Request) -> web.Response:
        name = request.query["name"]
        received.append((name, await request.read()))
        answers = {
            "ok": web.json_response({"id": "0" * 32, "size": len(received[-1][1])}, status=201),
            "junk": web.Response(text="<html>staged</html>", status=201),
            "noid": web.json_response({"size": 1}, status=201),
            "full": web.Response(
                body=b'{"detail": "the uploads of this user exceed 10 bytes"}', status=507,
                content_type="application/problem+json",
            ),
        }  # fmt: skip
        return answers[name]

    async def csv(_r: web.Request) -> web.Response:
        return web.Response(text="a,b\r\n1,2\r\n", content_type="text/csv")

    async def latin1(_r: web.Request) -> web.Response:
        return web.Response(body="café".encode("latin-1"), content_type="text/csv")

    async def refused(_r: web.Request) -> web.Response:
        return web.Response(body=b'{"detail": "\'to\' is before \'from\'"}', status=400,
                            content_type="application/problem+json")  # fmt: skip

    app = web.Application()
    app.router.add_post("/api/uploads", upload)
    app.router.add_get("/csv", csv)
    app.router.add_get("/latin1", latin1)
    app.router.add_get("/refused", refused)
    async with serve_app(app) as served:
        yield served.url, received


async def test_a_text_answer_is_utf8_or_refused(
    uploads_stand_in: tuple[str, list[tuple[str, bytes]]],
) -> None:
    url, _ = uploads_stand_in
    async with ApiClient(url, "t") as client:
        assert await client.get_text("/csv", {"from": 0, "to": None}) == "a,b\r\n1,2\r\n"
        with pytest.raises(ApiError) as err:
            await client.get_text("/latin1")
        assert err.value.detail == "the node daemon's answer to GET /latin1 is not UTF-8 text"
        with pytest.raises(ApiError) as err:
            await client.get_text("/refused")
        assert (err.value.detail, err.value.http_status) == ("'to' is before 'from'", 400)
    with ReservedPort() as nothing_listens:
        async with ApiClient(nothing_listens.url, "t") as client:
            with pytest.raises(DaemonNotRunning):
                await client.get_text("/csv")


async def test_an_upload_streams_a_regular_file_and_checks_the_answer(
    uploads_stand_in: tuple[str, list[tuple[str, bytes]]], tmp_path: Path
) -> None:
    url, received = uploads_stand_in
    source = tmp_path / "ledger.pdf"
    source.write_bytes(PAYLOAD)
    seen: list[tuple[int, int | None]] = []
    async with ApiClient(url, "t") as client:
        staged = await client.upload(source, name="ok", media_type="application/pdf",
                                     progress=lambda d, t: seen.append((d, t)))  # fmt: skip
        assert staged == {"id": "0" * 32, "size": len(PAYLOAD)}
        assert received == [("ok", PAYLOAD)]
        assert seen[-1] == (len(PAYLOAD), len(PAYLOAD))
        wrong = {
            "junk": "the node daemon's answer to an upload names no upload id",
            "noid": "the node daemon's answer to an upload names no upload id",
            "full": "the uploads of this user exceed 10 bytes",
        }
        for name, detail in wrong.items():
            with pytest.raises(ApiError) as err:
                await client.upload(source, name=name, media_type="application/pdf")
            assert err.value.detail == detail, name
        # what is not a readable regular file is refused before anything is sent
        for path, detail in (
            (tmp_path / "missing.pdf", f"cannot read {tmp_path / 'missing.pdf'}: No such file or"
                                       " directory"),
            (tmp_path, f"cannot read {tmp_path}: Is a directory"),
            (Path("/dev/null"), "/dev/null is not a regular file"),
        ):  # fmt: skip
            with pytest.raises(ApiError) as err:
                await client.upload(path, name="ok", media_type="application/pdf")
            assert err.value.detail == detail
    assert [name for name, _ in received] == ["ok", "junk", "noid", "full"]
    with ReservedPort() as nothing_listens:
        async with ApiClient(nothing_listens.url, "t") as client:
            with pytest.raises(DaemonNotRunning):
                await client.upload(source, name="ok", media_type="application/pdf")
