"""Reading the docs as data: fenced blocks, links, code spans and shell commands (markdown-it, rich's parser)."""

from __future__ import annotations

import re
import shlex
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from markdown_it import MarkdownIt
from markdown_it.token import Token

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
SHELL_LANGS = {"bash", "sh", "shell", "console"}
# Commands that need nothing but the package: no cluster, no network, no make.
OFFLINE_SUBCOMMANDS = {"catalog", "packs", "render", "validate", "generate", "update", "--help", "--version"}
OFFLINE_TOOLS = {"cat", "grep", "sort", "uniq", "sed", "head", "tail", "echo", "ls", "test", "wc"}
SEGMENT_SPLIT = re.compile(r"\|\||&&|\||;|\$\(|\)")
REDIRECT = re.compile(r"\s\d?>.*$")
HEREDOC = re.compile(r"<<-?\s*'?(\w+)'?")


def doc_files() -> list[Path]:
    """Every user-facing Markdown file: the README and docs/ (generated pages included)."""
    return [ROOT / "README.md", *sorted(p for p in DOCS.rglob("*.md") if "internal" not in p.parts)]


def _tokens(path: Path) -> list[Token]:
    return MarkdownIt("commonmark").enable("table").parse(path.read_text(encoding="utf-8"))


@dataclass(frozen=True)
class Block:
    lang: str
    text: str
    line: int


def fenced_blocks(path: Path, langs: set[str] | None = None) -> list[Block]:
    out = []
    for tok in _tokens(path):
        if tok.type == "fence":
            lang = (tok.info.split() or [""])[0]
            if langs is None or lang in langs:
                out.append(Block(lang, tok.content, (tok.map or [0])[0] + 1))
    return out


def _inline_children(path: Path) -> Iterator[Token]:
    for tok in _tokens(path):
        if tok.type == "inline":
            yield from tok.children or []


def code_spans(path: Path) -> list[str]:
    return [t.content for t in _inline_children(path) if t.type == "code_inline"]


def links(path: Path) -> list[str]:
    return [str(t.attrs["href"]) for t in _inline_children(path) if t.type == "link_open" and "href" in t.attrs]


def slug(heading: str) -> str:
    """GitHub's anchor for a heading."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return text.replace(" ", "-")


def anchors(path: Path) -> set[str]:
    toks = _tokens(path)
    return {slug(toks[i + 1].content) for i, t in enumerate(toks) if t.type == "heading_open"}


def command_lines(text: str) -> list[str]:
    """Shell lines of a block, heredoc bodies and comments left out, continuation lines joined."""
    lines: list[str] = []
    pending = ""
    end: str | None = None
    for raw in text.splitlines():
        if end is not None:
            if raw.strip() == end:
                end = None
            continue
        line = pending + raw
        if line.rstrip().endswith("\\"):
            pending = line.rstrip()[:-1] + " "
            continue
        pending = ""
        code = line.split(" #", 1)[0].strip() if not line.lstrip().startswith("#") else ""
        if code:
            lines.append(code)
        if m := HEREDOC.search(code):
            end = m.group(1)
    return lines


def segments(line: str) -> list[str]:
    """The simple commands of a line (pipes, lists and command substitutions split apart, redirections cut)."""
    return [REDIRECT.sub("", s).strip() for s in SEGMENT_SPLIT.split(line) if s.strip()]


def addonstack_invocations(text: str) -> list[list[str]]:
    """Argument lists of every ``addonstack ...`` command in shell text."""
    found = []
    for line in command_lines(text):
        for seg in segments(line):
            if seg == "addonstack" or seg.startswith("addonstack "):
                found.append(shlex.split(seg)[1:])
    return found


def is_offline(block: Block) -> bool:
    """True when every command of the block runs without a cluster, network or make."""
    lines = command_lines(block.text)
    if not lines:
        return False
    for line in lines:
        for seg in segments(line):
            try:
                words = shlex.split(seg)
            except ValueError:  # a quote split by a pipe inside it: not a simple offline command
                return False
            if not words:
                continue
            if words[0] == "addonstack":
                if len(words) < 2 or words[1] not in OFFLINE_SUBCOMMANDS:
                    return False
            elif words[0] not in OFFLINE_TOOLS:
                return False
    return True
