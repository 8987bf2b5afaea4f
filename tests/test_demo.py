"""``make demo`` must keep working: run it and check what it shows."""

from __future__ import annotations

import subprocess
import sys


def test_demo_walk_through_succeeds_and_shows_each_refusal() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "demo"], capture_output=True, text=True, timeout=120, check=False
    )
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    out = result.stdout
    assert out.count("REFUSED admission signed by 1 admin of 2 required: QuorumNotMet") == 3
    assert out.count("signed over this message's exact bytes: True") == 2
    for line in (
        "REFUSED the same envelope delivered twice: ReplayError",
        "REFUSED one flipped bit in the ciphertext: BadSignature",
        "REFUSED the envelope reflected back to its sender: ReflectedMessage",
        "REFUSED a message from FR-PNF: MemberNotActive",
    ):
        assert line in out
