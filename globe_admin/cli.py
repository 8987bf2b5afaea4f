"""Command-line interface of the GlobE Link administrators (``globe-admin``).

Run on the admins' own workstations, which hold the admin keys (R1; docs/OPERATIONS.md):

* admin keys and the genesis ceremony: ``keygen``, ``genesis``, ``sign-genesis``;
* the workflow with the hub: ``applications``, ``show``, ``approve``, ``reject``,
  ``suspend``, ``reinstate``, ``revoke``, ``amend`` (a member's certified entry),
  ``key-updates``, ``show-keys``, ``approve-keys``, ``reject-keys`` (a member's new keys),
  ``proposals``, ``log`` and ``audit``;
* the administrators' console, a web application on this workstation: ``ui``.

The workflow commands trust only the genesis the admin pinned (``--genesis``):
applications are re-verified locally, a draft admission is signed only if it is exactly
the certificate the application asks for, and the log is verified from the genesis
before any suspension, reinstatement or revocation names its ``prev``.

Every command takes ``--json`` (one JSON document on stdout).  A refusal is one line
``globe-admin: error: <detail>`` on stderr and exit status 1; usage errors exit 2 and an
interrupt 130 (:mod:`globe_io.cli`).  Passphrases never come from the command line:
``--passphrase-file``, ``$GLOBE_ADMIN_PASSPHRASE`` or a prompt on a terminal.
"""

from __future__ import annotations

from typing import Final

from globe_admin import applications, ceremony, certify, keyupdates, members
from globe_admin.console import command as console
from globe_admin.session import ADMIN_PASSPHRASE_ENV
from globe_io import cli

__all__ = ["PROG", "group", "main"]

PROG: Final = "globe-admin"

group = cli.program(
    PROG,
    description="GlobE Link administrators: admin keys, the genesis ceremony, and admitting, "
    "suspending, reinstating, re-keying and revoking members through the hub. Admin keys stay "
    "on admin workstations; their passphrases come from --passphrase-file, "
    f"${ADMIN_PASSPHRASE_ENV} or a prompt.",
    epilog="See docs/OPERATIONS.md for the genesis ceremony and the admin workflow.",
)
for _command in (
    ceremony.keygen,
    ceremony.genesis,
    ceremony.sign_genesis,
    applications.applications,
    applications.show,
    applications.approve,
    applications.reject,
    *members.MEMBER_ACTIONS,
    certify.amend,
    keyupdates.key_updates,
    keyupdates.show_keys,
    keyupdates.approve_keys,
    keyupdates.reject_keys,
    members.proposals,
    members.log,
    members.audit,
    console.ui,
):
    group.add_command(_command)


def main(argv: list[str] | None = None) -> int:
    """Run the ``globe-admin`` command line; return the process exit status."""
    return cli.run(group, argv)


if __name__ == "__main__":
    raise SystemExit(main())
