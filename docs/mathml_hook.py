"""MkDocs hook: the pages' TeX becomes MathML when the site is built, so no script renders it.

``pymdownx.arithmatex`` (generic mode) leaves each formula as ``\\( ... \\)`` in a
``span.arithmatex`` or ``\\[ ... \\]`` in a ``div.arithmatex``; this hook converts each with
latex2mathml (pure Python) into MathML, which browsers draw natively (MathML Core: Chromium
109+, Firefox, Safari). The site then needs neither MathJax nor KaTeX, nor any network at view
time. A formula latex2mathml cannot convert is a warning naming the page and the TeX, and
``mkdocs build --strict`` fails on it.
"""

from __future__ import annotations

import html
import logging
import re
import unicodedata
from typing import Any

from latex2mathml.converter import convert
from latex2mathml.symbols_parser import convert_symbol

log = logging.getLogger("mkdocs.hooks.mathml")

_MATH = re.compile(
    r'<span class="arithmatex">\\\((?P<inline>.*?)\\\)</span>'
    r'|<div class="arithmatex">\\\[(?P<block>.*?)\\\]</div>',
    re.DOTALL,
)


_TEX_IN_TITLE = re.compile(r"\\\((.*?)\\\)")
_TEX_MARKUP = re.compile(r"\\([a-zA-Z]+)\s*|[{}_^\\]")


_FUNCTIONS = {"log", "exp", "ln", "det", "max", "min", "sin", "cos", "arg"}


def _symbol(m: re.Match[str]) -> str:
    name = m.group(1)
    if name in _FUNCTIONS:
        return name + " "
    code = convert_symbol("\\" + name) if name else None
    if code is None or unicodedata.combining(chr(int(code, 16))):
        return ""  # markup (``\\mathrm``, braces, sub- and superscripts) and accents
    return chr(int(code, 16))


def _plain_title(title: str) -> str:
    """A heading's formula as text for the table of contents: ``\\(\\hat\\theta_{50}\\)`` -> ``θ50``."""
    return _TEX_IN_TITLE.sub(lambda m: _TEX_MARKUP.sub(_symbol, html.unescape(m.group(1))), title)


def _retitle(items: Any) -> None:
    for item in items:
        item.title = _plain_title(item.title)
        _retitle(item.children)


# The docstrings' reStructuredText roles and directives, as the API reference renders them: a
# formula (``:math:`...``` and ``.. math::``) and a cross-reference role, shown as plain code.
_RST_MATH = re.compile(r":math:<code>(?P<inline>.*?)</code>|<p>\.\. math::\s*(?P<block>.*?)</p>", re.DOTALL)
_RST_ROLE = re.compile(r":(?:mod|attr|class|func|meth|obj|data|exc):(?=<code>)")


def _formulas(pattern: re.Pattern[str], content: str, page: Any) -> str:
    """Each match of ``pattern`` (groups ``inline`` / ``block``: the TeX, HTML-escaped) as MathML."""

    def mathml(m: re.Match[str]) -> str:
        block = m.group("block") is not None
        tex = html.unescape(m.group("block") if block else m.group("inline")).strip()
        return _convert(tex, block, page) or m.group(0)

    return pattern.sub(mathml, content)


def _convert(tex: str, block: bool, page: Any) -> str | None:
    """The formula as MathML, or None after a warning (which fails a strict build)."""
    try:
        rendered = convert(tex, display="block" if block else "inline")
    except Exception as exc:  # latex2mathml's own errors: a command it does not know
        log.warning("%s: cannot convert the formula %r to MathML (%s)", page.file.src_path, tex, exc)
        return None
    tag = "div" if block else "span"
    return f'<{tag} class="arithmatex">{rendered}</{tag}>'


def on_page_content(content: str, page: Any, **_: Any) -> str:
    """Every formula of the page's HTML as MathML; the table of contents' headings as text."""
    _retitle(page.toc)
    content = _RST_ROLE.sub("", _formulas(_RST_MATH, content, page))
    return _formulas(_MATH, content, page)
