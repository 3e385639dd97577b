"""Throwaway TLS material for the local kube-apiserver (`devstack.kube`).

Owns making a fresh CA, a serving certificate it signs for 127.0.0.1 and the in-cluster names
of the API server, and the service-account signing key pair, written as PEM files (private keys
mode 0600). Everything is made anew each time, valid for a week and trusted by nothing but the
client that is handed the CA: it must never be used outside a test or a local run.
"""

from __future__ import annotations

import datetime
import ipaddress
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID


def write_serving_certs(ca_cert: Path, serving_cert: Path, serving_key: Path) -> None:
    """Write a new CA's certificate, and a serving certificate and key that CA signed.

    The serving certificate is for 127.0.0.1, the service IP 10.96.0.1, ``localhost``,
    ``kubernetes`` and ``kubernetes.default.svc``. The CA's own key is not kept.
    """
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "bytebot-chaos-test-ca")])
    ca = (
        _cert_builder(ca_name, ca_name, ca_key.public_key())
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(_key_usage(cert_sign=True), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "kube-apiserver")])
    sans: list[x509.GeneralName] = [
        x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
        x509.IPAddress(ipaddress.ip_address("10.96.0.1")),
        *(x509.DNSName(n) for n in ("localhost", "kubernetes", "kubernetes.default.svc")),
    ]
    serving = (
        _cert_builder(name, ca_name, key.public_key())
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(_key_usage(cert_sign=False), critical=True)
        .add_extension(
            x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False
        )
        .add_extension(x509.SubjectAlternativeName(sans), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    ca_cert.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    serving_cert.write_bytes(serving.public_bytes(serialization.Encoding.PEM))
    _write_private(serving_key, key)


def write_signing_key(private: Path, public: Path) -> None:
    """Write a new EC key pair (the service-account token signing key and its public half)."""
    key = ec.generate_private_key(ec.SECP256R1())
    _write_private(private, key)
    public.write_bytes(
        key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )


def _cert_builder(
    subject: x509.Name, issuer: x509.Name, public_key: ec.EllipticCurvePublicKey
) -> x509.CertificateBuilder:
    now = datetime.datetime.now(datetime.UTC)
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(hours=1))
        .not_valid_after(now + datetime.timedelta(days=7))
    )


def _key_usage(*, cert_sign: bool) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=True,
        content_commitment=False,
        key_encipherment=not cert_sign,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=cert_sign,
        crl_sign=cert_sign,
        encipher_only=False,
        decipher_only=False,
    )


def _write_private(path: Path, key: ec.EllipticCurvePrivateKey) -> None:
    path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    path.chmod(0o600)
