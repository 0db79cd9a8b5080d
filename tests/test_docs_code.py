"""The code on the documentation pages runs (issue 16): nothing a reader copies can rot.

Every fenced Python block of ``docs/`` is one of:

- a doctest (``>>>`` lines): pytest runs it, as it collects ``docs/**/*.md`` with
  ``--doctest-glob`` (checked here, so a configuration change cannot drop the pages silently);
- on a tutorial page, an excerpt of the example script the page runs (``python examples/X.py``),
  which its own test module imports and checks: every statement of the block is one of the
  script's (compared as syntax trees, type annotations and docstrings aside);
- titled ``Excerpt from PATH``: every line is in that file of the repository, in order;
- titled ``Synopsis``: a call's signature with every option, not code to run;
- anything else: run here, the page's blocks in order in one namespace, in a scratch directory.

The ``fisherlab`` commands of Getting started run here too, on the bundled data.
"""

from __future__ import annotations

import ast
import inspect
import pathlib
import re
import shlex

import pytest
import tomllib

import fisherlab as fl
from cli_support import call

ROOT = pathlib.Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
_FENCE = re.compile(r"^( *)```(\w+)([^\n]*)\n(.*?)^\1```[ \t]*$", re.S | re.M)
_TITLE = re.compile(r'title="([^"]*)"')
_SCRIPT = re.compile(r"python (examples/\w+\.py)")


def _blocks(page: pathlib.Path) -> list[tuple[str, str, str, int]]:
    """(language, title, code dedented, line) of each fenced block."""
    text = page.read_text(encoding="utf-8")
    out = []
    for m in _FENCE.finditer(text):
        indent, lang, info, body = m.groups()
        title = _TITLE.search(info)
        code = "\n".join(line[len(indent) :] for line in body.splitlines())
        out.append((lang, title.group(1) if title else "", code, text.count("\n", 0, m.start()) + 1))
    return out


def _pages() -> list[pathlib.Path]:
    return sorted(DOCS.rglob("*.md"))


def _in_order(block: str, source: str) -> str | None:
    """The first line of ``block`` not found in ``source`` after the previous one (None: all are)."""
    lines = [line.strip() for line in source.splitlines()]
    at = 0
    for line in (b.strip() for b in block.splitlines()):
        if not line:
            continue
        try:
            at = lines.index(line, at) + 1
        except ValueError:
            return line
    return None


def _plain(page: pathlib.Path) -> list[tuple[str, int]]:
    return [
        (code, line)
        for lang, title, code, line in _blocks(page)
        if lang == "python" and ">>>" not in code and not title
    ]


def test_doctests_of_the_pages_are_collected() -> None:
    options = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["pytest"]["ini_options"]
    assert "docs" in options["testpaths"]
    assert "--doctest-glob=*.md" in options["addopts"].split()
    doctest_pages = [p for p in _pages() if any(">>>" in code for _, _, code, _ in _blocks(p))]
    assert len(doctest_pages) >= 8  # the guides, the theory, design and data pages at least


@pytest.mark.parametrize("page", _pages(), ids=lambda p: str(p.relative_to(DOCS)))
def test_titled_blocks_are_synopses_or_true_excerpts(page: pathlib.Path) -> None:
    for lang, title, code, line in _blocks(page):
        if not title:
            continue
        if title == "Synopsis":
            assert lang == "python" and ">>>" not in code, f"{page.name}:{line}"
            problems = _api_problems(code, set())
            assert not problems, f"{page.name}:{line}: {problems}"
            continue
        assert title.startswith("Excerpt from "), f"{page.name}:{line}: unknown block title {title!r}"
        source = ROOT / title.removeprefix("Excerpt from ")
        assert source.is_file(), f"{page.name}:{line}: {source} does not exist"
        missing = _in_order(code, source.read_text(encoding="utf-8"))
        assert missing is None, f"{page.name}:{line}: {missing!r} is not in {source.name}"


class _Plain(ast.NodeTransformer):
    """A statement as the reader sees it on a page: no annotations, no docstrings."""

    def visit_arg(self, node: ast.arg) -> ast.arg:
        node.annotation = None
        return node

    def visit_FunctionDef(self, node: ast.FunctionDef) -> ast.FunctionDef:
        node.returns = None
        body = node.body
        if (
            body
            and isinstance(body[0], ast.Expr)
            and isinstance(getattr(body[0], "value", None), ast.Constant)
        ):
            node.body = body[1:] or [ast.Pass()]
        self.generic_visit(node)
        return node

    def visit_AnnAssign(self, node: ast.AnnAssign) -> ast.AST:
        if node.value is None:
            return ast.Pass()
        return ast.Assign(targets=[node.target], value=node.value, lineno=node.lineno)


def _statements(source: str) -> set[str]:
    tree = _Plain().visit(ast.parse(source))
    return {ast.unparse(node) for node in ast.walk(tree) if isinstance(node, ast.stmt)}


def _dotted(node: ast.AST) -> list[str] | None:
    """``fl.design.optimal`` -> ["design", "optimal"]; None for a name not rooted at ``fl``."""
    parts = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    return parts[::-1] if isinstance(node, ast.Name) and node.id == "fl" else None


def _api_problems(code: str, defined: set[str]) -> list[str]:
    """What in ``code`` is not fisherlab's API as it stands: an ``fl.`` name that does not exist,
    a keyword its callable does not take, an upper-case constant neither the block nor
    ``defined`` has."""
    tree = ast.parse(code)
    assigned = {n.id for n in ast.walk(tree) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store)}
    problems = []
    for node in ast.walk(tree):
        path = _dotted(node.func) if isinstance(node, ast.Call) else _dotted(node)
        if path:
            obj: object = fl
            for i, part in enumerate(path):
                if not hasattr(obj, part):
                    problems.append(f"fl.{'.'.join(path[: i + 1])} does not exist")
                    break
                obj = getattr(obj, part)
            else:
                if isinstance(node, ast.Call) and callable(obj):
                    problems += _keyword_problems(obj, node, "fl." + ".".join(path))
        if (
            isinstance(node, ast.Name)
            and isinstance(node.ctx, ast.Load)
            and node.id.isupper()
            and len(node.id) > 1
        ):
            if node.id not in assigned | defined:
                problems.append(f"{node.id} is defined neither here nor in the script")
    return list(dict.fromkeys(problems))  # a call's name is also an attribute node: once each


def _keyword_problems(fn: object, call: ast.Call, name: str) -> list[str]:
    try:
        params = inspect.signature(fn).parameters  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return []
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
        return []
    return [f"{name} takes no {k.arg}=" for k in call.keywords if k.arg and k.arg not in params]


def _module_names(source: str) -> set[str]:
    tree = ast.parse(source)
    return {n.id for n in ast.walk(tree) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store)} | {
        n.name for n in tree.body if isinstance(n, (ast.FunctionDef, ast.ClassDef))
    }


@pytest.mark.parametrize(
    "page", sorted((DOCS / "tutorials").glob("*.md")), ids=lambda p: p.name.removesuffix(".md")
)
def test_tutorial_code_is_the_scripts_or_the_api_as_it_stands(page: pathlib.Path) -> None:
    text = page.read_text(encoding="utf-8")
    found = _SCRIPT.search(text)
    assert found, f"{page.name} names no example script (python examples/...)"
    script = ROOT / found.group(1)
    tests = [t for t in (ROOT / "tests").glob("test_*.py") if script.name in t.read_text(encoding="utf-8")]
    assert tests, f"no test runs {script.name}"
    source = script.read_text(encoding="utf-8")
    in_script, defined = _statements(source), _module_names(source)
    for code, line in _plain(page):
        shown = [ast.unparse(_Plain().visit(node)) for node in ast.parse(code).body]
        if all(s in in_script for s in shown):
            continue  # an excerpt: the script's own statements, which its test runs
        problems = _api_problems(code, defined)
        assert not problems, f"{page.name}:{line}: {problems}"


def test_the_api_check_catches_what_rots() -> None:
    stale = "fl.design.optimal(model, GUESS, grid, critter='D')\nfl.design.best(model)\nfl.fit(m, y, init=p)"
    assert sorted(_api_problems(stale, set())) == [
        "GUESS is defined neither here nor in the script",
        "fl.design.best does not exist",
        "fl.design.optimal takes no critter=",
    ]


_RUN = [p for p in _pages() if p.parent.name != "tutorials" and _plain(p)]


@pytest.mark.parametrize("page", _RUN, ids=lambda p: str(p.relative_to(DOCS)))
def test_plain_code_blocks_run(page: pathlib.Path, tmp_path: pathlib.Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    namespace: dict = {"__name__": "__docs__"}
    for code, line in _plain(page):
        try:
            exec(compile(code, f"{page.name}:{line}", "exec"), namespace)
        except Exception as exc:  # name the block
            raise AssertionError(f"{page.relative_to(DOCS)}, the block at line {line}: {exc!r}") from exc


def test_getting_started_commands_run(tmp_path: pathlib.Path, monkeypatch, capsys) -> None:
    monkeypatch.chdir(tmp_path)
    fl.datasets.challenger().to_csv("challenger.csv", index=False)
    commands = [
        line.strip()
        for lang, _, code, _ in _blocks(DOCS / "getting_started.md")
        if lang == "bash"
        for line in code.splitlines()
        if line.strip().startswith("fisherlab ")
    ]
    assert len(commands) >= 2
    for command in commands:
        code, _, err = call(capsys, *shlex.split(command)[1:])
        assert code == 0, (command, err)
    assert pathlib.Path("out.html").stat().st_size > 10_000
