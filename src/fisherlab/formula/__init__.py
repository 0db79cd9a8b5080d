"""Statistical models from formulas: ``fisherlab.glm("y ~ x + C(g)", data, family="poisson")``.

The face for formulas, shared by the Python API and the ``fisherlab`` command: one place
turns a table and a Wilkinson formula (parsed and evaluated by formulaic) into a GLM's
response and design, with the checks both faces make: the allow-list a formula's terms
must pass before formulaic runs them (:func:`check_formula`), numeric columns with typos
(:func:`check_numeric_columns`), missing values, the family's support of the response and
design columns too large for float64 (:func:`build_design`); and one place fits it
(:func:`fit_design`, errors naming the design columns). A table read in chunks (a
:class:`~fisherlab.data.TableSource`) gets its design fixed by a first pass and its fit streamed
(:func:`first_pass`, :func:`glm_table`). Modules: ``_guard`` (the allow-list), ``_columns``
(typos), ``_design`` (the design), ``_fit`` (the fit, names), ``_glm`` (:func:`glm`),
``_streamed`` (tables in chunks), ``_spelling`` (the options a message suggests, per face).
"""

from .._errors import FormulaError as FormulaError, UnsafeFormulaError as UnsafeFormulaError
from ._candidates import Candidates as Candidates, design_candidates as design_candidates
from ._columns import (
    MALFORMED_NUMBER as MALFORMED_NUMBER,
    TYPO_SHARE as TYPO_SHARE,
    check_numeric_columns as check_numeric_columns,
    formula_name as formula_name,
    non_numeric as non_numeric,
    non_numeric_rows as non_numeric_rows,
)
from ._design import (
    MAX_SUM_OF_SQUARES as MAX_SUM_OF_SQUARES,
    Design as Design,
    allow_code_hint as allow_code_hint,
    build_design as build_design,
    missing_report as missing_report,
    parse_formula as parse_formula,
)
from ._fit import (
    coefficient_names as coefficient_names,
    design_names as design_names,
    fit_design as fit_design,
)
from ._glm import GLMDispersion as GLMDispersion, Missing as Missing, glm as glm
from ._guard import (
    CONTRASTS as CONTRASTS,
    FORMULAIC_TRANSFORMS as FORMULAIC_TRANSFORMS,
    NUMPY_CONSTANTS as NUMPY_CONSTANTS,
    NUMPY_FUNCTIONS as NUMPY_FUNCTIONS,
    check_formula as check_formula,
    formula_factors as formula_factors,
    parse_term as parse_term,
)
from ._spelling import PYTHON as PYTHON, Spelling as Spelling
from ._streamed import (
    StreamedDesign as StreamedDesign,
    first_pass as first_pass,
    fit_plan as fit_plan,
    glm_table as glm_table,
)

__all__ = [
    "CONTRASTS",
    "FORMULAIC_TRANSFORMS",
    "MALFORMED_NUMBER",
    "MAX_SUM_OF_SQUARES",
    "NUMPY_CONSTANTS",
    "NUMPY_FUNCTIONS",
    "PYTHON",
    "TYPO_SHARE",
    "Candidates",
    "Design",
    "FormulaError",
    "GLMDispersion",
    "Missing",
    "Spelling",
    "StreamedDesign",
    "UnsafeFormulaError",
    "allow_code_hint",
    "build_design",
    "check_formula",
    "check_numeric_columns",
    "coefficient_names",
    "design_candidates",
    "design_names",
    "first_pass",
    "fit_design",
    "fit_plan",
    "formula_factors",
    "formula_name",
    "glm",
    "glm_table",
    "missing_report",
    "non_numeric",
    "non_numeric_rows",
    "parse_formula",
    "parse_term",
]
