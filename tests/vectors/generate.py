"""Build the GlobE Link protocol v1 test vectors (tests/vectors/*.json) and the
conformance matrix of tests/vectors/README.md.

Everything is derived from fixed seeds: the development network comes from
``protocol.devnet.build_devnet(b"globe vectors v1", ...)`` and every other
random input from ``protocol.crypto.deterministic_rng`` with a named seed.  The
one exception is HPKE encapsulation, whose randomness ``cryptography`` draws
itself: wrapped content keys and KEM challenges are fixed as data.  The
generator reuses the committed ciphertexts while they still open to the
expected plaintext (:class:`~tests.vectors.vectorlib.HpkePool`), so a
regeneration reproduces every committed file byte for byte, and draws fresh
ones only for a new or changed vector.

Usage::

    .venv/bin/python tests/vectors/generate.py            # report which files differ
    .venv/bin/python tests/vectors/generate.py --write    # (re)write the files
    .venv/bin/python tests/vectors/generate.py --write attachment.json   # only this one

Importable: :func:`build_vectors` returns ``{filename: content}``,
:func:`build_readme` the README with its generated conformance matrix.

While building, every vector is checked against the implementation (each
refusal must raise exactly its error class, each acceptance must pass), so a
wrong vector cannot be written.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make the repository importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from tests.vectors import (
    canonical_records,
    content,
    envelope_cases,
    envelope_open,
    envelopes,
    evidence_cases,
    extras,
    key_updates,
    log_cases,
    logs,
    matrix,
    message_cases,
    origin_cases,
    profiles,
    records,
    refusals,
    signed_cases,
    status_cases,
)
from tests.vectors.attachment_forward import build_attachment, build_forward
from tests.vectors.bundle_cases import build_bundle_vectors
from tests.vectors.vectorlib import (
    NOW,
    VECTOR_DIR,
    Accepts,
    Cases,
    HpkePool,
    Json,
    build_network,
    mutate,
    render,
)

__all__ = ["build_readme", "build_vectors", "main", "mutate", "render"]


def build_vectors(pool: HpkePool | None = None) -> dict[str, Json]:
    """Every vector file: ``{filename: content}``."""
    pool = pool or HpkePool.from_files()
    net = build_network()
    cont = logs.build_continuation()
    env1, raw1 = envelopes.seal(net, pool, "envelope-1", [("DE-BKA", 1)])
    env3, raw3 = envelopes.seal(
        net, pool, "envelope-3", [("IT-ANAC", 1), ("DE-BKA", 2), ("ES-FCC", 1)]
    )
    env_ka, _ = envelopes.seal(net, pool, "envelope-ka", [("DE-BKA", 3)], fallback=True)
    cases, accepts = Cases(), Accepts()
    refusals.identifier_cases(cases, accepts)
    refusals.base64url_cases(cases)
    refusals.key_cases(cases)
    refusals.genesis_cases(cases, accepts, net)
    signed_cases.application_cases(cases, net)
    log_cases.log_cases(cases, accepts, net, cont)
    profiles.profile_cases(cases, accepts, net, cont)
    profiles.profile_log_cases(cases, accepts, net, cont)
    signed_cases.checkpoint_cases(cases, net)
    logs.checkpoint_check_cases(cases, net, cont)
    signed_cases.prekey_cases(cases, accepts, net)
    evidence_cases.receipt_cases(cases, accepts, net)
    logs.receipt_log_cases(cases, net, cont)
    evidence_cases.evidence_cases(cases, accepts, net)
    evidence_cases.request_cases(cases, accepts, net)
    message_cases.message_cases(cases, accepts)
    status_cases.status_cases(cases, accepts)
    envelope_cases.header_cases(cases, accepts, raw1)
    envelope_cases.frame_cases(cases, accepts, raw1)
    envelope_open.open_cases(cases, accepts, net, pool, cont=cont, env1=raw1, env3=raw3)
    envelope_open.hub_cases(cases, net, raw1, raw3)
    origin_cases.signed_content_cases(cases, accepts, net, cont, raw1)
    key_updates.request_cases(cases, accepts)
    key_updates.retired_key_cases(cases, accepts, pool, raw1)
    keystore, keystore_cases = extras.build_keystore()
    cases.items.extend(keystore_cases)
    kem_pop = extras.build_kem_pop(net, pool, cases)
    replay = extras.build_replay(cases)
    return {
        "keys.json": records.build_keys(net),
        "canonical.json": canonical_records.build_canonical(),
        "strict_json.json": extras.build_strict_json(),
        "keystore.json": keystore,
        "genesis.json": records.build_genesis(net),
        "application.json": records.build_application(net),
        "kem_pop.json": kem_pop,
        "certificate.json": records.build_certificate(net),
        "log.json": records.build_log(net),
        "directory.json": logs.build_directory(net, cont),
        "profile.json": profiles.build_profiles(net, cont),
        "key_update.json": key_updates.build_key_update(pool),
        "checkpoint.json": records.build_checkpoint(net),
        "prekey.json": records.build_prekey(net),
        "receipt.json": records.build_receipt(net),
        "evidence.json": records.build_evidence(net),
        "request_auth.json": records.build_request_auth(net),
        "replay.json": replay,
        "message.json": content.build_message(),
        "envelope_1.json": env1,
        "envelope_3.json": env3,
        "envelope_ka.json": env_ka,
        "attachment.json": build_attachment(),
        "forward.json": build_forward(net),
        "bundle.json": build_bundle_vectors(pool, raw1),
        "invalid.json": {
            "description": (
                "Inputs that must be refused, each with the exact error class (protocol.errors) "
                "and the rule it pins. See README.md for the inputs of each 'structure'. Cases "
                "with 'derived_from' are a recorded mutation of another file's envelope."
            ),
            "now": NOW,
            "cases": cases.items,
        },
        "valid.json": {
            "description": (
                "Inputs that must be accepted: boundary values and deliberate leniencies, in "
                "the structures of invalid.json (README.md), each with the rule it pins."
            ),
            "now": NOW,
            "cases": accepts.items,
        },
    }


def build_readme(vectors: dict[str, Json], readme: str | None = None) -> str:
    """README.md with its conformance matrix regenerated from ``vectors``."""
    text = readme if readme is not None else (VECTOR_DIR / "README.md").read_text("utf-8")
    return matrix.replace_matrix(text, matrix.render_matrix(vectors))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--write", action="store_true", help="write tests/vectors/*.json")
    parser.add_argument("names", nargs="*", help="only these files (e.g. attachment.json)")
    args = parser.parse_args(argv)
    vectors = build_vectors()
    texts = {name: render(content) for name, content in vectors.items()}
    texts["README.md"] = build_readme(vectors)
    for name, text in texts.items():
        if args.names and name not in args.names:
            continue
        path = VECTOR_DIR / name
        if args.write:
            path.write_text(text, encoding="utf-8")
            print(f"wrote {path.relative_to(VECTOR_DIR.parent.parent)} ({len(text)} bytes)")
        else:
            old = path.read_text(encoding="utf-8") if path.exists() else None
            state = "missing" if old is None else ("same" if old == text else "differs")
            print(f"{name}: {state}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
