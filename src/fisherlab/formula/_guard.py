"""What a formula may run: an allow-list check of the Python inside formula terms, before evaluation.

formulaic evaluates a formula term such as ``np.log(x)`` or ``I(x**2)`` as Python
code, so a formula read from a command line, a file or a web form could run
anything (``I(np.f2py.os.system('...'))``). :func:`check_formula` walks the
syntax tree of every such term and accepts only:

- column names: bare (``x``), backtick-quoted (`` `my col` ``) or ``Q('my col')``
  (a string literal naming a column);
- numbers, strings, ``True``/``False``/``None`` and lists, tuples, sets and dicts of them;
- arithmetic ``+ - * / // % **``, comparisons ``== != < <= > >=``, ``& | ^ ~``,
  ``and``/``or``/``not`` and unary ``+``/``-`` (no operator takes a string or a
  container operand, and a power of two literals needs a literal exponent of at
  most 1024: ``9**9**9`` would run for ever);
- the elementwise NumPy functions :data:`NUMPY_FUNCTIONS`, called as ``np.<name>(...)``,
  and the constants ``np.pi`` and ``np.e``;
- formulaic's transforms :data:`FORMULAIC_TRANSFORMS`, called by name: ``C`` (with a
  contrast such as ``contr.treatment('b')``, ``Treatment('b')`` or ``levels=[...]``),
  ``I``, ``Q``, ``center``, ``scale``, ``standardize``, ``poly``, the splines ``bs``,
  ``cr``, ``cs``, ``cc``, ``lag``, ``hashed`` and ``log``/``log2``/``log10``/``exp``/
  ``exp2``/``exp10``; the contrast classes ``contr.<name>`` (:data:`CONTRASTS`) and
  ``Treatment``, ``Sum``, ``Poly``, ``Helmert``, ``Diff``.

Everything else is refused with :class:`~fisherlab.UnsafeFormulaError` naming the term and the
offending token: other attributes (``np.f2py``, ``x.values``), calls of other names,
names with double underscores, keyword arguments starting with ``_``, subscripts,
``lambda``, comprehensions, ``:=``, f-strings, ``*``/``**`` unpacking, conditional
expressions and any name that is not a column of the data (``eval``, ``open``). The
check is pure Python (``ast``) and imports no formula library: the caller passes the
factors of its parsed formula (``(expression, eval_method)`` pairs, see
:func:`formula_factors`) and the data's column names.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Collection, Iterable
from typing import Any

from .._errors import UnsafeFormulaError

__all__ = [
    "CONTRASTS",
    "FORMULAIC_TRANSFORMS",
    "NUMPY_CONSTANTS",
    "NUMPY_FUNCTIONS",
    "UnsafeFormulaError",
    "check_formula",
    "formula_factors",
    "parse_term",
]

NUMPY_FUNCTIONS = frozenset(
    {
        "abs", "absolute", "fabs", "sign", "sqrt", "cbrt", "square", "power", "reciprocal",
        "exp", "exp2", "expm1", "log", "log1p", "log2", "log10", "logaddexp",
        "sin", "cos", "tan", "arcsin", "arccos", "arctan", "arctan2", "hypot",
        "sinh", "cosh", "tanh", "arcsinh", "arccosh", "arctanh", "deg2rad", "rad2deg",
        "floor", "ceil", "round", "rint", "trunc", "clip", "minimum", "maximum", "fmin", "fmax",
        "where",
    }
)  # fmt: skip
"""Elementwise NumPy functions a formula may call as ``np.<name>(...)``."""

NUMPY_CONSTANTS = frozenset({"pi", "e"})
"""NumPy constants a formula may read as ``np.<name>``."""

FORMULAIC_TRANSFORMS = frozenset(
    {
        "C", "I", "Q", "center", "scale", "standardize", "poly", "bs", "cr", "cs", "cc", "lag",
        "hashed", "log", "log2", "log10", "exp", "exp2", "exp10",
        "Treatment", "Sum", "Poly", "Helmert", "Diff",
    }
)  # fmt: skip
"""formulaic's transforms (its ``TRANSFORMS`` table, less the ``np`` module) a formula may call by name."""

CONTRASTS = frozenset({"treatment", "sum", "poly", "helmert", "diff", "SAS", "custom"})
"""formulaic's contrast codings a formula may name as ``contr.<name>``: ``C(g, contr.treatment('b'))``."""

# Contrast classes that may also appear as plain values: C(g, Treatment), C(g, contr.sum).
_VALUE_NAMES = frozenset({"Treatment", "Sum", "Poly", "Helmert", "Diff"})
_BIN_OPS = (
    ast.Add, ast.Sub, ast.Mult, ast.Div, ast.FloorDiv, ast.Mod, ast.Pow, ast.BitAnd, ast.BitOr, ast.BitXor
)  # fmt: skip
_UNARY_OPS = (ast.UAdd, ast.USub, ast.Invert, ast.Not)
_COMPARE_OPS = (ast.Eq, ast.NotEq, ast.Lt, ast.LtE, ast.Gt, ast.GtE)
_MAX_LITERAL_EXPONENT = 1024
# A backtick-quoted name outside string literals (formulaic's own rule for Python terms).
_BACKTICK_SPLIT = re.compile(r"(\\\"|\"(?:\\\"|[^\"])*\"|\\'|'(?:\\'|[^'])*'|`)")
_ALIAS = "_fisherlab_quoted_{}_"


def formula_factors(parsed: Any) -> list[tuple[str, str]]:
    """The factors of a parsed formulaic ``Formula``, both sides, as ``(expression, eval_method)`` pairs.

    Args:
        parsed: a ``formulaic.Formula`` (one- or two-sided); read through its ``lhs``/``rhs``
            (or itself when one-sided), terms, factors, ``expr`` and ``eval_method``.

    Returns:
        ``[(expr, method), ...]`` with ``method`` one of ``"lookup"`` (a plain column name),
        ``"literal"`` (a number) or ``"python"`` (code formulaic evaluates).
    """
    sides = [getattr(parsed, side) for side in ("lhs", "rhs") if hasattr(parsed, side)] or [parsed]
    factors: list[tuple[str, str]] = []
    for side in sides:
        for term in side:
            for factor in term.factors:
                method = getattr(factor.eval_method, "value", factor.eval_method)
                factors.append((str(factor.expr), str(method)))
    return factors


def _sanitize(expr: str) -> tuple[str, dict[str, str]]:
    """``expr`` with each backtick-quoted name replaced by an alias, and ``{alias: name}``."""
    aliases: dict[str, str] = {}
    parts = _BACKTICK_SPLIT.split(expr)
    out: list[str] = []
    i = 0
    while i < len(parts):
        if parts[i] == "`" and "`" in parts[i + 1 :]:
            close = parts.index("`", i + 1)
            alias = _ALIAS.format(len(aliases))
            aliases[alias] = "".join(parts[i + 1 : close])
            out.append(f" {alias} ")
            i = close + 1
        else:
            out.append(parts[i])
            i += 1
    return "".join(out).strip(), aliases


def parse_term(expr: str) -> tuple[ast.Expression, dict[str, str]]:
    """Parse a formula term's Python, with backtick-quoted names replaced by aliases.

    Args:
        expr: the term, e.g. ``"np.log(`my col`)"``.

    Returns:
        The ``ast.Expression`` and ``{alias: column name}`` for the quoted names.

    Raises:
        SyntaxError: ``expr`` is not a Python expression.
    """
    source, aliases = _sanitize(expr)
    return ast.parse(source, mode="eval"), aliases


def _is_literal(node: ast.expr) -> bool:
    """A number, or a negated number."""
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.UAdd, ast.USub)):
        node = node.operand
    return (
        isinstance(node, ast.Constant)
        and isinstance(node.value, (int, float))
        and not isinstance(node.value, bool)
    )


def _has_name(node: ast.AST) -> bool:
    return any(isinstance(n, (ast.Name, ast.Call)) for n in ast.walk(node))


class _Checker:
    """One term: an explicit-stack walk (no recursion limit on long sums) with each node's role."""

    def __init__(self, term: str, aliases: dict[str, str], columns: Collection[str] | None) -> None:
        self.term = term
        self.aliases = aliases
        self.columns = columns

    def text(self, node: ast.AST, source: str) -> str:
        segment = ast.get_source_segment(source, node) or type(node).__name__
        for alias, name in self.aliases.items():
            segment = segment.replace(alias, f"`{name}`")
        return " ".join(segment.split())

    def fail(self, node: ast.AST, source: str, what: str) -> UnsafeFormulaError:
        token = self.text(node, source)
        return UnsafeFormulaError(
            f"the formula term {self.term!r} {what.format(token=repr(token))}", term=self.term, token=token
        )

    def column(self, name: str, node: ast.AST, source: str) -> None:
        if "__" in name:
            raise self.fail(node, source, "uses the name {token}: names with '__' are not allowed")
        if self.columns is not None and name not in self.columns:
            raise self.fail(node, source, "uses {token}, which is not a column of the data")

    def callee(self, func: ast.expr, source: str) -> str:
        """The allowed function a call names (``np.log``, ``C``, ``contr.treatment``), or raise."""
        if isinstance(func, ast.Name) and func.id in FORMULAIC_TRANSFORMS:
            return func.id
        if (
            isinstance(func, ast.Attribute)
            and isinstance(func.value, ast.Name)
            and (
                (func.value.id == "np" and func.attr in NUMPY_FUNCTIONS)
                or (func.value.id == "contr" and func.attr in CONTRASTS)
            )
        ):
            return f"{func.value.id}.{func.attr}"
        raise self.fail(func, source, "calls {token}, which is not an allowed function")

    def check(self, tree: ast.Expression, source: str) -> None:
        stack: list[ast.AST] = [tree.body]
        while stack:
            node = stack.pop()
            if isinstance(node, ast.Constant):
                if not isinstance(node.value, (int, float, complex, str, bool, type(None))):
                    raise self.fail(node, source, "contains the literal {token}")
            elif isinstance(node, ast.Name):
                name = self.aliases.get(node.id, node.id)
                if name in _VALUE_NAMES and (self.columns is None or name not in self.columns):
                    continue
                self.column(name, node, source)
            elif isinstance(node, ast.Attribute):
                base = node.value
                if isinstance(base, ast.Name) and (
                    (base.id == "np" and node.attr in NUMPY_CONSTANTS)
                    or (base.id == "contr" and node.attr in CONTRASTS)
                ):
                    continue
                raise self.fail(node, source, "reads the attribute {token}, which is not allowed")
            elif isinstance(node, ast.Call):
                name = self.callee(node.func, source)
                for arg in node.args:
                    if isinstance(arg, ast.Starred):
                        raise self.fail(arg, source, "unpacks {token} into a call")
                for kw in node.keywords:
                    if kw.arg is None:
                        raise self.fail(kw.value, source, "unpacks {token} into a call")
                    if kw.arg.startswith("_"):
                        raise self.fail(kw, source, "passes the private argument {token}")
                if name == "Q":
                    if len(node.args) != 1 or node.keywords:
                        raise self.fail(node, source, "calls {token}: Q takes one quoted column name")
                    arg = node.args[0]
                    if not (isinstance(arg, ast.Constant) and isinstance(arg.value, str)):
                        raise self.fail(arg, source, "calls Q with {token}: Q takes a quoted column name")
                    self.column(arg.value, arg, source)
                    continue
                stack.extend(node.args)
                stack.extend(kw.value for kw in node.keywords)
            elif isinstance(node, ast.BinOp):
                if not isinstance(node.op, _BIN_OPS):
                    raise self.fail(node, source, "uses an operator that is not allowed in {token}")
                for side in (node.left, node.right):
                    if isinstance(side, (ast.List, ast.Tuple, ast.Set, ast.Dict)) or (
                        isinstance(side, ast.Constant) and isinstance(side.value, str)
                    ):
                        raise self.fail(
                            node, source, "applies arithmetic to a string or container in {token}"
                        )
                if isinstance(node.op, ast.Pow) and not (_has_name(node.left) or _has_name(node.right)):
                    exponent = node.right
                    if not (
                        _is_literal(node.left)
                        and _is_literal(exponent)
                        and abs(ast.literal_eval(exponent)) <= _MAX_LITERAL_EXPONENT
                    ):
                        raise self.fail(
                            node,
                            source,
                            f"computes the power {{token}} of constants: write the number, or keep "
                            f"constant exponents literal and at most {_MAX_LITERAL_EXPONENT}",
                        )
                stack.extend((node.left, node.right))
            elif isinstance(node, ast.UnaryOp):
                if not isinstance(node.op, _UNARY_OPS):
                    raise self.fail(node, source, "uses an operator that is not allowed in {token}")
                stack.append(node.operand)
            elif isinstance(node, ast.Compare):
                if not all(isinstance(op, _COMPARE_OPS) for op in node.ops):
                    raise self.fail(node, source, "uses a comparison that is not allowed in {token}")
                stack.append(node.left)
                stack.extend(node.comparators)
            elif isinstance(node, ast.BoolOp):
                stack.extend(node.values)
            elif isinstance(node, (ast.List, ast.Tuple, ast.Set)):
                stack.extend(node.elts)
            elif isinstance(node, ast.Dict):
                if any(k is None for k in node.keys):
                    raise self.fail(node, source, "unpacks a mapping in {token}")
                stack.extend(k for k in node.keys if k is not None)
                stack.extend(node.values)
            else:
                what = {
                    ast.Lambda: "defines a lambda {token}",
                    ast.Subscript: "indexes with {token}",
                    ast.NamedExpr: "assigns with := in {token}",
                    ast.JoinedStr: "contains the f-string {token}",
                    ast.IfExp: "contains the conditional expression {token}",
                }.get(type(node), "contains {token}, which is not allowed in a formula")
                raise self.fail(node, source, what)


def check_formula(factors: Iterable[tuple[str, str]], columns: Collection[str] | None = None) -> None:
    """Refuse formula terms whose Python goes beyond the allowed list (see the module docstring).

    Run it before the formula is evaluated: it evaluates nothing itself.

    Args:
        factors: ``(expression, eval_method)`` pairs, as :func:`formula_factors` returns them;
            ``"lookup"`` and ``"literal"`` factors are plain names and numbers, every other
            method is checked as Python.
        columns: the data's column names; when given, every name a term reads must be one of
            them (so ``eval`` or ``open`` cannot be passed as a value).

    Raises:
        UnsafeFormulaError: a term calls, reads or builds something outside the allowed list;
            the message names the term and the offending token.

    Examples:
        >>> check_formula([("np.log(x)", "python"), ("C(g, contr.treatment('b'))", "python")])
        >>> check_formula([("I(np.f2py.os.system('ls') + x)", "python")])
        Traceback (most recent call last):
        ...
        fisherlab._errors.UnsafeFormulaError: the formula term ... calls 'np.f2py.os.system', ...
    """
    for expr, method in factors:
        if method in ("lookup", "literal"):
            continue
        source, aliases = _sanitize(expr)
        try:
            tree = ast.parse(source, mode="eval")
        except SyntaxError as exc:
            raise UnsafeFormulaError(
                f"the formula term {expr!r} is not a Python expression ({exc.msg})", term=expr, token=expr
            ) from None
        _Checker(expr, aliases, columns).check(tree, source)
