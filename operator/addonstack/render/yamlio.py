"""YAML in and out through PyYAML's C implementation, with stable, readable output."""

from __future__ import annotations

import json
from collections import OrderedDict
from typing import Any

import yaml

_Dumper: Any = getattr(yaml, "CSafeDumper", yaml.SafeDumper)  # the C emitter when libyaml is present
_Loader: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def dump(data: Any) -> str:
    """One YAML document; key order preserved, unicode kept, long strings not folded."""
    text: str = yaml.dump(
        data, Dumper=_Dumper, sort_keys=False, default_flow_style=False, allow_unicode=True, width=1 << 16
    )
    return text


_FRAGMENTS: dict[str, str] = {}
_FRAGMENT_LIMIT = 4096


def _entry(section: str, key: str, value: Any) -> str:
    """The lines of ``section: {key: value}`` after the first: the entry exactly as it is dumped in place.

    Memoised, since a service's block rarely changes between calls. The memo key is the JSON form of
    the entry (cheap, C): the Compose entries it is used for hold only string keys, lists, strings,
    numbers, booleans and nulls, for which JSON is one-to-one.
    """
    memo = json.dumps([section, key, value], ensure_ascii=False, allow_nan=False)
    text = _FRAGMENTS.get(memo)
    if text is None:
        text = dump({section: {key: value}}).split("\n", 1)[1]
        if len(_FRAGMENTS) >= _FRAGMENT_LIMIT:
            _FRAGMENTS.clear()
        _FRAGMENTS[memo] = text
    return text


def dump_sectioned(data: dict[str, Any], section: str) -> str:
    """The same text as :func:`dump` for a top-level mapping, with each entry of ``data[section]``
    (a mapping with string keys, e.g. Compose ``services``) dumped once and then reused from a memo.

    Entries of a block mapping are independent lines, so dumping them one by one and joining them
    gives the same bytes (a unit test checks this over the whole catalog).
    """
    parts: list[str] = []
    for key, value in data.items():
        if key == section and isinstance(value, dict) and value:
            parts.append(dump({key: None}).replace(" null\n", "\n", 1))
            parts.extend(_entry(section, k, v) for k, v in value.items())
        else:
            parts.append(dump({key: value}))
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
