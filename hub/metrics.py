"""Prometheus text-format metrics for the hub (``GET /metrics``).

Counters, gauges and histograms kept in memory per process; no label carries
message content or anything a client chose beyond a bounded set of problem
slugs and route names.
"""

from __future__ import annotations

import bisect
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Final

__all__ = ["Histogram", "Metrics"]

LATENCY_BUCKETS: Final = (0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0)
BATCH_BUCKETS: Final = (1, 2, 4, 8, 16, 32, 64, 128, 256)
_MAX_LABELS: Final = 256  # distinct label values per family: bounded against hostile input


@dataclass(slots=True)
class Histogram:
    """A cumulative histogram with fixed bucket bounds."""

    bounds: tuple[float, ...]
    counts: list[int] = field(default_factory=list)
    total: float = 0.0
    n: int = 0

    def __post_init__(self) -> None:
        self.counts = [0] * (len(self.bounds) + 1)

    def observe(self, value: float) -> None:
        """Record one observation."""
        self.counts[bisect.bisect_left(self.bounds, value)] += 1
        self.total += value
        self.n += 1

    def render(self, name: str, labels: str = "") -> Iterable[str]:
        """The ``_bucket``, ``_sum`` and ``_count`` lines."""
        sep = "," if labels else ""
        running = 0
        for bound, count in zip(self.bounds, self.counts, strict=False):
            running += count
            yield f'{name}_bucket{{{labels}{sep}le="{_num(bound)}"}} {running}'
        yield f'{name}_bucket{{{labels}{sep}le="+Inf"}} {self.n}'
        yield (
            f"{name}_sum{{{labels}}} {_num(self.total)}"
            if labels
            else f"{name}_sum {_num(self.total)}"
        )
        yield f"{name}_count{{{labels}}} {self.n}" if labels else f"{name}_count {self.n}"


def _num(value: float) -> str:
    return repr(float(value)) if not float(value).is_integer() else str(int(value))


class Metrics:
    """The hub's metrics registry."""

    def __init__(self) -> None:
        self.accepted = 0
        self.duplicates = 0
        self.refused: dict[str, int] = {}
        self.receipts = 0
        self.expired = 0
        self.accept_latency = Histogram(LATENCY_BUCKETS)
        self.commit_batch = Histogram(tuple(float(b) for b in BATCH_BUCKETS))
        self.request_latency: dict[str, Histogram] = {}
        self.gauges: dict[str, tuple[str, Callable[[], float]]] = {}

    def refuse(self, slug: str) -> None:
        """Count a refusal by problem slug."""
        if slug in self.refused or len(self.refused) < _MAX_LABELS:
            self.refused[slug] = self.refused.get(slug, 0) + 1

    def request(self, route: str, seconds: float) -> None:
        """Record a request's handling time under its route pattern."""
        hist = self.request_latency.get(route)
        if hist is None:
            if len(self.request_latency) >= _MAX_LABELS:
                return
            hist = self.request_latency[route] = Histogram(LATENCY_BUCKETS)
        hist.observe(seconds)

    def gauge(self, name: str, help_text: str, read: Callable[[], float]) -> None:
        """Register a gauge read at scrape time."""
        self.gauges[name] = (help_text, read)

    def render(self) -> str:
        """The exposition text (Prometheus text format 0.0.4)."""
        lines: list[str] = []

        def counter(name: str, help_text: str, value: int) -> None:
            lines.extend(
                (f"# HELP {name} {help_text}", f"# TYPE {name} counter", f"{name} {value}")
            )

        counter("globe_hub_messages_accepted_total", "Envelopes durably accepted.", self.accepted)
        counter(
            "globe_hub_messages_duplicate_total",
            "Exact resubmissions answered with the original evidence.",
            self.duplicates,
        )
        counter(
            "globe_hub_receipts_total",
            "Envelopes released against a signed receipt.",
            self.receipts,
        )
        counter("globe_hub_expired_total", "Envelopes expired undelivered.", self.expired)
        lines.append("# HELP globe_hub_refused_total Requests refused, by problem type.")
        lines.append("# TYPE globe_hub_refused_total counter")
        lines.extend(
            f'globe_hub_refused_total{{reason="{slug}"}} {n}'
            for slug, n in sorted(self.refused.items())
        )
        for name, (help_text, read) in sorted(self.gauges.items()):
            lines.extend(
                (f"# HELP {name} {help_text}", f"# TYPE {name} gauge", f"{name} {_num(read())}")
            )
        lines.append(
            "# HELP globe_hub_accept_latency_seconds From a submission's arrival to its commit."
        )
        lines.append("# TYPE globe_hub_accept_latency_seconds histogram")
        lines.extend(self.accept_latency.render("globe_hub_accept_latency_seconds"))
        lines.append("# HELP globe_hub_commit_batch_size Envelopes per group commit.")
        lines.append("# TYPE globe_hub_commit_batch_size histogram")
        lines.extend(self.commit_batch.render("globe_hub_commit_batch_size"))
        lines.append("# HELP globe_hub_request_duration_seconds Request handling time by route.")
        lines.append("# TYPE globe_hub_request_duration_seconds histogram")
        for route, hist in sorted(self.request_latency.items()):
            lines.extend(hist.render("globe_hub_request_duration_seconds", f'route="{route}"'))
        return "\n".join(lines) + "\n"
