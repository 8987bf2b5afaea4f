"""Run the fuzz targets: ``python -m fuzz.run [--seconds N] [--engine E] [target ...]``.

Each target runs in its own process under atheris (libFuzzer with coverage of
``protocol/``, and atheris's hook that solves string comparisons) for ``--seconds``,
starting from its seed corpus ``fuzz/corpus/<target>/`` and the seeds of the current
vectors (``fuzz/work/seeds/<target>/``), both read only, and growing a working corpus
in ``fuzz/work/<target>/corpus/``.
Mutations alternate between libFuzzer's and :class:`fuzz.mutate.Mutator`'s, which
knows JSON and signed containers.  An input that raises anything but a refusal, or
runs longer than ``--timeout`` seconds, is a finding: libFuzzer stops and writes it to
``fuzz/work/<target>/crash-*`` (or ``timeout-*``).

``--engine mutate`` runs the same targets in this process with the mutator alone
(no coverage feedback): for machines where atheris does not install.

The report gives, per target, the CPU time spent, executions, coverage (libFuzzer's
``cov``/``ft``), the working corpus size and the findings; it is also written to
``fuzz/work/summary.json``.  The exit status is 1 if anything was found.
"""

from __future__ import annotations

import argparse
import importlib
import json
import random
import re
import resource
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Final

__all__ = ["Result", "main"]

ROOT: Final = Path(__file__).resolve().parent
CORPUS: Final = ROOT / "corpus"
WORK: Final = ROOT / "work"
_ARTIFACTS: Final = ("crash-", "timeout-", "oom-", "leak-")
_STAT_RE: Final = re.compile(r"stat::(\w+):\s+(\d+)")
_COV_RE: Final = re.compile(r"cov: (\d+) ft: (\d+)")


@dataclass(slots=True)
class Result:
    """What one target's run did."""

    target: str
    engine: str
    seconds: int
    cpu_seconds: float = 0.0
    executions: int = 0
    coverage: int | None = None  # libFuzzer's "cov": edges of protocol/ reached
    features: int | None = None  # libFuzzer's "ft"
    corpus: int = 0  # inputs in the working corpus at the end
    peak_rss_mb: int | None = None
    slowest_unit_seconds: int | None = None  # libFuzzer's, whole seconds
    findings: list[str] = field(default_factory=list)


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _artifacts(work: Path) -> set[str]:
    return {p.name for p in work.iterdir() if p.name.startswith(_ARTIFACTS)}


def run_atheris(target: str, seconds: int, timeout: int) -> Result:
    """One target in a child process under atheris; its CPU time, stats and findings."""
    work = WORK / target
    (work / "corpus").mkdir(parents=True, exist_ok=True)
    before = _artifacts(work)
    dirs = [CORPUS / target, WORK / "seeds" / target]
    largest = max(p.stat().st_size for d in dirs if d.is_dir() for p in d.iterdir())
    args = [
        str(work / "corpus"),
        *(str(d) for d in dirs if d.is_dir()),
        f"-max_total_time={seconds}",
        f"-timeout={timeout}",
        f"-max_len={max(4096, largest + 4096)}",
        "-rss_limit_mb=2048",
        f"-artifact_prefix={work}/",
        "-print_final_stats=1",
    ]
    cpu = _children_cpu()
    proc = subprocess.run(  # noqa: S603 - our own interpreter and module
        [sys.executable, "-m", "fuzz.run", "--child", target, "--", *args],
        cwd=ROOT.parent,
        capture_output=True,
        text=True,
        errors="replace",
        check=False,
    )
    result = Result(target, "atheris", seconds, cpu_seconds=round(_children_cpu() - cpu, 1))
    (work / "last.log").write_text(proc.stderr + proc.stdout)
    stats = dict(_STAT_RE.findall(proc.stderr))
    result.executions = int(stats.get("number_of_executed_units", 0))
    if "peak_rss_mb" in stats:
        result.peak_rss_mb = int(stats["peak_rss_mb"])
    if "slowest_unit_time_sec" in stats:
        result.slowest_unit_seconds = int(stats["slowest_unit_time_sec"])
    covs = _COV_RE.findall(proc.stderr)
    if covs:
        result.coverage, result.features = (int(x) for x in covs[-1])
    result.corpus = sum(1 for p in (work / "corpus").iterdir() if p.is_file())
    result.findings = sorted(_artifacts(work) - before)
    if proc.returncode != 0 and not result.findings:
        result.findings = [f"exit status {proc.returncode} (see {work / 'last.log'})"]
    return result


def run_mutate(target: str, seconds: int) -> Result:
    """One target in this process with the structure-aware mutator only."""
    from fuzz.mutate import Mutator  # noqa: PLC0415 - keeps the atheris child uninstrumented
    from fuzz.seeds import corpus  # noqa: PLC0415
    from fuzz.targets import TARGETS  # noqa: PLC0415

    work = WORK / target
    work.mkdir(parents=True, exist_ok=True)
    fn = TARGETS[target]
    seeds = corpus(target)
    mutator = Mutator(seeds, random.Random(target))  # noqa: S311 - fuzzing, not secrets
    result = Result(target, "mutate", seconds)
    start_cpu, deadline = time.process_time(), time.monotonic() + seconds
    inputs = list(seeds)
    while time.monotonic() < deadline:
        data = inputs.pop() if inputs else mutator.mutate(mutator.rng.choice(seeds))
        result.executions += 1
        try:
            fn(data)
        except Exception as exc:  # noqa: BLE001 - every other exception is the finding
            name = f"crash-{type(exc).__name__}-{result.executions}"
            (work / name).write_bytes(data)
            result.findings.append(f"{name}: {exc}"[:300])
    result.cpu_seconds = round(time.process_time() - start_cpu, 1)
    result.corpus = len(seeds)
    return result


def _child(target: str, libfuzzer_args: list[str]) -> None:
    """The atheris process of one target (``--child``)."""
    atheris: Any = importlib.import_module("atheris")
    # atheris's "RegEx" hook is left off: its pattern proxy refuses Pattern.match(text, pos),
    # which protocol.strictjson uses, so every input would "crash" in the proxy.
    atheris.enabled_hooks.add("str")
    with atheris.instrument_imports(include=["protocol"]):
        targets: Any = importlib.import_module("fuzz.targets")
    mutate: Any = importlib.import_module("fuzz.mutate")
    seeds: Any = importlib.import_module("fuzz.seeds")
    fn = targets.TARGETS[target]
    mutator = mutate.Mutator(seeds.corpus(target), random.Random(0))  # noqa: S311

    def custom_mutator(data: bytes, max_size: int, seed: int) -> bytes:
        rng = random.Random(seed)  # noqa: S311 - fuzzing, not secrets
        if rng.random() < 0.5:
            out: bytes = atheris.Mutate(data, max_size)
            return out
        mutator.rng = rng
        new: bytes = mutator.mutate(data, max_size)
        return new

    def one_input(data: bytes) -> None:
        fn(data)

    atheris.Setup([sys.argv[0], *libfuzzer_args], one_input, custom_mutator=custom_mutator)
    atheris.Fuzz()


def _report(results: list[Result]) -> str:
    lines = [
        f"{'target':20} {'engine':8} {'cpu s':>7} {'execs':>10} {'exec/s':>7} "
        f"{'cov':>5} {'ft':>6} {'corpus':>6}  findings"
    ]
    for r in results:
        rate = int(r.executions / r.cpu_seconds) if r.cpu_seconds else 0
        lines.append(
            f"{r.target:20} {r.engine:8} {r.cpu_seconds:7.1f} {r.executions:10} {rate:7} "
            f"{r.coverage if r.coverage is not None else '-':>5} "
            f"{r.features if r.features is not None else '-':>6} {r.corpus:6}  "
            + ("; ".join(r.findings) or "none")
        )
    total = sum(r.cpu_seconds for r in results)
    lines.append(f"total CPU time {total:.1f} s, {sum(r.executions for r in results)} executions")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Parse arguments, run the targets, print and save the report; 1 if anything was found."""
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["--child"]:
        _child(argv[1], argv[3:])
        return 0
    from fuzz.targets import TARGETS  # noqa: PLC0415

    parser = argparse.ArgumentParser(prog="python -m fuzz.run", description=__doc__)
    parser.add_argument("targets", nargs="*", metavar="target", help="default: every target")
    parser.add_argument("--seconds", type=int, default=60, help="per target (default 60)")
    parser.add_argument("--timeout", type=int, default=10, help="per input, in seconds")
    parser.add_argument("--engine", choices=("atheris", "mutate"), default=None)
    args = parser.parse_args(argv)
    unknown = sorted(set(args.targets) - set(TARGETS))
    if unknown:
        parser.error(f"unknown target(s) {unknown}; known: {sorted(TARGETS)}")
    engine = args.engine
    if engine is None:
        try:
            importlib.import_module("atheris")
            engine = "atheris"
        except ImportError:
            print("atheris is not installed: running the mutator alone (no coverage feedback)")
            engine = "mutate"
    if engine == "atheris":
        from fuzz.seeds import write_corpus  # noqa: PLC0415

        write_corpus(WORK / "seeds")  # the current vectors' seeds, beside the committed corpus
    results: list[Result] = []
    for target in args.targets or list(TARGETS):
        if engine == "atheris":
            result = run_atheris(target, args.seconds, args.timeout)
        else:
            result = run_mutate(target, args.seconds)
        print(_report([result]).splitlines()[1], flush=True)
        results.append(result)
    report = _report(results)
    print(report)
    WORK.mkdir(exist_ok=True)
    (WORK / "summary.json").write_text(
        json.dumps([asdict(r) for r in results], indent=2, sort_keys=True) + "\n"
    )
    return 1 if any(r.findings for r in results) else 0


if __name__ == "__main__":
    sys.exit(main())
