"""The two pieces of systemd's service protocol the daemons use, without a library.

* **Readiness** (``Type=notify``, ``sd_notify(3)``): once a daemon listens and has
  verified what it must, it sends ``READY=1`` (and ``STATUS=...``) as one datagram to
  the Unix socket named by ``$NOTIFY_SOCKET``; before stopping, ``STOPPING=1``.  An
  address starting with ``@`` is in the abstract namespace.  Without
  ``$NOTIFY_SOCKET`` (not started by systemd) :func:`notify` does nothing.
* **Socket activation** (``sd_listen_fds(3)``): systemd binds the listening sockets
  of a ``.socket`` unit and passes them as file descriptors 3, 4, … with
  ``$LISTEN_FDS`` (how many), ``$LISTEN_PID`` (they are for this process only) and
  ``$LISTEN_FDNAMES`` (``FileDescriptorName=`` of each, colon-separated).
  :func:`listen_fds` returns them by name; a daemon serves those instead of binding
  its configured ports, so a restart never drops a connection attempt and the
  service needs no right to bind.

Both are described in docs/OPERATIONS.md ("Run") and used by deploy/systemd/.
"""

from __future__ import annotations

import contextlib
import os
import socket
from collections.abc import Mapping
from typing import Final

from globe_io.errors import ConfigError

__all__ = ["LISTEN_FDS_START", "listen_fds", "notify"]

#: The first inherited descriptor (SD_LISTEN_FDS_START).
LISTEN_FDS_START: Final = 3
_ENV_NAMES: Final = ("LISTEN_FDS", "LISTEN_PID", "LISTEN_FDNAMES")


def notify(state: str, environ: Mapping[str, str] | None = None) -> bool:
    """Send ``state`` (e.g. ``"READY=1\\nSTATUS=serving"``) to the service manager.

    Returns whether a notification was sent: ``False`` when ``$NOTIFY_SOCKET`` is
    unset.  A socket that cannot be reached is a :class:`ConfigError` (the unit asked
    for ``Type=notify``, and systemd would otherwise wait for a readiness that never
    comes).
    """
    env = os.environ if environ is None else environ
    address = env.get("NOTIFY_SOCKET", "")
    if not address:
        return False
    if address[0] not in "/@":
        raise ConfigError(f"NOTIFY_SOCKET is not a Unix socket path: {address!r}")
    target = "\0" + address[1:] if address[0] == "@" else address
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
        try:
            sock.sendto(state.encode(), target)
        except OSError as exc:
            raise ConfigError(
                f"cannot notify the service manager at {address}: {exc.strerror}"
            ) from None
    return True


def listen_fds(environ: dict[str, str] | None = None) -> dict[str, socket.socket]:
    """Listening sockets passed by socket activation, by ``FileDescriptorName=``.

    Empty when ``$LISTEN_FDS`` is unset or names another process (``$LISTEN_PID``).
    The variables are removed from ``environ`` (by default the process's), so that
    processes started later do not take the sockets for their own.  A descriptor that
    is not a listening stream socket, or names given twice, are a :class:`ConfigError`.
    """
    env = os.environ if environ is None else environ
    count_text, pid_text = env.get("LISTEN_FDS", ""), env.get("LISTEN_PID", "")
    names_text = env.get("LISTEN_FDNAMES", "")
    for name in _ENV_NAMES:
        env.pop(name, None)
    if not count_text or pid_text != str(os.getpid()):
        return {}
    if not count_text.isdigit() or not 0 < int(count_text) <= 64:
        raise ConfigError(f"LISTEN_FDS is not a count of descriptors: {count_text!r}")
    count = int(count_text)
    names = names_text.split(":") if names_text else []
    if len(names) != count:
        raise ConfigError(
            f"LISTEN_FDNAMES names {len(names)} sockets, LISTEN_FDS passes {count}: give each "
            "socket a FileDescriptorName= in the .socket unit"
        )
    if len(set(names)) != count:
        raise ConfigError(f"LISTEN_FDNAMES names a socket twice: {names_text!r}")
    out: dict[str, socket.socket] = {}
    for offset, name in enumerate(names):
        out[name] = _listening(LISTEN_FDS_START + offset, name)
    return out


def _listening(fd: int, name: str) -> socket.socket:
    try:
        sock = socket.socket(fileno=fd)
    except OSError as exc:
        raise ConfigError(f"inherited socket {name} (fd {fd}): {exc.strerror}") from None
    listening = sock.type == socket.SOCK_STREAM and sock.getsockopt(
        socket.SOL_SOCKET, socket.SO_ACCEPTCONN
    )
    if not listening:
        with contextlib.suppress(OSError):
            sock.detach()
        raise ConfigError(
            f"inherited socket {name} (fd {fd}) is not a listening stream socket: "
            "use ListenStream= in the .socket unit"
        )
    sock.setblocking(False)
    os.set_inheritable(fd, False)
    return sock
