"""Per-service variable values: generation, templating and namespacing.

Every service's variables live in their own namespace (``N8N__DB_POSTGRESDB_PASSWORD`` in an env
file, the service's own Secret in Kubernetes), so two services that both use ``DATABASE_URL`` never
share a value. A value is kept as *segments* rather than a flat string: literal text, a reference to
another addon variable, or a reference to a platform key. Renderers turn segments into a literal (env
file, Secret), a ``${VAR}`` reference (Compose) or a ``$(VAR)`` expansion (Kubernetes), so no secret is
ever pasted where only a reference belongs. Values already issued are inputs: nothing is regenerated.
"""

from __future__ import annotations

import functools
import os
import random
import secrets
import string
from collections.abc import Mapping
from dataclasses import dataclass, field

from addonstack.catalog.model import VAR_REF, SecretRule, Service
from addonstack.constants import PLATFORM_ENV_KEYS

ALPHABETS = {
    "hex": "0123456789abcdef",
    "alnum": string.ascii_letters + string.digits,
    "base64url": string.ascii_letters + string.digits + "-_",
}


@dataclass(frozen=True)
class Lit:
    text: str


@dataclass(frozen=True)
class Ref:
    """Another addon variable: ``service_id``'s ``key``."""

    service_id: str
    key: str


@dataclass(frozen=True)
class PlatformRef:
    key: str


Segment = Lit | Ref | PlatformRef


@dataclass(frozen=True)
class Value:
    """A variable's value as segments, and where it came from."""

    segments: tuple[Segment, ...]
    origin: str  # "default" | "generated" | "supplied" | "existing" | "unset"


def literal(text: str, origin: str) -> Value:
    return Value((Lit(text),), origin)


@functools.lru_cache(maxsize=1024)
def env_prefix(service_id: str) -> str:
    """Env-file namespace of a service: ``paperless-ngx`` -> ``PAPERLESS_NGX``."""
    return service_id.upper().replace("-", "_")


@functools.lru_cache(maxsize=16384)
def env_file_key(service_id: str, key: str) -> str:
    return f"{env_prefix(service_id)}__{key}"


def make_rng(seed: int | None) -> random.Random:
    """A cryptographic generator, or a seeded one when reproducible output is asked for (tests, CLI)."""
    return random.Random(seed) if seed is not None else secrets.SystemRandom()


def generate_secret(rule: SecretRule, rng: random.Random) -> str:
    alphabet = ALPHABETS[rule.alphabet]
    if isinstance(rng, random.SystemRandom):
        return _os_random_choices(alphabet, rule.length)
    return "".join(rng.choices(alphabet, k=rule.length))


@functools.lru_cache(maxsize=16)
def _byte_map(alphabet: str) -> tuple[bytes, bytes]:
    """For ``bytes.translate``: byte -> ``alphabet[byte % size]``, and the bytes to discard (those at or above
    the largest multiple of the alphabet's size, so the picks stay exactly uniform)."""
    size = len(alphabet)
    limit = 256 - 256 % size
    return bytes(ord(alphabet[b % size]) for b in range(256)), bytes(range(limit, 256))


def _os_random_choices(alphabet: str, length: int) -> str:
    """``length`` uniform picks from ``alphabet`` (ASCII) with one read of the OS's CSPRNG per secret.

    ``SystemRandom.choices`` reads the OS once per character (about 20 µs per character here, most of the
    cost of generating a large stack). Bytes at or above the largest multiple of the alphabet's size are
    discarded (rejection sampling), so ``byte % size`` is exactly uniform; ``bytes.translate`` does the
    mapping and the discarding in C.
    """
    table, discard = _byte_map(alphabet)
    picked = b""
    while len(picked) < length:
        picked += os.urandom(length + length // 2 + 8).translate(table, discard)
    return picked[:length].decode("ascii")


@functools.lru_cache(maxsize=8192)
def parse_template(service_id: str, template: str) -> tuple[Segment, ...]:
    """Split a catalog default into segments; ``${KEY}``, ``${svc.KEY}``, platform keys.

    Memoised: the arguments come from the catalog and the segments are immutable."""
    segs: list[Segment] = []
    pos = 0
    for m in VAR_REF.finditer(template):
        if m.start() > pos:
            segs.append(Lit(template[pos : m.start()]))
        other, key = m.group(1), m.group(2)
        if other:
            segs.append(Ref(other, key))
        elif key in PLATFORM_ENV_KEYS:
            segs.append(PlatformRef(key))
        else:
            segs.append(Ref(service_id, key))
        pos = m.end()
    if pos < len(template):
        segs.append(Lit(template[pos:]))
    return tuple(segs)


@dataclass
class ServiceValues:
    """The values of one service, in catalog order; unset optional variables are absent."""

    service_id: str
    values: dict[str, Value] = field(default_factory=dict)
    generated: list[str] = field(default_factory=list)
    unset_secrets: list[str] = field(default_factory=list)


class CredentialError(ValueError):
    """A credential for a variable that is built from others; the message names the source variable."""


def route_credentials(svc: Service, supplied: Mapping[str, str]) -> dict[str, str]:
    """Send each credential to the variable its value comes from, so everything derived from it agrees.

    A variable whose default is exactly ``${SOURCE}`` (n8n's ``DB_POSTGRESDB_PASSWORD`` is
    ``${N8N_DB_PASSWORD}``) is an alias: its credential is given to ``SOURCE``, which the database setup,
    the URLs and the alias all read. A variable built from a secret and other text (a database URL) cannot
    be split back into its parts, so a credential for it is refused with the source named.
    """
    out: dict[str, str] = {}
    for key, value in supplied.items():
        var = svc.env_var(key)
        target = key
        seen = {key}
        while var is not None and var.default is not None:
            refs = var.references()
            own = [k for other, k in refs if other in ("", svc.id) and svc.env_var(k) is not None]
            if len(refs) == 1 and var.default == f"${{{refs[0][1]}}}" and own:
                target = own[0]
                if target in seen:
                    break
                seen.add(target)
                var = svc.env_var(target)
                continue
            secret_sources = [k for k in own if (src := svc.env_var(k)) is not None and src.secret]
            if secret_sources:
                raise CredentialError(
                    f"credentials.{svc.id}.{key}: {key} is built from {', '.join(secret_sources)}; "
                    f"supply credentials.{svc.id}.{secret_sources[0]} instead and {key} follows"
                )
            break
        if target in out and out[target] != value:
            raise CredentialError(
                f"credentials.{svc.id}.{key}: {key} and another credential both set {target} to different values"
            )
        out[target] = value
    return out


def plan_values(
    svc: Service,
    supplied: Mapping[str, str],
    existing: Mapping[str, str],
    generate: bool,
    rng: random.Random,
) -> ServiceValues:
    """Choose each variable's value: existing > supplied > generated > catalog default.

    Existing values (issued earlier, possibly edited by the user) always win, so a re-plan never
    rotates a secret. Supplied values override defaults, including for non-secret variables.
    """
    out = ServiceValues(svc.id)
    for var in svc.env:
        if var.key in existing:
            out.values[var.key] = literal(existing[var.key], "existing")
        elif var.key in supplied:
            out.values[var.key] = literal(supplied[var.key], "supplied")
        elif var.generate is not None:
            if generate:
                out.values[var.key] = literal(generate_secret(var.generate, rng), "generated")
                out.generated.append(var.key)
            else:
                out.values[var.key] = literal("", "unset")
                out.unset_secrets.append(var.key)
        elif var.default is not None:
            out.values[var.key] = Value(parse_template(svc.id, var.default), "default")
    return out


class TemplateError(ValueError):
    """A template refers to something that does not resolve (a catalog bug the lint should catch)."""


def expand(
    plan: Mapping[str, Mapping[str, Value]], service_id: str, key: str, _stack: tuple[str, ...] = ()
) -> tuple[Segment, ...]:
    """Inline every addon reference, leaving only literals and platform references."""
    value = plan.get(service_id, {}).get(key)
    if value is not None and len(value.segments) == 1 and isinstance(value.segments[0], Lit):
        return value.segments  # a plain literal (every generated secret, most defaults)
    if value is not None and not any(isinstance(seg, Ref) for seg in value.segments):
        return value.segments  # nothing to inline (most values): no copy, and no cycle is possible
    marker = f"{service_id}.{key}"
    if marker in _stack:
        raise TemplateError(f"template cycle: {' -> '.join((*_stack, marker))}")
    if value is None:
        # An optional variable that is not set expands to nothing, like an unset shell variable.
        return ()
    out: list[Segment] = []
    for seg in value.segments:
        if isinstance(seg, Ref):
            out.extend(expand(plan, seg.service_id, seg.key, (*_stack, marker)))
        else:
            out.append(seg)
    return tuple(out)


def flatten(segments: tuple[Segment, ...]) -> str | None:
    """The literal string of segments without platform references, else None."""
    if len(segments) == 1 and isinstance(segments[0], Lit):
        return segments[0].text
    if any(isinstance(s, PlatformRef) for s in segments):
        return None
    return "".join(s.text for s in segments if isinstance(s, Lit))
