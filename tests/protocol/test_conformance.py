"""The conformance matrix cannot drift from PROTOCOL.md, the vectors or its README table.

* Every (structure, slug) pair that PROTOCOL.md §11.1 lists has at least one vector,
  and every refusal vector's pair is listed there.
* Every slug of ``protocol.errors`` is either produced by some structure of §11.1 or
  listed there as produced by none, with the reason.
* Every MUST of PROTOCOL.md is in the catalogue of ``tests/vectors/matrix.py`` exactly
  once, with vectors that exist or the reason none can show it.
* Every rule a vector cites names a section that exists.
* The matrix in tests/vectors/README.md is exactly what the generator renders.
"""

from __future__ import annotations

import json
import re
from functools import cache
from pathlib import Path
from typing import Any

import pytest

from protocol import errors
from tests.vectors import matrix

VECTOR_DIR = Path(__file__).resolve().parents[1] / "vectors"


@cache
def spec() -> str:
    return matrix.PROTOCOL_MD.read_text(encoding="utf-8")


@cache
def files() -> dict[str, dict[str, Any]]:
    return {
        p.name: json.loads(p.read_text(encoding="utf-8")) for p in sorted(VECTOR_DIR.glob("*.json"))
    }


@cache
def vectors() -> tuple[matrix.Vector, ...]:
    return tuple(matrix.vectors_of(files()))


def protocol_slugs() -> set[str]:
    """The slug of every error class defined in protocol.errors."""
    return {
        cls.slug
        for cls in vars(errors).values()
        if isinstance(cls, type)
        and issubclass(cls, errors.GlobeError)
        and cls.__module__ == errors.__name__
    }


def test_every_listed_refusal_has_a_vector():
    listed = matrix.spec_pairs(spec())
    have = matrix.pairs(list(vectors()))
    missing = sorted(
        (structure, slug)
        for structure, slugs in listed.items()
        for slug in slugs
        if (structure, slug) not in have
    )
    assert not missing, f"PROTOCOL.md §11.1 lists pairs without a vector: {missing}"


def test_every_refusal_vector_is_listed():
    listed = matrix.spec_pairs(spec())
    unlisted = sorted(
        (structure, slug)
        for structure, slug in matrix.pairs(list(vectors()))
        if slug not in listed.get(structure, set())
    )
    assert not unlisted, f"vectors refuse with pairs PROTOCOL.md §11.1 does not list: {unlisted}"


def test_every_acceptance_is_of_a_listed_structure():
    listed = matrix.spec_pairs(spec())
    assert {v.structure for v in vectors() if v.error is None} <= set(listed)


def test_every_slug_is_produced_or_explained():
    produced = set().union(*matrix.spec_pairs(spec()).values())
    unvectored = matrix.spec_unvectored(spec())
    assert produced <= protocol_slugs()
    assert set(unvectored) <= protocol_slugs()
    assert not produced & set(unvectored)
    assert produced | set(unvectored) == protocol_slugs()
    assert all(reason.strip() for reason in unvectored.values())


def test_every_must_is_in_the_catalogue_once():
    text = matrix.normalise(spec())
    positions = [m.start() for m in re.finditer(r"\bMUST\b", text)]
    covered: dict[int, list[str]] = {}
    for must in matrix.MUSTS:
        quote = matrix.normalise(must.quote)
        assert text.count(quote) == 1, f"quote not found exactly once: {must.quote!r}"
        start = text.index(quote)
        for pos in positions:
            if start <= pos < start + len(quote):
                covered.setdefault(pos, []).append(must.quote)
        assert "MUST" in quote, must.quote
    uncovered = [text[max(0, p - 80) : p + 40] for p in positions if p not in covered]
    assert not uncovered, f"MUSTs without a catalogue entry: {uncovered}"
    assert all(len(q) == 1 for q in covered.values())


def test_every_must_names_existing_vectors_or_why_none():
    names: dict[str, set[str]] = {}
    for v in vectors():
        names.setdefault(v.file, set()).add(v.name)
    for must in matrix.MUSTS:
        assert bool(must.vectors) != bool(must.none), must.quote
        for ref in must.vectors:
            file, name = ref.split("#", 1)
            assert name in names.get(file, set()), f"{must.quote!r}: no vector {ref!r}"


def _sections() -> set[str]:
    found = set(re.findall(r"^## §(\d+)", spec(), re.M))
    found |= set(re.findall(r"^#{3,4} (\d+\.\d+(?:\.\d+)?)", spec(), re.M))
    return found


@pytest.mark.parametrize("kind", ["refusal", "acceptance"])
def test_every_rule_cites_an_existing_section(kind):
    sections = _sections()
    for v in vectors():
        if (v.error is None) != (kind == "acceptance"):
            continue
        cited = re.findall(r"§(\d+(?:\.\d+)*)", v.rule)
        assert cited, v.name
        for section in cited:
            assert section in sections, f"{v.name}: {v.rule} cites §{section}"


def test_the_readme_matrix_is_what_the_generator_renders():
    readme = (VECTOR_DIR / "README.md").read_text(encoding="utf-8")
    assert matrix.matrix_of(readme) == matrix.render_matrix(files())


def test_the_matrix_covers_every_structure_of_the_vectors():
    table = matrix.render_matrix(files())
    for structure, slug in matrix.pairs(list(vectors())):
        assert f"| `{structure}` | `{slug}` |" in table
