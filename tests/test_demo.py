"""``make demo`` must keep working: run it and check what it shows.

The demo starts a hub and three node daemons as separate processes on
loopback and drives them through their command lines (see demo/__main__.py).
"""

from __future__ import annotations

import http.client
import http.cookies
import os
import queue
import re
import signal
import subprocess
import sys
import threading
import time
import urllib.parse
import urllib.request
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow


def test_demo_runs_the_real_network_and_shows_each_step() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "demo"], capture_output=True, text=True, timeout=240, check=False
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr
    assert result.stderr == ""
    out = result.stdout
    assert out.count("membership active; directory at entry 3 (3 members)") == 3
    assert out.count("admitted at log entry") == 3
    assert out.count("with 2 admin signatures") == 3
    assert "Brazil reads: 'Transfers from ACME Holdings" in out
    assert out.count("attachment ledger-extract.csv (588 bytes, digest checked)") == 2
    assert out.count("must answer within 8 h (urgent)") == 2
    assert "France sees: BR-CGU: answered" in out
    assert "France sees: KE-EACC: declined" in out
    assert out.count("signed a delivery receipt (delivered via") == 2
    for line in (
        "REFUSED: globe-node: error: message ",
        "has not consented to forwarding to KE-EACC: use request-consent",
        "France's directory: KE-EACC revoked",
        "REFUSED: globe-node: error: KE-EACC is revoked",
        "REFUSED: globe-node: error: this node (KE-EACC) is revoked",
        "every step did what it should",
    ):
        assert line in out
    assert out.count("exit status 0") == 4


def test_demo_keep_leaves_each_web_ui_up_until_ctrl_c() -> None:
    """``--keep``: after the script, each node's web UI answers and its printed token signs
    in; Ctrl-C (SIGINT to the whole process group, as a terminal sends it) stops it all."""
    with subprocess.Popen(
        [sys.executable, "-m", "demo", "--keep"], stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, text=True, start_new_session=True,
    ) as demo:  # fmt: skip
        try:
            lines = _Lines(demo)
            shown = lines.until("   stop: press Ctrl-C to stop the hub and the nodes\n", 240)
            uis = {m["authority"]: (m["port"], m["token"])
                   for m in map(_UI_LINE.fullmatch, shown) if m}  # fmt: skip
            assert sorted(uis) == ["BR-CGU", "FR-PNF", "KE-EACC"], "".join(shown)[-3000:]
            port, token = uis["BR-CGU"]
            status, inbox = _signed_in_inbox(int(port), token)
            assert status == 200
            assert "Transfers from ACME Holdings to a Sao Paulo shell company" in inbox
            links = {m["admin"]: m["link"] for m in map(_CONSOLE_LINE.fullmatch, shown) if m}
            assert sorted(links) == ["Admin-1", "Admin-2"], "".join(shown)[-3000:]
            queue_page = _console_applications(links["Admin-1"])
            assert "IT-ANAC" in queue_page  # the fourth authority's application waits
            children = _children(demo.pid)
            assert len(children) == 6  # the hub, three nodes and two consoles
            os.killpg(demo.pid, signal.SIGINT)
            assert demo.wait(timeout=60) == 0
            rest = lines.rest()
        finally:
            if demo.poll() is None:
                os.killpg(demo.pid, signal.SIGKILL)
                demo.wait()
        assert demo.stderr is not None
        assert demo.stderr.read() == ""
    assert rest.count("exit status 0") == 6, rest
    assert "every step did what it should" in rest
    for pid in children:
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)
    with pytest.raises(ProcessLookupError):
        os.killpg(demo.pid, 0)  # nothing of the demo's process group is left


_UI_LINE = re.compile(
    r"   (?P<authority>[A-Z]{2}-[A-Z]+): http://127\.0\.0\.1:(?P<port>\d+)/ui"
    r"  investigator web, token (?P<token>[A-Za-z0-9_-]{43})\n"
)
_CSRF = re.compile(r'name="csrf" value="([^"]+)"')
_CONSOLE_LINE = re.compile(
    r"   (?P<admin>Admin-[12]): (?P<link>http://127\.0\.0\.1:\d+/console/sign-in\?\S+)\n"
)


def _console_applications(link: str) -> str:
    """Sign in to a console with its one-time link; its applications page."""
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor())
    base = link.split("/console/", maxsplit=1)[0]
    with opener.open(link, timeout=30) as r:  # the link, then its redirect to the console
        assert r.status == 200
    with opener.open(f"{base}/console/applications", timeout=30) as r:
        return str(r.read().decode())


class _Lines:
    """The demo's output, line by line as it comes, with a deadline (a reader thread:
    a pipe read has no timeout of its own)."""

    def __init__(self, proc: subprocess.Popen[str]) -> None:
        self._queue: queue.Queue[str | None] = queue.Queue()
        self._reader = threading.Thread(target=self._read, args=(proc,), daemon=True)
        self._reader.start()

    def _read(self, proc: subprocess.Popen[str]) -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            self._queue.put(line)
        self._queue.put(None)

    def until(self, last: str, timeout: float) -> list[str]:
        """Every line up to ``last``, which must come within ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        seen: list[str] = []
        while not seen or seen[-1] != last:
            line = self._queue.get(timeout=max(deadline - time.monotonic(), 0.01))
            assert line is not None, "the demo ended early:\n" + "".join(seen)[-3000:]
            seen.append(line)
        return seen

    def rest(self) -> str:
        """The remaining output, once the process has ended."""
        self._reader.join(timeout=10)
        out = []
        while (line := self._queue.get_nowait()) is not None:
            out.append(line)
        return "".join(out)


def _signed_in_inbox(port: int, token: str) -> tuple[int, str]:
    """Sign in over HTTP as a browser does (the form, its token cookie, the API token),
    then open the inbox: its status and page."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    conn.request("GET", "/ui/sign-in")
    form = conn.getresponse()
    page = form.read().decode()
    assert (form.status, form.headers.get_content_type()) == (200, "text/html")
    found = _CSRF.search(page)
    assert found is not None, page[:500]
    body = urllib.parse.urlencode({"csrf": found.group(1), "token": token, "next": ""})
    conn.request("POST", "/ui/sign-in", body=body, headers={
        "Content-Type": "application/x-www-form-urlencoded",
        "Origin": f"http://127.0.0.1:{port}", "Cookie": _cookies(form),
    })  # fmt: skip
    signed = conn.getresponse()
    signed.read()
    assert (signed.status, signed.headers["Location"]) == (303, "/ui/"), signed.status
    conn.request("GET", "/ui/inbox", headers={"Cookie": _cookies(signed)})
    inbox = conn.getresponse()
    try:
        return inbox.status, inbox.read().decode()
    finally:
        conn.close()


def _cookies(resp: http.client.HTTPResponse) -> str:
    """The ``Cookie`` header sending back what ``resp`` set (values only; none deleted)."""
    jar = http.cookies.SimpleCookie()
    for header in resp.headers.get_all("Set-Cookie") or []:
        jar.load(header)
    return "; ".join(f"{k}={m.value}" for k, m in jar.items() if m.value)


def _children(pid: int) -> list[int]:
    """The processes ``pid`` started (Linux: /proc/PID/task/*/children)."""
    return [
        int(child)
        for task in Path(f"/proc/{pid}/task").iterdir()
        for child in (task / "children").read_text().split()
    ]
