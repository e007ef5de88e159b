"""What a person reads of a NESTML model, taken from its source text as written (no NESTML needed):
the description (the comment before or just inside ``model NAME:``, or an older ``\"\"\"`` docstring),
the ``equations:`` block, and the words a search matches (names, description, parameters, state).

Everything here works on the text alone, so it is cheap enough for publishing and for a schema
migration's backfill, and never fails: a text it cannot read gives an empty answer.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

_MODEL_RE = re.compile(r"^(?P<indent>[ \t]*)model[ \t]+(?P<name>[A-Za-z_$][A-Za-z0-9_$]*)[ \t]*:")
_RULE_RE = re.compile(r"^[\s#=*+\-~^_.]*$")  # a line of rule characters (reST underlines, ####...)
MAX_DESCRIPTION = 300


def _model_line(lines: list[str], name: str | None) -> int | None:
    for i, line in enumerate(lines):
        m = _MODEL_RE.match(line)
        if m and (name is None or m.group("name") == name):
            return i
    return None


def _comment_text(line: str) -> str | None:
    stripped = line.strip()
    if not stripped.startswith("#"):
        return None
    return stripped[1:].removeprefix(" ").rstrip()


def _comment_above(lines: list[str], at: int) -> list[str]:
    out: list[str] = []
    i = at - 1
    while i >= 0 and not lines[i].strip():  # blank lines between the comment and the model line
        i -= 1
    while i >= 0 and (text := _comment_text(lines[i])) is not None:
        out.append(text)
        i -= 1
    return out[::-1]


def _comment_inside(lines: list[str], at: int) -> list[str]:
    """Comment lines (or a \"\"\" docstring) right after the model line, before its first block."""
    out: list[str] = []
    i = at + 1
    while i < len(lines) and not lines[i].strip():
        i += 1
    if i < len(lines) and lines[i].strip().startswith('"""'):
        first = lines[i].strip()[3:]
        if '"""' in first:
            return [first.split('"""')[0]]
        out.append(first)
        i += 1
        while i < len(lines) and '"""' not in lines[i]:
            out.append(lines[i].strip())
            i += 1
        if i < len(lines):
            out.append(lines[i].split('"""')[0].strip())
        return out
    while i < len(lines) and (text := _comment_text(lines[i])) is not None:
        out.append(text)
        i += 1
    return out


def comment_of(text: str, name: str | None = None) -> str:
    """The model's comment as written (without the ``#``), or ``""``; ``name`` picks the model of a
    file with several (the first one otherwise)."""
    lines = text.splitlines()
    at = _model_line(lines, name)
    if at is None:
        return ""
    found = _comment_above(lines, at) or _comment_inside(lines, at)
    while found and not found[0].strip():
        found.pop(0)
    while found and not found[-1].strip():
        found.pop()
    return "\n".join(found)


def description_of(text: str, name: str | None = None) -> str:
    """The first line of the model's comment that says something (not a rule of ``#`` or ``=``)."""
    for line in comment_of(text, name).splitlines():
        if line.strip() and not _RULE_RE.fullmatch(line):
            line = line.strip()
            return line if len(line) <= MAX_DESCRIPTION else line[:MAX_DESCRIPTION - 3].rstrip() + "..."
    return ""


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip(" \t"))


def block_of(text: str, block: str, name: str | None = None) -> str:
    """The body of every ``block:`` (e.g. ``equations``) of the model, dedented, as written; ``""`` if none."""
    lines = text.splitlines()
    at = _model_line(lines, name)
    if at is None:
        return ""
    model_indent = _indent(lines[at])
    header = re.compile(rf"^[ \t]*{re.escape(block)}[ \t]*:[ \t]*(#.*)?$")
    bodies: list[list[str]] = []
    i = at + 1
    while i < len(lines):
        line = lines[i]
        if line.strip() and _indent(line) <= model_indent:
            break  # the next model (or the end of this one)
        if header.match(line):
            own = _indent(line)
            body: list[str] = []
            i += 1
            while i < len(lines) and (not lines[i].strip() or _indent(lines[i]) > own):
                body.append(lines[i])
                i += 1
            while body and not body[-1].strip():
                body.pop()
            bodies.append(body)
            continue
        i += 1
    out: list[str] = []
    for body in bodies:
        cut = min((_indent(b) for b in body if b.strip()), default=0)
        out.extend(b[cut:].rstrip() for b in body)
    return "\n".join(out)


_DECLARATION_RE = re.compile(r"^[ \t]*(?P<names>[A-Za-z_$][A-Za-z0-9_$]*(?:[ \t]*,[ \t]*[A-Za-z_$][A-Za-z0-9_$]*)*)"
                             r"(?:[ \t]*\[[^\]]*\])?[ \t]+[A-Za-z_(\[]")


def declaration_lines(text: str, block: str, name: str | None = None) -> dict[str, int]:
    """Where each variable of the model's ``block:`` (``parameters`` or ``state``) is declared: name -> line
    (1-based), for the comments written on and above it."""
    lines = text.splitlines()
    at = _model_line(lines, name)
    if at is None:
        return {}
    model_indent = _indent(lines[at])
    header = re.compile(rf"^[ \t]*{re.escape(block)}[ \t]*:[ \t]*(#.*)?$")
    found: dict[str, int] = {}
    own: int | None = None  # the indentation of the block's header while inside it
    for i in range(at + 1, len(lines)):
        line = lines[i]
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        if _indent(line) <= model_indent:
            break
        if own is not None and _indent(line) <= own:
            own = None
        if own is None:
            own = _indent(line) if header.match(line) else None
            continue
        m = _DECLARATION_RE.match(line)
        if m:
            for var in m.group("names").split(","):
                found.setdefault(var.strip(), i + 1)
    return found


def keywords(names: Iterable[str | None], description: str, variables: Iterable[object],
             extra: Iterable[str] = ()) -> str:
    """The lower-case words a search of the models matches: names, the description, and the names and
    descriptions of the parameters and state variables (``variables``: their dicts, as the registry stores
    them, a description under ``comment``), so a search for "recovery" finds the Izhikevich models; and
    ``extra`` (the metadata's keywords, authors and DOIs: registry.metadata)."""
    words = [n for n in names if n]
    words.append(description)
    words.extend(extra)
    for v in variables:
        if isinstance(v, dict) and v.get("name"):
            words.append(str(v["name"]))
            if v.get("comment"):
                words.append(str(v["comment"]))
    return " ".join(" ".join(words).lower().split())
