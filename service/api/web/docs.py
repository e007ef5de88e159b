"""A model's leading comment as documentation: NESTML's shipped models write it in reStructuredText, with
their equations in ``.. math::`` blocks and ``:math:`` roles.

The comment is a publisher's text, so it is rendered with docutils' safe settings (no ``raw`` directive,
no file inclusion, no configuration files, no system messages) into an HTML fragment whose mathematics is
MathML (the browser draws it: no script, font or style from anywhere, under the pages' CSP), and that
fragment is then cleaned by an allow-list (:mod:`nh3`): only text markup, lists, tables, code and MathML
elements, links only to ``http``, ``https`` and ``mailto`` addresses (``rel="noopener noreferrer nofollow"``).
A comment docutils cannot read is shown as written instead.
"""

from __future__ import annotations

import logging

from markupsafe import Markup

logger = logging.getLogger(__name__)
MAX_COMMENT = 64 * 1024  # longer comments are shown as written
_TEXT_TAGS = {"p", "em", "strong", "code", "pre", "span", "div", "br", "hr", "blockquote", "ul", "ol", "li",
              "dl", "dt", "dd", "a", "sub", "sup", "table", "thead", "tbody", "tr", "th", "td", "caption",
              "section", "h2", "h3", "h4", "h5", "h6", "cite", "tt", "kbd", "var", "abbr"}
_MATH_TAGS = {"math", "mrow", "mi", "mo", "mn", "ms", "mtext", "mspace", "msub", "msup", "msubsup", "mfrac",
              "msqrt", "mroot", "mstyle", "mpadded", "mphantom", "menclose", "mover", "munder", "munderover",
              "mtable", "mtr", "mtd", "semantics", "annotation", "merror"}
_MATH_ATTRIBUTES = {"display", "mathvariant", "stretchy", "fence", "separator", "accent", "accentunder",
                    "columnalign", "rowalign", "displaystyle", "scriptlevel", "lspace", "rspace", "largeop",
                    "movablelimits", "symmetric", "width", "height", "depth", "notation", "encoding", "linethickness",
                    "minsize", "maxsize", "columnspacing", "rowspacing", "form"}
SETTINGS = {"math_output": "MathML", "raw_enabled": False, "file_insertion_enabled": False, "report_level": 5,
             "halt_level": 5, "_disable_config": True, "embed_stylesheet": False, "doctitle_xform": False,
             "sectsubtitle_xform": False, "initial_header_level": 3, "warning_stream": False,
             "syntax_highlight": "none", "input_encoding": "unicode"}


def render_comment(text: str) -> Markup | None:
    """The comment as safe HTML, or None when it is better shown as written (empty, too long, unreadable)."""
    if not text.strip() or len(text) > MAX_COMMENT:
        return None
    try:
        from docutils.core import publish_parts

        body = publish_parts(text, writer="html5", settings_overrides=SETTINGS)["body"]
    except Exception as exc:  # docutils raises many kinds on odd input: the text as written serves
        logger.info("a model comment was not rendered as reStructuredText: %s", exc)
        return None
    return Markup(clean(body))


def clean(html: str) -> str:
    """Only the allowed elements and attributes of ``html`` (see the module's docstring)."""
    import nh3

    attributes = {tag: set(_MATH_ATTRIBUTES) for tag in _MATH_TAGS}
    attributes.update({"a": {"href", "title"}, "th": {"colspan", "rowspan"}, "td": {"colspan", "rowspan"},
                       "abbr": {"title"}, "ol": {"start"}})
    return nh3.clean(html, tags=_TEXT_TAGS | _MATH_TAGS, attributes=attributes, url_schemes={"http", "https", "mailto"},
                     link_rel="noopener noreferrer nofollow", strip_comments=True)
