"""The documentation site's reference covers the public API (issue 16).

The pages are rendered by mkdocstrings from the docstrings (``mkdocs build --strict`` in
``.ci/run``); this checks, without building, that every public name has its entry.
"""

from __future__ import annotations

import re
from pathlib import Path

import fisherlab as fl

DOCS = Path(__file__).resolve().parents[1] / "docs"


def _entries() -> set[str]:
    text = "".join((DOCS / "reference" / page).read_text() for page in ("api.md", "errors.md"))
    return set(re.findall(r"^::: fisherlab\.([\w.]+)$", text, flags=re.M))


def test_every_public_name_is_in_the_reference() -> None:
    entries = _entries()
    expected = {n for n in fl.__all__ if n not in {"__version__", "design", "plot"}}
    expected |= {f"design.{n}" for n in fl.design.__all__} | {f"plot.{n}" for n in fl.plot.__all__}
    missing = sorted(expected - entries)
    assert not missing, f"public names without an entry in docs/reference: {missing}"


def test_every_error_is_in_the_catalogue() -> None:
    text = (DOCS / "reference" / "errors.md").read_text()
    errors = [
        n
        for n in fl.__all__
        if isinstance(getattr(fl, n), type) and issubclass(getattr(fl, n), Warning | fl.FisherlabError)
    ]
    assert errors and all(f"::: fisherlab.{n}\n" in text for n in errors)


def test_the_cli_reference_is_generated_from_the_app() -> None:
    text = (DOCS / "reference" / "cli.md").read_text()
    assert ":module: fisherlab.cli._reference" in text and ":command: click_app" in text
    from fisherlab.cli._reference import click_app

    assert {"fit", "check", "design", "demo"} <= set(click_app.commands)  # type: ignore[attr-defined]
