"""What every admin command shares: the sealed admin key, the pinned genesis, the hub
client, and the checks of what the admin typed (the client checks what the hub answered)."""

from __future__ import annotations

import asyncio
import functools
import hashlib
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, TypeVar

import click

from globe_io import cli
from globe_io.errors import CommandError, KeyNotOpened
from globe_io.hubapi import ActionResult
from globe_io.hubclient import DEFAULT_TIMEOUT, HubClient
from protocol import canonical, labels
from protocol.errors import AuthError, GlobeError, StaleError
from protocol.genesis import Genesis, check_url
from protocol.ids import AuthorityId, KeyId
from protocol.keys import SigningKey
from protocol.membership import Action
from protocol.signed import SignedObject

__all__ = [
    "ADMIN_KEY_PURPOSE",
    "ADMIN_PASSPHRASE_ENV",
    "MAX_CANDIDATES",
    "WORKFLOW_OPTIONS",
    "Admin",
    "AmbiguousApplication",
    "ChangedSinceShown",
    "WrongPassphrase",
    "admin_name",
    "admin_passphrase",
    "app_id",
    "authority_id",
    "check_reason",
    "check_shown",
    "load_admin_key",
    "outcome",
    "payload_digest",
    "reason",
    "resolve_app",
    "sign_and_submit",
    "workflow_command",
]

#: Purpose bound into sealed admin key files (a hub key file cannot pass for one).
ADMIN_KEY_PURPOSE: Final = "admin-signing-key"
ADMIN_PASSPHRASE_ENV: Final = "GLOBE_ADMIN_PASSPHRASE"  # noqa: S105 - a variable name
_HEX32: Final = re.compile(r"[0-9a-f]{32}\Z")
#: What names an application on the command line: its id, or a unique prefix of it.
_APP_REF: Final = re.compile(r"[0-9a-f]{4,32}\Z")
_HEX: Final = re.compile(r"[0-9a-f]+\Z")
#: Candidates an ambiguous prefix names in its refusal, at most.
MAX_CANDIDATES: Final = 5
_PAST: Final = {
    Action.ADMIT: "admitted",
    Action.UPDATE_KEYS: "re-keyed",
    Action.SUSPEND: "suspended",
    Action.REINSTATE: "reinstated",
    Action.REVOKE: "revoked",
}
_T = TypeVar("_T")


def admin_passphrase(passphrase_file: Path | None, *, what: str, new: bool = False) -> bytes:
    """An admin key's passphrase (``--passphrase-file``, ``$GLOBE_ADMIN_PASSPHRASE``, a prompt)."""
    return cli.read_passphrase(passphrase_file, env=ADMIN_PASSPHRASE_ENV, what=what, new=new)


class WrongPassphrase(CommandError):
    """The passphrase does not open the admin key file (or the file was altered): type it
    again; nothing was signed or sent."""

    slug = "wrong-passphrase"
    status = 403
    title = "The passphrase does not open the admin key"


class ChangedSinceShown(CommandError):
    """What the hub holds is no longer what the page showed (a new draft, another proposal):
    nothing was signed; review it again and sign what is shown then."""

    slug = "changed-since-shown"
    status = 409
    title = "Changed since it was shown"


def load_admin_key(path: Path, passphrase: bytes) -> SigningKey:
    """Open a sealed admin key file; :class:`WrongPassphrase` if the passphrase does not
    open it."""
    try:
        return cli.load_signing_key(path, passphrase, purpose=ADMIN_KEY_PURPOSE, what="admin key")
    except KeyNotOpened as exc:
        # a refusal of what the admin typed, not of the configuration
        raise WrongPassphrase(exc.detail) from None


def admin_name(genesis: Genesis, key_id: KeyId) -> str:
    """The name ``genesis`` gives an admin key (else its key id)."""
    for a in genesis.admins:
        if a.key.key_id == key_id:
            return a.name
    return str(key_id)


def payload_digest(payload: bytes) -> str:
    """The SHA-256 of the exact bytes an admin signs, in hex: what a page shows, and what
    its form sends back so that only the action shown is signed."""
    return hashlib.sha256(payload).hexdigest()


def check_shown(payload: bytes, shown: str | None) -> None:
    """:class:`ChangedSinceShown` unless ``payload`` is the one whose digest was shown
    (``None``: nothing was shown, as on the command line, which checks and signs at once)."""
    if shown is not None and payload_digest(payload) != shown:
        raise ChangedSinceShown(
            "the action the hub holds now is not the one shown (its SHA-256 differs): nothing "
            "was signed; review it again"
        )


async def sign_and_submit(admin: Admin, hub: HubClient, payload: bytes) -> ActionResult:
    """Sign the exact ``payload`` of a membership action as ``admin`` and hand the
    signature to the hub."""
    container = SignedObject(payload, ()).with_signature(labels.MEMBERSHIP_ACTION, admin.key)
    return await hub.admin_submit_action(container.encode())


@dataclass(frozen=True, slots=True)
class Admin:
    """An admin at work: the pinned genesis, the admin's key and name, the hub."""

    genesis: Genesis
    key: SigningKey
    name: str
    hub_url: str
    timeout: float

    @classmethod
    def open(
        cls, genesis: Path, key: Path, hub: str | None, timeout: float, passphrase_file: Path | None
    ) -> Admin:
        """Read the pinned genesis and open ``key``, which must be one of its admin keys."""
        pinned = cli.load_genesis(genesis)
        hub_url = check_url(hub or pinned.hub_url, "--hub")
        signing_key = load_admin_key(key, admin_passphrase(passphrase_file, what=str(key)))
        names = {a.key.key_id: a.name for a in pinned.admins}
        if signing_key.key_id not in names:
            raise CommandError(
                f"{key} is not an admin key of the pinned genesis {pinned.network_id}"
            )
        return cls(pinned, signing_key, names[signing_key.key_id], hub_url, timeout)

    def admin_name(self, key_id: KeyId) -> str:
        """The name the genesis gives an admin key (else its key id)."""
        return admin_name(self.genesis, key_id)

    async def call(self, work: Callable[[HubClient], Awaitable[_T]]) -> _T:
        """Await ``work`` with a hub client signing as this admin; explain refusals."""
        client = HubClient(
            self.hub_url, network=self.genesis.digest, key=self.key, timeout=self.timeout
        )
        async with client:
            try:
                return await work(client)
            except StaleError as exc:
                raise StaleError(
                    f"{exc.detail}: check this workstation's clock against the hub's"
                ) from None
            except AuthError as exc:
                raise await self._explain(client, exc) from None

    def run(self, work: Callable[[HubClient], Awaitable[_T]]) -> _T:
        """Run ``work`` with a hub client signing as this admin (:meth:`call`)."""
        return asyncio.run(self.call(work))

    async def _explain(self, client: HubClient, exc: AuthError) -> GlobeError:
        """An authentication refusal is uniform on the wire; find the likely cause."""
        try:
            served = await client.genesis()
        except GlobeError:
            return exc
        if served != self.genesis.encode():
            return AuthError(
                f"the hub at {self.hub_url} serves another genesis than the pinned one "
                f"({self.genesis.fingerprint()}); check --genesis and --hub"
            )
        return exc


Work = Callable[..., Awaitable[cli.Result]]

#: ``--genesis``, ``--key``, ``--hub``, ``--timeout`` and ``--passphrase-file``: the options of
#: every command that works with the hub as an admin.
WORKFLOW_OPTIONS = (
    click.option(
        "--genesis",
        type=cli.PATH,
        required=True,
        metavar="FILE",
        help="the pinned genesis",
    ),
    click.option(
        "--key",
        type=cli.PATH,
        required=True,
        metavar="FILE",
        help="your admin key",
    ),
    click.option("--hub", metavar="URL", help="the hub URL (default: the genesis hub_url)"),
    click.option(
        "--timeout",
        type=cli.Seconds(),
        default=DEFAULT_TIMEOUT,
        metavar="SECONDS",
        help=f"per-request timeout (default: {DEFAULT_TIMEOUT:g})",
    ),
    cli.passphrase_file_option(ADMIN_PASSPHRASE_ENV),
)


def workflow_command(name: str, **attrs: Any) -> Callable[[Work], cli.GlobeCommand]:
    """Declare a command that works with the hub as an admin.

    The decorated coroutine function gets the :class:`Admin`, a :class:`HubClient` and
    its own options (declared with click decorators under this one); the command adds
    ``--genesis``, ``--key``, ``--hub``, ``--timeout`` and ``--passphrase-file``.
    """

    def decorate(work: Work) -> cli.GlobeCommand:
        @functools.wraps(work)
        def callback(
            *,
            genesis: Path,
            key: Path,
            hub: str | None,
            timeout: float,
            passphrase_file: Path | None,
            **options: Any,
        ) -> cli.Result:
            admin = Admin.open(genesis, key, hub, timeout, passphrase_file)
            return admin.run(lambda client: work(admin, client, **options))

        for option in reversed(WORKFLOW_OPTIONS):
            option(callback)
        return cli.command(name, **attrs)(callback)

    return decorate


# --- checks of what the admin typed (at parse time) and what the hub's answer means -------------


class AmbiguousApplication(CommandError):
    """An application id prefix that several applications share: give more digits."""


def app_id(_ctx: click.Context, _param: click.Parameter, text: str) -> str:
    """An application id (32 lower-case hex digits), or a prefix of at least 4 of them
    (:func:`resolve_app` finds the one it names)."""
    if _HEX.match(text) and not _APP_REF.match(text):
        raise CommandError(
            f"an application id prefix has at least 4 hex digits, not {len(text)}: {text!r}"
        )
    if not _APP_REF.match(text):
        raise CommandError(f"application id must be 32 lower-case hex digits, not {text!r}")
    return text


async def resolve_app(hub: HubClient, ref: str) -> str:
    """The id of the one application whose id is ``ref`` or starts with it (as git takes
    a prefix); a prefix that several share is refused with the candidates."""
    if _HEX32.match(ref):
        return ref
    listed = await hub.admin_applications(None)
    found = sorted(a.id for a in listed.applications if a.id.startswith(ref))
    if not found:
        raise CommandError(f"no application id starts with {ref}")
    if len(found) > 1:
        shown = ", ".join(found[:MAX_CANDIDATES]) + (", ..." if len(found) > MAX_CANDIDATES else "")
        raise AmbiguousApplication(f"application id prefix {ref} is ambiguous: {shown}")
    return found[0]


def authority_id(_ctx: click.Context, _param: click.Parameter, text: str) -> AuthorityId:
    """An authority id, e.g. ``FR-PNF``."""
    return AuthorityId.parse(text)


def check_reason(text: str, what: str = "--reason") -> str:
    """A reason for the log or the applicant: not empty, no hidden characters."""
    if not text.strip():
        raise CommandError(f"{what} must not be empty")
    if canonical.has_hidden_chars(text) or len(text) > 2000:
        raise CommandError(f"{what}: at most 2000 characters, no control or bidi characters")
    return text


def reason(_ctx: click.Context, _param: click.Parameter, text: str) -> str:
    """``--reason`` (:func:`check_reason`)."""
    return check_reason(text)


def outcome(result: ActionResult, action: Action, authority: AuthorityId) -> list[str]:
    """What the hub did with a signature: appended to the log, or waiting for more."""
    if result.appended:
        if result.seq is None:
            raise CommandError("the hub's answer has no valid 'seq'")
        return [f"{authority} {_PAST[action]} at log entry {result.seq}"]
    n, k = result.signatures, result.threshold
    return [f"{authority}: {action.value} signature {n} of {k}; {k - n} more admin(s) must sign"]
