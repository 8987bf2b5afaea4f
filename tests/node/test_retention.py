"""Retention on a real node (docs/OPERATIONS.md §11.11): the ``[retention]`` rules as
read from ``node.toml`` (each wrong setting named exactly); what the rules decide for one
message; a purge of a prepared store -- messages of each kind and TLP level, with and
without a case, the case closed or open, under a legal hold -- that removes exactly what
the rules say (the rows kept column by column, the files gone, the old sealed bytes gone
from the database file) and nothing under a hold, even one placed during the run; legal
holds for supervisors only, audited; the daily purge of the daemon; sent messages kept
until their delivery ends; the disk use in the status and the metrics; the migration."""

from __future__ import annotations

import dataclasses
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from alembic import command
from alembic.config import Config
from sqlalchemy import select, text, update
from sqlalchemy.engine import Connection

from globe_node import db
from globe_node.check import MIGRATIONS
from globe_node.compartments import WHOLE_NODE
from globe_node.config import (
    CaseScope,
    PurgeScope,
    RetentionPolicy,
    RetentionRule,
    Since,
    load_config,
)
from globe_node.errors import ConfigError
from globe_node.holds import Holds
from globe_node.metrics import create_metrics_app
from globe_node.retention import LAST_RUN, Retention
from globe_node.retentionrules import (
    DAY,
    PURGED,
    Facts,
    due_purge,
    tombstone,
    without_attachments,
)
from globe_node.roles import Role
from globe_node.users import Principal
from protocol.bundle import verify_bundle
from protocol.ids import AuthorityId, MessageId
from protocol.messages import (
    Attachment,
    Consent,
    ConsentDecision,
    Handling,
    Kind,
    MessageContent,
    Restriction,
    StatusState,
    StatusUpdate,
    Tlp,
)
from tests.node.helpers import delivered, info, problem
from tests.node.network import Net, RunningNode, add_user, stage
from tests.node.test_node_config import write_config
from tests.support.servers import serve_app
from tests.support.waiting import eventually

# --- the rules as node.toml says them ----------------------------------------------------------

_RULE = '[[retention.rules]]\nname = "r"\npurge = "content"\nafter_days = 1\n'
_KINDS = "information, request, answer, status, consent-request, consent-decision, bulletin"


@pytest.mark.parametrize(
    ("toml", "detail"),
    [
        ("retention = 5\n", "[retention] is a table"),
        ("[retention]\nkeep = 1\n", "[retention] keep: unknown setting"),
        ("[retention]\ndaily = 1\n", "[retention] daily must be true or false"),
        ('[retention]\nat = "3:00"\n', '[retention] at must be a time of day, "HH:MM" (UTC)'),
        ('[retention]\nat = "24:00"\n', '[retention] at must be a time of day, "HH:MM" (UTC)'),
        (
            "[retention]\nrules = 1\n",
            "[retention] rules must be a list of tables ([[retention.rules]])",
        ),
        ("[retention]\nrules = [1]\n", "[retention] rule 1 is a table"),
        (
            '[[retention.rules]]\nname = "r"\n',
            "[retention] rule 1: purge: missing; [retention] rule 1: after_days: missing",
        ),
        (_RULE + "colour = 1\n", "[retention] rule 1: colour: unknown setting"),
        (
            _RULE.replace('"r"', '"two words"'),
            "[retention] rule 1: name must be 1-64 of A-Z a-z 0-9 . _ @ - (starting with a"
            " letter or digit)",
        ),
        (_RULE + _RULE, "[retention] rule 2: name 'r' is rule 1's already"),
        (
            _RULE.replace('"content"', '"all"'),
            '[retention] rule 1: purge must be "content" or "attachments"',
        ),
        (
            _RULE.replace("= 1", "= -1"),
            "[retention] rule 1: after_days must be an integer from 0 to 36500",
        ),
        (
            _RULE.replace("= 1", "= 36501"),
            "[retention] rule 1: after_days must be an integer from 0 to 36500",
        ),
        (
            _RULE.replace("= 1", '= "1"'),
            "[retention] rule 1: after_days must be an integer from 0 to 36500",
        ),
        (
            _RULE + 'since = "closing"\n',
            '[retention] rule 1: since must be "message" or "case-closed"',
        ),
        (_RULE + 'cases = "some"\n', '[retention] rule 1: cases must be "any", "none" or "filed"'),
        (
            _RULE + 'since = "case-closed"\ncases = "none"\n',
            '[retention] rule 1: since "case-closed" needs messages filed under a case, not'
            ' cases = "none"',
        ),
        (_RULE + 'kinds = ["memo"]\n', f"[retention] rule 1: kinds must be a list of: {_KINDS}"),
        (
            _RULE + 'tlp = ["red"]\n',
            "[retention] rule 1: tlp must be a list of: CLEAR, GREEN, AMBER, AMBER+STRICT, RED",
        ),
        (
            _RULE + 'restrictions = "no-onward-dissemination"\n',
            "[retention] rule 1: restrictions must be a list of: intelligence-only,"
            " no-onward-dissemination",
        ),
    ],
)  # fmt: skip
def test_each_wrong_retention_setting_is_named(tmp_path: Path, toml: str, detail: str) -> None:
    path = write_config(tmp_path / "n", toml)
    with pytest.raises(ConfigError) as err:
        load_config(tmp_path / "n")
    assert err.value.detail == f"{path}: {detail}"


def test_every_wrong_retention_setting_is_named_at_once(tmp_path: Path) -> None:
    path = write_config(
        tmp_path / "n",
        'sync_interval = 0\n[retention]\ndaily = "yes"\n'
        '[[retention.rules]]\nname = "a"\npurge = "content"\nafter_days = 1\ntlp = ["BLUE"]\n'
        '[[retention.rules]]\nname = "b"\npurge = "attachments"\n',
    )
    with pytest.raises(ConfigError) as err:
        load_config(tmp_path / "n")
    assert err.value.detail == (
        f"{path}: sync_interval must be a positive number; "
        "[retention] daily must be true or false; "
        "[retention] rule 1: tlp must be a list of: CLEAR, GREEN, AMBER, AMBER+STRICT, RED; "
        "[retention] rule 2: after_days: missing"
    )


def test_no_retention_table_keeps_everything(tmp_path: Path) -> None:
    write_config(tmp_path / "n", "")
    assert load_config(tmp_path / "n").retention == RetentionPolicy(False, "03:00", ())


def test_a_rule_reads_as_written(tmp_path: Path) -> None:
    write_config(
        tmp_path / "n",
        '[retention]\ndaily = true\nat = "23:59"\n'
        '[[retention.rules]]\nname = "red-attachments"\npurge = "attachments"\n'
        'after_days = 90\nsince = "case-closed"\ntlp = ["RED", "AMBER+STRICT"]\n'
        'restrictions = ["intelligence-only"]\ncases = "filed"\nkinds = ["request"]\n',
    )
    assert load_config(tmp_path / "n").retention == RetentionPolicy(
        daily=True, at="23:59",
        rules=(RetentionRule(
            "red-attachments", PurgeScope.ATTACHMENTS, 90, Since.CASE_CLOSED,
            kinds=frozenset({Kind.REQUEST}), tlp=frozenset({Tlp.RED, Tlp.AMBER_STRICT}),
            restrictions=frozenset({Restriction.INTELLIGENCE_ONLY}), cases=CaseScope.FILED,
        ),),
    )  # fmt: skip


# --- what the rules decide for one message -----------------------------------------------------

NOW = 1_800_000_000
ATT = Attachment("scan.pdf", 7, "application/pdf", b"\x01" * 32, b"\x02" * 32, "a" * 32)
RED_ATT = RetentionRule("red-att", PurgeScope.ATTACHMENTS, 90, Since.CASE_CLOSED,
                        tlp=frozenset({Tlp.RED}), cases=CaseScope.FILED)  # fmt: skip
UNCASED = RetentionRule("uncased", PurgeScope.CONTENT, 30, cases=CaseScope.NONE)
REQUESTS = RetentionRule("requests", PurgeScope.CONTENT, 3650, kinds=frozenset({Kind.REQUEST}))
NO_ONWARD = RetentionRule("no-onward", PurgeScope.ATTACHMENTS, 0,
                          restrictions=frozenset({Restriction.NO_ONWARD}))  # fmt: skip
RULES = (RED_ATT, UNCASED, REQUESTS, NO_ONWARD)


def facts(
    *, tlp: Tlp = Tlp.AMBER, case: str | None = "C-1", age_days: float = 0,
    kind: Kind = Kind.INFORMATION, attachments: tuple[Attachment, ...] = (ATT,),
    restrictions: frozenset[Restriction] = frozenset(), before: PurgeScope | None = None,
) -> Facts:  # fmt: skip
    content = info(kind=kind, handling=Handling(tlp, restrictions), attachments=attachments)
    return Facts("in", content, case, NOW - int(age_days * DAY), before)


@pytest.mark.parametrize(
    ("message", "closed", "expected"),
    [
        # RED attachments: 90 days after the case closed, not a second before
        (facts(tlp=Tlp.RED), NOW - 90 * DAY, ("red-att", PurgeScope.ATTACHMENTS)),
        (facts(tlp=Tlp.RED), NOW - 90 * DAY + 1, None),
        (facts(tlp=Tlp.RED), None, None),  # the case is open
        (facts(tlp=Tlp.AMBER), NOW - 365 * DAY, None),  # not RED
        (facts(tlp=Tlp.RED, attachments=()), NOW - 365 * DAY, None),  # nothing to purge
        (facts(tlp=Tlp.RED, before=PurgeScope.ATTACHMENTS), NOW - 365 * DAY, None),  # done
        # no case: the content after 30 days; a content rule wins over an attachments rule
        (facts(case=None, age_days=30), None, ("uncased", PurgeScope.CONTENT)),
        (facts(case=None, age_days=29.99), None, None),
        (facts(case=None, age_days=30, restrictions=frozenset({Restriction.NO_ONWARD})), None,
         ("uncased", PurgeScope.CONTENT)),
        (facts(case=None, age_days=29, restrictions=frozenset({Restriction.NO_ONWARD})), None,
         ("no-onward", PurgeScope.ATTACHMENTS)),
        (facts(case=None, age_days=30, before=PurgeScope.ATTACHMENTS), None,
         ("uncased", PurgeScope.CONTENT)),
        (facts(case=None, age_days=30, before=PurgeScope.CONTENT), None, None),
        # requests: ten years, in a case or not, whatever their TLP
        (facts(kind=Kind.REQUEST, age_days=3650), None, ("requests", PurgeScope.CONTENT)),
        (facts(kind=Kind.REQUEST, age_days=3649), None, None),
        (facts(kind=Kind.ANSWER, age_days=3650), None, None),
        # restrictions: any one named
        (facts(restrictions=frozenset(Restriction)), None, ("no-onward", PurgeScope.ATTACHMENTS)),
        (facts(restrictions=frozenset({Restriction.INTELLIGENCE_ONLY})), None, None),
    ],
)  # fmt: skip
def test_what_the_rules_purge_of_one_message(
    message: Facts, closed: int | None, expected: tuple[str, PurgeScope] | None
) -> None:
    found = due_purge(RULES, message, closed=closed, now=NOW)
    assert (None if found is None else (found[0].name, found[1])) == expected


def test_what_is_left_of_a_message_whose_content_was_purged() -> None:
    status = info(
        kind=Kind.STATUS, subject="Declined", body="Not our competence.", case="C-1",
        in_reply_to=MessageId.parse("b" * 32), attachments=(ATT,),
        status=StatusUpdate(StatusState.DECLINED, reason="The suspect is a minister."),
    )  # fmt: skip
    left = tombstone(status, rule="r1", when=NOW)
    assert left == MessageContent(
        kind=Kind.STATUS, subject="[purged on 2027-01-15 under rule r1]",
        body="The content of this message was purged on 2027-01-15 under rule r1 ([retention]"
        " of node.toml). This node keeps its ids, times, counterparts, envelope hash, receipts"
        " and delivery evidence.\nIts 1 attachment(s): 7 bytes, sha256 " + "01" * 32 + ".",
        language="en", urgency=status.urgency, handling=status.handling, case="C-1",
        in_reply_to=status.in_reply_to,
        status=StatusUpdate(StatusState.DECLINED, reason=PURGED),
    )  # fmt: skip
    assert MessageContent.decode(left.encode()) == left
    decision = Consent(MessageId.parse("b" * 32), (AuthorityId.parse("KE-EACC"),), None,
                       ConsentDecision.REFUSED, "Not now.")  # fmt: skip
    refused = info(kind=Kind.CONSENT_DECISION, in_reply_to=MessageId.parse("c" * 32),
                   consent=decision)  # fmt: skip
    left = tombstone(refused, rule="r1", when=NOW)
    assert left.consent == dataclasses.replace(decision, reason=PURGED)
    assert MessageContent.decode(left.encode()) == left


def test_what_is_left_of_a_message_whose_attachments_were_purged() -> None:
    msg = info(body="See the scan.", attachments=(ATT,))
    left = without_attachments(msg, rule="red", when=NOW)
    assert left == dataclasses.replace(
        msg, attachments=(),
        body="See the scan.\n\n[1 attachment(s) purged on 2027-01-15 under rule red: scan.pdf"
        f" (7 bytes, sha256 {'01' * 32})]",
    )  # fmt: skip
    assert MessageContent.decode(left.encode()) == left


# --- a purge of a prepared store ---------------------------------------------------------------

SCENARIO = (
    RetentionRule("red-attachments", PurgeScope.ATTACHMENTS, 0, Since.CASE_CLOSED,
                  tlp=frozenset({Tlp.RED}), cases=CaseScope.FILED),
    RetentionRule("uncased", PurgeScope.CONTENT, 0, kinds=frozenset({Kind.INFORMATION}),
                  cases=CaseScope.NONE),
    RetentionRule("requests-30d", PurgeScope.CONTENT, 30, kinds=frozenset({Kind.REQUEST})),
)  # fmt: skip
#: The columns a purge leaves as they were (it changes content, envelope and the marks).
_CHANGED = {"content", "envelope", "purged", "purge_rule", "purged_what"}


def _date(ts: int) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d")


async def _rows(rn: RunningNode, model: type[db.Base]) -> dict[Any, dict[str, Any]]:
    """Every row of ``model``, by primary key, as a dict of its columns."""
    table = model.__table__
    key = [c.name for c in model.__mapper__.primary_key]
    async with rn.n.sessions() as s:
        rows = (await s.execute(select(model))).scalars().all()
    out = {}
    for r in rows:
        values = {c.name: getattr(r, c.key) for c in table.columns}
        out[tuple(values[k] for k in key)] = values
    return out


async def _snapshot(rn: RunningNode) -> dict[str, dict[Any, dict[str, Any]]]:
    models = (db.InMessage, db.OutMessage, db.OutRecipient, db.AttachmentRow, db.RequestRow,
              db.CaseRow, db.LegalHold)  # fmt: skip
    return {m.__tablename__: await _rows(rn, m) for m in models}


def _db_bytes(rn: RunningNode) -> bytes:
    path = rn.config.db_path
    return b"".join(
        p.read_bytes() for p in (path, path.with_name(path.name + "-wal")) if p.exists()
    )


async def _in_row(rn: RunningNode, mid: str) -> db.InMessage:
    row = await rn.n.store.in_message(mid)
    assert row is not None
    return row


async def _send(sender: RunningNode, to: RunningNode, content: MessageContent,
                data: bytes | None = None, name: str = "file.bin") -> str:  # fmt: skip
    uploads = [await stage(sender.n, data, name=name)] if data is not None else []
    mid = str(await sender.n.send([to.me], content, uploads=uploads))
    await eventually(lambda: delivered(sender, mid, to))
    return mid


async def test_a_purge_removes_exactly_what_the_rules_say_and_nothing_under_a_hold(
    net: Net,
) -> None:
    fr = await net.member(
        "FR-PNF", "Parquet national financier", retention=RetentionPolicy(rules=SCENARIO)
    )
    br = await net.member("BR-PF", "Policia Federal")
    sup = await add_user(fr.n, "sup", "supervisor")
    red = Handling(Tlp.RED)
    m: dict[str, str] = {
        "red_closed": await _send(br, fr, info("Red scan", case="C-CLOSED", handling=red),
                                  b"RED scan bytes", "scan.pdf"),
        "red_held": await _send(br, fr, info("Held scan", case="C-HELD", handling=red),
                                b"held scan bytes"),
        "amber_closed": await _send(br, fr, info("Amber scan", case="C-CLOSED"),
                                    b"amber scan bytes"),
        "uncased_in": await _send(br, fr, info("Ledger of Skyline Ltd")),
        "uncased_out": await _send(fr, br, info("Ledger sent", handling=Handling(Tlp.GREEN)),
                                   b"ledger,csv\n", "ledger.csv"),
        "request_open": await _send(br, fr, info("Bank records", kind=Kind.REQUEST,
                                                 case="C-OPEN")),
        "red_open": await _send(fr, br, info("Red but open", case="C-OPEN", handling=red),
                                b"red open bytes"),
    }  # fmt: skip
    for ref in ("C-CLOSED", "C-HELD"):
        assert (await fr.api("POST", f"/api/cases/{ref}/close", {}))[0] == 200
    status, hold = await fr.api("POST", "/api/cases/C-HELD/hold", {"reason": "Order 7"}, token=sup)
    assert (status, hold["case"], hold["reason"], hold["released"]) == (201, "C-HELD", "Order 7",
                                                                         None)  # fmt: skip
    sizes = {p.name: p.stat().st_size for p in fr.config.blob_dir.iterdir()}
    files = set(sizes)
    assert len(files) == 5
    before = await _snapshot(fr)
    sealed = {k: (await _in_row(fr, m[k])) for k in ("red_closed", "uncased_in", "amber_closed")}
    hits = await fr.n.searcher.search(WHOLE_NODE, "Skyline", limit=10, offset=0)
    assert [h.id for h in hits.hits] == [m["uncased_in"]]

    run = await fr.n.retention.purge(user="sup")

    day = _date(run.time)
    assert {p.message: (p.purge, p.rule) for p in run.purged} == {
        m["red_closed"]: ("attachments", "red-attachments"),
        m["uncased_in"]: ("content", "uncased"),
        m["uncased_out"]: ("content", "uncased"),
    }
    assert run.held == ((m["red_held"], "C-HELD"),)
    assert run.waiting == ()
    (red_blob,) = [a.blob for a in (await _old(fr, sealed["red_closed"])).attachments]
    (out_blob,) = await _out_attachments(fr, m["uncased_out"])
    assert sorted(run.files) == sorted([f"BR-PF.{red_blob}", f"FR-PNF.{out_blob}"])
    assert {p.name for p in fr.config.blob_dir.iterdir()} == files - set(run.files)
    assert run.counts() == {"content": 2, "attachments": 1, "held": 1, "waiting": 0,
                            "files": 2, "bytes": sum(sizes[n] for n in run.files)}  # fmt: skip

    # the rows: untouched ones exactly as they were; purged ones in every kept column
    after = await _snapshot(fr)
    purged_in = {sealed["red_closed"].id, sealed["uncased_in"].id}
    for key, row in after["inbox"].items():
        was = before["inbox"][key]
        if key[0] not in purged_in:
            assert row == was
            continue
        assert {k: v for k, v in row.items() if k not in _CHANGED} == {
            k: v for k, v in was.items() if k not in _CHANGED
        }
        assert (row["envelope"], row["purged"]) == (b"", run.time)
        assert row["content"] != was["content"]
    assert after["inbox"][(sealed["red_closed"].id,)]["purged_what"] == "attachments"
    assert after["inbox"][(sealed["uncased_in"].id,)]["purge_rule"] == "uncased"
    for key, row in after["outbox"].items():
        was = before["outbox"][key]
        if key != (m["uncased_out"],):
            assert row == was
            continue
        assert {k: v for k, v in row.items() if k not in _CHANGED} == {
            k: v for k, v in was.items() if k not in _CHANGED
        }
        assert (row["envelope"], row["purge_rule"], row["purged_what"]) == (b"", "uncased",
                                                                            "content")  # fmt: skip
    for table in ("outbox_recipients", "requests", "cases", "legal_holds"):
        assert after[table] == before[table], table
    assert {k: r["state"] for k, r in after["attachments"].items()
            if r["state"] != before["attachments"][k]["state"]} == {
        tuple(n.split(".")): "purged" for n in run.files
    }  # fmt: skip

    # every view says what happened instead of failing
    content = await fr.n.content_of(m["red_closed"])
    assert content.content.subject == "Red scan"
    assert content.content.attachments == ()
    assert content.content.body.endswith(
        f"under rule red-attachments: scan.pdf (14 bytes, sha256 {_sha(b'RED scan bytes')})]"
    )
    assert f"1 attachment(s) purged on {day}" in content.content.body
    status, shown = await fr.api("GET", f"/api/messages/{m['uncased_in']}")
    assert (status, shown["content"]["subject"]) == (200, f"[purged on {day} under rule uncased]")
    status, shown = await fr.api("GET", f"/api/messages/{m['uncased_out']}")
    assert shown["content"]["subject"] == f"[purged on {day} under rule uncased]"
    assert shown["meta"]["recipients"]["BR-PF"]["state"] == "delivered"
    assert (
        f"Its 1 attachment(s): 11 bytes, sha256 {_sha(b'ledger,csv' + bytes([10]))}."
        in (shown["content"]["body"])
    )
    assert problem(await fr.api("GET", f"/api/messages/{m['red_closed']}/attachments/1")) == (
        404, "not-found", f"message {m['red_closed']} has no attachment 1"
    )  # fmt: skip
    inbox = {i["id"]: i["subject"] for i in (await fr.api("GET", "/api/inbox"))[1]["messages"]}
    assert inbox[m["uncased_in"]] == f"[purged on {day} under rule uncased]"
    assert inbox[m["amber_closed"]] == "Amber scan"
    hits = await fr.n.searcher.search(WHOLE_NODE, "Skyline", limit=10, offset=0)
    assert hits.hits == ()

    # erasure: the old sealed values are gone from the database file and its log
    assert (await _pragma(fr, "secure_delete")) == 1
    stored = _db_bytes(fr)
    for k in ("red_closed", "uncased_in"):
        assert sealed[k].content not in stored, k
        assert sealed[k].envelope not in stored, k
    assert sealed["amber_closed"].content in stored  # the check can fail

    # audited, once for the run
    entries, verified = await fr.n.audit.entries()
    assert verified
    assert [(e["user"], e["action"], e["subject"]) for e in entries if e["action"] == "purge"] == [
        ("sup", "purge", "content 2 attachments 1 rules red-attachments,uncased")
    ]

    # a second run finds nothing; 31 days on, the request's content goes too
    again = await fr.n.retention.purge(user="sup")
    assert (again.purged, again.files, again.held) == ((), (), ((m["red_held"], "C-HELD"),))
    later = dataclasses.replace(fr.n.ctx, clock=lambda: time.time() + 31 * DAY)
    month = await Retention(later, fr.n.audit).purge(user="sup")
    assert [(p.message, p.rule) for p in month.purged] == [(m["request_open"], "requests-30d")]
    assert await _snapshot(fr) != after
    assert (await _rows(fr, db.RequestRow)) == before["requests"]

    # released, the held case's RED attachment goes at the next run
    status, freed = await fr.api("POST", "/api/cases/C-HELD/release", {}, token=sup)
    assert (status, freed["released_by"]) == (200, "sup")
    last = await fr.n.retention.purge(user="sup")
    assert [(p.message, p.purge) for p in last.purged] == [(m["red_held"], "attachments")]
    assert {p.name for p in fr.config.blob_dir.iterdir()} == {
        n for n in files if n not in run.files and n not in last.files
    }
    assert len(last.files) == 1


async def _old(rn: RunningNode, row: db.InMessage) -> MessageContent:
    return MessageContent.decode(rn.n.ctx.cipher.open(row.content, f"content:{row.message_id}"))


async def _out_attachments(rn: RunningNode, mid: str) -> list[str]:
    async with rn.n.sessions() as s:
        rows = await s.execute(
            select(db.AttachmentRow.blob).where(db.AttachmentRow.message_id == mid)
        )
        return list(rows.scalars())


def _sha(data: bytes) -> str:
    import hashlib  # noqa: PLC0415

    return hashlib.sha256(data).hexdigest()


async def _pragma(rn: RunningNode, name: str) -> Any:
    async with rn.n.store.engine.connect() as conn:
        return (await conn.exec_driver_sql(f"PRAGMA {name}")).scalar()


# --- legal holds -------------------------------------------------------------------------------

ALL_NOW = RetentionRule("all-now", PurgeScope.CONTENT, 0)


async def test_only_supervisors_hold_and_release_a_case_and_each_change_is_audited(
    net: Net,
) -> None:
    fr = await net.member("FR-PNF", "Parquet national financier")
    br = await net.member("BR-PF", "Policia Federal")
    await _send(br, fr, info("Opens the case", case="C-1"))
    sup = await add_user(fr.n, "sup", "supervisor")
    tokens = {"investigator": fr.token, "operator": await add_user(fr.n, "ops", "operator")}
    order = {"reason": "Court order 7/2026 of the Tribunal judiciaire"}
    for role, token in tokens.items():
        for method, path, body in (("POST", "/api/cases/C-1/hold", order),
                                   ("POST", "/api/cases/C-1/release", {}),
                                   ("GET", "/api/holds", None)):  # fmt: skip
            assert problem(await fr.api(method, path, body, token=token))[:2] == (
                403, "forbidden"
            ), role  # fmt: skip
    status, held = await fr.api("POST", "/api/cases/C-1/hold", order, token=sup)
    assert (status, held) == (201, {
        "case": "C-1", "reason": order["reason"], "placed": held["placed"], "placed_by": "sup",
        "released": None, "released_by": None,
    })  # fmt: skip
    assert await fr.api("GET", "/api/holds", token=sup) == (200, {"holds": [held]})
    assert problem(await fr.api("POST", "/api/cases/C-1/hold", order, token=sup)) == (
        409, "state-conflict",
        f"case C-1 is under a legal hold already (placed {_date(held['placed'])} by sup)",
    )  # fmt: skip
    assert problem(await fr.api("POST", "/api/cases/C-404/hold", order, token=sup)) == (
        404, "not-found", "no case C-404"
    )  # fmt: skip
    assert order["reason"].encode() not in _db_bytes(fr)  # sealed, like a note
    status, freed = await fr.api("POST", "/api/cases/C-1/release", {}, token=sup)
    assert (status, freed["released_by"], freed["placed"]) == (200, "sup", held["placed"])
    assert problem(await fr.api("POST", "/api/cases/C-1/release", {}, token=sup)) == (
        409, "state-conflict", "case C-1 is under no legal hold"
    )  # fmt: skip
    assert await fr.api("GET", "/api/holds", token=sup) == (200, {"holds": []})
    entries, verified = await fr.n.audit.entries()
    assert verified
    assert [(e["user"], e["action"], e["subject"]) for e in entries
            if e["action"].startswith("case-")] == [
        ("sup", "case-hold", "C-1"), ("sup", "case-release", "C-1"),
    ]  # fmt: skip
    # a case's closing is dated, and forgotten when it is reopened
    assert (await fr.api("POST", "/api/cases/C-1/close", {}))[0] == 200
    assert (await _rows(fr, db.CaseRow))[("C-1",)]["closed"] is not None
    assert (await fr.api("POST", "/api/cases/C-1/reopen", {}))[0] == 200
    assert (await _rows(fr, db.CaseRow))[("C-1",)]["closed"] is None


async def test_a_hold_placed_while_a_purge_runs_wins(net: Net) -> None:
    fr = await net.member(
        "FR-PNF", "Parquet national financier", retention=RetentionPolicy(rules=(ALL_NOW,))
    )
    br = await net.member("BR-PF", "Policia Federal")
    held = await _send(br, fr, info("To be held", case="C-9"))
    other = await _send(br, fr, info("Not held", case="C-10"))
    sup = Principal("sup", Role.SUPERVISOR)

    async def hold_after_planning(step: str) -> None:
        if step == "planned":  # the plan has both messages; the commit must not purge one
            await Holds(fr.n.ctx, fr.n.audit).place("C-9", sup, "Order 9")

    run = await fr.n.retention.purge(user="sup", step=hold_after_planning)
    assert [p.message for p in run.purged] == [other]
    assert run.held == ((held, "C-9"),)
    assert (await fr.n.content_of(held)).content.subject == "To be held"
    assert (await _in_row(fr, held)).purged is None


# --- the daemon, deliveries not ended ----------------------------------------------------------


async def test_the_daemon_purges_once_a_day_when_told_to(net: Net) -> None:
    daily = RetentionPolicy(daily=True, at="00:00", rules=(ALL_NOW,))
    fr = await net.member("FR-PNF", "Parquet national financier", retention=daily)
    br = await net.member("BR-PF", "Policia Federal")
    await eventually(lambda: fr.n.store.meta(LAST_RUN), what="the daemon's first daily run")
    mid = await _send(br, fr, info("Purged by the daemon"))
    assert await fr.n.retention.run_due() is None  # today's ran already
    async with fr.n.store.write() as s:  # as if it last ran yesterday
        await fr.n.store.put_meta(s, LAST_RUN, str(fr.n.now() - DAY - 1))

    async def purged() -> bool:
        return (await _in_row(fr, mid)).purged_what == "content"

    await eventually(purged, what="the daily purge")
    entries, _ = await fr.n.audit.entries()
    assert [(e["user"], e["subject"]) for e in entries if e["action"] == "purge"] == [
        ("daemon", "content 0 attachments 0 rules -"),
        ("daemon", "content 1 attachments 0 rules all-now"),
    ]
    hits = await fr.n.searcher.search(WHOLE_NODE, "daemon", limit=10, offset=0)
    assert hits.hits == ()  # its words left the search index with it


async def test_a_sent_message_is_kept_until_its_delivery_ends(net: Net) -> None:
    fr = await net.member(
        "FR-PNF", "Parquet national financier", retention=RetentionPolicy(rules=(ALL_NOW,))
    )
    br = await net.member("BR-PF", "Policia Federal", endpoint=False)
    await net.stop_hub()  # no direct path, no hub: the message stays queued
    mid = str(await fr.n.send([br.me], info("Still queued")))
    run = await fr.n.retention.purge(user="sup")
    assert (run.purged, run.waiting) == ((), (mid,))
    assert (await fr.n.content_of(mid)).content.subject == "Still queued"
    # once its delivery failed for good it goes, and a retry cannot send its empty envelope
    async with fr.n.store.write() as s:
        await s.execute(update(db.OutRecipient).values(state="failed"))
    run = await fr.n.retention.purge(user="sup")
    assert ([p.message for p in run.purged], run.waiting) == ([mid], ())
    assert await fr.api("POST", f"/api/messages/{mid}/retry", {}) == (200, {"queued": 0})
    assert (await _rows(fr, db.OutRecipient))[(mid, "BR-PF")]["state"] == "failed"


# --- disk use ----------------------------------------------------------------------------------


async def test_the_status_and_the_metrics_say_how_much_disk_the_node_takes(net: Net) -> None:
    fr = await net.member("FR-PNF", "Parquet national financier")
    br = await net.member("BR-PF", "Policia Federal")
    await _send(br, fr, info("With a file"), b"x" * 5000)
    upload = await stage(fr.n, b"y" * 3000, name="staged.bin")
    async with fr.n.sessions() as s:
        staged = (await s.get(db.UploadRow, upload)).blob  # type: ignore[union-attr]
    sizes = {p.name: p.stat().st_size for p in fr.config.blob_dir.iterdir()}
    status, answer = await fr.api("GET", "/api/status")
    disk = answer["disk"]
    assert status == 200
    assert disk["upload_bytes"] == sizes[f"FR-PNF.{staged}"] > 3000
    assert disk["blob_bytes"] == sum(sizes.values()) - disk["upload_bytes"] > 5000
    assert disk["database_bytes"] >= fr.config.db_path.stat().st_size > 0
    assert disk["free_bytes"] > 0
    async with (
        serve_app(create_metrics_app(fr.n, fr.n.sessions)) as served,
        aiohttp.ClientSession() as session,
        session.get(served.url + "/metrics") as resp,
    ):
        lines = (await resp.text()).splitlines()
    assert f'globe_node_disk_bytes{{part="blobs"}} {disk["blob_bytes"]}' in lines
    assert f'globe_node_disk_bytes{{part="uploads"}} {disk["upload_bytes"]}' in lines
    assert [x for x in lines if x.startswith("globe_node_disk_free_bytes ")] != []


# --- the migration -----------------------------------------------------------------------------


def _upgrade(revision: str) -> Any:
    def upgrade(connection: Connection) -> None:
        cfg = Config()
        cfg.set_main_option("script_location", str(MIGRATIONS))
        cfg.attributes["connection"] = connection
        command.upgrade(cfg, revision)

    return upgrade


async def test_the_migration_dates_the_cases_closed_before_it(tmp_path: Path) -> None:
    engine = db.make_engine(tmp_path / "node.db")
    try:
        async with engine.begin() as conn:
            await conn.run_sync(_upgrade("0004"))
            for ref, state, updated in (("C-SHUT", "closed", 1_700_000_000),
                                        ("C-OPEN", "open", 1_700_000_500)):  # fmt: skip
                await conn.execute(
                    text("INSERT INTO cases (ref, state, created, created_by, updated) VALUES"
                         " (:ref, :state, 1600000000, 'x', :updated)"),
                    {"ref": ref, "state": state, "updated": updated},
                )  # fmt: skip
        async with engine.begin() as conn:
            await conn.run_sync(_upgrade("0005"))
            rows = (await conn.execute(text("SELECT ref, closed FROM cases"))).all()
            holds = (await conn.execute(text("SELECT count(*) FROM legal_holds"))).scalar()
    finally:
        await engine.dispose()
    assert dict(rows) == {"C-SHUT": 1_700_000_000, "C-OPEN": None}
    assert holds == 0


async def test_a_purged_message_is_neither_forwarded_nor_exported(net: Net) -> None:
    """Its envelope and signed content are gone: nothing could prove where it came from, so
    a forward is refused and a bundle of its case leaves it out, saying so in the audit."""
    fr = await net.member(
        "FR-PNF", "Parquet national financier", retention=RetentionPolicy(rules=(ALL_NOW,))
    )
    br = await net.member("BR-PF", "Policia Federal")
    old = await _send(br, fr, info("Purged first", case="C-7", handling=Handling(Tlp.GREEN)))
    run = await fr.n.retention.purge(user="sup")
    assert [p.message for p in run.purged] == [old]
    kept = await _send(br, fr, info("Received after", case="C-7", handling=Handling(Tlp.GREEN)))
    forward = await fr.api("POST", f"/api/messages/{old}/forward", {"to": ["BR-PF"]})
    assert problem(forward) == (
        409, "state-conflict",
        f"message {old} was purged under retention rule all-now: its signed content is gone,"
        " so its origin cannot be proven and it cannot be forwarded",
    )  # fmt: skip
    status, bundle = await fr.api("GET", "/api/cases/C-7/bundle")
    assert status == 200
    report = verify_bundle(bundle)
    assert report.ok
    assert [m.message_id for m in report.messages] == [kept]
    entries, _ = await fr.n.audit.entries()
    export = [e["subject"] for e in entries if e["action"] == "export"]
    assert len(export) == 1
    assert export[0].startswith(f"bundle of case C-7: 1 messages, 1 purged left out ({old}),")
    assert problem(await fr.api("GET", f"/api/cases/C-7/bundle?message={old}")) == (
        409, "state-conflict",
        f"message {old} was purged under a retention rule: its signed content is gone, so it"
        " cannot be exported",
    )  # fmt: skip
