"""Messages through the daemon: ``show``, ``send``, ``reply``, ``status-update``,
``forward``, ``request-consent``, ``consent`` and ``retry`` (docs/OPERATIONS.md §11.6).

Attachments are read here, with the user's rights, and streamed to the daemon
(``POST /api/uploads``): the daemon never opens a path it is given (THREAT-MODEL.md).
"""

from __future__ import annotations

import asyncio
import contextlib
import mimetypes
import os
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import click

from globe_io import cli
from globe_io.errors import CommandError
from globe_node.apiclient import ApiClient, segment
from globe_node.cli import render
from globe_node.cli.common import (
    CASE_RE,
    LANG_RE,
    api_command,
    authority_ids,
    items,
    obj,
    parse_time,
    text,
)
from protocol.errors import GlobeError
from protocol.messages import Kind, Restriction, StatusState, Tlp, Urgency

__all__ = [
    "consent",
    "forward",
    "reply",
    "request_consent",
    "retry",
    "send",
    "show",
    "status_update",
]

#: The kinds a user sends unprompted, and those that answer a received message.
SEND_KINDS = (Kind.REQUEST, Kind.INFORMATION, Kind.BULLETIN)
REPLY_KINDS = (Kind.ANSWER, Kind.INFORMATION)
_Files = list[tuple[Path, str, str]]


def _safe_filename(name: object, n: int) -> str:
    name_ = cli.safe(name or "", mark="_").replace("/", "_").replace("\\", "_")
    name_ = name_.strip().lstrip(".")[:200]
    return name_ or f"attachment-{n}"


@api_command("show", short_help="show a message")
@click.argument("msg", metavar="MSG")
@click.option(
    "--save-attachments",
    type=cli.PATH,
    metavar="DIR",
    help="decrypt the attachments into DIR",
)
async def show(api: ApiClient, *, msg: str, save_attachments: Path | None) -> cli.Result:
    """Show one message; optionally save its attachments."""
    path = f"/api/messages/{segment(msg)}"
    data = await api.get(path)
    lines = render.message(data)
    if save_attachments is None:
        return data, lines
    atts = items(obj(data.get("content")), "attachments")
    save_attachments.mkdir(mode=0o700, parents=True, exist_ok=True)
    targets = [
        save_attachments / _safe_filename(a.get("name"), n) for n, a in enumerate(atts, start=1)
    ]
    for target in targets:
        if target.exists():
            raise CommandError(f"{target} already exists; refusing to overwrite it")
    saved = []
    for n, target in enumerate(targets, start=1):
        size = await api.download(f"{path}/attachments/{n}", target, cli.progress(target.name))
        saved.append({"path": str(target.absolute()), "size": size})
        lines.append(f"saved attachment {n} to {target} ({size} bytes)")
    return {**data, "saved": saved}, lines


# --- composing ----------------------------------------------------------------------------------


def _body(body: str | None, body_file: Path | None, *, required: bool = True) -> str | None:
    """The message text: ``--body`` or ``--body-file`` (``-``: stdin), one of them at most."""
    cli.one_of({"--body": body, "--body-file": body_file}, required=required)
    if body_file is None:
        return body
    try:
        raw = sys.stdin.buffer.read() if str(body_file) == "-" else body_file.read_bytes()
    except OSError as exc:
        raise CommandError(f"cannot read {body_file}: {exc.strerror}") from None
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        raise CommandError(f"{body_file} is not UTF-8 text") from None


def _body_options(f: Callable[..., Any]) -> Callable[..., Any]:
    f = click.option(
        "--body-file",
        type=cli.PATH,
        metavar="FILE",
        help="read the message text from FILE ('-': stdin)",
    )(f)
    return click.option("--body", metavar="TEXT", help="the message text")(f)


def _attachments(paths: Sequence[Path]) -> _Files:
    """The files to attach (path, name shown, media type), checked before any upload."""
    out = []
    for given in paths:
        path = given.expanduser().absolute()
        if not path.is_file():
            raise CommandError(f"--attach {given}: not a file")
        if not os.access(path, os.R_OK):
            raise CommandError(f"--attach {given}: not readable")
        media_type = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
        out.append((path, path.name, media_type))
    return out


async def _discard(api: ApiClient, ids: Sequence[str]) -> None:
    """Best effort: staged uploads a refused message did not take (they expire anyway)."""
    for upload_id in ids:
        with contextlib.suppress(GlobeError):
            await api.request("DELETE", f"/api/uploads/{segment(upload_id)}")


async def _upload(api: ApiClient, files: _Files) -> list[str]:
    """Stream each file to the daemon (read here, with this user's rights); the upload ids."""
    ids: list[str] = []
    try:
        for path, name, media_type in files:
            info = await api.upload(
                path, name=name, media_type=media_type, progress=cli.progress(f"upload {name}")
            )
            ids.append(str(info["id"]))
    except BaseException:
        await _discard(api, ids)
        raise
    return ids


async def _post_with_files(
    api: ApiClient, path: str, payload: dict[str, Any], files: _Files
) -> dict[str, Any]:
    """Upload ``files``, then POST ``payload`` naming them; discard them if it is refused."""
    ids = await _upload(api, files)
    try:
        return await api.post(path, {**payload, "attachments": ids} if ids else payload)
    except BaseException:
        await _discard(api, ids)
        raise


def _queued(verb: str, d: dict[str, Any]) -> list[str]:
    return [f"{verb}: message {text(d.get('id'))} queued for delivery"]


# --- send ---------------------------------------------------------------------------------------


def _send_payload(options: dict[str, Any]) -> dict[str, Any]:
    payload: dict[str, Any] = {
        "to": authority_ids(options["to"]),
        "kind": options["kind"],
        "subject": options["subject"],
        "body": _body(options["body"], options["body_file"]),
        "urgency": options["urgency"],
        "tlp": options["tlp"],
        "restrictions": sorted(set(options["restriction"])),
        "language": options["language"],
    }
    if not LANG_RE.match(options["language"]):
        raise CommandError(f"--language: not an ISO 639-1 code: {options['language']!r}")
    if options["deadline"] is not None:
        deadline = parse_time(options["deadline"], "--deadline")
        if deadline <= time.time():
            raise CommandError(f"--deadline {options['deadline']} is not in the future")
        payload["deadline"] = deadline
    if options["case"] is not None:
        if not CASE_RE.match(options["case"]):
            raise CommandError(f"--case: not a case reference: {options['case']!r}")
        payload["case"] = options["case"]
    return payload


async def _follow(api: ApiClient, mid: str, wait: float) -> cli.Result:
    """Wait until no recipient is still queued (upload progress on a terminal)."""
    show_upload = cli.progress("uploading attachments")
    deadline = time.monotonic() + wait
    while True:
        state = await api.get(f"/api/outbox/{mid}")
        upload = obj(state.get("upload"))
        if show_upload is not None and upload:
            show_upload(int(upload.get("done") or 0), int(upload.get("total") or 0) or None)
        recipients = obj(state.get("recipients"))
        if all(obj(v).get("state") != "queued" for v in recipients.values()):
            break
        if time.monotonic() > deadline:
            raise CommandError(
                f"message {mid} is still queued after {wait:g} s;"
                " it stays in the outbox and is retried (see: globe-node outbox)"
            )
        await asyncio.sleep(0.2)
    lines = [f"message {mid}:"] + [
        f"  {text(who)}: {text(obj(v).get('state'))}"
        + (f" via {text(obj(v).get('via'))}" if obj(v).get("via") else "")
        + (f" ({text(obj(v).get('error'))})" if obj(v).get("error") else "")
        for who, v in sorted(recipients.items())
    ]
    return {"id": mid, "recipients": recipients}, lines


@api_command("send", short_help="send a request or information")
@cli.many("--to", required=True, metavar="ID", help="the recipients (one or more authority ids)")
@click.option("--kind", required=True, type=cli.choice_of(Kind, SEND_KINDS))
@click.option("--subject", required=True, metavar="S", help="the subject line")
@_body_options
@cli.many("--attach", type=cli.PATH, metavar="FILE", help="files to attach (one or more)")
@click.option("--urgency", type=cli.choice_of(Urgency), default=Urgency.ROUTINE.value)
@click.option("--deadline", metavar="ISO-8601", help="answer deadline (UTC unless given)")
@click.option(
    "--tlp", type=cli.choice_of(Tlp), default=Tlp.AMBER.value, help="handling (default: AMBER)"
)
@click.option("--restriction", multiple=True, type=cli.choice_of(Restriction))
@click.option("--case", metavar="CASE", help="the case reference")
@click.option("--language", default="en", metavar="xx", help="ISO 639-1 (default: en)")
@click.option(
    "--wait",
    type=cli.Seconds(),
    is_flag=False,
    flag_value=600.0,
    default=None,
    metavar="SECONDS",
    help="wait until every recipient is reached or the hub holds the message (default 600 s), "
    "showing attachment upload progress on a terminal",
)
async def send(api: ApiClient, **options: Any) -> cli.Result:
    """Send a request, information or a bulletin; with --wait, follow its delivery."""
    payload = _send_payload(options)
    files = _attachments(options["attach"])
    sent = await _post_with_files(api, "/api/messages", payload, files)
    if options["wait"] is None:
        return sent, [
            f"message {text(sent.get('id'))} queued for delivery (see: globe-node outbox)"
        ]
    return await _follow(api, segment(str(sent.get("id"))), options["wait"])


# --- answers and handling -----------------------------------------------------------------------


@api_command("reply", short_help="answer or inform the sender of a message")
@click.argument("msg", metavar="MSG")
@_body_options
@click.option("--kind", type=cli.choice_of(Kind, REPLY_KINDS), default=Kind.ANSWER.value)
@click.option("--subject", metavar="S", help="default: Re: the original subject")
@cli.many("--attach", type=cli.PATH, metavar="FILE", help="files to attach (one or more)")
async def reply(
    api: ApiClient,
    *,
    msg: str,
    body: str | None,
    body_file: Path | None,
    kind: str,
    subject: str | None,
    attach: tuple[Path, ...],
) -> cli.Result:
    """Answer a received message, with attachments uploaded first."""
    payload: dict[str, Any] = {"kind": kind, "body": _body(body, body_file)}
    if subject is not None:
        payload["subject"] = subject
    files = _attachments(attach)
    data = await _post_with_files(api, f"/api/messages/{segment(msg)}/reply", payload, files)
    return data, _queued("reply", data)


#: What each state needs on the command line (PROTOCOL.md §8.2.1).
_STATUS_NEEDS = {
    StatusState.ACKNOWLEDGED.value: ("expected", "--expected DATE (the answer date you expect)"),
    StatusState.DECLINED.value: ("reason", "--reason TEXT (why you decline)"),
    StatusState.WITHDRAWN.value: ("reason", "--reason TEXT (why you withdraw it)"),
    StatusState.EXTENDED.value: ("deadline", "--deadline DATE (the new, later deadline)"),
}


@api_command("status-update", short_help="report or change a request's state")
@click.argument("msg", metavar="MSG")
@click.option("--state", required=True, type=cli.choice_of(StatusState))
@click.option(
    "--expected", metavar="DATE", help="expected answer date (ISO 8601), with acknowledged"
)
@click.option("--deadline", metavar="DATE", help="the new deadline (ISO 8601), with extended")
@click.option("--reason", metavar="R", help="why: with declined and withdrawn")
@_body_options
async def status_update(
    api: ApiClient,
    *,
    msg: str,
    state: str,
    expected: str | None,
    deadline: str | None,
    reason: str | None,
    body: str | None,
    body_file: Path | None,
) -> cli.Result:
    """Report a request's state to its other party: as a recipient of the request,
    acknowledged (with --expected), in-progress, declined (with --reason) or answered; as
    its requester, closed, withdrawn (with --reason) or extended (with --deadline), to
    every recipient.  MSG is the request's id, or a unique prefix of it."""
    given = {"expected": expected, "reason": reason, "deadline": deadline}
    need = _STATUS_NEEDS.get(state)
    if need is not None and given[need[0]] is None:
        raise CommandError(f"--state {state} needs {need[1]}")
    payload: dict[str, Any] = {"state": state}
    if expected is not None:
        payload["expected"] = parse_time(expected, "--expected")
    if deadline is not None:
        payload["deadline"] = parse_time(deadline, "--deadline")
    if reason is not None:
        payload["reason"] = reason
    message = _body(body, body_file, required=False)
    if message is not None:
        payload["body"] = message
    data = await api.post(f"/api/messages/{segment(msg)}/status", payload)
    return data, _queued("status update", data)


@api_command("forward", short_help="forward a message (consent rules apply)")
@click.argument("msg", metavar="MSG")
@cli.many("--to", required=True, metavar="ID", help="the members to forward to")
@click.option("--note", metavar="S")
async def forward(api: ApiClient, *, msg: str, to: tuple[str, ...], note: str | None) -> cli.Result:
    """Forward a message to other members (the originator's consent rules apply)."""
    payload: dict[str, Any] = {"to": authority_ids(to)}
    if note is not None:
        payload["note"] = note
    data = await api.post(f"/api/messages/{segment(msg)}/forward", payload)
    return data, _queued("forward", data)


@api_command("request-consent", short_help="ask the originator to consent")
@click.argument("msg", metavar="MSG")
@cli.many("--to", required=True, metavar="ID")
@click.option("--purpose", required=True, metavar="S")
async def request_consent(
    api: ApiClient, *, msg: str, to: tuple[str, ...], purpose: str
) -> cli.Result:
    """Ask a message's originator to consent to its onward use."""
    payload = {"to": authority_ids(to), "purpose": purpose}
    data = await api.post(f"/api/messages/{segment(msg)}/request-consent", payload)
    return data, _queued("consent request", data)


@api_command("consent", short_help="grant or refuse a consent request")
@click.argument("msg", metavar="MSG")
@click.option("--grant", is_flag=True)
@click.option("--refuse", is_flag=True)
@cli.many("--to", metavar="ID")
@click.option("--reason", metavar="R")
async def consent(
    api: ApiClient,
    *,
    msg: str,
    grant: bool,
    refuse: bool,
    to: tuple[str, ...],
    reason: str | None,
) -> cli.Result:
    """Answer a consent request: grant (possibly to fewer members) or refuse."""
    cli.one_of({"--grant": grant, "--refuse": refuse}, required=True)
    payload: dict[str, Any] = {"decision": "granted" if grant else "refused"}
    if to:
        payload["to"] = authority_ids(to)
    if reason is not None:
        payload["reason"] = reason
    data = await api.post(f"/api/messages/{segment(msg)}/consent", payload)
    return data, _queued("consent decision", data)


@api_command("retry", short_help="retry delivery of a message now")
@click.argument("msg", metavar="MSG")
async def retry(api: ApiClient, *, msg: str) -> cli.Result:
    """Retry delivery of a sent message to the recipients not reached yet."""
    data = await api.post(f"/api/messages/{segment(msg)}/retry", {})
    return data, [f"{text(data.get('queued'))} recipient(s) queued for another attempt"]
