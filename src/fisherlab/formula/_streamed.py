r"""``fisherlab.glm`` on a table read in chunks: the design fixed by a first pass, then streamed.

A GLM's design matrix depends on the whole table, not only on each row: a categorical column
gives one column per level *of the whole column* (sorted as pandas sorts them), and stateful
transforms learn their state from the whole column (``center(x)`` its mean). Built chunk by
chunk, each chunk would get its own levels and means, and the columns would shift between
chunks. So a table source (:class:`~fisherlab.data.TableSource`) is read in two stages:

1. **The first pass** reads only the columns the formula uses (and the weights, offset and
   exposure columns), checks every chunk as :func:`~fisherlab.formula.build_design` checks a
   table in memory (missing values, typos in numeric columns, the response's support, non-finite
   design entries: each named by column and by the source's row, with the chunk), and gathers
   the design's state: every categorical factor's levels over all chunks (the union, in the
   order pandas gives the whole column: sorted, or a categorical dtype's own order when every
   chunk has the same), and the state of the stateful transforms, exactly:

   .. math:: \bar x = \frac{1}{N}\sum_k n_k \bar x_k, \qquad
             s^2 = \frac{1}{N - \delta}\Big[\sum_k n_k s_k^2 + \sum_k n_k(\bar x_k - \bar x)^2\Big]

   for ``center``, ``scale`` and ``standardize`` (:math:`\bar x_k`, :math:`s_k^2` the mean and
   the 1/n variance of chunk :math:`k`, :math:`\delta` the ``ddof``; Chan, Golub & LeVeque 1983).
   Transforms whose state needs the whole column otherwise (``poly``; the splines ``bs``,
   ``cr``, ``cs``, ``cc`` without explicit ``knots``, ``lower_bound`` and ``upper_bound``; any
   other stateful transform whose state differs between chunks) and ``lag`` (which reads the
   previous row, across chunk boundaries) are a :class:`~fisherlab.FormulaError` saying how to
   declare the state.
2. **Every later pass** builds each chunk's design with that fixed formulaic ``ModelSpec``
   (:meth:`StreamedDesign.chunk_design`), so the design columns, their names and their order are
   those of ``fl.glm`` on the whole table in memory. A level that the first pass did not see (the
   file changed between passes) is an :class:`~fisherlab.InvalidDataError` naming the column, the
   level, the chunk and the row, never a silent shift of the columns.

:meth:`StreamedDesign.source` is the resulting :func:`fisherlab.data.chunks` source of
``(y, x)``, ``x`` as :func:`fisherlab.models.glm` takes it (``X``, or ``{"X", "trials",
"offset", "weights"}``), on which :func:`fisherlab.models.fit_glm` fits.

References:
    T. F. Chan, G. H. Golub and R. J. LeVeque (1983), "Algorithms for computing the sample
    variance: analysis and recommendations", *The American Statistician* 37, 242-247.
"""

from __future__ import annotations

import ast
import builtins
import copy
import dataclasses
import functools
import gc
import inspect
from collections.abc import Iterator
from typing import Any

import numpy as np
import pandas as pd

from .._errors import FisherlabError, FormulaError, InvalidDataError
from .._precision import float64
from ..data import Chunks, TableSource
from ..data._chunks import CompensatedSum, labelled
from ..models import GLM, Family, GLMFit, fit_glm
from ._design import Design, build_design, missing_report, new_rows, parse_formula
from ._fit import _renamed, design_names
from ._guard import FORMULAIC_TRANSFORMS, parse_term
from ._spelling import PYTHON, Spelling

__all__ = ["DesignSource", "StreamedDesign", "first_pass", "fit_plan", "glm_table"]

#: Stateful transforms whose state the first pass merges exactly (mean and variance are sums).
MOMENT_TRANSFORMS = frozenset({"center", "scale", "standardize"})

#: Splines, and the arguments that fix their state without data.
SPLINE_STATE = {
    "bs": ("knots", "lower_bound", "upper_bound"),
    "cr": ("knots", "lower_bound", "upper_bound"),
    "cs": ("knots", "lower_bound", "upper_bound"),
    "cc": ("knots", "lower_bound", "upper_bound"),
}

#: Transforms a table read in chunks cannot evaluate, and what to write instead.
REFUSED = {
    "poly": (
        "builds orthogonal polynomials from the whole column; write the powers instead, "
        "x + I(x**2) (the same fitted model, other coefficients)"
    ),
    "lag": (
        "reads the previous row, which lies in another chunk at each chunk's start; add the "
        "lagged column to the table before fitting"
    ),
}


def _call_name(node: ast.AST) -> str | None:
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
        return node.func.id
    return None


def _key_name(key: str) -> str | None:
    """The function a transform-state key (formulaic's text of the call) calls, if it parses."""
    try:
        return _call_name(ast.parse(key, mode="eval").body)
    except SyntaxError:
        return None


def _names_read(factors: list[tuple[str, str]], needed: list[str], allow_code: bool) -> list[str]:
    """The columns a formula reads: formulaic's required variables, and the names inside stateful
    transforms (``center(z)``), which formulaic leaves out of them."""
    known = {"np", "contr", *FORMULAIC_TRANSFORMS} | (set(vars(builtins)) if allow_code else set())
    names = list(needed)
    for expr, method in factors:
        if method == "lookup":
            names.append(expr)
        if method != "python":
            continue
        try:
            tree, aliases = parse_term(expr)
        except SyntaxError:
            continue
        callees = {id(node.func) for node in ast.walk(tree) if isinstance(node, ast.Call)}
        for node in ast.walk(tree):
            if isinstance(node, ast.Name) and id(node) not in callees:
                name = aliases.get(node.id, node.id)
                if name not in known:
                    names.append(name)
            elif (
                _call_name(node) == "Q"
                and isinstance(node, ast.Call)
                and node.args
                and isinstance(node.args[0], ast.Constant)
            ):
                names.append(str(node.args[0].value))
    return list(dict.fromkeys(names))


def _refuse_order_dependent(factors: list[tuple[str, str]]) -> None:
    """:data:`REFUSED` transforms anywhere in the formula: a :class:`FormulaError`."""
    for expr, method in factors:
        if method != "python":
            continue
        try:
            tree, _ = parse_term(expr)
        except SyntaxError:
            continue
        for node in ast.walk(tree):
            name = _call_name(node)
            if name in REFUSED:
                raise FormulaError(
                    f"the formula term {expr!r} cannot be evaluated on a table read in chunks: "
                    f"{name}() {REFUSED[name]}"
                )


def _bound_arguments(call: ast.Call, name: str, key: str) -> dict[str, Any]:
    """The literal arguments of a transform call, bound to formulaic's signature with defaults."""
    import formulaic.transforms

    function = formulaic.transforms.TRANSFORMS[name]
    try:
        args = [None] + [ast.literal_eval(a) for a in call.args[1:]]
        kwargs = {kw.arg: ast.literal_eval(kw.value) for kw in call.keywords if kw.arg is not None}
        bound = inspect.signature(function).bind(*args, **kwargs)
    except (ValueError, TypeError, SyntaxError) as exc:
        raise FormulaError(
            f"{key}: on a table read in chunks, the arguments of {name}() other than the data must be "
            f"literal values ({exc})"
        ) from exc
    bound.apply_defaults()
    return dict(bound.arguments)


def _merge_moments(key: str, states: list[tuple[int, dict[str, Any]]]) -> dict[str, Any]:
    """The state of ``center``/``scale``/``standardize`` over all chunks, from each chunk's
    ``(rows, state)`` computed with ``ddof = 0`` (module docstring)."""
    call = ast.parse(key, mode="eval").body
    assert isinstance(call, ast.Call)
    name = _call_name(call) or ""
    for node in ast.walk(call):
        if node is not call and _call_name(node) in (MOMENT_TRANSFORMS | set(SPLINE_STATE) | set(REFUSED)):
            raise FormulaError(
                f"the stateful transform {key!r} is nested in another one's argument: on a table read "
                "in chunks, write one stateful transform per term"
            )
    if name == "center":
        centre, spread, ddof = True, False, 1
    else:
        arguments = _bound_arguments(call, name, key)
        centre = arguments["center"]
        spread = arguments["scale" if name == "scale" else "rescale"]
        ddof = arguments["ddof"]
    n = sum(rows for rows, _ in states)
    first = states[0][1]
    merged = {"ddof": ddof, "center": first["center"], "scale": first["scale"]}
    computed_centre = isinstance(centre, bool) and centre
    if computed_centre:
        total = CompensatedSum()
        for rows, state in states:
            total.add(rows * np.asarray(state["center"], dtype=np.float64))
        merged["center"] = total.value / n
    if isinstance(spread, bool) and spread:
        squares = CompensatedSum()
        for rows, state in states:
            squares.add(rows * np.asarray(state["scale"], dtype=np.float64) ** 2)
            if computed_centre:
                squares.add(rows * (np.asarray(state["center"], dtype=np.float64) - merged["center"]) ** 2)
        with np.errstate(divide="ignore", invalid="ignore"):
            merged["scale"] = np.sqrt(squares.value / (n - ddof))
    return merged


def _explicit_splines(key: str) -> None:
    """A spline whose knots and bounds are not all given: a :class:`FormulaError` with the fix."""
    call = ast.parse(key, mode="eval").body
    name = _call_name(call)
    if not isinstance(call, ast.Call) or name not in SPLINE_STATE:
        return
    given = {kw.arg for kw in call.keywords}
    lacking = [arg for arg in SPLINE_STATE[name] if arg not in given]
    centred = any(
        kw.arg == "constraints" and isinstance(kw.value, ast.Constant) and kw.value.value == "center"
        for kw in call.keywords
    )
    if lacking or centred:
        what = f"without {', '.join(lacking)}" if lacking else "with constraints='center'"
        raise FormulaError(
            f"{key} {what} takes its state from the whole column (quantiles, range or column means), "
            f"which a table read in chunks does not have; declare it: {name}(x, knots=[...], "
            "lower_bound=..., upper_bound=...) (and no constraints='center')"
        )


def _merge_transforms(per_chunk: list[tuple[int, dict[str, Any]]]) -> dict[str, Any]:
    """The transform state of the whole table from each chunk's (see the module docstring)."""
    keys = list(dict.fromkeys(k for _, states in per_chunk for k in states))
    merged: dict[str, Any] = {}
    for key in keys:
        states = [(rows, states[key]) for rows, states in per_chunk if key in states]
        if _key_name(key) in MOMENT_TRANSFORMS:
            merged[key] = _merge_moments(key, states)
            continue
        _explicit_splines(key)
        first = states[0][1]
        if any(not _same(state, first) for _, state in states[1:]):
            raise FormulaError(
                f"the stateful transform {key!r} learns its state from the rows it is given, and the "
                "chunks of the table give it different states; give its state explicitly in the "
                "formula, or compute the column before fitting"
            )
        merged[key] = copy.deepcopy(first)
    return merged


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    try:
        return bool(np.array_equal(np.asarray(a, dtype=object), np.asarray(b, dtype=object)))
    except (TypeError, ValueError):
        return bool(a == b)


def _value_kind(value: Any) -> str:
    if isinstance(value, (str, bytes)):
        return "text"
    if isinstance(value, (bool, np.bool_)):
        return "boolean"
    return "number" if isinstance(value, (int, float, np.number)) else type(value).__name__


def factor_column(expr: str) -> str | None:
    """The column a categorical factor is (``g``, ``C(g)``, ``C(g, Treatment('b'))``,
    ``C(Q('my g'))``), or ``None`` for a computed one (``C(np.floor(x))``)."""
    try:
        tree, aliases = parse_term(expr)
    except SyntaxError:
        return None
    node = tree.body
    if _call_name(node) == "C" and isinstance(node, ast.Call) and node.args:
        node = node.args[0]
    if isinstance(node, ast.Name):
        return aliases.get(node.id, node.id)
    if (
        isinstance(node, ast.Call)
        and _call_name(node) == "Q"
        and node.args
        and isinstance(node.args[0], ast.Constant)
    ):
        return str(node.args[0].value)
    return None


def _merge_levels(key: str, lists: list[tuple[str, list[Any]]]) -> list[Any]:
    """A categorical factor's levels over all chunks: the chunks' own list when they all agree
    (a categorical dtype keeps its order), else the union in the order pandas sorts the whole
    column. Levels that are text in one chunk and numbers in another are an error."""
    first = lists[0][1]
    if all(levels == first for _, levels in lists):
        return list(first)
    kinds: dict[str, str] = {}
    for label, levels in lists:
        for value in levels:
            kinds.setdefault(_value_kind(value), label)
    if len(kinds) > 1:
        column = factor_column(key)
        fix = f"; for a CSV, from_csv(..., dtype={{{column!r}: str}})" if column else ""
        raise InvalidDataError(
            f"the categorical term {key!r} has "
            + " and ".join(f"{kind} levels (in {label})" for kind, label in kinds.items())
            + f": its column is read with another type in different chunks; give it one type{fix}"
        )
    values = [v for _, levels in lists for v in levels]
    return list(pd.Series(values).astype("category").cat.categories)


def _merge_encoders(per_chunk: list[tuple[str, dict[str, Any]]]) -> dict[str, Any]:
    """Every factor's kind (the same in every chunk) and a categorical factor's levels over all chunks."""
    merged: dict[str, Any] = {}
    keys = list(dict.fromkeys(k for _, states in per_chunk for k in states))
    for key in keys:
        seen = [(label, states[key]) for label, states in per_chunk if key in states]
        kind, state = seen[0][1]
        for label, (other, _) in seen[1:]:
            if other is not kind:
                column = factor_column(key)
                fix = f" write C({column}) to make it categorical everywhere, or" if column else ""
                raise InvalidDataError(
                    f"the term {key!r} is {kind.value} in {seen[0][0]} but {other.value} in {label}: "
                    f"its column holds numbers in some chunks and text in others;{fix} fix the "
                    "text (for a CSV, from_csv(..., dtype=...) gives the column one type)"
                )
        if "categories" in state:
            levels = _merge_levels(key, [(label, list(s["categories"])) for label, (_, s) in seen])
            merged[key] = (kind, {"categories": levels})
        else:
            merged[key] = (kind, copy.deepcopy(state))
    return merged


def _fresh(spec: Any) -> Any:
    """``spec`` with copies of its states (formulaic writes into them while it builds a design)."""
    return spec.update(
        transform_state=copy.deepcopy(spec.transform_state), encoder_state=copy.deepcopy(spec.encoder_state)
    )


@dataclasses.dataclass(frozen=True)
class StreamedDesign:
    """A GLM's design on a table read in chunks, fixed by :func:`first_pass`.

    Attributes:
        table: the table source.
        formula: the formula.
        options: :func:`~fisherlab.formula.build_design`'s keyword options (family, weights,
            offset, exposure, dropna, allow_code).
        read: the columns of the table the model reads.
        skeleton: a :class:`~fisherlab.formula.Design` without rows carrying the fixed formulaic
            spec, the design-column names and where the offset comes from (for ``predict``).
        levels: ``{factor: (column or None, levels)}`` of the categorical factors.
        n: the rows fitted (after ``missing="drop"``).
        dropped: the rows dropped for missing values.
    """

    table: TableSource
    formula: str
    options: dict[str, Any]
    read: list[str]
    skeleton: Design
    levels: dict[str, tuple[str | None, list[Any]]]
    n: int
    dropped: int

    @property
    def columns(self) -> list[str]:
        """The design-matrix column names, as ``fl.glm`` on the table in memory names them."""
        return self.skeleton.columns

    def _check_levels(self, label: str, frame: pd.DataFrame) -> None:
        """A categorical factor's level that the first pass did not see: :class:`InvalidDataError`."""
        if not self.levels:
            return
        bad, _ = missing_report(frame, self.read)
        kept = frame.loc[~bad] if bad.any() else frame
        for expr, (column, levels) in self.levels.items():
            values = kept[column] if column is not None else _evaluated(expr, kept, self.skeleton.spec)
            if values is None:
                continue
            unseen = np.asarray(~values.isin(levels) & values.notna(), dtype=bool)
            if unseen.any():
                i = int(np.flatnonzero(unseen)[0])
                what = f"the column {column!r}" if column is not None else f"the categorical term {expr!r}"
                raise InvalidDataError(
                    f"{label}: {what} has the level {values.iloc[i]!r} at row {kept.index[i]}, which the "
                    f"first pass over the data did not see (its levels: {levels}): the data changed "
                    "between passes; fit data that stay the same while they are read"
                )

    def chunk_design(self, label: str, frame: pd.DataFrame) -> Design:
        """The design of one chunk, built with the fixed spec (errors prefixed with ``label``).

        formulaic's materializer leaves reference cycles that hold the chunk's columns (about
        three times the chunk) until Python's cyclic collector runs; a collection of the young
        generations right after the build frees them (about a millisecond), where waiting for a
        full collection let a pass's memory grow by a chunk's columns per chunk."""
        self._check_levels(label, frame)
        try:
            with labelled(label, (FisherlabError,)):
                return build_design(frame, self.formula, spec=_fresh(self.skeleton.spec), **self.options)
        finally:
            gc.collect(1)

    def _pairs(self) -> Iterator[tuple[Any, Any]]:
        for index, frame in enumerate(self.table.tables(self.read)):
            if self.options["dropna"] and missing_report(frame, self.read)[0].all():
                continue
            design = self.chunk_design(self.table.chunk_label(index, frame), frame)
            yield design.y, design.x

    def source(self) -> DesignSource:
        """The ``(y, x)`` chunk source of the design, re-read from the table at every pass."""
        return DesignSource(self)


class DesignSource(Chunks):
    """The ``(y, x)`` chunks of a :class:`StreamedDesign` (``num_rows``: the rows fitted).

    Building a chunk's design costs more than reading it back: a fit's passes after the first
    read a scratch copy (``spill``, :meth:`fisherlab.data.Chunks.keep_passes`)."""

    spill = True

    def __init__(self, design: StreamedDesign) -> None:
        super().__init__(design._pairs)
        self.design = design
        self.num_rows = design.n

    def __repr__(self) -> str:
        return f"<design of {self.design.formula!r} on {self.design.table!r}>"


def _evaluated(expr: str, frame: pd.DataFrame, spec: Any) -> pd.Series | None:
    """A computed categorical factor's values on ``frame``, as formulaic evaluates them."""
    from formulaic.transforms import TRANSFORMS
    from formulaic.utils.layered_mapping import LayeredMapping
    from formulaic.utils.stateful_transforms import stateful_eval

    env = LayeredMapping(
        LayeredMapping(frame, name="data"),
        LayeredMapping({}, name="context"),
        LayeredMapping(TRANSFORMS, name="transforms"),
    )
    try:
        with np.errstate(all="ignore"):
            value = stateful_eval(expr, env, {expr: None}, copy.deepcopy(spec.transform_state), spec)
    except Exception:  # formulaic reports it when it builds the design
        return None
    return pd.Series(np.asarray(getattr(value, "__wrapped__", value)), index=frame.index)


def first_pass(
    table: TableSource,
    formula: str,
    *,
    family: Family,
    weights: str | None = None,
    offset: str | None = None,
    exposure: str | None = None,
    dropna: bool = False,
    allow_code: bool = False,
    trials: str | None = None,
    keep: tuple[str, ...] = (),
    spelling: Spelling = PYTHON,
) -> StreamedDesign:
    """Read the table once: check every chunk and fix the design (module docstring).

    ``trials``, ``keep`` and ``spelling`` are :func:`~fisherlab.formula.build_design`'s (the
    command line's ``--trials``, the columns it uses beside the model, its option names).

    Raises:
        FormulaError: a bad formula; a transform whose state cannot be learned chunk by chunk.
        UnsafeFormulaError: a term outside the allow-list.
        InvalidDataError: a column not in the table; any data error of
            :func:`~fisherlab.formula.build_design`, prefixed with the chunk and its rows; a
            column with numbers in some chunks and text in others.
    """
    _, factors, needed = parse_formula(formula, allow_code=allow_code)
    _refuse_order_dependent(factors)
    extra = [c for c in (weights, offset, exposure, trials, *keep) if c is not None]
    read = list(dict.fromkeys([*_names_read(factors, needed, allow_code), *extra]))
    missing = [c for c in read if c not in table.columns]
    if missing:
        raise InvalidDataError(
            f"the model names column(s) {', '.join(map(repr, missing))} not in the data "
            f"({table.name}); columns are: {', '.join(map(str, table.columns))}"
        )
    options: dict[str, Any] = {
        "family": family,
        "weights": weights,
        "offset": offset,
        "exposure": exposure,
        "dropna": dropna,
        "allow_code": allow_code,
        "trials": trials,
        "keep": tuple(keep),
        "spelling": spelling,
    }
    learn: Any = None
    first: pd.DataFrame | None = None
    transforms: list[tuple[int, dict[str, Any]]] = []
    encoders: list[tuple[str, dict[str, Any]]] = []
    n = dropped = 0
    for index, frame in enumerate(table.tables(read)):
        label = table.chunk_label(index, frame)
        bad, _ = missing_report(frame, read)
        if dropna and bad.all():
            dropped += len(frame)
            continue
        try:
            with labelled(label, (FisherlabError,)):
                if learn is None:  # the keys of the moment transforms' states, then ddof = 0 for all
                    spec0 = build_design(frame, formula, **options).spec
                    keys = [k for k in spec0.transform_state if _key_name(k) in MOMENT_TRANSFORMS]
                    preset = {key: {"ddof": 0} for key in keys}
                    learn = spec0.update(structure=None, encoder_state={}, transform_state=preset)
                design = build_design(frame, formula, spec=_fresh(learn), **options)
        finally:
            gc.collect(1)  # formulaic's cycles hold the chunk's columns (StreamedDesign.chunk_design)
        if first is None:
            first = frame
        rows = len(design.y)
        n += rows
        dropped += design.dropped
        transforms.append((rows, design.spec.transform_state))
        encoders.append((label, design.spec.encoder_state))
    if first is None or learn is None:
        raise InvalidDataError(
            f"{table.name}: no rows to fit (the table is empty, or every row has a missing value)"
        )
    final = learn.update(
        structure=None, encoder_state=_merge_encoders(encoders), transform_state=_merge_transforms(transforms)
    )
    design = build_design(first, formula, spec=_fresh(final), **options)
    p = len(design.columns)
    skeleton = dataclasses.replace(
        design,
        y=np.empty(0),
        X=np.empty((0, p)),
        trials=None,
        weights=None,
        offset=None if design.offset is None else np.empty(0),
        rows=None,
        dropped=dropped,
    )
    levels = {
        key: (factor_column(key), list(state["categories"]))
        for key, (_, state) in design.spec.encoder_state.items()
        if "categories" in state
    }
    return StreamedDesign(table, formula, options, read, skeleton, levels, n, dropped)


def fit_plan(model: GLM, plan: StreamedDesign) -> GLMFit:
    """The streamed fit of ``model`` on ``plan``'s design source, named ``beta[i]`` (errors name the
    design columns), with a note of the rows dropped for missing values."""
    try:
        res = GLMFit.from_fit(fit_glm(model, plan.source(), None))
    except FisherlabError as exc:
        raise _renamed(exc, plan.skeleton) from exc
    if plan.dropped:
        res.notes.append(f"{plan.dropped} of {plan.dropped + plan.n} rows with missing values dropped")
    return res


@float64
def glm_table(
    model: GLM,
    table: TableSource,
    formula: str,
    dispersion: str,
    *,
    weights: str | None = None,
    offset: str | None = None,
    exposure: str | None = None,
    dropna: bool = False,
    allow_code: bool = False,
) -> GLMFit:
    """:func:`fisherlab.glm` on a table source: the first pass, then the streamed fit.

    The result's data are the design source (a :class:`~fisherlab.data._chunks.StreamedData`);
    its ``table`` and ``rows`` are ``None`` (nothing of size N is kept in memory), and
    ``predict(newdata)`` builds new rows' design with the fixed spec.

    Raises:
        FisherlabError: as :func:`fisherlab.glm`; errors of the fit name the design columns.
    """
    plan = first_pass(
        table,
        formula,
        family=model.family,
        weights=weights,
        offset=offset,
        exposure=exposure,
        dropna=dropna,
        allow_code=allow_code,
    )
    res = fit_plan(model, plan).with_dispersion(dispersion)
    named = res.rename(design_names(res.names, plan.columns))
    assert isinstance(named, GLMFit)
    named.newdata_design = functools.partial(new_rows, plan.skeleton)
    named.table, named.rows = None, None
    return named
