"""``make demo``: a real GlobE Link network on this machine, narrated.

In a temporary directory, on SQLite, with the real command lines and daemons:

1. three admins generate keys and sign a genesis with a 2-of-3 quorum; a hub is
   initialised and started (``globe-hub serve``, its own process);
2. three authorities from three countries initialise their nodes, apply, and
   are admitted by two of the three admins; each starts ``globe-node run``
   (three more processes) and verifies the membership log from the genesis;
3. France sends spontaneous information to Brazil (delivered directly to
   Brazil's endpoint), then an urgent assistance request with an attachment to
   Brazil and Kenya (relayed through the hub, which gives the encrypted blob
   only to the recipients of an envelope it accepted);
4. Brazil acknowledges, then answers; France sees the status, the answer and the
   signed receipts; Kenya declines;
5. Brazil tries to forward restricted material to Kenya: refused without the
   originator's consent;
6. the admins revoke Kenya; every node verifies the revocation; France's node
   refuses to send to Kenya, and Kenya's node refuses to send at all (the hub
   and the peers refuse a revoked sender too: tests/node cover both paths).

Everything printed comes from the daemons' local APIs and the command lines'
``--json`` output.  Exit status 0 when every step did what it should.

With ``--keep`` (``make demo DEMO_ARGS=--keep``) the hub and the nodes stay up after
step 6: each node gets an investigator user ``web``, and the demo prints each node's
web UI address and that user's sign-in token; a fourth authority (IT-ANAC) applies, and
the consoles of two admins start (``globe-admin ui``) with their one-time sign-in links,
so that a person can approve the application in one and complete the quorum in the
other.  It then waits for Ctrl-C (or SIGTERM) and stops everything as in the run
without it.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

PASSPHRASE = "demo passphrase - never use in production"  # noqa: S105 - a throw-away network
AUTHORITIES = [
    ("FR-PNF", "Parquet national financier", "FR", ["fr", "en"]),
    ("BR-CGU", "Controladoria-Geral da Uniao", "BR", ["pt", "es", "en"]),
    ("KE-EACC", "Ethics and Anti-Corruption Commission", "KE", ["en"]),
]
STARTED = time.monotonic()


class DemoFailure(Exception):
    """A step did not do what the demo expects."""


def say(text: str) -> None:
    """A narrated headline."""
    sys.stdout.write(f"\n== {text}\n")
    sys.stdout.flush()


def detail(label: str, text: object) -> None:
    """One indented fact under a headline."""
    sys.stdout.write(f"   {label}: {text}\n")
    sys.stdout.flush()


def free_port() -> int:
    """A TCP port free on 127.0.0.1 now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def run(module: str, *args: str | Path, env: dict[str, str] | None = None) -> Any:
    """Run ``python -m MODULE ARGS --json``; return the parsed JSON."""
    argv = [sys.executable, "-m", module, *map(str, args), "--json"]
    done = subprocess.run(  # noqa: S603 - our own modules, arguments built here
        argv, capture_output=True, text=True, env=env, timeout=120, check=False
    )
    if done.returncode != 0:
        raise DemoFailure(f"{module} {' '.join(map(str, args[:2]))}: {done.stderr.strip()}")
    return json.loads(done.stdout) if done.stdout.strip() else {}


def refused(module: str, *args: str | Path, env: dict[str, str] | None = None) -> str:
    """Run a command that must be refused; return its one-line error."""
    argv = [sys.executable, "-m", module, *map(str, args)]
    done = subprocess.run(  # noqa: S603 - our own modules, arguments built here
        argv, capture_output=True, text=True, env=env, timeout=120, check=False
    )
    if done.returncode == 0:
        raise DemoFailure(f"{module} {' '.join(map(str, args[:2]))} was not refused")
    lines = done.stderr.strip().splitlines()
    if len(lines) != 1 or "Traceback" in done.stderr:
        raise DemoFailure(f"expected a one-line refusal, got: {done.stderr!r}")
    return lines[0]


def wait_for(what: str, check: Callable[[], bool], timeout: float = 30.0) -> None:
    """Poll ``check`` until true."""
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise DemoFailure(f"timed out waiting for {what}")
        time.sleep(0.1)


@dataclass
class Node:
    """One member authority's node directory, daemon and investigator token."""

    authority: str
    name: str
    country: str
    languages: list[str]
    directory: Path
    api_port: int
    peer_port: int
    token_file: Path
    proc: subprocess.Popen[bytes] | None = None

    def cli(self, *args: str | Path) -> Any:
        return run("globe_node", *args, "--dir", self.directory, "--token-file", self.token_file)

    def refused(self, *args: str | Path) -> str:
        return refused(
            "globe_node", *args, "--dir", self.directory, "--token-file", self.token_file
        )

    def api(self, path: str) -> Any:
        req = urllib.request.Request(
            f"http://127.0.0.1:{self.api_port}{path}",
            headers={"Authorization": f"Bearer {self.token_file.read_text().strip()}"},
        )
        with urllib.request.urlopen(req, timeout=10) as r:  # noqa: S310 - loopback
            return json.loads(r.read())


class Demo:
    """The whole run; :meth:`close` stops every process it started."""

    def __init__(self, root: Path, *, keep: bool = False) -> None:
        self.root = root
        # Kept up, the daemons get process groups of their own: a terminal's Ctrl-C then
        # reaches the demo alone, which stops them in order (SIGTERM, then their exit
        # status); a SIGINT of their own would race it.
        self.group: int | None = 0 if keep else None
        self.pw = root / "passphrase"
        self.pw.write_text(PASSPHRASE + "\n")
        os.chmod(self.pw, 0o600)
        self.env = dict(os.environ)
        for name in ("GLOBE_PASSPHRASE", "GLOBE_HUB_PASSPHRASE", "GLOBE_ADMIN_PASSPHRASE",
                     "GLOBE_TOKEN", "GLOBE_NODE_DIR"):  # fmt: skip
            self.env.pop(name, None)
        self.hub_port = free_port()
        self.hub_url = f"http://127.0.0.1:{self.hub_port}"
        self.hub_proc: subprocess.Popen[bytes] | None = None
        self.admin_keys = [root / f"admin{i}.key" for i in (1, 2, 3)]
        self.genesis = root / "genesis.json"
        self.nodes: dict[str, Node] = {}
        self.consoles: list[subprocess.Popen[str]] = []

    # -- set-up ----------------------------------------------------------------------------

    def found_network(self) -> None:
        say("Three admins found the network: a genesis signed with a 2-of-3 quorum")
        hub = run("hub", "init", "--dir", self.root / "hub", "--kdf-cost", "interactive",
                  "--passphrase-file", self.pw, "--port", str(self.hub_port))  # fmt: skip
        pubs = []
        for i, key in enumerate(self.admin_keys, start=1):
            out = run("globe_admin", "keygen", "--out", key, "--kdf-cost", "interactive",
                      "--passphrase-file", self.pw)  # fmt: skip
            pubs.append(out["public_key"])
            detail(f"admin {i} key", out.get("key_id", out["public_key"]))
        genesis = run(
            "globe_admin", "genesis", "--network-id", "globe-demo",
            "--name", "GlobE Link demonstration network",
            "--admin", f"Admin-1={pubs[0]}", f"Admin-2={pubs[1]}", f"Admin-3={pubs[2]}",
            "--threshold", "2", "--hub-url", self.hub_url, "--hub-key", hub["hub_key"],
            "--out", self.genesis, "--sign", self.admin_keys[0], self.admin_keys[1],
            "--passphrase-file", self.pw,
        )  # fmt: skip
        detail("genesis fingerprint", genesis.get("fingerprint", "?"))
        run("hub", "install-genesis", "--dir", self.root / "hub", self.genesis)
        log = (self.root / "hub.log").open("wb")
        self.hub_proc = subprocess.Popen(  # noqa: S603 - our own module
            [sys.executable, "-m", "hub", "serve", "--dir", str(self.root / "hub"),
             "--passphrase-file", str(self.pw)],
            stdout=log, stderr=subprocess.STDOUT, env=self.env, process_group=self.group,
        )  # fmt: skip
        wait_for("the hub", lambda: _get(f"{self.hub_url}/healthz") is not None)
        detail("hub", f"globe-hub serve on {self.hub_url} (pid {self.hub_proc.pid}, SQLite)")

    def enrol(self) -> None:
        say("Three authorities initialise their nodes and apply")
        for authority, name, country, languages in AUTHORITIES:
            d = self.root / authority
            api, peer = free_port(), free_port()
            args: list[str | Path] = [
                "init", "--dir", d, "--genesis", self.genesis, "--authority-id", authority,
                "--name", name, "--country", country, "--kind", "anti-corruption",
                "--contact", f"duty officer, {name}", "--legal-basis", "UNCAC art. 36",
                "--hub-url", self.hub_url, "--endpoint", f"http://127.0.0.1:{peer}",
                "--peer-port", str(peer), "--api-port", str(api), "--kdf", "interactive",
                "--allow-private-endpoints",
                "--passphrase-file", self.pw,
            ]  # fmt: skip
            for lang in languages:
                args += ["--language", lang]
            init = run("globe_node", *args)
            applied = run("globe_node", "apply", "--dir", d, "--passphrase-file", self.pw)
            user = run("globe_node", "users", "add", "investigator", "--role", "investigator",
                       "--dir", d)  # fmt: skip
            token = d / "investigator.token"
            token.write_text(user["token"])
            os.chmod(token, 0o600)
            self.nodes[authority] = Node(authority, name, country, languages, d, api, peer, token)
            detail(
                authority,
                f"{name}; node fingerprint {init['fingerprint']};"
                f" application {applied.get('id', '?')} {applied.get('status', '')}",
            )

    def admit(self) -> None:
        say("Two of the three admins approve each application (the hub only collects)")
        common: list[str | Path] = ["--genesis", self.genesis, "--passphrase-file", self.pw]
        apps = run("globe_admin", "applications", *common, "--key", self.admin_keys[0])
        for app in apps["applications"]:
            for key in self.admin_keys[:2]:
                out = run("globe_admin", "approve", app["id"], *common, "--key", key)
            detail(app["authority"], f"admitted at log entry {out['seq']} with "
                   f"{out['signatures']} admin signatures")  # fmt: skip
        say("Each authority starts its node; each verifies the whole log from the genesis")
        for node in self.nodes.values():
            log = (node.directory / "daemon.log").open("wb")
            node.proc = subprocess.Popen(  # noqa: S603 - our own module
                [sys.executable, "-m", "globe_node", "run", "--dir", str(node.directory),
                 "--passphrase-file", str(self.pw)],
                stdout=log, stderr=subprocess.STDOUT, env=self.env, process_group=self.group,
            )  # fmt: skip
        for node in self.nodes.values():
            wait_for(f"{node.authority} to sync", _sync_check(node, 3))
            st = node.cli("status")
            detail(node.authority, f"membership {st['membership']}; directory at entry "
                   f"{st['directory']['seq']} ({st['directory']['members']} members),"
                   f" confirmed by a hub-signed checkpoint")  # fmt: skip

    # -- messages ---------------------------------------------------------------------------

    def exchange(self) -> tuple[str, str]:
        fr, br, ke = (self.nodes[a] for a, *_ in AUTHORITIES)
        say("France shares spontaneous information with Brazil (UNCAC art. 46(4))")
        info = fr.cli("send", "--to", "BR-CGU", "--kind", "information",
                      "--subject", "Transfers from ACME Holdings to a Sao Paulo shell company",
                      "--body", "Our inquiry found 14 transfers (EUR 3.2 M) in 2025; details "
                      "and account numbers follow.", "--tlp", "AMBER",
                      "--restriction", "no-onward-dissemination",
                      "--case", "FR-2026-0042")  # fmt: skip
        self.delivered(fr, info["id"], ["BR-CGU"])
        shown = br.cli("show", info["id"])
        detail(
            "Brazil reads",
            f"'{shown['content']['subject']}' from {shown['meta']['sender']}"
            f" (TLP:{shown['content']['tlp']}, {', '.join(shown['content']['restrictions'])})",
        )

        say("France sends an urgent assistance request with an attachment to Brazil and Kenya")
        ledger = self.root / "ledger-extract.csv"
        ledger.write_text("date,from,to,amount_eur\n" + "".join(
            f"2025-{m:02d}-15,ACME Holdings,Ponte Sul Ltda,{228_000 + m * 1000}\n"
            for m in range(1, 13)))  # fmt: skip
        req = fr.cli("send", "--to", "BR-CGU", "KE-EACC", "--kind", "request", "--urgency",
                     "urgent", "--subject", "Beneficial owners of Ponte Sul Ltda",
                     "--body", "Please identify the beneficial owners and the accounts "
                     "receiving the attached transfers.", "--attach", ledger,
                     "--case", "FR-2026-0042")  # fmt: skip
        self.delivered(fr, req["id"], ["BR-CGU", "KE-EACC"])
        for peer in (br, ke):
            got = peer.cli("show", req["id"])
            att = got["content"]["attachments"][0]
            detail(f"{peer.authority} opens it", f"'{got['content']['subject']}', attachment "
                   f"{att['name']} ({att['size']} bytes, digest checked)")  # fmt: skip
        case = fr.cli("case", "FR-2026-0042")
        for r in case["requests"]:
            hours = (r["deadline"] - r["created"]) / 3600
            detail("deadline", f"{r['counterpart']} must answer within {hours:.0f} h (urgent)")

        say("Brazil acknowledges, then answers; Kenya declines")
        expected = time.strftime("%Y-%m-%d", time.gmtime(time.time() + 2 * 86400))
        ack = br.cli("status-update", req["id"], "--state", "acknowledged", "--expected", expected)
        self.delivered(br, ack["id"], ["FR-PNF"])
        ans = br.cli("reply", req["id"], "--kind", "answer", "--body",
                     "The beneficial owner is a director of ACME Holdings; account details "
                     "are in our formal reply.")  # fmt: skip
        self.delivered(br, ans["id"], ["FR-PNF"])
        dec = ke.cli("status-update", req["id"], "--state", "declined",
                     "--reason", "no accounts in Kenya")  # fmt: skip
        self.delivered(ke, dec["id"], ["FR-PNF"])
        for r in fr.cli("case", "FR-2026-0042")["requests"]:
            detail("France sees", f"{r['counterpart']}: {r['state']}")
        for m in fr.cli("inbox")["messages"]:
            detail("France's inbox", f"{m['kind']:<8} from {m['from']}: {m['subject']}")
        sent = {m["id"]: m for m in fr.cli("outbox")["messages"]}[req["id"]]
        for who, st in sorted(sent["recipients"].items()):
            detail("receipt", f"{who} signed a delivery receipt ({st['state']} via {st['via']})")
        return info["id"], req["id"]

    def delivered(self, node: Node, mid: str, to: list[str]) -> None:
        def done() -> bool:
            out = {m["id"]: m for m in node.api("/api/outbox?limit=100")["messages"]}
            states = out.get(mid, {}).get("recipients", {})
            return all(states.get(t, {}).get("state") == "delivered" for t in to)

        wait_for(f"delivery of {mid}", done)

    def refusals(self, info_id: str) -> None:
        fr, br, ke = (self.nodes[a] for a, *_ in AUTHORITIES)
        say("Brazil tries to forward France's restricted information to Kenya")
        detail("REFUSED", br.refused("forward", info_id, "--to", "KE-EACC"))

        say("Two admins revoke Kenya's membership")
        common: list[str | Path] = ["--genesis", self.genesis, "--passphrase-file", self.pw]
        for key in self.admin_keys[1:]:
            out = run("globe_admin", "revoke", "KE-EACC", "--reason",
                      "membership withdrawn by the secretariat", *common, "--key", key)  # fmt: skip
        detail("log", f"revocation appended at entry {out['seq']}")
        for node in (fr, br, ke):  # each node also syncs on its own every 30 s
            synced = node.cli("sync")
            detail(f"{node.authority} syncs", f"{synced['added']} new log entry verified")
        detail(
            "France's directory",
            "KE-EACC "
            + fr.cli("directory", "search", "--country", "KE", "--inactive")["results"][0][
                "status"
            ],
        )
        say("France's node refuses to send to the revoked member")
        detail("REFUSED", fr.refused("send", "--to", "KE-EACC", "--kind", "information",
                                     "--subject", "s", "--body", "b"))  # fmt: skip
        say("Kenya's node knows it is revoked and refuses to send (the hub and peers would too)")
        detail("REFUSED", ke.refused("send", "--to", "FR-PNF", "--kind", "information",
                                     "--subject", "s", "--body", "b"))  # fmt: skip

    def keep(self) -> None:
        """Leave the network up for a browser until Ctrl-C: each node's web UI address and
        the token of an investigator made for it (with the node's own command, the daemon
        running), then return to the shutdown."""
        say("The network stays up: sign in to each node's web UI with its token")
        for node in self.nodes.values():
            user = run("globe_node", "users", "add", "web", "--role", "investigator",
                       "--dir", node.directory)  # fmt: skip
            detail(node.authority, f"http://127.0.0.1:{node.api_port}/ui"
                   f"  investigator web, token {user['token']}")  # fmt: skip
        self.pending_application()
        say(
            "Two admins' consoles: approve the application in one, complete the quorum in the other"
        )
        for i in (1, 2):
            detail(f"Admin-{i}", self.console(i))
        detail("logs", self.root)
        wait_for_interrupt("press Ctrl-C to stop the hub and the nodes")

    def pending_application(self) -> None:
        """A fourth authority applies and waits for the admins (its node is not started)."""
        d = self.root / "IT-ANAC"
        run("globe_node", "init", "--dir", d, "--genesis", self.genesis,
            "--authority-id", "IT-ANAC", "--name", "Autorita Nazionale Anticorruzione",
            "--country", "IT", "--kind", "anti-corruption", "--language", "it",
            "--language", "en", "--contact", "duty officer, ANAC",
            "--legal-basis", "UNCAC art. 6", "--hub-url", self.hub_url,
            "--api-port", str(free_port()), "--kdf", "interactive",
            "--passphrase-file", self.pw)  # fmt: skip
        applied = run("globe_node", "apply", "--dir", d, "--passphrase-file", self.pw)
        detail("IT-ANAC", f"application {applied.get('id', '?')} {applied.get('status', '')}")

    def console(self, i: int) -> str:
        """Start admin ``i``'s console; its one-time sign-in link.  The demo pre-supplies
        the passphrase (a throw-away network): a real admin types it in the page."""
        proc = subprocess.Popen(  # noqa: S603 - our own module
            [sys.executable, "-m", "globe_admin", "ui", "--genesis", str(self.genesis),
             "--key", str(self.admin_keys[i - 1]), "--hub", self.hub_url,
             "--passphrase-file", str(self.pw)],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=self.env,
            process_group=self.group,
        )  # fmt: skip
        self.consoles.append(proc)
        assert proc.stdout is not None  # noqa: S101 - a pipe was asked for
        prefix = "globe-admin: sign in once with "
        for line in proc.stdout:
            if line.startswith(prefix):
                # what it says from now on goes to its log (a pipe nobody read would fill)
                log = self.root / f"admin{i}-console.log"
                threading.Thread(target=_drain, args=(proc.stdout, log), daemon=True).start()
                return line[len(prefix) :].strip()
        raise DemoFailure(f"the console of Admin-{i} did not start")

    def shutdown(self) -> None:
        say("Shutting down: each daemon stops on SIGTERM with nothing left half-written")
        for i, proc in enumerate(self.consoles, start=1):
            detail(f"Admin-{i} console", f"exit status {_terminate(proc)}")
        for node in self.nodes.values():
            code = _terminate(node.proc)
            detail(node.authority, f"exit status {code}")
        detail("hub", f"exit status {_terminate(self.hub_proc)}")

    def close(self) -> None:
        for proc in [*self.consoles, *(n.proc for n in self.nodes.values()), self.hub_proc]:
            if proc is not None and proc.poll() is None:
                proc.kill()
                proc.wait()


def wait_for_interrupt(prompt: str) -> None:
    """Print ``prompt``, then block until SIGINT or SIGTERM; ignore both from then on, so
    that a second Ctrl-C does not cut the orderly shutdown short."""
    stops = {signal.SIGINT, signal.SIGTERM}
    # Blocked before the prompt: a signal sent as soon as it is printed waits for
    # sigwait instead of raising KeyboardInterrupt in between.
    signal.pthread_sigmask(signal.SIG_BLOCK, stops)
    try:
        detail("stop", prompt)
        signal.sigwait(stops)
        for sig in stops:
            signal.signal(sig, signal.SIG_IGN)
    finally:
        signal.pthread_sigmask(signal.SIG_UNBLOCK, stops)


def _drain(stream: IO[str], path: Path) -> None:
    with path.open("w", encoding="utf-8") as out:
        for line in stream:
            out.write(line)
            out.flush()


def _get(url: str) -> bytes | None:
    try:
        with urllib.request.urlopen(url, timeout=2) as r:  # noqa: S310 - loopback
            return bytes(r.read())
    except (urllib.error.URLError, OSError):
        return None


def _synced(node: Node, seq: int) -> bool:
    try:
        st = node.api("/api/status")
    except (urllib.error.URLError, OSError):
        return False
    return bool(st["directory"]["seq"] >= seq and st["directory"]["age_s"] is not None)


def _sync_check(node: Node, seq: int) -> Callable[[], bool]:
    return lambda: _synced(node, seq)


def _terminate(proc: subprocess.Popen[bytes] | subprocess.Popen[str] | None) -> int | None:
    if proc is None:
        return None
    proc.send_signal(signal.SIGTERM)
    try:
        return proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()
        return proc.wait()


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """The command line: ``--keep`` only."""
    parser = argparse.ArgumentParser(
        prog="python -m demo",
        description="A real GlobE Link network on this machine (a hub and three nodes, each "
        "its own process, in a temporary directory), driven through an exchange of messages, "
        "refusals and a revocation, narrated.",
    )
    parser.add_argument(
        "--keep", action="store_true",
        help="after the scripted exchange, keep the hub and the nodes running and print "
        "each node's web UI address and an investigator's sign-in token, until Ctrl-C",
    )  # fmt: skip
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    """Run the demonstration; 0 on success."""
    args = parse_args(argv)
    root = Path(tempfile.mkdtemp(prefix="globe-demo-"))
    demo = Demo(root, keep=args.keep)
    try:
        demo.found_network()
        demo.enrol()
        demo.admit()
        info_id, _ = demo.exchange()
        demo.refusals(info_id)
        if args.keep:
            demo.keep()
        demo.shutdown()
    except DemoFailure as exc:
        sys.stderr.write(f"demo: FAILED: {exc}\n(logs kept in {root})\n")
        demo.close()
        return 1
    except KeyboardInterrupt:
        demo.close()
        return 130
    demo.close()
    shutil.rmtree(root, ignore_errors=True)
    say(f"Done in {time.monotonic() - STARTED:.1f} s: every step did what it should")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
