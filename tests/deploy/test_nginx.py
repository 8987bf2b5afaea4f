"""deploy/nginx/: the proxy's own configuration test (``nginx -t``) passes on both server
blocks with each TLS file, certificates made here; the post-quantum groups pass where the
proxy's OpenSSL offers them and are refused, by that group only, where it does not."""

from __future__ import annotations

import datetime
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

CONFIGS = Path(__file__).resolve().parents[2] / "deploy" / "nginx"
NGINX = shutil.which("nginx") or next((p for p in ("/usr/sbin/nginx",) if Path(p).exists()), None)
pytestmark = pytest.mark.skipif(
    NGINX is None, reason="nginx is not installed (.ci/run installs it)"
)


def _certificate(directory: Path, name: str) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"{name}.globe.example")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder().subject_name(subject).issuer_name(subject)
        .public_key(key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now).not_valid_after(now + datetime.timedelta(days=1))
        .sign(key, hashes.SHA256())
    )  # fmt: skip
    (directory / f"{name}.crt").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (directory / f"{name}.key").write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                          serialization.NoEncryption())
    )  # fmt: skip


def _test(tmp_path: Path, tls: str) -> subprocess.CompletedProcess[str]:
    globe = tmp_path / "globe"
    globe.mkdir(exist_ok=True)
    _certificate(globe, "hub")
    _certificate(globe, "node")
    shutil.copy(CONFIGS / tls, globe / "tls.conf")
    includes = []
    for name in ("globe-hub.conf", "globe-node-peer.conf"):
        text = (CONFIGS / name).read_text().replace("/etc/nginx/globe", str(globe))
        (tmp_path / name).write_text(text)
        includes.append(f"    include {tmp_path / name};")
    main = tmp_path / "nginx.conf"
    main.write_text(
        f"pid {tmp_path / 'nginx.pid'};\nerror_log stderr;\nevents {{}}\nhttp {{\n"
        + "\n".join(includes)
        + "\n}\n"
    )
    return subprocess.run(
        [str(NGINX), "-t", "-q", "-c", str(main), "-p", str(tmp_path)],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip


def _openssl() -> tuple[int, int]:
    ran = subprocess.run([str(NGINX), "-V"], capture_output=True, text=True, check=True)
    found = re.search(r"running with OpenSSL (\d+)\.(\d+)", ran.stderr) or re.search(
        r"built with OpenSSL (\d+)\.(\d+)", ran.stderr
    )
    assert found, ran.stderr
    return int(found[1]), int(found[2])


def test_the_configuration_with_classic_groups(tmp_path: Path) -> None:
    ran = _test(tmp_path, "tls-classic.conf")
    assert (ran.returncode, ran.stderr) == (0, "")


def test_the_configuration_with_post_quantum_groups(tmp_path: Path) -> None:
    ran = _test(tmp_path, "tls-pq.conf")
    if _openssl() >= (3, 5):
        assert (ran.returncode, ran.stderr) == (0, "")
    else:  # everything else is valid: only the group this OpenSSL lacks is refused
        assert ran.returncode == 1
        assert "group 'X25519MLKEM768' cannot be set" in ran.stderr, ran.stderr


def test_a_broken_configuration_fails_the_test(tmp_path: Path) -> None:
    original = (CONFIGS / "globe-hub.conf").read_text()
    ran = _test_with(tmp_path, original.replace("proxy_pass http://globe_hub;", "proxy_pass;", 1))
    assert ran.returncode == 1
    assert "invalid number of arguments" in ran.stderr


def _test_with(tmp_path: Path, hub_text: str) -> subprocess.CompletedProcess[str]:
    work = tmp_path / "work"
    work.mkdir()
    ran = _test(work, "tls-classic.conf")
    assert ran.returncode == 0
    (work / "globe-hub.conf").write_text(hub_text.replace("/etc/nginx/globe", str(work / "globe")))
    return subprocess.run(
        [str(NGINX), "-t", "-q", "-c", str(work / "nginx.conf"), "-p", str(work)],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
