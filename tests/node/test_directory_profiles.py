"""The directory of competent authorities on real nodes and a real hub (PROTOCOL.md §6.7).

* Competences are certified: the admins change them by quorum (``globe-admin amend``).
* A member publishes its own profile (offence areas, time zone, contact points) through
  its daemon; another node verifies it from the log and finds the member by
  competence, by offence area and by country name in Arabic, Spanish and French
  (accents dropped), each result saying why it matched.
* Forged profiles (another key, a replayed sequence, a suspended member, an oversized
  field, hidden characters) are refused by a node that receives them in the log from a
  dishonest hub, with an alert and its directory untouched.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from globe_admin.session import ADMIN_KEY_PURPOSE
from globe_node import db
from protocol import canonical, labels
from protocol.directory import DirectoryState
from protocol.errors import GlobeError, MemberNotActive, NotCertified, ReplayError
from protocol.errors import MalformedError as Malformed
from protocol.ids import AuthorityId
from protocol.keystore import INTERACTIVE, seal_secret
from protocol.membership import Action, entry_hash, make_checkpoint
from protocol.profile import make_profile, make_profile_entry
from protocol.signed import SignedObject, sign_object
from tests.admin.runner import PASSPHRASE, admin_cli
from tests.node.helpers import alerts
from tests.node.network import Net, RunningNode, add_user
from tests.node.test_cli_live import cli, token_file

pytestmark = pytest.mark.slow

SPAIN_AR = "إسبانيا"
EGYPT_AR = "مصر"


def admin_files(net: Net, root: Path) -> tuple[Path, list[Path], Path]:
    """The genesis, the admins' sealed key files and the passphrase file (for globe-admin)."""
    genesis = root / "genesis.json"
    genesis.write_bytes(net.genesis.signed.encode())
    pw = root / "passphrase"
    pw.write_text(PASSPHRASE + "\n")
    keys = []
    for i, key in enumerate(net.admins):
        path = root / f"admin{i}.key"
        path.write_bytes(
            seal_secret(key.seed, PASSPHRASE.encode(), purpose=ADMIN_KEY_PURPOSE, cost=INTERACTIVE)
        )
        keys.append(path)
    return genesis, keys, pw


async def amend(net: Net, root: Path, i: int, *args: str) -> dict[str, Any]:
    genesis, keys, pw = admin_files(net, root)
    ran = await asyncio.to_thread(
        admin_cli, "amend", *args, "--genesis", genesis, "--key", keys[i], "--passphrase-file",
        pw, "--json",
    )  # fmt: skip
    result: dict[str, Any] = ran.json()
    return result


async def search(rn: RunningNode, **query: str) -> list[tuple[str, list[dict[str, Any]]]]:
    target = "/api/directory/search?" + "&".join(f"{k}={v}" for k, v in query.items())
    status, found = await rn.api("GET", target)
    assert status == 200, found
    return [(r["authority"], r["reasons"]) for r in found["results"]]


async def test_a_profile_is_published_verified_and_found(net: Net, tmp_path: Path) -> None:
    fr = await net.member("FR-PNF", "Parquet national financier")
    es = await net.member("ES-FCC", "Fiscalia contra la Corrupcion")
    for authority, name in (("DE-BKA", "Bundeskriminalamt"), ("EG-ACA", "Administrative Control")):
        await net.admit(net.make_node(authority, name, endpoint=False), name)

    # Competences are certified: two admins amend ES-FCC's entry (same keys, new kinds).
    first = await amend(net, tmp_path, 0, "ES-FCC", "--kinds", "mla-central,anti-corruption",
                        "--reason", "designated central authority")  # fmt: skip
    assert (first["status"], first["co_signed"]) == ("open", False)
    second = await amend(net, tmp_path, 1, "ES-FCC", "--kinds", "anti-corruption,mla-central",
                         "--reason", "designated central authority")  # fmt: skip
    assert (second["status"], second["co_signed"], second["seq"]) == ("appended", True, 5)

    # ES-FCC's operator publishes its profile through its daemon.
    ops = await add_user(es.n, "ops", "operator")
    body = {
        "offences": ["money-laundering", "bribery", "bribery"],
        "time_zone": "Europe/Madrid",
        "contacts": [
            {"role": "duty-desk", "label": "Guardia", "hours": "24/7", "languages": ["es", "en"]},
            {"role": "mutual-legal-assistance", "email": "mla@fcc.example", "phone": "+3491000"},
        ],
        "note": "Requests in Spanish or English.",
    }
    status, shown = await es.api("PUT", "/api/profile", body, token=ops)
    assert status == 200, shown
    profile = shown["profile"]
    assert (shown["authority"], profile["seq"], profile["offences"]) == (
        "ES-FCC", 1, ["bribery", "money-laundering"],
    )  # fmt: skip
    assert profile["contacts"][0] == {
        "role": "duty-desk", "label": "Guardia", "hours": "24/7", "languages": ["en", "es"],
    }  # fmt: skip
    assert es.n.state.seq == 6
    status, refused = await es.api("PUT", "/api/profile", body)  # alice is an investigator
    assert (status, refused["type"].rsplit("/", 1)[1]) == (403, "forbidden")
    status, bad = await es.api("PUT", "/api/profile", {"offences": ["fraud"]}, token=ops)
    assert (status, bad["detail"]) == (400, "'offences': unknown value 'fraud'")
    status, bad = await es.api(
        "PUT", "/api/profile", {"contacts": [{"role": "duty-desk", "label": "a\u202eb"}]}, token=ops
    )
    assert (status, bad["detail"]) == (
        400, "contacts[0].label: control characters are not allowed",
    )  # fmt: skip
    assert es.n.state.seq == 6  # nothing was published

    # Another node verifies it from the log and finds ES-FCC by what it published.
    await net.synced(fr)
    member = fr.n.state.member(AuthorityId.parse("ES-FCC"))
    assert member.profile is not None
    assert (member.profile.seq, member.profile.time_zone) == (1, "Europe/Madrid")
    assert member.certificate.kinds == ("anti-corruption", "mla-central")
    assert await search(fr, kind="mla-central") == [
        ("ES-FCC", [{"field": "kind", "value": "mla-central", "match": "filter", "language": None}])
    ]
    assert [a for a, _ in await search(fr, offence="money-laundering")] == ["ES-FCC"]
    assert await search(fr, offence="concealment") == []
    assert await search(fr, country=SPAIN_AR) == [
        ("ES-FCC", [{"field": "country", "value": SPAIN_AR, "match": "exact", "language": "ar"}])
    ]
    assert await search(fr, country="Alemania") == [
        ("DE-BKA", [{"field": "country", "value": "Alemania", "match": "exact", "language": "es"}])
    ]
    # French, accents dropped: "Egypte" finds Égypte.
    assert await search(fr, country="egypte") == [
        ("EG-ACA", [{"field": "country", "value": "Égypte", "match": "exact", "language": "fr"}])
    ]
    assert [a for a, _ in await search(fr, country=EGYPT_AR)] == ["EG-ACA"]
    # Ranking: a code before a name's beginning; the reasons say which.
    assert await search(fr, q="es") == [
        ("ES-FCC", [
            {"field": "authority", "value": "ES-FCC", "match": "prefix", "language": None},
            {"field": "country", "value": "ES", "match": "code", "language": None},
        ]),
        ("DE-BKA", [
            {"field": "name", "value": "Bundeskriminalamt", "match": "substring",
             "language": None},
        ]),
    ]  # fmt: skip
    both = await search(fr, country="espagne", kind="mla-central", offence="bribery")
    assert [(a, [r["field"] for r in rs]) for a, rs in both] == [
        ("ES-FCC", ["country", "kind", "offence"])
    ]


async def test_the_profile_through_the_command_line(
    net: Net, capfd: pytest.CaptureFixture[str]
) -> None:
    fr = await net.member("FR-PNF", "Parquet national financier")
    es = await net.member("ES-FCC", "Fiscalia contra la Corrupcion")
    es_op = await token_file(es, "es-op", "operator")
    fr_inv = await token_file(fr, "fr-inv", "investigator")
    assert (await cli(capfd, es, es_op, "profile", "show")).out == (
        "ES-FCC has published no profile\n"
    )
    ran = await cli(
        capfd, es, es_op, "profile", "set", "--offence", "bribery", "--time-zone", "Europe/Madrid",
        "--contact", "role=duty-desk;label=Guardia;hours=24/7;languages=es,en",
    )  # fmt: skip
    assert ran.code == 0, ran.err
    lines = ran.out.splitlines()
    assert lines[0].startswith("ES-FCC profile 1, published ")
    assert lines[1:] == [
        "offences    bribery",
        "time zone   Europe/Madrid",
        'contact     duty-desk "Guardia" 24/7 [en, es]',
    ]
    # A second version keeps what is not given and replaces what is.
    again = await cli(
        capfd, es, es_op, "profile", "set", "--offence", "embezzlement", "--note", "Ask the desk.",
        "--json",
    )  # fmt: skip
    shown = again.json()["profile"]
    assert (shown["seq"], shown["offences"], shown["time_zone"], shown["note"]) == (
        2, ["embezzlement"], "Europe/Madrid", "Ask the desk.",
    )  # fmt: skip
    assert len(shown["contacts"]) == 1
    cleared = (await cli(capfd, es, es_op, "profile", "set", "--clear", "--json")).json()
    assert cleared["profile"] == {
        "seq": 3, "published": cleared["profile"]["published"], "offences": [],
        "time_zone": None, "contacts": [], "note": None,
    }  # fmt: skip
    refused = await cli(capfd, es, es_op, "profile", "set", "--contact", "label=x")
    assert refused.code == 2
    assert "role=ROLE is required" in refused.err
    await cli(capfd, es, es_op, "profile", "set", "--offence", "concealment")
    # The other node finds it through its own CLI, with the reasons.
    await net.synced(fr)
    found = await cli(capfd, fr, fr_inv, "directory", "search", "--country", "espana",
                      "--offence", "concealment")  # fmt: skip
    assert found.code == 0, found.err
    assert found.out.splitlines()[2:] == [
        "                     matched country España (es, exact); offence concealment (filter)",
        "                     offences    concealment",
    ]
    by_code = await cli(capfd, fr, fr_inv, "directory", "search", "--country", "es", "--json")
    assert [r["authority"] for r in by_code.json()["results"]] == ["ES-FCC"]
    assert (await cli(capfd, fr, fr_inv, "profile", "set", "--clear")).code == 1  # not operator


# --- a dishonest hub ---------------------------------------------------------------------------


def _forged_profiles(net: Net, es: RunningNode) -> list[tuple[str, bytes, type[GlobeError]]]:
    """(what, the profile container, the refusal) for each forgery a hub could append."""
    g, me = net.genesis, es.me
    fine: dict[str, Any] = {"genesis": g, "authority": me, "identity": es.keys.identity}
    payload = {
        "type": "profile", "v": 1, "network": canonical.b64e(g.digest), "authority": str(me),
        "seq": 2, "offences": [], "contacts": [],
    }  # fmt: skip
    return [
        ("signed by the transport key",
         make_profile(**{**fine, "identity": es.keys.transport}, seq=2).signed.encode(),
         NotCertified),
        ("a replay of sequence 1", make_profile(**fine, seq=1).signed.encode(), ReplayError),
        ("a note of 1,001 characters",
         sign_object({**payload, "note": "n" * 1001}, labels.PROFILE, [es.keys.identity]).encode(),
         Malformed),
        ("a label with a right-to-left override",
         sign_object({**payload, "contacts": [{"label": "Guardia\u202e", "role": "duty-desk"}]},
                     labels.PROFILE, [es.keys.identity]).encode(),
         Malformed),
    ]  # fmt: skip


def _dishonest(net: Net, state: DirectoryState, container: bytes) -> tuple[bytes, bytes]:
    """The entry a dishonest hub builds around ``container`` and the checkpoint it signs."""
    entry = make_profile_entry(
        genesis=net.genesis,
        seq=state.seq + 1,
        prev=state.head,
        time=max(state.time, int(time.time())),
        profile=SignedObject.decode(container, max_size=1 << 16, what="forged"),
    )
    checkpoint = make_checkpoint(
        genesis=net.genesis, hub=net.hub_key, seq=state.seq + 1, head=entry_hash(entry),
        time=int(time.time()),
    )  # fmt: skip
    return entry, checkpoint.signed.encode()


async def _refused_from_a_dishonest_hub(
    net: Net, rn: RunningNode, container: bytes, error: type[GlobeError]
) -> None:
    """The hub serves ``container`` in a profile entry it signs a checkpoint for: the node
    refuses the entry, raises the alert and keeps its directory as it was."""
    state = rn.n.state
    entry, checkpoint = _dishonest(net, state, container)
    real = (rn.n.hub.log_entries, rn.n.hub.checkpoint)

    async def entries(since: int = 0) -> list[bytes]:
        return [entry]

    async def signed() -> bytes:
        return checkpoint

    rn.n.hub.log_entries, rn.n.hub.checkpoint = entries, signed  # type: ignore[method-assign]
    try:
        with pytest.raises(error):
            await rn.n.sync_directory()
    finally:
        rn.n.hub.log_entries, rn.n.hub.checkpoint = real  # type: ignore[method-assign]
    assert rn.n.state is state
    async with rn.n.sessions() as s:
        stored = (await s.execute(select(db.LogRow.seq))).scalars().all()
    assert max(stored) == state.seq


async def test_a_node_refuses_forged_profiles_a_dishonest_hub_appends(net: Net) -> None:
    fr = await net.member("FR-PNF", "Parquet national financier")
    es = await net.member("ES-FCC", "Fiscalia contra la Corrupcion")
    ops = await add_user(es.n, "ops", "operator")
    assert (await es.api("PUT", "/api/profile", {"offences": ["bribery"]}, token=ops))[0] == 200
    await net.synced(fr)
    cases = _forged_profiles(net, es)
    for _what, container, error in cases:
        await _refused_from_a_dishonest_hub(net, fr, container, error)
    # A suspended member's profile is refused even when its own identity key signed it.
    await net.set_status("ES-FCC", Action.SUSPEND, "inquiry")
    await net.synced(fr)
    suspended = make_profile(genesis=net.genesis, authority=es.me, seq=2, identity=es.keys.identity)
    await _refused_from_a_dishonest_hub(net, fr, suspended.signed.encode(), MemberNotActive)
    assert [k for k, _ in await alerts(fr)].count("directory-invalid") == len(cases) + 1
    # The honest log still syncs, and the member keeps the profile it published while active.
    assert await fr.n.sync_directory() == 0
    profile = fr.n.state.member(es.me).profile
    assert profile is not None
    assert (profile.seq, profile.offences) == (1, ("bribery",))
