"""``globe-node run`` serving listening sockets it inherited, as under socket activation.

    python inherited_listeners.py API_FD PEER_FD run --dir DIR

The test that starts this process binds the node's ports (its peer endpoint is
certified at admission, so the port must be known before the daemon first runs)
and passes the listening sockets as file descriptors ``API_FD`` and ``PEER_FD``
(``-1``: none); the daemon serves them instead of binding ``node.toml``'s ports,
so no port is ever picked and then hoped to be free.  Everything else is the
real command line: :func:`globe_node.cli.main` with the remaining arguments.

(``globe-node run`` itself reads no inherited sockets yet; when it does, for
example from systemd's ``LISTEN_FDS``, this wrapper can go.)
"""

from __future__ import annotations

import socket
import sys
from collections.abc import Callable

from globe_node import server
from globe_node.cli import main
from globe_node.config import NodeConfig
from globe_node.node import Node


def inherited(fd: int) -> socket.socket | None:
    if fd < 0:
        return None
    sock = socket.socket(fileno=fd)
    sock.setblocking(False)
    return sock


def serve_inherited(listeners: server.Listeners) -> Callable[..., object]:
    real_serve = server.serve

    async def serve(
        config: NodeConfig, passphrase: bytes, *, ready: Callable[[Node], None]
    ) -> None:
        await real_serve(config, passphrase, ready=ready, listeners=listeners)

    return serve


if __name__ == "__main__":
    api_fd, peer_fd, *args = sys.argv[1:]
    listeners = server.Listeners(api=inherited(int(api_fd)), peer=inherited(int(peer_fd)))
    server.serve = serve_inherited(listeners)  # type: ignore[assignment]
    sys.exit(main(args))
