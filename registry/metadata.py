"""A model's metadata, read from its leading comment as NESTML's shipped models write it (reStructuredText
sections ``Authors``, ``References``, ``See also``, ``Copyright statement``; DOIs anywhere), and keywords
a modeller searches by (integrate-and-fire, conductance-based, STDP, ...), told from its names, its
description and its comment; and what a version's owner gives (``nestml-registry describe``), which
comes first. Shown on the model page and in the API, and part of the search words."""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from nestml_registry.registry import model_text

_UNDERLINE = re.compile(r"^\s*([=+\-~#*^])\1{2,}\s*$")
_DOI = re.compile(r"\b(10\.\d{4,9}/[^\s\"<>]+)")
_SPDX = re.compile(r"SPDX-License-Identifier:\s*([A-Za-z0-9.+\-]+)")
_REFERENCE = re.compile(r"^\s*\.\.\s*\[(\w+)\]\s*(.*)$")
_LICENSE = re.compile(r"[A-Za-z0-9][A-Za-z0-9.+\-]{0,63}")  # an SPDX identifier
_KEYWORD = re.compile(r"[\w][\w \-]{0,59}")
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]")
FIELDS = ("authors", "license", "references", "dois", "keywords")
LIMITS = {"authors": (20, 200), "references": (30, 500), "dois": (20, 200), "keywords": (20, 60)}
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


def version_words(names: list[str | None], description: str, variables: list[Any], text: str,
                  nestml_name: str | None, given: dict[str, Any] | None = None) -> str:
    """A version's search words (``model_versions.keywords``): its names, description, parameters and state
    (:func:`nestml_registry.registry.model_text.keywords`), and the metadata of its source ``text``'s comment
    with what its owner ``given``."""
    found = merged(of(model_text.comment_of(text, nestml_name), names, description), given)
    return model_text.keywords(names, description, variables, search_words(found))


def check_given(given: dict[str, Any]) -> dict[str, Any]:
    """What an owner gives, checked: ``authors``, ``references`` (plain text), ``dois`` (10.NNNN/...),
    ``keywords`` (words, spaces and dashes), ``license`` (an SPDX identifier). ValueError says what is wrong."""
    unknown = sorted(set(given) - set(FIELDS))
    if unknown:
        raise ValueError(f"no metadata field {', '.join(unknown)}: give {', '.join(FIELDS)}")
    out: dict[str, Any] = {}
    for field, (most, longest) in LIMITS.items():
        items = [" ".join(str(x).split()) for x in given.get(field) or []]
        items = [x for x in dict.fromkeys(items) if x]
        if len(items) > most or any(len(x) > longest or _CONTROL.search(x) for x in items):
            raise ValueError(f"{field}: at most {most}, each of at most {longest} characters, without control "
                             "characters")
        bad = [x for x in items if (field == "dois" and not _DOI.fullmatch(x))
               or (field == "keywords" and not _KEYWORD.fullmatch(x))]
        if bad:
            raise ValueError(f"{field}: {bad[0][:60]!r} is not one (" + (
                "a DOI is 10.NNNN/suffix, e.g. 10.1152/jn.00686.2005, without https://doi.org/" if field == "dois"
                else "letters, digits, spaces and dashes") + ")")
        if items:
            out[field] = items
    license = given.get("license")
    if license is not None and license != "":
        if not isinstance(license, str) or not _LICENSE.fullmatch(license):
            raise ValueError(f"license: {str(license)[:60]!r} is not an SPDX identifier (e.g. MIT, "
                             "GPL-2.0-or-later, CC-BY-4.0)")
        out["license"] = license
    return out


def merged(found: dict[str, Any], given: dict[str, Any] | None) -> dict[str, Any]:
    """The comment's metadata with the owner's first (a license given replaces the comment's)."""
    if not given:
        return found
    out = dict(found)
    for field in ("authors", "references", "dois", "keywords"):
        out[field] = list(dict.fromkeys([*(given.get(field) or []), *found.get(field, [])]))
    out["license"] = given.get("license") or found.get("license")
    return out
