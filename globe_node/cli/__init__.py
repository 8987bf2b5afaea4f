"""Command-line interface of a GlobE Link node (``globe-node``).

Two kinds of commands share this program (docs/OPERATIONS.md, "Running a node"):

* **without the daemon**, working on the node directory itself: ``init``, ``apply``,
  ``run`` (the daemon), ``backup``, ``restore`` and ``users add|list``
  (:mod:`.setup`, :mod:`.maintenance`, :mod:`.users`);
* **through the running daemon's local API** (``http://api_host:api_port/api``,
  ``Authorization: Bearer <token>``): ``status``, ``inbox``, ``outbox``, ``show``,
  ``send``, ``reply``, ``status-update``, ``forward``, ``request-consent``, ``consent``,
  ``retry``, ``cases``, ``case``, ``stats``, ``directory search``, ``ping``,
  ``keys rotate``, ``sync``, ``alerts`` and ``audit`` (:mod:`.messages`, :mod:`.daemon`).

Every command takes ``--dir DIR`` (default ``$GLOBE_NODE_DIR``, else ``./globe-node``) and
``--json`` (one JSON object on stdout).  A refusal is one line ``globe-node: error:
<detail>`` on stderr and exit status 1; usage errors exit 2 and an interrupt 130
(:mod:`globe_io.cli`).  The key passphrase never comes from the command line:
``--passphrase-file``, ``$GLOBE_PASSPHRASE`` or a prompt on a terminal.  The API token
comes from ``--token-file``, ``$GLOBE_TOKEN`` or ``DIR/api.token``.
"""

from __future__ import annotations

from typing import Final

from globe_io import cli
from globe_node.cli import daemon, maintenance, messages, setup, users
from globe_node.cli.common import DEFAULT_DIR, DIR_ENV

__all__ = ["PROG", "group", "main"]

PROG: Final = "globe-node"

group = cli.program(
    PROG,
    description="GlobE Link node: an authority's endpoint on the GlobE Link secure messaging "
    "network (end-to-end encryption, signing, send and receive).",
    epilog=f"Every command takes --dir DIR (default: ${DIR_ENV}, else ./{DEFAULT_DIR}) and "
    "--json. See docs/OPERATIONS.md, 'Running a node'.",
)
for _command in (
    setup.init,
    setup.apply,
    setup.run,
    maintenance.backup,
    maintenance.restore,
    users.users,
    daemon.status,
    daemon.inbox,
    daemon.outbox,
    messages.show,
    messages.send,
    messages.reply,
    messages.status_update,
    messages.forward,
    messages.request_consent,
    messages.consent,
    messages.retry,
    daemon.cases,
    daemon.case,
    daemon.stats,
    daemon.directory,
    daemon.ping,
    daemon.keys,
    daemon.sync,
    daemon.alerts,
    daemon.audit,
):
    group.add_command(_command)


def main(argv: list[str] | None = None) -> int:
    """Run the ``globe-node`` command line; return the process exit status."""
    return cli.run(group, argv)


if __name__ == "__main__":
    raise SystemExit(main())
