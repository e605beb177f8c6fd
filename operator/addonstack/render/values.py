"""Turn planned values into what each target writes: env-file literals, Compose ``${}`` expressions.

Secrets never appear in a Compose file: a variable whose value is fully known becomes a reference to
its namespaced env-file key; a variable built from platform keys becomes an interpolation expression
whose own parts are again references.
"""

from __future__ import annotations

from collections.abc import Mapping

from addonstack.catalog.model import COMMAND_VAR
from addonstack.plan.build import PlannedService, StackPlan
from addonstack.plan.secrets import Lit, PlatformRef, Ref, Value, env_file_key, expand, flatten

_UNKNOWN = object()  # not worked out yet (None is a result: built from platform keys)


def stored_value(plan: StackPlan, service_id: str, key: str) -> str | None:
    """The literal a variable stores (env file, Secret), or None when it is built from platform keys."""
    memo = (service_id, key)
    lit = plan.stored.get(memo, _UNKNOWN)
    if lit is _UNKNOWN:
        lit = plan.stored[memo] = flatten(expand(plan.values, service_id, key))
    return lit  # type: ignore[return-value]  # the sentinel was replaced


def compose_escape(text: str) -> str:
    return text.replace("$", "$$")


def compose_expression(values: Mapping[str, Mapping[str, Value]], plan: StackPlan, sid: str, key: str) -> str:
    """What Compose's ``environment`` gets for a variable: references only, never a secret literal."""
    if stored_value(plan, sid, key) is not None:
        return f"${{{env_file_key(sid, key)}}}"
    value = values[sid][key]
    out: list[str] = []
    for seg in value.segments:
        if isinstance(seg, Lit):
            out.append(compose_escape(seg.text))
        elif isinstance(seg, PlatformRef):
            out.append("${" + seg.key + "}")
        elif isinstance(seg, Ref) and seg.key in values.get(seg.service_id, {}):
            out.append(compose_expression(values, plan, seg.service_id, seg.key))
    return "".join(out)


def compose_command_item(plan: StackPlan, sid: str, text: str) -> str:
    """A command, args or initCommand item for Compose: its text escaped, each ``${KEY}`` as the variable's
    Compose expression (a reference to its env-file key), so the flag follows the env file like ``environment``."""
    out: list[str] = []
    for i, part in enumerate(COMMAND_VAR.split(text)):
        if i % 2 == 0:
            out.append(compose_escape(part))
        elif part in plan.values.get(sid, {}):
            out.append(compose_expression(plan.values, plan, sid, part))
    return "".join(out)


def health_base_path(plan: StackPlan, p: PlannedService) -> str:
    """The prefix an HTTP health check needs: the value of its ``basePathVar`` as the app normalises it
    (``/x``, or "" for the root), so the probe follows the base path the app is really told, overrides included."""
    hc = p.service.health_check
    key = hc.http.base_path_var if hc is not None and hc.http is not None else None
    if key is None or key not in p.values.values:
        return ""
    trimmed = (stored_value(plan, p.id, key) or "").strip("/")
    return f"/{trimmed}" if trimmed else ""
