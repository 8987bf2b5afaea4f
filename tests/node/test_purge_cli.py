"""``globe-node purge`` on a real node directory and ``globe-node case hold|release|holds``
through a real daemon: a dry run lists exactly what would go and changes no byte of the
database or the attachment files; a purge run by the command shows as purged in the
daemon's API and the CLI's ``show``, and a daemon running meanwhile drops the purged words
from its search index; a purge process killed (SIGKILL) after each of its steps leaves a
store that checks, and the next run completes it; the database can be converted to
incremental vacuum; a wrong ``[retention]`` setting is one line."""

from __future__ import annotations

import asyncio
import os
import signal
import sqlite3
import subprocess
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

import pytest

from globe_node.compartments import WHOLE_NODE
from globe_node.config import CaseScope, PurgeScope, RetentionPolicy, RetentionRule
from protocol.messages import Kind
from tests.node.helpers import Ran, delivered, info, refused, usage
from tests.node.network import PASSPHRASE, Net, RunningNode, add_user, stage
from tests.support.waiting import eventually

ROOT: Final = Path(__file__).resolve().parents[2]
UNCASED: Final = RetentionPolicy(
    rules=(RetentionRule("uncased", PurgeScope.CONTENT, 0, kinds=frozenset({Kind.INFORMATION}),
                         cases=CaseScope.NONE),)
)  # fmt: skip


async def _prepared(net: Net) -> tuple[RunningNode, str, str]:
    """FR-PNF with the rule ``uncased``, holding one uncased message with an attachment
    from BR-PF and one message in a case; the message the rule purges, and its file."""
    fr = await net.member("FR-PNF", "Parquet national financier", retention=UNCASED)
    br = await net.member("BR-PF", "Policia Federal")
    upload = await stage(br.n, b"Skyline ledger rows\n" * 50, name="ledger.csv")
    mid = str(await br.n.send([fr.me], info("Skyline ledger"), uploads=[upload]))
    kept = str(await br.n.send([fr.me], info("Filed", case="C-1")))
    for m in (mid, kept):
        await eventually(lambda m=m: delivered(br, m, fr))  # type: ignore[misc]
    (blob,) = [a.blob for a in (await fr.n.content_of(mid)).content.attachments]
    return fr, mid, f"BR-PF.{blob}"


def _dump(path: Path) -> list[str]:
    conn = sqlite3.connect(path)
    try:
        return list(conn.iterdump())
    finally:
        conn.close()


def _files(rn: RunningNode) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in rn.config.blob_dir.iterdir()}


def _date(ts: int) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d")


async def test_a_dry_run_lists_exactly_what_would_go_and_changes_nothing(
    net: Net, run: Callable[..., Ran]
) -> None:
    fr, mid, name = await _prepared(net)
    received = (await fr.n.store.in_message(mid)).received  # type: ignore[union-attr]
    await net.stop_node(fr)
    db_path = fr.config.db_path
    before = (db_path.read_bytes(), _dump(db_path), _files(fr))
    size = len(before[2][name])

    ran = await asyncio.to_thread(run, "purge", "--dry-run", "--json", "--dir", fr.config.directory)
    data = ran.json()
    assert data == {
        "time": data["time"], "dry_run": True,
        "counts": {"content": 1, "attachments": 0, "held": 0, "waiting": 0, "files": 1,
                   "bytes": size},
        "purged": [{
            "message": mid, "direction": "in", "kind": "information", "counterparts": ["BR-PF"],
            "case": None, "time": received, "rule": "uncased", "purge": "content",
            "files": [name], "bytes": size,
        }],
        "held": [], "waiting": [], "files": [name], "audit": None, "vacuumed": False,
    }  # fmt: skip
    ran = await asyncio.to_thread(run, "purge", "--dry-run", "--dir", fr.config.directory)
    assert (ran.code, ran.err) == (0, "")
    assert ran.out.splitlines() == [
        f"would purge the content of {mid} (in, information, BR-PF, case -) under rule uncased;"
        f" 1 file(s), {size} bytes",
        "dry run: 1 message(s) purged of their content, 0 of their attachments; 0 kept by a"
        f" legal hold, 0 until their delivery ends; would remove 1 file(s), {size} bytes",
    ]
    assert (db_path.read_bytes(), _dump(db_path), _files(fr)) == before
    assert not db_path.with_name("node.db-wal").exists()


async def test_a_purge_by_the_command_shows_in_the_api_and_the_cli(
    net: Net, run: Callable[..., Ran]
) -> None:
    fr, mid, name = await _prepared(net)
    await net.stop_node(fr)
    data = (await asyncio.to_thread(run, "purge", "--json", "--dir", fr.config.directory)).json()
    assert ([p["message"] for p in data["purged"]], data["files"]) == ([mid], [name])
    assert not (fr.config.blob_dir / name).exists()
    await net.start_node(fr)
    day = _date(data["time"])
    status, shown = await fr.api("GET", f"/api/messages/{mid}")
    assert (status, shown["content"]["subject"], shown["content"]["attachments"]) == (
        200, f"[purged on {day} under rule uncased]", []
    )  # fmt: skip
    token = fr.config.directory / "alice.token"
    token.write_text(fr.token)
    ran = await asyncio.to_thread(
        run, "show", mid, "--dir", fr.config.directory, "--token-file", token
    )
    assert ran.code == 0, ran.err
    lines = ran.out.splitlines()
    assert f"subject:   [purged on {day} under rule uncased]" in lines
    assert (
        f"The content of this message was purged on {day} under rule uncased ([retention] of"
        " node.toml). This node keeps its ids, times, counterparts, envelope hash, receipts and"
        " delivery evidence."
    ) in lines
    entries, verified = await fr.n.audit.entries()
    assert verified
    assert [(e["seq"], e["action"], e["subject"]) for e in entries if e["action"] == "purge"] == [
        (data["audit"], "purge", "content 1 attachments 0 rules uncased")
    ]
    assert next(e["user"] for e in entries if e["action"] == "purge").startswith("cli:")


async def test_a_daemon_running_meanwhile_forgets_the_purged_words(
    net: Net, run: Callable[..., Ran]
) -> None:
    fr, mid, _ = await _prepared(net)
    found = await fr.n.searcher.search(WHOLE_NODE, "Skyline", limit=10, offset=0)
    assert [h.id for h in found.hits] == [mid]
    ran = await asyncio.to_thread(run, "purge", "--dir", fr.config.directory)
    assert (ran.code, ran.err) == (0, "")

    async def forgotten() -> bool:
        page = await fr.n.searcher.search(WHOLE_NODE, "Skyline", limit=10, offset=0)
        return page.hits == ()

    await eventually(forgotten, what="the daemon's index dropping the purged words")
    inbox = {m.id: m.subject for m in await fr.n.inbox()}
    assert inbox[mid].startswith("[purged on ")


# --- killed mid-purge --------------------------------------------------------------------------

#: A purge that kills its own process (SIGKILL) once the step named in argv[2] is done.
KILLED_AT: Final = """
import asyncio, os, signal, sys
from pathlib import Path
from globe_node import db
from globe_node.audit import AuditLog
from globe_node.config import load_config
from globe_node.context import NodeContext
from globe_node.keys import load_keys
from globe_node.retention import Retention
from globe_node.store import Store
from protocol.genesis import Genesis

async def main(directory, at):
    config = load_config(directory)
    keys = load_keys(config.key_path, os.environb[b"GLOBE_PASSPHRASE"])
    store = Store(db.make_engine(config.db_path))
    genesis = Genesis.decode(config.genesis_path.read_bytes())
    ctx = NodeContext(config=config, keys=keys, genesis=genesis, store=store)

    async def step(name):
        if name == at:
            os.kill(os.getpid(), signal.SIGKILL)

    await Retention(ctx, AuditLog(store)).purge(user="killed", step=step)

asyncio.run(main(Path(sys.argv[1]), sys.argv[2]))
"""


def _state(path: Path, mid: str) -> tuple[Any, ...]:
    """(integrity check, the message's purge mark and envelope length, attachment states,
    purge audit rows) read with SQLite itself."""
    conn = sqlite3.connect(path)
    try:
        return (
            conn.execute("PRAGMA integrity_check").fetchone()[0],
            conn.execute(
                "SELECT purged_what, length(envelope) > 0 FROM inbox WHERE message_id = ?", (mid,)
            ).fetchone(),
            conn.execute("SELECT state FROM attachments WHERE message_id = ?", (mid,)).fetchall(),
            conn.execute("SELECT user FROM audit WHERE action = 'purge'").fetchall(),
        )
    finally:
        conn.close()


#: The step the purge is killed after: what the store then holds (see ``_state``), and
#: whether the next run purges the message and removes its file.
KILLS: Final = {
    # nothing written yet: the next run does all of it
    "planned": (("ok", (None, 1), [("fetched",)], []), True, True),
    # committed, the file not yet removed: the next run removes it
    "committed": (("ok", ("content", 0), [("purged",)], [("killed",)]), False, True),
    # the file removed, the log not yet checkpointed: nothing is left to do
    "files": (("ok", ("content", 0), [("purged",)], [("killed",)]), False, False),
}


@pytest.mark.slow
@pytest.mark.parametrize("at", list(KILLS))
async def test_a_purge_killed_after_any_step_leaves_a_store_the_next_run_completes(
    net: Net, run: Callable[..., Ran], at: str
) -> None:
    after_kill, then_purged, then_removed = KILLS[at]
    fr, mid, name = await _prepared(net)
    await net.stop_node(fr)
    db_path, before = fr.config.db_path, _dump(fr.config.db_path)
    env = dict(os.environ, GLOBE_PASSPHRASE=PASSPHRASE.decode())
    killed = await asyncio.to_thread(
        subprocess.run, [sys.executable, "-c", KILLED_AT, str(fr.config.directory), at],
        cwd=ROOT, env=env, capture_output=True, check=False, timeout=120,
    )  # fmt: skip
    assert killed.returncode == -signal.SIGKILL, killed.stderr.decode()
    assert _state(db_path, mid) == after_kill
    assert (fr.config.blob_dir / name).exists() == (at != "files")
    if at == "planned":
        assert _dump(db_path) == before

    data = (await asyncio.to_thread(run, "purge", "--json", "--dir", fr.config.directory)).json()
    assert [p["message"] for p in data["purged"]] == ([mid] if then_purged else [])
    assert data["files"] == ([name] if then_removed else [])
    assert not (fr.config.blob_dir / name).exists()
    done = _state(db_path, mid)
    assert done[:3] == ("ok", ("content", 0), [("purged",)])
    assert [u for (u,) in done[3]] == ([] if at == "planned" else ["killed"]) + [done[3][-1][0]]
    assert done[3][-1][0].startswith("cli:")
    await net.start_node(fr)
    _, verified = await fr.n.audit.entries()
    assert verified
    status, shown = await fr.api("GET", f"/api/messages/{mid}")
    assert (status, shown["content"]["subject"][:11]) == (200, "[purged on ")


# --- vacuum, refusals --------------------------------------------------------------------------


async def test_the_database_is_converted_to_incremental_vacuum_when_asked(
    net: Net, run: Callable[..., Ran]
) -> None:
    fr, _, _ = await _prepared(net)
    await net.stop_node(fr)
    pragma = "PRAGMA auto_vacuum"
    assert sqlite3.connect(fr.config.db_path).execute(pragma).fetchone() == (0,)
    directory = fr.config.directory
    usage(
        await asyncio.to_thread(run, "purge", "--dry-run", "--vacuum", "--dir", directory),
        "--vacuum changes the database: not with --dry-run",
    )
    data = (await asyncio.to_thread(run, "purge", "--vacuum", "--json", "--dir", directory)).json()
    assert data["vacuumed"] is True
    assert sqlite3.connect(fr.config.db_path).execute(pragma).fetchone() == (2,)
    again = (await asyncio.to_thread(run, "purge", "--json", "--dir", directory)).json()
    assert (again["purged"], again["vacuumed"]) == ([], True)


def test_a_wrong_retention_setting_is_one_line(node: Path, run: Callable[..., Ran]) -> None:
    config = node / "node.toml"
    config.write_text(config.read_text().replace('at = "03:00"', 'at = "noon"'))
    refused(
        run("purge", "--dry-run", "--dir", node),
        f'{config}: [retention] at must be a time of day, "HH:MM" (UTC)',
    )


def test_without_rules_nothing_is_purged(node: Path, run: Callable[..., Ran]) -> None:
    ran = run("purge", "--dir", node)
    assert (ran.code, ran.err) == (0, "")
    assert ran.out.splitlines() == [
        f"{node / 'node.toml'} names no [[retention.rules]]: nothing is purged",
        "0 message(s) purged of their content, 0 of their attachments; 0 kept by a legal hold,"
        " 0 until their delivery ends; removed 0 file(s), 0 bytes",
        "audit entry 1",
    ]


# --- legal holds through the daemon ------------------------------------------------------------


async def test_case_hold_release_and_holds(net: Net, run: Callable[..., Ran]) -> None:
    fr = await net.member("FR-PNF", "Parquet national financier")
    br = await net.member("BR-PF", "Policia Federal")
    mid = str(await br.n.send([fr.me], info("Opens C-7", case="C-7")))
    await eventually(lambda: delivered(br, mid, fr))
    directory = fr.config.directory
    sup, inv = directory / "sup.token", directory / "inv.token"
    sup.write_text(await add_user(fr.n, "sup", "supervisor"))
    inv.write_text(fr.token)

    async def cli(*args: str | Path, token: Path = sup) -> Ran:
        return await asyncio.to_thread(run, *args, "--dir", directory, "--token-file", token)

    refused(
        await cli("case", "hold", "C-7", "--reason", "Order 7", token=inv),
        "the investigator role may not do this",
    )
    ran = await cli("case", "hold", "C-7", "--reason", "Order 7")
    assert (ran.code, ran.err) == (0, "")
    listed = (await cli("case", "holds", "--json")).json()["holds"]
    assert [(h["case"], h["reason"], h["placed_by"]) for h in listed] == [("C-7", "Order 7", "sup")]
    placed = listed[0]["placed"]
    when = datetime.fromtimestamp(placed, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    assert ran.out == f"case C-7: held since {when} by sup, standing; reason: Order 7\n"
    refused(
        await cli("case", "hold", "C-7", "--reason", "again"),
        f"case C-7 is under a legal hold already (placed {_date(placed)} by sup)",
    )
    ran = await cli("case", "release", "C-7")
    assert (ran.code, ran.err) == (0, "")
    assert ran.out.startswith(f"case C-7: held since {when} by sup, released ")
    assert (await cli("case", "holds")).out == "no legal hold stands\n"
