"""A short run of every fuzz target (``fuzz/targets.py``) inside the suite.

Each target runs over its seed corpus (``fuzz/corpus/<target>/``, plus the seeds the
current vectors give, so a change to the vectors is fuzzed before anyone rewrites the
corpus) and over a few thousand inputs made from it by the deterministic
structure-aware mutator, with a fixed seed per target: every input must be accepted
or refused with a :class:`~protocol.errors.ProtocolError`, and every accepted one must
satisfy the target's properties (re-encoding, fast path equal to reference path).  A
failure names the target and gives the input in hex; ``make fuzz`` runs the same
targets for minutes under coverage guidance.  The last tests check the targets themselves:
that each can fail when a decoder misbehaves.
"""

from __future__ import annotations

import dataclasses
import random

import pytest

from fuzz import targets as fuzz_targets
from fuzz.context import context, load_vectors
from fuzz.mutate import Mutator
from fuzz.seeds import CORPUS, corpus, seeds
from fuzz.targets import TARGETS, PropertyViolation
from protocol import canonical, envelope
from protocol.directory import DirectoryState, Member
from protocol.messages import MessageContent

#: Mutated inputs per target (about 60,000 in all; a few seconds).
MUTATIONS = 2000
NAMES = sorted(TARGETS)
SEEDS = seeds()


def inputs(name: str) -> list[bytes]:
    """The committed corpus and the vectors' current seeds, without repeats."""
    return list(dict.fromkeys([*corpus(name), *SEEDS[name]]))


def run(name: str, data: bytes) -> bool:
    """Run a target; on a finding, fail with the reproducer."""
    try:
        return TARGETS[name](data)
    except Exception as exc:  # noqa: BLE001 - any exception is the finding to report
        pytest.fail(f"fuzz target {name}: {type(exc).__name__}: {exc}\ninput: {data.hex()}")


@pytest.mark.parametrize("name", NAMES)
def test_each_target_accepts_part_of_its_seed_corpus(name: str) -> None:
    assert corpus(name), f"fuzz/corpus/{name}/ is empty: run python -m fuzz.seeds"
    verdicts = [run(name, data) for data in inputs(name)]
    assert any(verdicts), f"no seed of {name} is accepted: the target never gets past decoding"


@pytest.mark.parametrize("name", NAMES)
def test_mutated_inputs_are_accepted_or_refused(name: str) -> None:
    files = inputs(name)
    mutator = Mutator(files, random.Random(f"smoke {name}"))  # noqa: S311 - reproducible inputs
    verdicts = [run(name, mutator.mutate(mutator.rng.choice(files))) for _ in range(MUTATIONS)]
    assert not all(verdicts), f"{name} accepted every mutated input: it checks nothing"


def test_every_target_has_seeds_and_a_corpus_directory() -> None:
    assert set(SEEDS) == set(TARGETS)
    assert {p.name for p in CORPUS.iterdir() if p.is_dir()} == set(TARGETS)


def test_the_mutator_is_deterministic() -> None:
    files = corpus("log_entry")
    first = Mutator(files, random.Random(7))  # noqa: S311 - reproducible inputs
    second = Mutator(files, random.Random(7))  # noqa: S311
    outputs = [first.mutate(files[i % len(files)]) for i in range(200)]
    assert outputs == [second.mutate(files[i % len(files)]) for i in range(200)]
    assert len(set(outputs)) > 150


# --- the targets can fail ---------------------------------------------------------------------


def test_a_decoder_that_normalises_is_a_finding(monkeypatch: pytest.MonkeyPatch) -> None:
    """An encoder that no longer reproduces the accepted bytes breaks the message target."""
    valid = next(d for d in corpus("message") if run("message", d))
    encode = MessageContent.encode
    monkeypatch.setattr(MessageContent, "encode", lambda self: encode(self) + b" ")
    with pytest.raises(PropertyViolation, match="re-encodes to other bytes"):
        TARGETS["message"](valid)


def test_a_fast_path_that_disagrees_is_a_finding(monkeypatch: pytest.MonkeyPatch) -> None:
    """A fast header path returning another value than the strict path is caught."""
    header = bytes.fromhex(load_vectors("envelope_1")["header"])  # a plain header: fast path
    assert run("envelope_header", header)
    fast = envelope._header_fast

    def wrong(obj: dict[str, object], raw: bytes) -> envelope.EnvelopeHeader | None:
        h = fast(obj, raw)
        return None if h is None else dataclasses.replace(h, dir_seq=h.dir_seq + 1)

    monkeypatch.setattr(envelope, "_header_fast", wrong)
    with pytest.raises(PropertyViolation, match="fast and strict header paths disagree"):
        TARGETS["envelope_header"](header)


def test_an_exception_other_than_a_refusal_is_a_finding(monkeypatch: pytest.MonkeyPatch) -> None:
    """A decoder that leaks a library exception is not a refusal."""

    def leaky(data: bytes, **kwargs: object) -> object:
        raise ValueError("leaked")

    monkeypatch.setattr(canonical, "decode", leaky)
    with pytest.raises(ValueError, match="leaked"):
        fuzz_targets.canonical_target(b"{}")


def test_a_key_update_check_that_changes_the_directory_is_a_finding(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The hub checks a request against its live directory: a check that writes to it is caught."""
    request = bytes.fromhex(load_vectors("key_update")["requests"]["IT-ANAC"]["request"])
    assert run("key_update", request)
    check = DirectoryState.check_new_keys

    def writes(
        self: DirectoryState, new: dict[str, bytes], member: Member | None, what: str
    ) -> None:
        check(self, new, member, what)
        self.time += 1

    # A fresh directory: the target's own are shared by every test of this process.
    fresh = context().directory()
    monkeypatch.setattr(fuzz_targets, "_key_update_directories", lambda: (fresh,))
    monkeypatch.setattr(DirectoryState, "check_new_keys", writes)
    with pytest.raises(PropertyViolation, match="checking a key update changed the directory"):
        TARGETS["key_update"](request)
