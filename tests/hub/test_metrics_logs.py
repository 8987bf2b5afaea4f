"""The metrics registry's exposition text and the JSON log format."""

from __future__ import annotations

import logging
import sys

import orjson

from globe_io.logs import JsonFormatter
from hub.metrics import Histogram, Metrics


def test_histogram_is_cumulative():
    h = Histogram((0.1, 1.0))
    for v in (0.05, 0.1, 0.5, 3.0):
        h.observe(v)
    assert list(h.render("x")) == [
        'x_bucket{le="0.1"} 2',
        'x_bucket{le="1"} 3',
        'x_bucket{le="+Inf"} 4',
        "x_sum 3.65",
        "x_count 4",
    ]


def test_render_counts_refusals_and_gauges():
    m = Metrics()
    m.accepted = 3
    m.refuse("bad-signature")
    m.refuse("bad-signature")
    m.refuse("rate-limited")
    m.gauge("globe_hub_mailbox_items", "Items waiting.", lambda: 7)
    m.commit_batch.observe(5)
    m.request("/v1/messages", 0.003)
    text = m.render()
    lines = text.splitlines()
    assert "globe_hub_messages_accepted_total 3" in lines
    assert 'globe_hub_refused_total{reason="bad-signature"} 2' in lines
    assert 'globe_hub_refused_total{reason="rate-limited"} 1' in lines
    assert "globe_hub_mailbox_items 7" in lines
    assert 'globe_hub_commit_batch_size_bucket{le="4"} 0' in lines
    assert 'globe_hub_commit_batch_size_bucket{le="8"} 1' in lines
    assert 'globe_hub_request_duration_seconds_bucket{route="/v1/messages",le="0.005"} 1' in lines
    assert text.endswith("\n")
    # Every sample line is "name{labels} value" or "name value" with a numeric value.
    for line in lines:
        if not line.startswith("#"):
            float(line.rsplit(" ", 1)[1])


def test_label_values_are_bounded():
    m = Metrics()
    for i in range(1000):
        m.refuse(f"slug-{i}")
        m.request(f"/route/{i}", 0.001)
    assert len(m.refused) == 256
    assert len(m.request_latency) == 256


def test_json_log_lines_carry_fields_but_no_traceback_text():
    record = logging.LogRecord(
        "globe.hub", logging.ERROR, __file__, 1, "commit of %d failed", (3,), None
    )
    record.recipient = "FR-PNF"
    try:
        raise ValueError("secret detail")
    except ValueError:
        record.exc_info = sys.exc_info()
    line = JsonFormatter().format(record)
    obj = orjson.loads(line)
    assert obj["level"] == "error"
    assert obj["logger"] == "globe.hub"
    assert obj["message"] == "commit of 3 failed"
    assert obj["recipient"] == "FR-PNF"
    assert obj["error"] == "ValueError"
    assert "secret detail" not in line
    assert "\n" not in line
