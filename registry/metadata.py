"""A model's metadata, read from its leading comment as NESTML's shipped models write it (reStructuredText
sections ``Authors``, ``References``, ``See also``, ``Copyright statement``; DOIs anywhere), and keywords
a modeller searches by (integrate-and-fire, conductance-based, STDP, ...), told from its names, its
description and its comment. Shown on the model page and in the API, and part of the search words."""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

_UNDERLINE = re.compile(r"^\s*([=+\-~#*^])\1{2,}\s*$")
_DOI = re.compile(r"\b(10\.\d{4,9}/[^\s\"<>]+)")
_SPDX = re.compile(r"SPDX-License-Identifier:\s*([A-Za-z0-9.+\-]+)")
_REFERENCE = re.compile(r"^\s*\.\.\s*\[(\w+)\]\s*(.*)$")
# keyword: what in the lower-case names, description and comment tells it
KEYWORDS = {
    "integrate-and-fire": ("iaf_", "integrate-and-fire", "integrate and fire", "aeif", "mat2"),
    "conductance-based": ("_cond_", "cond_", "conductance based", "conductance-based"),
    "current-based": ("_psc_", "current based", "current-based"),
    "Hodgkin-Huxley": ("hh_", "hodgkin", "traub", "wb_cond", "terub"),
    "adaptive exponential": ("aeif", "adaptive exponential", "adex"),
    "Izhikevich": ("izhikevich",),
    "spike-frequency adaptation": ("sfa", "spike-frequency adaptation", "adaptation current"),
    "STDP": ("stdp", "spike-timing dependent", "spike timing dependent"),
    "short-term plasticity": ("tsodyks", "short-term plasticity", "short term plasticity"),
    "neuromodulation": ("neuromodulated", "dopamine"),
    "multisynapse": ("multisyn", "multisynapse"),
}


def sections(comment: str) -> dict[str, str]:
    """The comment's sections by lower-case title (a line underlined with one repeated punctuation mark)."""
    lines = comment.splitlines()
    found: dict[str, str] = {}
    title, start = None, 0
    for i in range(1, len(lines)):
        if _UNDERLINE.match(lines[i]) and lines[i - 1].strip() and not _UNDERLINE.match(lines[i - 1]):
            if title is not None:
                found[title] = "\n".join(lines[start:i - 1]).strip()
            title, start = lines[i - 1].strip().lower(), i + 1
    if title is not None:
        found[title] = "\n".join(lines[start:]).strip()
    return found


def of(comment: str, names: Iterable[str | None], description: str = "") -> dict[str, Any]:
    """``{authors, license, references, dois, see_also, keywords}`` of a model's comment."""
    parts = sections(comment)
    authors = [line.strip(" -*") for line in (parts.get("authors") or parts.get("author") or "").splitlines()
               if line.strip(" -*")]
    see_also = [n.strip(" `") for n in re.split(r"[,\n]", parts.get("see also", "")) if n.strip(" `")]
    return {"authors": authors[:20], "license": license_of(comment, parts), "references": references(parts),
            "dois": sorted({d.rstrip(".,;)") for d in _DOI.findall(comment)})[:20], "see_also": see_also[:20],
            "keywords": keywords_of(names, description, comment)}


def license_of(comment: str, parts: dict[str, str]) -> str | None:
    spdx = _SPDX.search(comment)
    if spdx:
        return spdx.group(1)
    text = " ".join((parts.get("copyright statement") or parts.get("license") or parts.get("licence")
                     or "").split())
    if "GNU General Public License" in text and "version 2" in text and "any later version" in text:
        return "GPL-2.0-or-later"
    return text[:200] or None


def references(parts: dict[str, str]) -> list[str]:
    """The ``References`` section's entries (``.. [1] ...`` with their continuation lines), or its lines."""
    body = parts.get("references", "")
    out: list[str] = []
    going_on = False  # the line before belongs to an entry that an indented line continues
    for line in body.splitlines():
        m = _REFERENCE.match(line)
        if m:
            out.append(f"[{m.group(1)}] {m.group(2).strip()}")
            going_on = True
        elif line.strip() and going_on and line[:1].isspace():
            out[-1] += " " + line.strip()
        elif line.strip():
            out.append(line.strip())
            going_on = False
        else:
            going_on = False
    return [r[:500] for r in out[:30]]


def keywords_of(names: Iterable[str | None], description: str, comment: str) -> list[str]:
    text = " ".join([*(n or "" for n in names), description, comment]).lower()
    return [k for k, cues in KEYWORDS.items() if any(c in text for c in cues)]


def search_words(found: dict[str, Any]) -> list[str]:
    """What of the metadata a search matches: keywords, authors, DOIs."""
    return [*found["keywords"], *found["authors"], *found["dois"]]
