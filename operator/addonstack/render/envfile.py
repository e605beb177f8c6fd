r"""The ``.env`` file of an addon stack: one commented section per service, values quoted for Compose.

Compose reads it as an env file (``docker compose --env-file .env.addons``). Quoting follows
Compose's dotenv rules: bare for safe characters, single quotes (literal) when possible, double quotes
with ``\\``, ``\"``, ``\$`` and ``\n`` escapes otherwise. :func:`parse` reads back exactly what
:func:`render` writes, plus values a person edited by hand, and refuses files it did not produce.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

HEADER = "# addonstack:instance="
SECTION = "# addonstack:service="
_SAFE = re.compile(r"^[A-Za-z0-9_.:/@+,=%-]*$")
_LINE = re.compile(r"^(?:export\s+)?([A-Za-z_][A-Za-z0-9_]*)\s*=\s*(.*)$")
# Escapes Compose's dotenv parser understands inside double quotes.
_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", "a": "\a", "b": "\b", "f": "\f", "v": "\v"}


class EnvFileError(ValueError):
    """The env file cannot be parsed, or was not produced by AddonStack."""


def quote(value: str) -> str:
    if _SAFE.fullmatch(value):  # not match(): "$" also matches before a trailing newline
        return value
    if "'" not in value and "\n" not in value and "\r" not in value and "\\" not in value:
        return f"'{value}'"
    escaped = value.replace("\\", "\\\\").replace('"', '\\"').replace("$", "\\$")
    escaped = escaped.replace("\n", "\\n").replace("\r", "\\r")
    return f'"{escaped}"'


def _unquote(raw: str, lineno: int) -> str:
    raw = raw.strip()
    if raw.startswith("'"):
        end = raw.find("'", 1)
        if end < 0:
            raise EnvFileError(f"line {lineno}: unterminated single-quoted value")
        return raw[1:end]
    if raw.startswith('"'):
        out: list[str] = []
        i = 1
        while i < len(raw):
            c = raw[i]
            if c == "\\" and i + 1 < len(raw):
                nxt = raw[i + 1]
                out.append(_ESCAPES.get(nxt, nxt))
                i += 2
                continue
            if c == '"':
                return "".join(out)
            out.append(c)
            i += 1
        raise EnvFileError(f"line {lineno}: unterminated double-quoted value")
    # Bare value: an inline comment starts at " #".
    hash_at = raw.find(" #")
    return (raw[:hash_at] if hash_at >= 0 else raw).strip()


@dataclass
class EnvSection:
    service_id: str
    title: str
    entries: list[tuple[str, str, str]]  # (comment, key, value)


def render(instance_id: str, generator: str, sections: list[EnvSection]) -> str:
    lines = [
        f"# Addon services of instance {instance_id}, written by {generator}.",
        "# Values here are kept on every update; edit them freely. Keep the addonstack: markers.",
        f"{HEADER}{instance_id}",
    ]
    for sec in sections:
        lines += ["", f"# ---- {sec.title} ----", f"{SECTION}{sec.service_id}"]
        for comment, key, value in sec.entries:
            if comment:
                lines.append(f"# {comment}")
            lines.append(f"{key}={quote(value)}")
    return "\n".join(lines) + "\n"


@dataclass
class ParsedEnv:
    instance_id: str
    values: dict[str, dict[str, str]]  # service id -> env-file key -> value
    services: list[str]


def parse(text: str) -> ParsedEnv:
    """Parse an env file produced by :func:`render` (comments and hand edits allowed)."""
    instance: str | None = None
    current: str | None = None
    values: dict[str, dict[str, str]] = {}
    order: list[str] = []
    # Only "\n" ends a line, as in Compose: a quoted value may hold "\r", "\x85", "\u2028"...
    for lineno, line in enumerate(text.split("\n"), start=1):
        stripped = line.strip()
        if stripped.startswith(HEADER):
            instance = stripped[len(HEADER) :].strip()
            continue
        if stripped.startswith(SECTION):
            current = stripped[len(SECTION) :].strip()
            values.setdefault(current, {})
            order.append(current)
            continue
        if not stripped or stripped.startswith("#"):
            continue
        m = _LINE.match(stripped)
        if m is None:
            # The line is not quoted back: a mangled line of an env file is usually a secret value.
            raise EnvFileError(f"currentEnv line {lineno}: expected KEY=value (a comment starts with #)")
        if instance is None:
            break
        if current is None:
            raise EnvFileError(f"currentEnv line {lineno}: {m.group(1)} appears before any '{SECTION}<id>' section")
        values[current][m.group(1)] = _unquote(m.group(2), lineno)
    if instance is None:
        raise EnvFileError(f"currentEnv was not produced by AddonStack (no '{HEADER}<id>' line); nothing was changed")
    return ParsedEnv(instance, values, order)
