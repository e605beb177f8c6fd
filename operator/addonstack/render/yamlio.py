"""YAML in and out through PyYAML's C implementation, with stable, readable output."""

from __future__ import annotations

import functools
import json
import re
from collections import OrderedDict
from typing import Any

import yaml


class _Dumper(getattr(yaml, "CSafeDumper", yaml.SafeDumper)):  # type: ignore[misc]  # C emitter when present
    """PyYAML resolves plain scalars by YAML 1.1, but Kubernetes tools (sigs.k8s.io/yaml), Compose and most
    other readers use YAML 1.2, where ``1e10`` and ``0o17`` are numbers. Strings of those shapes (a hex
    digest made only of digits and one ``e``, a token) must therefore be quoted: the extra resolvers below
    make the emitter see them as numbers and quote them when they are strings."""


_Dumper.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?$"),
    list("-+0123456789."),
)
_Dumper.add_implicit_resolver("tag:yaml.org,2002:int", re.compile(r"^[-+]?0o[0-7]+$"), list("-+0"))
_Loader: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def dump(data: Any) -> str:
    """One YAML document; key order preserved, unicode kept, long strings not folded."""
    text: str = yaml.dump(
        data, Dumper=_Dumper, sort_keys=False, default_flow_style=False, allow_unicode=True, width=1 << 16
    )
    return text


_FRAGMENTS: dict[tuple[str | None, str, str], str] = {}
_FRAGMENT_LIMIT = 4096
# Stands for the caller's ``variable`` in memoised fragments: a plain scalar that no catalog value holds.
_PLACEHOLDER = "ADDONSTACKVARIABLEd41d8cd98f00b204"
_PLACEHOLDER_JSON = json.dumps(_PLACEHOLDER)
# One encoder for every entry: ``json.dumps`` with options builds a new encoder per call.
_ENCODE = json.JSONEncoder(ensure_ascii=False, allow_nan=False).encode


@functools.lru_cache(maxsize=256)
def _value_token(variable: str) -> tuple[str, re.Pattern[str]]:
    """The JSON token of ``variable`` and the pattern of it as a whole string value (compiled once per id)."""
    token = json.dumps(variable, ensure_ascii=False)
    return token, re.compile(r"(?<=[\[ ])" + re.escape(token) + r"(?=[,\]}])")


def _json(value: Any, variable: str | None) -> str:
    """The JSON form of ``value``, with every string value equal to ``variable`` (never a key) replaced by
    the placeholder.

    Done on the JSON text (C speed) rather than by walking the value: with json's default separators a
    string token is a value exactly when it starts after ``[`` or a space (``, `` and ``: ``) and ends
    before ``,``, ``]`` or ``}``; a key ends before ``:``. A quote inside a string is always escaped
    (``\\"``), so no part of a longer string can match.
    """
    text: str = _ENCODE(value)
    if variable is None:
        return text
    token, pattern = _value_token(variable)
    if token not in text:
        return text
    if text == token:
        return _PLACEHOLDER_JSON
    return pattern.sub(_PLACEHOLDER_JSON, text)


@functools.lru_cache(maxsize=256)
def _scalar(text: str) -> str:
    """How ``text`` is written as a block mapping value or sequence item."""
    return dump({"k": text})[3:-1]


def _entry(section: str | None, key: str, value: Any, variable: str | None) -> str:
    """The lines of ``section: {key: value}`` after the first: the entry exactly as it is dumped in place;
    with ``section`` None, the whole ``key: value`` of a top-level key (the state block, the networks).

    Memoised, since a service's block rarely changes between calls. The memo key is the JSON form of
    the entry (cheap, C): the Compose entries it is used for hold only string keys, lists, strings,
    numbers, booleans and nulls, for which JSON is one-to-one. Strings equal to ``variable`` (the
    instance id) are memoised as a placeholder and filled in afterwards, so one tenant's blocks serve
    the next tenant too: a whole scalar's representation does not depend on its neighbours.
    """
    templated = _json(value, variable)
    memo = (section, key, templated)
    text = _FRAGMENTS.get(memo)
    if text is None:
        data = json.loads(templated)
        text = dump({key: data}) if section is None else dump({section: {key: data}}).split("\n", 1)[1]
        if len(_FRAGMENTS) >= _FRAGMENT_LIMIT:
            _FRAGMENTS.clear()
        _FRAGMENTS[memo] = text
    if variable is not None and _PLACEHOLDER in text:
        text = text.replace(_PLACEHOLDER, _scalar(variable))
    return text


@functools.lru_cache(maxsize=64)
def _heading(key: str) -> str:
    """``key:`` alone, the first line of a block mapping section."""
    return dump({key: None}).replace(" null\n", "\n", 1)


def dump_sectioned(data: dict[str, Any], section: str | tuple[str, ...], variable: str | None = None) -> str:
    """The same text as :func:`dump` for a top-level mapping of JSON data, with each entry of
    ``data[section]`` (a mapping with string keys, e.g. Compose ``services`` and ``volumes``) and each
    other top-level key dumped once and then reused from a memo; ``variable`` names a string (the
    instance id) that may differ between otherwise equal entries.

    Entries of a block mapping are independent lines, so dumping them one by one and joining them
    gives the same bytes (a unit test checks this over the whole catalog).
    """
    sections = (section,) if isinstance(section, str) else section
    parts: list[str] = []
    for key, value in data.items():
        if key in sections and isinstance(value, dict) and value:
            parts.append(_heading(key))
            parts.extend(_entry(key, k, v, variable) for k, v in value.items())
        else:
            parts.append(_entry(None, key, value, variable))
    return "".join(parts)


def dump_all(docs: list[Any]) -> str:
    text: str = yaml.dump_all(
        docs, Dumper=_Dumper, sort_keys=False, default_flow_style=False, allow_unicode=True, width=1 << 16
    )
    return text


def load(text: str) -> Any:
    return yaml.load(text, Loader=_Loader)


def load_all(text: str) -> list[Any]:
    return [d for d in yaml.load_all(text, Loader=_Loader) if d is not None]


_LOADED: OrderedDict[str, str] = OrderedDict()
_LOADED_LIMIT = 32


def load_fresh(text: str) -> Any:
    """:func:`load`, memoised by text for documents that are plain JSON data (a Compose file passed back to
    ``update`` again and again): each call returns a new object, so callers may change what they get.
    """
    memo = _LOADED.get(text)
    if memo is not None:
        _LOADED.move_to_end(text)
        return json.loads(memo)
    doc = load(text)
    try:
        memo = json.dumps(doc, ensure_ascii=False, allow_nan=False)
        plain = json.loads(memo) == doc  # int keys, dates, sets... are not JSON data: not memoised
    except (TypeError, ValueError):
        plain = False
    if plain and memo is not None:
        _LOADED[text] = memo
        if len(_LOADED) > _LOADED_LIMIT:
            _LOADED.popitem(last=False)
    return doc
