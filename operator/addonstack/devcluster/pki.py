"""Certificates for the local control plane, made with the ``openssl`` CLI.

The venv has no ``cryptography`` package and the operator must not need one, while ``openssl`` is on every
machine we use. Keys are EC P-256: instant to generate, and accepted by the apiserver for serving, client
and service-account keys. One CA signs everything, so a kubeconfig only ever needs ``ca.crt``.
"""

from __future__ import annotations

import secrets
import subprocess
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

DAYS = "3650"
NEW_KEY = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"]


class PkiError(RuntimeError):
    """``openssl`` failed; the message carries its stderr."""


@dataclass(frozen=True)
class CertPair:
    cert: Path
    key: Path


@dataclass(frozen=True)
class Pki:
    """Every file the control plane needs, all under one directory."""

    dir: Path
    ca: CertPair
    apiserver: CertPair  # serving cert of kube-apiserver
    components: CertPair  # serving cert of the KCM and scheduler health endpoints
    admin: CertPair  # client cert, O=system:masters
    sa_key: Path
    sa_pub: Path


def _openssl(*args: str | Path) -> None:
    proc = subprocess.run(["openssl", *map(str, args)], capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise PkiError(f"openssl {args[0]} failed ({proc.returncode}): {proc.stderr.strip()}")


def _escape(value: str) -> str:
    """Escape a value for ``openssl -subj``, where ``/`` and ``+`` separate RDNs."""
    return "".join("\\" + c if c in "\\/+" else c for c in value)


def _issue(ca: CertPair, out: CertPair, subject: str, extensions: Sequence[str]) -> CertPair:
    with tempfile.TemporaryDirectory(prefix="addonstack-pki-") as tmp:
        csr, ext = Path(tmp, "req.csr"), Path(tmp, "req.ext")
        ext.write_text("".join(f"{line}\n" for line in extensions))
        _openssl("req", "-new", *NEW_KEY, "-keyout", out.key, "-out", csr, "-subj", subject)
        _openssl(
            "x509", "-req", "-in", csr, "-CA", ca.cert, "-CAkey", ca.key, "-days", DAYS,
            "-set_serial", "0x" + secrets.token_hex(16), "-extfile", ext, "-out", out.cert,
        )  # fmt: skip
    out.key.chmod(0o600)
    return out


def issue_serving_cert(
    ca: CertPair,
    out_dir: Path,
    name: str,
    dns: Sequence[str] = ("localhost",),
    ips: Sequence[str] = ("127.0.0.1",),
) -> CertPair:
    """A TLS server certificate for ``name`` valid for the given DNS names and IP addresses."""
    sans = ",".join([*(f"DNS:{d}" for d in dns), *(f"IP:{i}" for i in ips)])
    return _issue(
        ca,
        CertPair(out_dir / f"{name}.crt", out_dir / f"{name}.key"),
        f"/CN={_escape(name)}",
        [
            "basicConstraints=critical,CA:FALSE",
            "keyUsage=critical,digitalSignature,keyEncipherment",
            "extendedKeyUsage=serverAuth",
            f"subjectAltName={sans}",
        ],
    )


def issue_client_cert(ca: CertPair, out_dir: Path, user: str, groups: Sequence[str] = ()) -> CertPair:
    """A client certificate the apiserver maps to ``user`` (CN) in ``groups`` (one O each).

    Used for the admin identity and to run the operator as a restricted user in RBAC tests.
    """
    if not user:
        raise ValueError("user must not be empty")
    subject = "".join(f"/O={_escape(g)}" for g in groups) + f"/CN={_escape(user)}"
    stem = "".join(c if c.isalnum() or c in "-_." else "_" for c in user)
    return _issue(
        ca,
        CertPair(out_dir / f"{stem}.crt", out_dir / f"{stem}.key"),
        subject,
        [
            "basicConstraints=critical,CA:FALSE",
            "keyUsage=critical,digitalSignature",
            "extendedKeyUsage=clientAuth",
        ],
    )


def ensure_pki(pki_dir: Path) -> Pki:
    """Create whatever is missing under ``pki_dir`` (kept across restarts) and describe it."""
    pki_dir.mkdir(parents=True, exist_ok=True)
    pki_dir.chmod(0o700)
    ca = CertPair(pki_dir / "ca.crt", pki_dir / "ca.key")
    fresh_ca = not (ca.cert.exists() and ca.key.exists())
    if fresh_ca:
        _openssl(
            "req", "-x509", "-new", *NEW_KEY, "-keyout", ca.key, "-out", ca.cert, "-days", DAYS,
            "-subj", "/CN=addonstack-dev-ca",
            "-addext", "basicConstraints=critical,CA:TRUE",
            "-addext", "keyUsage=critical,keyCertSign,cRLSign,digitalSignature",
        )  # fmt: skip
        ca.key.chmod(0o600)

    def pair(name: str) -> CertPair | None:
        p = CertPair(pki_dir / f"{name}.crt", pki_dir / f"{name}.key")
        return p if not fresh_ca and p.cert.exists() and p.key.exists() else None

    apiserver = pair("kube-apiserver") or issue_serving_cert(
        ca,
        pki_dir,
        "kube-apiserver",
        dns=["localhost", "kubernetes", "kubernetes.default", "kubernetes.default.svc",
             "kubernetes.default.svc.cluster.local"],
        ips=["127.0.0.1", "10.96.0.1"],
    )  # fmt: skip
    components = pair("components") or issue_serving_cert(ca, pki_dir, "components")
    admin = pair("admin") or issue_client_cert(ca, pki_dir, "admin", ["system:masters"])
    sa_key, sa_pub = pki_dir / "sa.key", pki_dir / "sa.pub"
    if not (sa_key.exists() and sa_pub.exists()):
        _openssl("genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", sa_key)
        sa_key.chmod(0o600)
        _openssl("pkey", "-in", sa_key, "-pubout", "-out", sa_pub)
    return Pki(pki_dir, ca, apiserver, components, admin, sa_key, sa_pub)
