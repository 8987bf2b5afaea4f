"""Coverage-guided fuzzing of every decoder that takes bytes from outside.

* :mod:`fuzz.targets`: one function per decoder; each takes the fuzzer's bytes and
  either returns (accepted or refused with a :class:`~protocol.errors.ProtocolError`)
  or raises (a property broke: another exception, a differential mismatch, an
  accepted input that does not re-encode to the same bytes).
* :mod:`fuzz.context`: what the targets verify against (genesis, directory, keys),
  read from ``tests/vectors/*.json``.
* :mod:`fuzz.seeds`: writes the seed corpus ``fuzz/corpus/<target>/`` from the vectors.
* :mod:`fuzz.mutate`: a small deterministic mutator, used by the smoke test in the
  suite (``tests/protocol/test_fuzz_smoke.py``) and when atheris is unavailable.
* :mod:`fuzz.run`: ``python -m fuzz.run`` (``make fuzz``) runs each target under
  atheris (libFuzzer) for a set time and reports CPU time, executions and findings.
"""
