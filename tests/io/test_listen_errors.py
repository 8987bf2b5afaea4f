"""Every failure to listen is one line naming the address and the reason, never a raw
``[Errno N]`` (globe_io/httpguard.py ``start_site``)."""

from __future__ import annotations

import errno
import socket

import pytest
from aiohttp import web

from globe_io.errors import ConfigError
from globe_io.httpguard import GuardedRunner, _listen_error, start_site


@pytest.mark.parametrize(
    ("host", "reason"),
    [
        ("192.0.2.1", "Cannot assign requested address"),  # TEST-NET-1: never on this host
        ("no-such-host.invalid", "cannot resolve the host"),
    ],
)
async def test_an_address_that_cannot_be_bound(host: str, reason: str) -> None:
    runner = GuardedRunner(web.Application(), access_log=None)
    await runner.setup()
    try:
        with pytest.raises(ConfigError) as info:
            await start_site(runner, host, 0)
        assert info.value.detail.startswith(f"cannot listen on {host}:0: {reason}")
        assert "Errno" not in info.value.detail
    finally:
        await runner.cleanup()


def test_the_reasons_in_words() -> None:
    assert _listen_error(OSError(errno.EADDRINUSE, "x")) == "the address is already in use"
    assert _listen_error(OSError(errno.EACCES, "x")) == "Permission denied"
    gai = socket.gaierror(socket.EAI_NONAME, "Name or service not known")
    assert _listen_error(gai) == "cannot resolve the host (Name or service not known)"
    assert _listen_error(OSError("no errno")) == "no errno"
    assert _listen_error(OSError()) == "OSError"
