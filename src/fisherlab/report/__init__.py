"""The HTML report: one self-contained page describing a fit and its uncertainty.

``build_html(result, ...)`` assembles the page (tables, inline SVG figures,
embedded CSS, no scripts, nothing loaded from the network);
``write_report(path, html, force=...)`` writes it atomically and never
overwrites without ``force``. Matplotlib is imported only when a page is built.
"""

from ._html import build_html as build_html
from ._write import write_report as write_report

__all__ = ["build_html", "write_report"]
