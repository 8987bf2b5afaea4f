"""Start ``globe-node`` as systemd's socket activation does: with listening sockets
inherited as file descriptors 3, 4, … and ``LISTEN_FDS``, ``LISTEN_FDNAMES`` and
``LISTEN_PID`` set (globe_io/systemd.py, deploy/systemd/globe-node-*.socket).

    python inherited_listeners.py API_FD PEER_FD [METRICS_FD] -- run --dir DIR ...

The test that starts this process binds the node's ports (its peer endpoint is
certified at admission, so the port must be known before the daemon first runs)
and passes the listening sockets' descriptors (``-1``: none); the daemon serves them
instead of binding ``node.toml``'s ports, so no port is ever picked and then hoped to
be free.  This process becomes the daemon (``exec``), so ``LISTEN_PID`` is its pid, as
systemd sets it; everything after ``--`` (or after the descriptors) is the real
command line, ``python -m globe_node ...``.
"""

from __future__ import annotations

import fcntl
import os
import sys

NAMES = ("api", "peer", "metrics")


def main(argv: list[str]) -> None:
    split = argv.index("--") if "--" in argv else 2
    fds, args = [int(x) for x in argv[:split]], argv[split + (1 if "--" in argv else 0) :]
    passed = [(fd, name) for fd, name in zip(fds, NAMES, strict=False) if fd >= 0]
    # Out of the way first, so that placing one never overwrites another still to place.
    high = [fcntl.fcntl(fd, fcntl.F_DUPFD, 100) for fd, _name in passed]
    for offset, fd in enumerate(high):
        os.dup2(fd, 3 + offset)  # dup2 makes the copy inheritable
        os.close(fd)
    os.environ["LISTEN_FDS"] = str(len(passed))
    os.environ["LISTEN_FDNAMES"] = ":".join(name for _fd, name in passed)
    os.environ["LISTEN_PID"] = str(os.getpid())
    os.execv(sys.executable, [sys.executable, "-m", "globe_node", *args])  # noqa: S606


if __name__ == "__main__":
    main(sys.argv[1:])
