"""systemd's readiness notification and socket activation (globe_io/systemd.py), on real
Unix datagram and TCP sockets; the daemons using them are tested as processes in
tests/node/test_daemon_service.py and tests/hub/test_serve_service.py."""

from __future__ import annotations

import os
import socket
from pathlib import Path

import pytest

from globe_io.errors import ConfigError
from globe_io.systemd import _listening, listen_fds, notify


def test_notify_without_a_service_manager_does_nothing():
    assert notify("READY=1", {}) is False
    assert notify("READY=1", {"NOTIFY_SOCKET": ""}) is False


def test_notify_sends_one_datagram_to_the_socket(tmp_path: Path):
    path = tmp_path / "notify"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as manager:
        manager.bind(str(path))
        assert notify("READY=1\nSTATUS=serving", {"NOTIFY_SOCKET": str(path)}) is True
        assert manager.recv(4096) == b"READY=1\nSTATUS=serving"


def test_notify_to_an_abstract_socket():
    name = f"globe-test-{os.getpid()}-{id(object())}"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as manager:
        manager.bind("\0" + name)
        assert notify("READY=1", {"NOTIFY_SOCKET": "@" + name}) is True
        assert manager.recv(4096) == b"READY=1"


def test_notify_refusals(tmp_path: Path):
    with pytest.raises(ConfigError) as info:
        notify("READY=1", {"NOTIFY_SOCKET": "localhost:9"})
    assert info.value.detail == "NOTIFY_SOCKET is not a Unix socket path: 'localhost:9'"
    gone = tmp_path / "gone"
    with pytest.raises(ConfigError) as info:
        notify("READY=1", {"NOTIFY_SOCKET": str(gone)})
    assert info.value.detail == (
        f"cannot notify the service manager at {gone}: No such file or directory"
    )


def test_listen_fds_for_another_process_or_none_is_empty_and_scrubbed():
    env = {"LISTEN_FDS": "1", "LISTEN_PID": "1", "LISTEN_FDNAMES": "api", "OTHER": "x"}
    assert listen_fds(env) == {}
    assert env == {"OTHER": "x"}  # not handed on to anything this process starts
    assert listen_fds({}) == {}


@pytest.mark.parametrize(
    ("count", "names", "detail"),
    [
        ("x", "api", "LISTEN_FDS is not a count of descriptors: 'x'"),
        ("0", "", "LISTEN_FDS is not a count of descriptors: '0'"),
        ("2", "api", "LISTEN_FDNAMES names 1 sockets, LISTEN_FDS passes 2: give each socket a "
                     "FileDescriptorName= in the .socket unit"),
        ("1", "", "LISTEN_FDNAMES names 0 sockets, LISTEN_FDS passes 1: give each socket a "
                  "FileDescriptorName= in the .socket unit"),
        ("2", "api:api", "LISTEN_FDNAMES names a socket twice: 'api:api'"),
    ],
)  # fmt: skip
def test_listen_fds_refusals(count: str, names: str, detail: str):
    env = {"LISTEN_FDS": count, "LISTEN_PID": str(os.getpid()), "LISTEN_FDNAMES": names}
    with pytest.raises(ConfigError) as info:
        listen_fds(env)
    assert info.value.detail == detail


def test_an_inherited_listening_socket_is_taken():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        fd = os.dup(sock.fileno())
        taken = _listening(fd, "api")
        try:
            assert taken.getsockname() == sock.getsockname()
            assert taken.getblocking() is False
            assert os.get_inheritable(fd) is False
        finally:
            taken.close()


@pytest.mark.parametrize("kind", [socket.SOCK_DGRAM, socket.SOCK_STREAM])
def test_an_inherited_socket_that_does_not_listen_is_refused(kind: socket.SocketKind):
    with socket.socket(socket.AF_INET, kind) as sock:
        sock.bind(("127.0.0.1", 0))
        fd = os.dup(sock.fileno())
        try:
            with pytest.raises(ConfigError) as info:
                _listening(fd, "peer")
            assert info.value.detail == (
                f"inherited socket peer (fd {fd}) is not a listening stream socket: use "
                "ListenStream= in the .socket unit"
            )
        finally:
            os.close(fd)


def test_an_inherited_descriptor_that_is_not_open_is_refused():
    fd = os.dup(0)
    os.close(fd)
    with pytest.raises(ConfigError) as info:
        _listening(fd, "metrics")
    assert info.value.detail == f"inherited socket metrics (fd {fd}): Bad file descriptor"
