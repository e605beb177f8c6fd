"""Catalog revisions and pinned images: what lets a new catalog reach a running stack only when allowed.

A revision names one catalog exactly: a content digest of the merged catalog (built-in plus a provider's
``--catalog-dir``) and the package version. A stack records in status the images it runs; under
``upgradePolicy: Manual`` the planner renders those pinned images (:func:`pin_images`) instead of the
catalog's new ones until the user approves the revision (``spec.approvedRevision``), so a catalog bump changes
no running workload. Pure: the operator's decision module calls these with what it read.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Mapping

from addonstack.catalog.model import Catalog
from addonstack.constants import VERSION

_revisions: dict[int, str] = {}  # by id() of a loaded (cached, never freed) catalog: digesting it costs ~50 ms


def catalog_revision(cat: Catalog) -> str:
    """``<package version>-<12 hex digits of the catalog's content digest>``, e.g. ``0.1.0-3f2a9c1d7e4b``."""
    key = id(cat)
    if key not in _revisions:
        data = {
            kind: {k: v.model_dump(mode="json", by_alias=True) for k, v in sorted(getattr(cat, kind).items())}
            for kind in ("services", "categories", "skills", "packs")
        }
        digest = hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()[:12]
        _revisions[key] = f"{VERSION}-{digest}"
    return _revisions[key]


def catalog_image(cat: Catalog, service_id: str) -> str | None:
    """The image the catalog names for a service (None: built from source, or not in the catalog)."""
    svc = cat.services.get(service_id)
    return svc.image_ref if svc is not None else None


def pin_images(cat: Catalog, pins: Mapping[str, str]) -> Catalog:
    """``cat`` with each pinned service's image set to its pin (services the catalog builds are left alone)."""
    services = dict(cat.services)
    for sid, ref in pins.items():
        svc = services.get(sid)
        if svc is None or svc.image is None or ref == svc.image_ref:
            continue
        repo, _, tag = ref.rpartition(":")
        if not repo or "/" in tag:
            continue  # not a repo:tag reference (a digest, a registry port): the catalog's image stands
        services[sid] = svc.model_copy(update={"image": repo, "image_tag": tag})
    if services == cat.services:
        return cat
    return dataclasses.replace(cat, services=services)


def upgrades(cat: Catalog, pins: Mapping[str, str]) -> list[tuple[str, str, str]]:
    """(service, from, to) for each pinned service whose catalog image differs from its pin."""
    out = []
    for sid, ref in sorted(pins.items()):
        new = catalog_image(cat, sid)
        if new is not None and new != ref:
            out.append((sid, ref, new))
    return out
