"""Member profiles (§6.7): profile.json (two profiles of ES-FCC and one of IT-ANAC appended
after directory.json's log, the member table they give, the vocabularies) and every
refusal of a profile, on its own (structure ``profile``) and as a log entry (``log``)."""

from __future__ import annotations

from typing import Any, Final

from protocol import canonical, labels
from protocol.devnet import GENESIS_TIME, DevNetwork
from protocol.directory import DirectoryState, verify_log
from protocol.keys import SigningKey
from protocol.profile import (
    CONTACT_ROLES,
    MAX_CONTACTS,
    MAX_PROFILE_CONTAINER,
    MAX_PROFILE_SIZE,
    OFFENCE_AREAS,
    Contact,
    Profile,
    make_profile,
    make_profile_entry,
)
from protocol.signed import Signature, SignedObject
from tests.vectors.logs import T_ROTATE_FR, Continuation, extended_log
from tests.vectors.vectorlib import (
    NOW,
    Accepts,
    Cases,
    Json,
    b64,
    h,
    member,
    padded,
    resign,
    sign_raw,
)

#: Times of profile.json's entries (after directory.json's last, before NOW).
T_ES_1: Final = GENESIS_TIME + 6500
T_IT_1: Final = GENESIS_TIME + 6550
T_ES_2: Final = GENESIS_TIME + 6600
#: Entries of log.json and directory.json the profiles follow.
BASE: Final = 11
RULE_FIELDS: Final = "§6.7: profile fields"
RULE_CHECK: Final = "§6.7: a profile applies to an active member, signed by its current key"

ES_CONTACTS: Final = (
    Contact(role="duty-desk", label="Guardia de la Fiscalía", hours="24/7", languages=("en", "es")),
    Contact(role="mutual-legal-assistance", email="cooperacion@fcc.example", phone="+34915550100"),
)
IT_CONTACTS: Final = (
    Contact(
        role="international-cooperation",
        label="Ufficio relazioni internazionali",
        languages=("en", "it"),
    ),
)


def _profiles(net: DevNetwork) -> tuple[Profile, Profile, Profile]:
    g = net.genesis
    es, it = member(net, "ES-FCC"), member(net, "IT-ANAC")
    es1 = make_profile(
        genesis=g,
        authority=es.authority,
        seq=1,
        identity=es.identity,
        offences=["bribery", "money-laundering"],
        time_zone="Europe/Madrid",
        contacts=ES_CONTACTS,
        note="Solicitudes en español o en inglés.",
    )
    it1 = make_profile(
        genesis=g,
        authority=it.authority,
        seq=1,
        identity=it.identity,
        offences=["abuse-of-functions", "trading-in-influence"],
        time_zone="Europe/Rome",
        contacts=IT_CONTACTS,
    )
    es2 = make_profile(
        genesis=g,
        authority=es.authority,
        seq=2,
        identity=es.identity,
        offences=["bribery", "embezzlement", "money-laundering"],
        time_zone="Europe/Madrid",
        contacts=ES_CONTACTS[:1],
    )
    return es1, it1, es2


def profile_log(net: DevNetwork, cont: Continuation) -> list[bytes]:
    """The entries of profile.json (seq 12-14), after the 11 of log.json and directory.json."""
    state = verify_log(net.genesis, extended_log(net, cont))
    out = []
    for profile, time in zip(_profiles(net), (T_ES_1, T_IT_1, T_ES_2), strict=True):
        raw = make_profile_entry(
            genesis=net.genesis,
            seq=state.seq + 1,
            prev=state.head,
            time=time,
            profile=profile.signed,
        )
        state.apply(raw)
        out.append(raw)
    return out


def build_profiles(net: DevNetwork, cont: Continuation) -> Json:
    g = net.genesis
    entries = profile_log(net, cont)
    state = verify_log(g, [*extended_log(net, cont), *entries])
    records = []
    for profile, raw, seq in zip(_profiles(net), entries, (12, 13, 14), strict=True):
        records.append(
            {
                "seq": seq,
                "authority": str(profile.authority),
                "profile_seq": profile.seq,
                "payload": h(profile.signed.payload),
                "container": h(profile.signed.encode()),
                "digest": h(profile.digest),
                "signer": str(profile.signed.signatures[0].key_id),
                "entry": h(raw),
                "hash": h(state.heads[seq]),
            }
        )
    return {
        "description": (
            "Member profiles (PROTOCOL.md §6.7): log.json's and directory.json's 11 entries, "
            "then ES-FCC's profile 1, IT-ANAC's profile 1 and ES-FCC's profile 2, each signed "
            "by the member's identity key of the devnet; the members' current profiles after "
            "replaying all 14 entries; and the closed vocabularies of offence areas and "
            "contact roles, in order."
        ),
        "now": NOW,
        "base_entries": BASE,
        "entries": records,
        "seq": state.seq,
        "head": h(state.head),
        "members": _member_profiles(state),
        "vocabularies": {"offences": list(OFFENCE_AREAS), "contact_roles": list(CONTACT_ROLES)},
    }


def _member_profiles(state: DirectoryState) -> list[Json]:
    out = []
    for aid in sorted(state.members, key=str):
        p = state.members[aid].profile
        if p is None:
            continue
        out.append(
            {
                "authority": str(aid),
                "seq": p.seq,
                "published": state.members[aid].profile_time,
                "offences": list(p.offences),
                "time_zone": p.time_zone,
                "contacts": [c.to_json() for c in p.contacts],
                "note": p.note,
            }
        )
    return out


# --- refusals ----------------------------------------------------------------------------


def profile_cases(cases: Cases, accepts: Accepts, net: DevNetwork, cont: Continuation) -> None:
    g = net.genesis
    es, it, de, fr = (member(net, a) for a in ("ES-FCC", "IT-ANAC", "DE-BKA", "FR-PNF"))
    log = extended_log(net, cont)
    es1_entry = profile_log(net, cont)[0]

    def payload(**changes: Any) -> Json:
        base: Json = {
            "type": "profile", "v": 1, "network": b64(g.digest), "authority": "ES-FCC", "seq": 1,
            "offences": ["bribery"], "contacts": [{"role": "duty-desk"}],
        }  # fmt: skip
        return {k: v for k, v in {**base, **changes}.items() if v is not None}

    def signed(key: SigningKey = es.identity, **changes: Any) -> bytes:
        return resign(payload(**changes), labels.PROFILE, [key])

    def add(name: str, error: str, data: bytes, *, rule: str = RULE_FIELDS, base: int = BASE,
            extra: tuple[bytes, ...] = (), now: int = NOW) -> None:  # fmt: skip
        def check() -> object:
            state = verify_log(g, [*log[:base], *extra])
            return state.check_profile(Profile.decode(data, g), now)

        cases.add(
            name,
            "profile",
            error,
            check,
            rule=rule,
            log_entries=base,
            extra_entries=[h(e) for e in extra],
            now=now,
            **padded("profile", data),
        )

    def ok(name: str, data: bytes, rule: str) -> None:
        accepts.add(
            name,
            "profile",
            lambda: verify_log(g, log).check_profile(Profile.decode(data, g), NOW),
            rule=rule,
            log_entries=BASE,
            extra_entries=[],
            now=NOW,
            profile=h(data),
        )

    # sizes and the container
    add(
        "profile container over 16,384 bytes",
        "SizeLimitExceeded",
        signed() + b" " * (MAX_PROFILE_CONTAINER + 1 - len(signed())),
    )
    big = resign(payload(x="a" * MAX_PROFILE_SIZE), labels.PROFILE, [es.identity])
    add("profile payload over 8,192 bytes", "SizeLimitExceeded", big)
    add(
        "profile payload that is not canonical",
        "NonCanonical",
        sign_raw(b'{"authority": "ES-FCC"}', labels.PROFILE, [es.identity]),
    )
    add(
        "profile payload with a repeated key",
        "DuplicateKey",
        sign_raw(b'{"v":1,"v":1}', labels.PROFILE, [es.identity]),
    )
    # fields, in their order
    add("profile of another type", "MalformedError", signed(type="prekey"))
    add("profile of version 2", "UnsupportedVersion", signed(v=2))
    add("profile for another network", "MalformedError", signed(network=b64(bytes(32))))
    add("profile whose authority is not an id", "InvalidIdentifier", signed(authority="es-fcc"))
    add("profile with sequence 0", "MalformedError", signed(seq=0))
    add("profile with an unknown offence area", "MalformedError", signed(offences=["fraud"]))
    add(
        "profile with offence areas out of order",
        "MalformedError",
        signed(offences=["money-laundering", "bribery"]),
    )
    add(
        "profile with a time zone that is no zone name", "MalformedError", signed(time_zone="GMT+1")
    )
    add(
        "profile with more than 8 contact points",
        "MalformedError",
        signed(contacts=[{"role": "duty-desk"}] * (MAX_CONTACTS + 1)),
    )
    add(
        "contact point with an unknown role",
        "MalformedError",
        signed(contacts=[{"role": "investigator"}]),
    )
    add(
        "contact label with a right-to-left override",
        "MalformedError",
        signed(contacts=[{"label": "Guardia\u202e", "role": "duty-desk"}]),
    )
    add(
        "contact label with a zero-width space",
        "MalformedError",
        signed(contacts=[{"label": "Guar\u200bdia", "role": "duty-desk"}]),
    )
    add(
        "contact hours on two lines",
        "MalformedError",
        signed(contacts=[{"hours": "9-17\n24/7", "role": "duty-desk"}]),
    )
    add(
        "contact label of 121 characters",
        "MalformedError",
        signed(contacts=[{"label": "a" * 121, "role": "duty-desk"}]),
    )
    add(
        "contact languages out of order",
        "MalformedError",
        signed(contacts=[{"languages": ["es", "en"], "role": "duty-desk"}]),
    )
    add(
        "contact e-mail without a domain",
        "MalformedError",
        signed(contacts=[{"email": "desk@localhost", "role": "duty-desk"}]),
    )
    add(
        "contact telephone not in E.164",
        "MalformedError",
        signed(contacts=[{"phone": "0034 91 555 01 00", "role": "duty-desk"}]),
    )
    add(
        "contact with a person's name field",
        "UnknownField",
        signed(contacts=[{"person": "A. Officer", "role": "duty-desk"}]),
    )
    add("profile note of 1,001 characters", "MalformedError", signed(note="n" * 1001))
    add("profile note with a bidi isolate", "MalformedError", signed(note="\u2067x\u2069"))
    add("profile with an unknown field", "UnknownField", signed(photo="x"))
    # signatures and the directory
    add(
        "profile without a signature",
        "BadSignature",
        SignedObject(canonical.encode(payload()), ()).encode(),
        rule=RULE_CHECK,
    )
    add(
        "profile signed twice",
        "BadSignature",
        resign(payload(), labels.PROFILE, [es.identity, es.transport]),
        rule=RULE_CHECK,
    )
    add(
        "profile signed under the prekey label",
        "BadSignature",
        resign(payload(), labels.PREKEY, [es.identity]),
        rule=RULE_CHECK,
    )
    add(
        "profile signed by the member's transport key",
        "NotCertified",
        signed(es.transport),
        rule=RULE_CHECK,
    )
    add(
        "profile signed by another member's identity key",
        "NotCertified",
        signed(it.identity),
        rule=RULE_CHECK,
    )
    add(
        "profile signed by a retired identity key",
        "NotCertified",
        signed(fr.identity, authority="FR-PNF"),
        rule=RULE_CHECK,
    )
    add(
        "profile of an authority that is no member",
        "UnknownMember",
        signed(authority="GB-SFO"),
        rule=RULE_CHECK,
    )
    add(
        "profile of a suspended member",
        "MemberNotActive",
        signed(de.identity, authority="DE-BKA"),
        base=8,
        rule=RULE_CHECK,
    )
    add(
        "profile of a revoked member",
        "MemberNotActive",
        signed(de.identity, authority="DE-BKA"),
        rule=RULE_CHECK,
    )
    add(
        "profile after its member's certificate expired",
        "ExpiredError",
        signed(),
        now=es.certificate.not_after,
        rule=RULE_CHECK,
    )
    add(
        "profile before its member's certificate is valid",
        "NotYetValid",
        signed(cont.fr_identity, authority="FR-PNF"),
        now=T_ROTATE_FR - 1,
        rule=RULE_CHECK,
    )
    add(
        "profile replaying sequence 1",
        "ReplayError",
        signed(),
        extra=(es1_entry,),
        rule="§6.7: a profile's seq is greater than the current profile's",
    )
    # acceptances
    ok(
        "profile with no offence area and no contact point",
        signed(offences=[], contacts=[]),
        RULE_FIELDS,
    )
    ok(
        "profile at every bound (8 contacts, 1,000-character note, 120-character labels)",
        signed(
            note="n" * 1000,
            time_zone="America/Argentina/Buenos_Aires",
            contacts=[
                {
                    "hours": "h" * 120,
                    "label": "l" * 120,
                    "languages": ["ar", "en"],
                    "role": "duty-desk",
                }
            ]
            * MAX_CONTACTS,
        ),
        RULE_FIELDS,
    )
    ok(
        "profile in Arabic with an Arabic letter mark",
        signed(time_zone="UTC", contacts=[{"label": "مكتب\u061c المناوبة", "role": "duty-desk"}]),
        RULE_FIELDS,
    )
    ok("profile whose sequence skips numbers", signed(seq=7), RULE_CHECK)


def profile_log_cases(cases: Cases, accepts: Accepts, net: DevNetwork, cont: Continuation) -> None:
    """Profile entries in the log (§6.7): the same checks, at the entry's time."""
    g = net.genesis
    es, de = member(net, "ES-FCC"), member(net, "DE-BKA")
    log = extended_log(net, cont)
    state = verify_log(g, log)
    good = profile_log(net, cont)
    es1 = _profiles(net)[0]

    def entry(profile: SignedObject | bytes, time: int = T_ES_1, *, at: DirectoryState = state,
              **extra: Any) -> bytes:  # fmt: skip
        container = (
            profile
            if isinstance(profile, SignedObject)
            else SignedObject.decode(profile, max_size=1 << 20, what="vector")
        )
        raw = make_profile_entry(
            genesis=g, seq=at.seq + 1, prev=at.head, time=time, profile=container
        )
        if not extra:
            return raw
        obj = canonical.decode(raw, max_size=1 << 20, what="vector")
        return canonical.encode({**obj, **extra})

    def add(name: str, error: str, extra: list[bytes], rule: str = RULE_CHECK) -> None:
        cases.add(
            name,
            "log",
            error,
            lambda: verify_log(g, [*log, *extra]),
            rule=rule,
            base_entries=BASE,
            entries=[h(e) for e in extra],
            trusted=None,
        )

    def profile_of(authority: str, key: SigningKey, **fields: Any) -> bytes:
        payload: Json = {
            "type": "profile", "v": 1, "network": b64(g.digest), "authority": authority,
            "seq": 1, "offences": [], "contacts": [], **fields,
        }  # fmt: skip
        return resign(payload, labels.PROFILE, [key])

    (sig,) = es1.signed.signatures
    forged = SignedObject(
        es1.signed.payload, (Signature(sig.key_id, bytes([sig.sig[0] ^ 1]) + sig.sig[1:]),)
    )
    after_es1 = verify_log(g, [*log, good[0]])
    add(
        "profile entry signed by the member's transport key",
        "NotCertified",
        [entry(profile_of("ES-FCC", es.transport))],
    )
    add("profile entry whose signature was altered", "BadSignature", [entry(forged)])
    add(
        "profile entry of an authority that is no member",
        "UnknownMember",
        [entry(profile_of("GB-SFO", es.identity))],
    )
    add(
        "profile entry of a revoked member",
        "MemberNotActive",
        [entry(profile_of("DE-BKA", de.identity))],
    )
    add(
        "profile entry dated when its member's certificate has expired",
        "ExpiredError",
        [entry(es1.signed, es.certificate.not_after)],
    )
    add(
        "profile entry replaying the member's current profile",
        "ReplayError",
        [good[0], entry(es1.signed, T_ES_2, at=after_es1)],
        "§6.7: a profile's seq is greater than the current profile's",
    )
    add(
        "profile entry whose profile payload exceeds 8,192 bytes",
        "SizeLimitExceeded",
        [entry(profile_of("ES-FCC", es.identity, x="a" * MAX_PROFILE_SIZE))],
        "§6.7: profile entry",
    )
    add(
        "profile entry that also carries an action",
        "UnknownField",
        [entry(es1.signed, action={"payload": "", "sigs": []})],
        "§6.7: profile entry",
    )
    add(
        "profile entry out of sequence",
        "ChainBroken",
        [entry(es1.signed, at=verify_log(g, log[:10]))],
        "§6.4: chain rules (seq, prev, time)",
    )
    accepts.add(
        "log with three profile entries",
        "log",
        lambda: verify_log(g, [*log, *good]),
        rule="§6.7: profile entry",
        base_entries=BASE,
        entries=[h(e) for e in good],
    )
