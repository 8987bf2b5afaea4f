"""The daemons' log set-up (globe_io/logs.py): one handler, JSON lines or text, libraries
held at WARNING unless debugging."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import orjson
import pytest

from globe_io.logs import LIBRARIES, configure


@pytest.fixture
def root() -> Iterator[logging.Logger]:
    """The root logger, restored (handlers, levels) after the test."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    libraries = {name: logging.getLogger(name).level for name in LIBRARIES}
    try:
        yield root
    finally:
        root.handlers[:] = handlers
        root.setLevel(level)
        for name, lib_level in libraries.items():
            logging.getLogger(name).setLevel(lib_level)


def test_json_lines_at_info_keep_libraries_quiet(root, capsys):
    configure("info", json_lines=True)
    assert root.level == logging.INFO
    assert len(root.handlers) == 1
    logging.getLogger("globe.node").info("node %s running", "FR-PNF", extra={"seq": 3})
    logging.getLogger("aiohttp.access").info("GET / 200")  # library chatter: dropped
    logging.getLogger("alembic.runtime.migration").info("Context impl SQLiteImpl.")
    logging.getLogger("aiohttp.server").warning("a library's warning")  # kept
    lines = [orjson.loads(x) for x in capsys.readouterr().err.splitlines()]
    assert [(x["level"], x["logger"], x["message"]) for x in lines] == [
        ("info", "globe.node", "node FR-PNF running"),
        ("warning", "aiohttp.server", "a library's warning"),
    ]
    assert lines[0]["seq"] == 3
    assert all(logging.getLogger(name).level == logging.WARNING for name in LIBRARIES)


def test_text_at_debug_lets_libraries_speak(root, capsys):
    configure("debug", json_lines=False)
    logging.getLogger("alembic").debug("a library's detail")
    err = capsys.readouterr().err
    assert err.rstrip().endswith("DEBUG alembic: a library's detail")
    assert all(logging.getLogger(name).level == logging.NOTSET for name in LIBRARIES)


def test_warning_level_hides_the_daemons_info(root, capsys):
    configure("warning", json_lines=True)
    logging.getLogger("globe.hub").info("not shown")
    logging.getLogger("globe.hub").error("shown")
    assert [orjson.loads(x)["message"] for x in capsys.readouterr().err.splitlines()] == ["shown"]
