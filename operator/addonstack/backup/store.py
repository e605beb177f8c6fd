"""S3-compatible storage for backups, through boto3 (path-style addressing, so MinIO, SeaweedFS, versitygw,
Ceph RGW and the clouds' own endpoints all work). Credentials come from the standard AWS variables, which
the Jobs take from the Secret named by ``target.s3.secretRef``; nothing here logs them.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
from botocore.config import Config

from addonstack.backup.manifest import MANIFEST, Manifest, S3Location

CHUNK = 8 * 1024 * 1024


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(CHUNK):
            h.update(chunk)
    return h.hexdigest()


class Store:
    """One bucket at one endpoint."""

    def __init__(self, location: S3Location, access_key: str | None = None, secret_key: str | None = None) -> None:
        self.location = location
        self.client: Any = boto3.client(
            "s3",
            endpoint_url=location.endpoint,
            region_name=location.region,
            aws_access_key_id=access_key,
            aws_secret_access_key=secret_key,
            config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 5, "mode": "standard"}),
        )

    @property
    def bucket(self) -> str:
        return self.location.bucket

    def put_file(self, key: str, path: Path) -> None:
        self.client.upload_file(str(path), self.bucket, key)

    def put_bytes(self, key: str, data: bytes) -> None:
        self.client.put_object(Bucket=self.bucket, Key=key, Body=data)

    def get_file(self, key: str, path: Path) -> None:
        self.client.download_file(self.bucket, key, str(path))

    def get_bytes(self, key: str) -> bytes:
        data: bytes = self.client.get_object(Bucket=self.bucket, Key=key)["Body"].read()
        return data

    def keys(self, prefix: str) -> Iterator[str]:
        for page in self.client.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=prefix):
            for obj in page.get("Contents", []):
                yield str(obj["Key"])

    def delete_prefix(self, prefix: str) -> int:
        keys = list(self.keys(prefix))
        for i in range(0, len(keys), 1000):
            batch = [{"Key": k} for k in keys[i : i + 1000]]
            self.client.delete_objects(Bucket=self.bucket, Delete={"Objects": batch, "Quiet": True})
        return len(keys)

    def manifest(self, namespace: str, stack: str, backup_id: str) -> Manifest:
        key = self.location.backup_prefix(namespace, stack, backup_id) + MANIFEST
        return Manifest.model_validate_json(self.get_bytes(key))

    def manifests(self, namespace: str, stack: str) -> list[Manifest]:
        """Every complete backup of the stack (those with a manifest), oldest first."""
        prefix = self.location.stack_prefix(namespace, stack)
        found = [k for k in self.keys(prefix) if k.endswith("/" + MANIFEST) and k.count("/") == prefix.count("/") + 1]
        out = [Manifest.model_validate_json(self.get_bytes(k)) for k in found]
        return sorted(out, key=lambda m: (m.created_at, m.backup_id))
