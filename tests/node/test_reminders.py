"""Reminders: a due-soon and an overdue notice per request and deadline, once each, kept
across a restart, addressed to the request's assigned user, shown in ``status`` and the
alert feed, and handed to the operator's command (argv, no shell, JSON on stdin, a
timeout; its failures counted, never holding anything up).

The node's clock is injectable: the tests move it to the moments that matter instead of
waiting for them.
"""

from __future__ import annotations

import asyncio
import sys
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any

import orjson
import pytest

from globe_node.config import load_config
from globe_node.errors import ConfigError
from globe_node.reminders import DUE_SOON, OVERDUE, Notice, ReminderHook
from protocol.messages import Kind
from tests.node.helpers import delivered, info
from tests.node.network import Net, RunningNode, add_user
from tests.support.waiting import eventually

pytestmark = pytest.mark.slow

HOUR = 3600
DAY = 24 * HOUR
#: A reminder command: appends each notice (its stdin) as one line to the file it names.
WRITER = "import sys; open(sys.argv[1], 'ab').write(sys.stdin.buffer.read() + b'\\n')"


async def post(rn: RunningNode, path: str, body: dict[str, Any], token: str | None = None) -> Any:
    status, answer = await rn.api("POST", path, body, token=token)
    assert status in (200, 201), answer
    return answer


def kinds(notices: list[Notice]) -> set[tuple[str, str, str | None]]:
    return {(n.kind, n.message, n.to) for n in notices}


async def check_at(rn: RunningNode, when: int) -> set[tuple[str, str, str | None]]:
    """The new notices of a check made at ``when``."""
    rn.n.clock = lambda: when
    return kinds(await rn.n.reminders.check())


async def test_each_notice_once_to_its_user_across_a_restart(net: Net, tmp_path: Path) -> None:
    written = tmp_path / "notices.jsonl"
    fr = await net.member(
        "FR-PNF", "Parquet national financier", sync_interval=3600.0,
        reminder_command=(sys.executable, "-c", WRITER, str(written)),
    )  # fmt: skip
    br = await net.member("BR-PF", "Policia Federal")
    sup = await add_user(fr.n, "sup", "supervisor")
    bob = await add_user(fr.n, "bob", "investigator")
    await post(fr, "/api/cases", {"case": "C-9", "assignee": "bob"}, sup)
    request = {"to": ["BR-PF"], "kind": "request", "body": "b", "urgency": "routine"}
    cased = (await post(fr, "/api/messages", {**request, "subject": "cased", "case": "C-9"}))["id"]
    loose = (await post(fr, "/api/messages", {**request, "subject": "loose"}))["id"]
    theirs = str(await br.n.send([fr.me], info("theirs", kind=Kind.REQUEST)))
    for sent in (cased, loose):
        await eventually(partial(delivered, fr, sent, br))
    await eventually(lambda: delivered(br, theirs, fr))
    rows = {r.message: r for r in await fr.n.requests()}
    deadline = rows[cased].deadline
    # France gives itself three more days for its loose request: its notices follow.
    extended = deadline + 3 * DAY
    ext = await post(
        fr, f"/api/messages/{loose}/status", {"state": "extended", "deadline": extended}
    )
    await eventually(lambda: delivered(fr, ext["id"], br))
    received = rows[theirs].deadline

    soon = max(deadline, received) - HOUR  # both within a day of their deadline
    assert await check_at(fr, soon) == {
        (DUE_SOON, cased, "bob"),  # the case's assignee
        (DUE_SOON, theirs, None),  # a received request: its team (here, the intake)
    }
    assert await check_at(fr, soon) == set()  # once
    late = extended - HOUR
    assert await check_at(fr, late) == {
        (OVERDUE, cased, "bob"), (OVERDUE, theirs, None), (DUE_SOON, loose, "alice"),
    }  # fmt: skip

    # The command heard of each, in order of deadline, as JSON on its stdin.
    async def told() -> bool:
        return written.exists() and len(written.read_bytes().splitlines()) == 5

    await eventually(told)
    heard = [orjson.loads(line) for line in written.read_bytes().splitlines()]
    assert {(h["kind"], h["request"], h["to"]) for h in heard} == {
        (DUE_SOON, cased, "bob"), (DUE_SOON, theirs, None), (OVERDUE, cased, "bob"),
        (OVERDUE, theirs, None), (DUE_SOON, loose, "alice"),
    }  # fmt: skip
    first = next(h for h in heard if (h["kind"], h["request"]) == (DUE_SOON, cased))
    assert first == {
        "kind": DUE_SOON, "request": cased, "direction": "out", "counterpart": "BR-PF",
        "case": "C-9", "team": None, "to": "bob", "deadline": deadline, "time": soon,
        "detail": f"request {cased} to BR-PF (case C-9) is due {_iso(deadline)}",
    }  # fmt: skip

    # Each user sees its own in status and in the alert feed; a supervisor sees them all.
    shown: dict[str, set[tuple[str, str]]] = {}
    for who, token in (("alice", None), ("bob", bob), ("sup", sup)):
        status, answer = await fr.api("GET", "/api/status", token=token)
        assert status == 200
        notices = answer["reminders"]["notices"]
        shown[who] = {(n["kind"], n["message"]) for n in notices}
        feed = (await fr.api("GET", "/api/alerts", token=token))[1]["alerts"]
        assert {(a["kind"], a["message"]) for a in feed} >= shown[who]
    team = {(DUE_SOON, theirs), (OVERDUE, theirs)}  # addressed to no one: all who see it
    assert shown["bob"] == {(DUE_SOON, cased), (OVERDUE, cased)} | team
    assert shown["alice"] == {(DUE_SOON, loose)} | team
    assert shown["sup"] == shown["bob"] | shown["alice"]
    assert (await fr.api("GET", "/api/status", token=sup))[1]["reminders"]["hook"] == {
        "runs": 5, "failures": 0,
    }  # fmt: skip

    # A restart repeats nothing: the notices are kept with the alerts.
    await net.stop_node(fr)
    await net.start_node(fr)
    assert await check_at(fr, soon) == set()
    assert await check_at(fr, late) == set()
    assert await check_at(fr, extended + 1) == {(OVERDUE, loose, "alice")}
    assert await check_at(fr, extended + DAY) == set()


def _iso(ts: int) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def notice(n: int = 0) -> Notice:
    return Notice(DUE_SOON, f"{n:032x}", "out", "BR-PF", None, None, "alice", 2_000_000_000, 1)


@pytest.mark.parametrize(
    ("argv", "timeout", "logged"),
    [
        ([sys.executable, "-c", "import sys; sys.exit(3)"], 10.0, "exited with status 3"),
        # A command that hangs (the sleep is the scenario, not synchronisation):
        ([sys.executable, "-c", "import time; time.sleep(60)"], 0.3, "was killed"),
        (["/nonexistent/notify"], 10.0, "cannot start /nonexistent/notify"),
    ],
)
async def test_a_failing_command_is_counted_and_holds_nothing_up(
    argv: list[str], timeout: float, logged: str, caplog: pytest.LogCaptureFixture
) -> None:
    hook = ReminderHook(argv, timeout)
    hook.notify(notice(1))
    hook.notify(notice(2))  # returned at once: nothing waits for the command
    assert hook.failures == 0

    await eventually(lambda: hook.failures == 2)
    assert hook.runs == 2
    assert sum(logged in r.getMessage() for r in caplog.records) == 2
    await hook.close()


async def test_no_command_runs_nothing_and_closing_stops_what_runs() -> None:
    idle = ReminderHook((), 10.0)
    idle.notify(notice())
    assert idle.runs == 0
    hung = ReminderHook([sys.executable, "-c", "import time; time.sleep(60)"], 60.0)
    hung.notify(notice())

    await eventually(lambda: hung.runs == 1)
    await hung.close()  # cancels the wait, kills the command
    assert hung.failures == 0


async def test_closing_while_the_command_starts_stops_it(monkeypatch: pytest.MonkeyPatch) -> None:
    """A close that lands while the command is being started: the command still stops."""
    real = asyncio.create_subprocess_exec
    started: list[asyncio.subprocess.Process] = []
    gate = asyncio.Event()

    async def slow_spawn(*argv: str, **kwargs: Any) -> asyncio.subprocess.Process:
        proc = await real(*argv, **kwargs)
        started.append(proc)
        await gate.wait()  # the process runs; the hook does not hold it yet
        return proc

    monkeypatch.setattr(asyncio, "create_subprocess_exec", slow_spawn)
    hook = ReminderHook([sys.executable, "-c", "import time; time.sleep(60)"], 60.0)
    hook.notify(notice())
    await eventually(lambda: bool(started))
    closing = asyncio.create_task(hook.close())
    await asyncio.sleep(0.05)  # the cancellation reaches the hook while the start waits
    gate.set()
    await closing
    (proc,) = started
    assert proc.returncode is not None  # killed and waited for, not left running
    assert (hook.runs, hook.failures) == (1, 0)


@pytest.mark.parametrize(
    ("text", "detail"),
    [
        ('reminder_command = "notify --all"\n', "reminder_command must be a list"),
        ('reminder_command = ["notify"]\n', "reminder_command must be a list"),
        ('reminder_command = ["/bin/true", 3]\n', "reminder_command must be a list"),
        ('reminder_command = ["/bin/true", ""]\n', "reminder_command must be a list"),
        ('intake_team = "the intake"\n', "intake_team must be a team name"),
        ("reminder_due_soon = -1\n", "reminder_due_soon must be a non-negative integer"),
        ("reminder_timeout = 0\n", "reminder_timeout must be a positive number"),
    ],
)
def test_reminder_settings_are_checked(tmp_path: Path, text: str, detail: str) -> None:
    (tmp_path / "node.toml").write_text(
        'authority = "FR-PNF"\nhub_url = "http://127.0.0.1:8440"\n' + text
    )
    with pytest.raises(ConfigError) as refused:
        load_config(tmp_path)
    assert detail in refused.value.detail


def test_reminder_settings_are_read(tmp_path: Path) -> None:
    (tmp_path / "node.toml").write_text(
        'authority = "FR-PNF"\nhub_url = "http://127.0.0.1:8440"\nintake_team = "desk"\n'
        'reminder_command = ["/usr/local/bin/notify", "--to", "duty desk"]\n'
        "reminder_due_soon = 7200\nreminder_timeout = 2.5\n"
    )
    config = load_config(tmp_path)
    assert (config.intake_team, config.reminder_command, config.reminder_due_soon,
            config.reminder_timeout) == (
        "desk", ("/usr/local/bin/notify", "--to", "duty desk"), 7200, 2.5,
    )  # fmt: skip
