"""Sealing the secret values a backup's data needs (encryption keys, signing secrets) for the trip to S3.

A backup holds data that is unreadable without some of the stack's generated secrets (n8n's encryption
key, for one), so those values travel with it; they are never written in plain text. The provider
supplies a key (any string, in a Secret named by ``encryptionKeySecretRef``); HKDF-SHA256 turns it into an
AES-256-GCM key with a fresh salt per backup. The backup's identity is the associated data, so a sealed
blob cannot be passed off as another backup's.
"""

from __future__ import annotations

import base64
import json
import os
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

ALGORITHM = "AES-256-GCM/HKDF-SHA256"
_INFO = b"addonstack-backup-secrets v1"


class SealError(ValueError):
    """The sealed values cannot be opened: wrong key, or the blob was changed or belongs elsewhere."""


def _derive(key: bytes, salt: bytes) -> bytes:
    if len(key) < 16:
        raise SealError(
            "the backup encryption key must be at least 16 bytes long; put a longer random value in its Secret"
        )
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=salt, info=_INFO).derive(key)


def seal(values: dict[str, dict[str, str]], key: bytes, context: str) -> bytes:
    """``values`` (service -> key -> value) sealed with ``key``; ``context`` names the backup."""
    salt, nonce = os.urandom(16), os.urandom(12)
    data = json.dumps(values, sort_keys=True).encode()
    box = AESGCM(_derive(key, salt)).encrypt(nonce, data, context.encode())
    blob = {"algorithm": ALGORITHM, "context": context}
    blob.update({k: base64.b64encode(v).decode() for k, v in (("salt", salt), ("nonce", nonce), ("ciphertext", box))})
    return json.dumps(blob, sort_keys=True).encode()


def unseal(blob: bytes, key: bytes, context: str) -> dict[str, dict[str, str]]:
    try:
        doc: dict[str, Any] = json.loads(blob)
        if doc.get("algorithm") != ALGORITHM:
            raise SealError(f"unknown sealing algorithm {doc.get('algorithm')!r}")
        salt, nonce, box = (base64.b64decode(doc[k]) for k in ("salt", "nonce", "ciphertext"))
    except (ValueError, KeyError, TypeError) as exc:
        raise SealError(f"the sealed secrets are not readable ({type(exc).__name__})") from None
    try:
        data = AESGCM(_derive(key, salt)).decrypt(nonce, box, context.encode())
    except InvalidTag:
        raise SealError(
            "the sealed secrets do not open with this key (wrong encryptionKeySecretRef, or another backup's file)"
        ) from None
    values: dict[str, dict[str, str]] = json.loads(data)
    return values
