"""The AddonStack CustomResourceDefinition, generated from the pydantic spec and status models.

Kubernetes wants a *structural* schema: no ``$ref``, no ``anyOf`` with null, no ``title``. This module
inlines and simplifies pydantic's JSON Schema, adds the catalog's service ids as an enum (so the API
server rejects unknown services itself), list-type markers that reject duplicates, and CEL rules for
what one object can say about itself. ``make generate`` rewrites ``crds/``.
"""

from __future__ import annotations

import copy
import sys
from pathlib import Path
from typing import Any

from addonstack.catalog.loader import Catalog, load_catalog
from addonstack.constants import (
    API_GROUP,
    API_VERSION,
    BACKUP_KIND,
    BACKUP_PLURAL,
    KIND,
    PLURAL,
    RESTORE_KIND,
    RESTORE_PLURAL,
)
from addonstack.plan.backup_spec import (
    AddonStackBackupSpec,
    AddonStackBackupStatus,
    AddonStackRestoreSpec,
    AddonStackRestoreStatus,
)
from addonstack.plan.images import REGISTRY_FIX, REGISTRY_PATTERN
from addonstack.plan.spec import INGRESS_RULES, MAX_STACK_NAME, AddonStackSpec, AddonStackStatus
from addonstack.render import yamlio

DROP = {"title", "default"}


def _inline(node: Any, defs: dict[str, Any]) -> Any:
    if isinstance(node, list):
        return [_inline(n, defs) for n in node]
    if not isinstance(node, dict):
        return node
    if "$ref" in node:
        target = copy.deepcopy(defs[node["$ref"].rsplit("/", 1)[-1]])
        extra = {k: v for k, v in node.items() if k != "$ref"}
        return _inline({**target, **extra}, defs)
    if "anyOf" in node:
        options = [o for o in node["anyOf"] if o.get("type") != "null"]
        rest = {k: v for k, v in node.items() if k != "anyOf"}
        if len(options) == 1:
            return _inline({**options[0], **rest}, defs)
    if "patternProperties" in node:
        # Kubernetes has no patternProperties: a map of values, keys checked by a CEL rule.
        ((pattern, value_schema),) = node["patternProperties"].items()
        rest = {k: v for k, v in node.items() if k not in ("patternProperties", "propertyNames")}
        rest["additionalProperties"] = value_schema
        rest["maxProperties"] = 250
        rest["x-kubernetes-validations"] = [
            {"rule": f"self.all(k, k.matches('{pattern}'))", "message": f"keys must match {pattern}"}
        ]
        return _inline(rest, defs)
    out: dict[str, Any] = {}
    for key, value in node.items():
        if key in DROP or key == "$defs" or key == "propertyNames":
            continue
        if key == "properties":
            out[key] = {k: _inline(v, defs) for k, v in value.items()}
        else:
            out[key] = _inline(value, defs)
    if out.get("type") == "object" and out.get("additionalProperties") is False:
        del out["additionalProperties"]  # structural schemas prune unknown fields; strict validation rejects
    if "const" in out:
        out["enum"] = [out.pop("const")]
    return out


def _structural(model: type[Any]) -> dict[str, Any]:
    schema = model.model_json_schema(by_alias=True)
    defs = schema.pop("$defs", {})
    result: dict[str, Any] = _inline(schema, defs)
    return result


def spec_schema(cat: Catalog) -> dict[str, Any]:
    spec = _structural(AddonStackSpec)
    addon_ids = sorted(s.id for s in cat.addons())
    pack_ids = sorted(cat.packs)
    props = spec["properties"]
    props["services"]["items"]["enum"] = addon_ids
    props["services"]["x-kubernetes-list-type"] = "set"
    props["services"]["minItems"] = 1
    props["skillPacks"]["items"]["enum"] = pack_ids
    props["skillPacks"]["x-kubernetes-list-type"] = "set"
    props["overrides"]["x-kubernetes-validations"] = [
        *props["overrides"]["x-kubernetes-validations"],
        {
            "rule": "self.all(k, k in " + _cel_list(addon_ids) + ")",
            "message": "overrides: keys must be catalog service ids (see `addonstack catalog list`)",
        },
    ]
    ing = props["ingress"]
    ing["x-kubernetes-validations"] = [{"rule": r.cel, "message": r.message} for r in INGRESS_RULES]
    ov = props["overrides"]["additionalProperties"]
    ov["properties"]["storageSize"]["x-kubernetes-validations"] = [
        {"rule": "quantity(self).isGreaterThan(quantity('0'))", "message": "storageSize must be positive"}
    ]
    props["imageRegistry"]["x-kubernetes-validations"] = [
        {"rule": f"self.matches('{REGISTRY_PATTERN}')", "message": f"imageRegistry: {REGISTRY_FIX}"}
    ]
    spec["x-kubernetes-validations"] = [
        {
            "rule": "!has(self.database) || !has(self.database.host) || has(self.database.adminSecretRef)",
            "message": "database.host needs database.adminSecretRef (an admin role creates each service's database)",
        }
    ]
    return spec


def _cel_list(items: list[str]) -> str:
    return "[" + ",".join(f"'{i}'" for i in items) + "]"


def _crd(kind: str, plural: str, names: dict[str, Any], columns: list[Any], schema: dict[str, Any]) -> dict[str, Any]:
    """The envelope every AddonStack CRD shares: one namespaced version with a status subresource."""
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {
            "name": f"{plural}.{API_GROUP}",
            "labels": {"app.kubernetes.io/name": "addonstack", "app.kubernetes.io/part-of": "addonstack"},
        },
        "spec": {
            "group": API_GROUP,
            "names": {"kind": kind, "listKind": f"{kind}List", "plural": plural, "singular": kind.lower(), **names},
            "scope": "Namespaced",
            "versions": [
                {
                    "name": API_VERSION,
                    "served": True,
                    "storage": True,
                    "subresources": {"status": {}},
                    "additionalPrinterColumns": columns,
                    "schema": {"openAPIV3Schema": schema},
                }
            ],
        },
    }


def render_crd(cat: Catalog | None = None) -> dict[str, Any]:
    cat = cat or load_catalog()
    status = _structural(AddonStackStatus)
    columns = [
        {"name": "Ready", "type": "string", "jsonPath": '.status.conditions[?(@.type=="Ready")].status'},
        {"name": "Services", "type": "string", "jsonPath": ".status.summary"},
        {"name": "Skipped", "type": "integer", "jsonPath": ".status.skippedCount"},
        {"name": "Reason", "type": "string", "priority": 1,
         "jsonPath": '.status.conditions[?(@.type=="Ready")].reason'},
        {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"},
    ]  # fmt: skip
    schema = _root_schema(
        "A tenant's selection of self-hosted services, deployed and kept converged.",
        MAX_STACK_NAME, ", because it prefixes the names of the stack's objects", spec_schema(cat), status,
    )  # fmt: skip
    names = {"shortNames": ["stack", "stacks"], "categories": ["addonstack"]}
    return _crd(KIND, PLURAL, names, columns, schema)


def _root_schema(
    description: str, max_name: int, why: str, spec: dict[str, Any], status: dict[str, Any]
) -> dict[str, Any]:
    """The top of a CRD's schema: spec required, the name-length rule (CEL; ``why`` follows the limit in its
    message), spec and status."""
    return {
        "type": "object",
        "description": description,
        "required": ["spec"],
        "x-kubernetes-validations": [
            {
                "rule": f"self.metadata.name.size() <= {max_name}",
                "message": f"metadata.name: at most {max_name} characters{why}; choose a shorter name",
            }
        ],
        "properties": {
            "apiVersion": {"type": "string"},
            "kind": {"type": "string"},
            "metadata": {"type": "object"},
            "spec": spec,
            "status": status,
        },
    }


# Backup and restore names are backup ids and label values (their Jobs are "backup-<name>", hashed if long).
MAX_DATA_NAME = 63
_DATA_COLUMNS = [
    {"name": "Phase", "type": "string", "jsonPath": ".status.phase"},
    {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"},
]


def _data_crd(
    kind: str, plural: str, spec: type[Any], status: type[Any], description: str, columns: list[Any]
) -> dict[str, Any]:
    """An AddonStackBackup or AddonStackRestore CRD: spec and status from their models, the stack's group.

    No category "addonstack": it is AddonStack's singular name, and kubectl expands a category first, so
    `kubectl get addonstack NAME` would name three kinds ("only one resource")."""
    immutable = [{"rule": "self == oldSelf", "message": "spec is immutable: create a new object"}]
    schema = _root_schema(
        description, MAX_DATA_NAME, " (it names the Job and the backup)",
        {**_structural(spec), "x-kubernetes-validations": immutable}, _structural(status),
    )  # fmt: skip
    return _crd(kind, plural, {}, [*columns, *_DATA_COLUMNS], schema)


def render_data_crds() -> dict[str, dict[str, Any]]:
    """File name in crds/ -> the AddonStackBackup and AddonStackRestore CRDs."""
    backup = _data_crd(
        BACKUP_KIND, BACKUP_PLURAL, AddonStackBackupSpec, AddonStackBackupStatus,
        "A one-shot backup of an AddonStack's databases, volumes and the secrets their data needs.",
        [{"name": "Stack", "type": "string", "jsonPath": ".spec.stackName"},
         {"name": "Size", "type": "integer", "jsonPath": ".status.sizeBytes"}],
    )  # fmt: skip
    restore = _data_crd(
        RESTORE_KIND, RESTORE_PLURAL, AddonStackRestoreSpec, AddonStackRestoreStatus,
        "Restores a backup into an AddonStack of this namespace: the same stack, or a clone it creates.",
        [{"name": "Backup", "type": "string", "jsonPath": ".spec.source.backupId"},
         {"name": "Target", "type": "string", "jsonPath": ".status.targetStack"}],
    )  # fmt: skip
    return {f"{API_GROUP}_{BACKUP_PLURAL}.yaml": backup, f"{API_GROUP}_{RESTORE_PLURAL}.yaml": restore}


def data_crd_files(root: Path | None = None) -> dict[Path, str]:
    base = root or Path(__file__).resolve().parents[3]
    header = "# Generated by `make generate` from the pydantic models. Do not edit.\n"
    return {base / "crds" / name: header + yamlio.dump(crd) for name, crd in render_data_crds().items()}


def crd_path(root: Path | None = None) -> Path:
    base = root or Path(__file__).resolve().parents[3]
    return base / "crds" / f"{API_GROUP}_{PLURAL}.yaml"


def crd_yaml(cat: Catalog | None = None) -> str:
    return "# Generated by `make generate` from the pydantic models. Do not edit.\n" + yamlio.dump(render_crd(cat))


def chart_copies(root: Path | None = None) -> list[tuple[Path, Path]]:
    """(source in crds/, copy in the CRD chart) pairs; the chart ships copies of crds/."""
    base = root or Path(__file__).resolve().parents[3]
    files = base / "deploy" / "chart" / "addonstack-crds" / "files"
    return [(p, files / p.name) for p in sorted((base / "crds").glob("*.yaml"))]


if __name__ == "__main__":
    path = Path(sys.argv[1]) if len(sys.argv) > 1 else crd_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(crd_yaml(), encoding="utf-8")
    print(path)
    if len(sys.argv) == 1:
        for extra, text in data_crd_files().items():
            extra.write_text(text, encoding="utf-8")
            print(extra)
        for src, dst in chart_copies():
            dst.parent.mkdir(parents=True, exist_ok=True)
            dst.write_text(src.read_text(encoding="utf-8"), encoding="utf-8")
            print(dst)
