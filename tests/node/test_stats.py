"""Statistics of a period whose answers the test controls: the nodes share an injected
clock, set to the second each response leaves and arrives, so every count, median and
90th percentile is known exactly, on both sides, in JSON and in CSV."""

from __future__ import annotations

import time
from typing import Any

import pytest

from globe_node.stats import percentile
from tests.node.helpers import delivered
from tests.node.network import Net, RunningNode
from tests.support.waiting import eventually

pytestmark = pytest.mark.slow


class Clock:
    """One wall clock for several nodes, moved by the test (never backwards)."""

    def __init__(self, now: int) -> None:
        self.now = now

    def __call__(self) -> float:
        return float(self.now)


def test_percentiles_are_nearest_rank() -> None:
    assert percentile([], 0.5) is None
    assert [percentile([7], p) for p in (0.5, 0.9)] == [7, 7]
    assert [percentile([90, 60], p) for p in (0.5, 0.9)] == [60, 90]
    assert [percentile([30, 90, 60], p) for p in (0.5, 0.9)] == [60, 90]
    assert [percentile(list(range(1, 11)), p) for p in (0.5, 0.9)] == [5, 9]


async def send(rn: RunningNode, body: dict[str, Any], *to: RunningNode) -> str:
    status, answer = await rn.api("POST", "/api/messages", {"body": "b", **body})
    assert status == 201, answer
    await eventually(lambda: delivered(rn, answer["id"], *to))
    return str(answer["id"])


async def respond(rn: RunningNode, path: str, body: dict[str, Any], to: RunningNode) -> None:
    status, answer = await rn.api("POST", path, body)
    assert status == 201, answer
    await eventually(lambda: delivered(rn, answer["id"], to))


async def test_a_period_with_known_answers(net: Net) -> None:
    fr = await net.member("FR-PNF", "Parquet national financier")
    br = await net.member("BR-PF", "Policia Federal")
    ke = await net.member("KE-EACC", "Ethics and Anti-Corruption Commission")
    clock = Clock(int(time.time()))
    t0 = clock.now
    for rn in (fr, br, ke):
        rn.n.clock = clock

    def at(t: int) -> None:
        """Every node at ``t``; the hub's clock with them, so that a delivery that falls back
        to the hub (a slow machine) is inside its window for signed requests."""
        clock.now = t
        net.hub_offset = t - time.time()

    request = {"kind": "request", "subject": "Accounts"}
    # t0: three requests (two to Brazil, one to Kenya); t0+10: a piece of information.
    r1 = await send(fr, {**request, "to": ["BR-PF"]}, br)
    r2 = await send(fr, {**request, "to": ["BR-PF"]}, br)
    r3 = await send(fr, {**request, "to": ["KE-EACC"]}, ke)
    at(t0 + 10)
    await send(fr, {"to": ["BR-PF"], "subject": "FYI"}, br)
    # Kenya declines at +30; Brazil acknowledges r1 at +60, answers r2 at +90, r1 at +120.
    at(t0 + 30)
    await respond(ke, f"/api/messages/{r3}/status", {"state": "declined", "reason": "no"}, fr)
    at(t0 + 60)
    await respond(br, f"/api/messages/{r1}/status",
                  {"state": "acknowledged", "expected": t0 + 3600}, fr)  # fmt: skip
    at(t0 + 90)
    await respond(br, f"/api/messages/{r2}/reply", {"body": "r2"}, fr)
    at(t0 + 120)
    await respond(br, f"/api/messages/{r1}/reply", {"body": "r1"}, fr)
    # t0+150: outside the period [t0, t0+150).
    at(t0 + 150)
    await send(fr, {**request, "to": ["BR-PF"]}, br)

    status, got = await fr.api("GET", f"/api/stats?from={t0}&to={t0 + 150}")
    assert status == 200, got
    assert (got["from"], got["to"]) == (t0, t0 + 150)
    rows = [
        (r["direction"], r["counterpart"], r["kind"], r["count"], r["answered"], r["declined"],
         r["withdrawn"], r["open"], r["first_response_median_s"], r["first_response_p90_s"],
         r["answer_median_s"], r["answer_p90_s"])
        for r in got["rows"]
    ]  # fmt: skip
    assert rows == [
        ("received", "BR-PF", "answer", 2, 0, 0, 0, 0, None, None, None, None),
        ("received", "BR-PF", "status", 1, 0, 0, 0, 0, None, None, None, None),
        ("received", "KE-EACC", "status", 1, 0, 0, 0, 0, None, None, None, None),
        ("received", None, "answer", 2, 0, 0, 0, 0, None, None, None, None),
        ("received", None, "status", 2, 0, 0, 0, 0, None, None, None, None),
        ("sent", "BR-PF", "information", 1, 0, 0, 0, 0, None, None, None, None),
        ("sent", "BR-PF", "request", 2, 2, 0, 0, 0, 60, 90, 90, 120),
        ("sent", "KE-EACC", "request", 1, 0, 1, 0, 0, 30, 30, None, None),
        ("sent", None, "information", 1, 0, 0, 0, 0, None, None, None, None),
        ("sent", None, "request", 3, 2, 1, 0, 0, 60, 90, 90, 120),
    ]
    # Brazil's side of the same period: the two requests it received and answered.
    brazil = (await br.api("GET", f"/api/stats?from={t0}&to={t0 + 150}"))[1]["rows"]
    received = [r for r in brazil if (r["direction"], r["kind"]) == ("received", "request")]
    assert [(r["counterpart"], r["count"], r["answered"], r["first_response_median_s"],
             r["first_response_p90_s"], r["answer_median_s"], r["answer_p90_s"])
            for r in received] == [
        ("FR-PNF", 2, 2, 60, 90, 90, 120), (None, 2, 2, 60, 90, 90, 120),
    ]  # fmt: skip
    # The same rows as CSV, and a period with nothing in it.
    status, csv = await fr.api("GET", f"/api/stats/csv?from={t0}&to={t0 + 150}")
    assert status == 200
    lines = csv.decode().split("\r\n")
    assert lines[0] == (
        "direction,counterpart,kind,count,answered,declined,withdrawn,open,"
        "first_response_median_s,first_response_p90_s,answer_median_s,answer_p90_s"
    )
    assert lines[7] == "sent,BR-PF,request,2,2,0,0,0,60,90,90,120"
    assert lines[10] == "sent,,request,3,2,1,0,0,60,90,90,120"
    assert (len(lines), lines[-1]) == (12, "")
    assert (await fr.api("GET", f"/api/stats?from={t0 - 100}&to={t0}"))[1]["rows"] == []
    later = (await fr.api("GET", f"/api/stats?from={t0 + 150}"))[1]["rows"]
    got = [(r["direction"], r["counterpart"], r["kind"], r["count"], r["open"]) for r in later]
    assert got == [
        ("sent", "BR-PF", "request", 1, 1), ("sent", None, "request", 1, 1),
    ]  # fmt: skip
    status, bad = await fr.api("GET", f"/api/stats?from={t0}&to={t0 - 1}")
    assert (status, bad["detail"]) == (400, "'to' is before 'from'")
