"""``make demo`` must keep working: run it and check what it shows.

The demo starts a hub and three node daemons as separate processes on
loopback and drives them through their command lines (see demo/__main__.py).
"""

from __future__ import annotations

import subprocess
import sys

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
