"""Command-line interface of a GlobE Link node (``globe-node``).

Two kinds of commands share this program (docs/OPERATIONS.md, "Running a node"):

* **without the daemon**, working on the node directory itself: ``init``, ``apply``,
  ``run`` (the daemon), ``backup``, ``restore``, ``users add|list``, ``keys update`` and
  ``check``
  (:mod:`.setup`, :mod:`.maintenance`, :mod:`.users`, :mod:`.check`);
* **through the running daemon's local API** (``http://api_host:api_port/api``,
  ``Authorization: Bearer <token>``): ``status``, ``inbox``, ``outbox``, ``show``,
  ``send``, ``reply``, ``status-update``, ``forward``, ``request-consent``, ``consent``,
  ``retry``, ``requests``, ``cases``,
  ``case show|open|rename|close|reopen|assign|note|file|export``,
  ``search``, ``stats``, ``directory search``, ``profile show|set``, ``ping``,
  ``keys rotate``, ``sync``, ``alerts`` and ``audit`` (:mod:`.messages`, :mod:`.work`,
  :mod:`.daemon`, :mod:`.directory`).

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
from globe_node.cli import (
    check,
    daemon,
    directory,
    export,
    keyupdate,
    maintenance,
    messages,
    passphrase,
    purge,
    setup,
    users,
    work,
)
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
    passphrase.passphrase,
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
    work.requests,
    work.cases,
    work.case,
    work.search,
    work.stats,
    directory.directory,
    directory.profile,
    daemon.ping,
    daemon.keys,
    daemon.sync,
    daemon.alerts,
    daemon.audit,
    check.check,
    purge.purge,
):
    group.add_command(_command)
work.case.add_command(export.export)  # globe-node case export (evidence bundles)
daemon.keys.add_command(keyupdate.update)  # globe-node keys update (a key update, §6.8)
for _command in (purge.hold, purge.release, purge.holds):  # legal holds (OPERATIONS.md §11.11)
    work.case.add_command(_command)


def main(argv: list[str] | None = None) -> int:
    """Run the ``globe-node`` command line; return the process exit status."""
    return cli.run(group, argv)


if __name__ == "__main__":
    raise SystemExit(main())
