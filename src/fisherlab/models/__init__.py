"""Standard models, ready to fit: generalized linear models (``glm``) and linear regression.

Each GLM family is one :class:`FamilyRecord` in :data:`FAMILIES` (distribution, links,
variance function, starting mean, extra parameter, support, R's dispersion convention),
each link one :class:`LinkRecord` in :data:`LINKS`; everything else reads the records.

Examples:
    >>> import fisherlab as fl, numpy as np
    >>> from fisherlab import models
    >>> X = np.column_stack([np.ones(6), [0.0, 0.0, 1.0, 1.0, 2.0, 2.0]])
    >>> y = np.array([0.0, 1.0, 0.0, 1.0, 1.0, 1.0])
    >>> m = models.glm("binomial")            # logit link, y a 0/1 outcome
    >>> res = fl.fit(m, y, X, init=models.glm_start(m, y, X))
    >>> sorted(models.glm_covariance(res).se())
    ['beta[0]', 'beta[1]']
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

from ._traits import FAMILY_TRAITS as FAMILY_TRAITS, Family as Family, FamilyTraits as FamilyTraits

if TYPE_CHECKING:
    from ._design import LIKELIHOOD_WEIGHTS as LIKELIHOOD_WEIGHTS, takes_weights as takes_weights
    from ._deviance import null_deviance as null_deviance
    from ._families import (
        FAMILIES as FAMILIES,
        EtaSide as EtaSide,
        ExtraParameter as ExtraParameter,
        FamilyRecord as FamilyRecord,
    )
    from ._glm import GLM as GLM, glm as glm, linear_regression as linear_regression
    from ._glm_fit import (
        BoundaryTest as BoundaryTest,
        fit_glm as fit_glm,
        overdispersion_test as overdispersion_test,
    )
    from ._glm_result import GLMFit as GLMFit
    from ._links import LINKS as LINKS, Link as Link, LinkRecord as LinkRecord
    from ._start import glm_start as glm_start
    from ._summaries import (
        Dispersion as Dispersion,
        glm_covariance as glm_covariance,
        glm_dispersion as glm_dispersion,
    )

# Everything but the names above needs JAX and is imported on first use (PEP 562), so the
# command line's help reads the families without it. The modules that fill inference/'s
# plug-in points for GLM fits (res.predict; res.deviance and lr_test's checks) load first.
_PLUGINS = ("_prediction", "_deviance")
_LAZY = {
    "null_deviance": "_deviance",
    **dict.fromkeys(("LIKELIHOOD_WEIGHTS", "takes_weights"), "_design"),
    **dict.fromkeys(("FAMILIES", "EtaSide", "ExtraParameter", "FamilyRecord"), "_families"),
    **dict.fromkeys(("GLM", "glm", "linear_regression"), "_glm"),
    **dict.fromkeys(("BoundaryTest", "fit_glm", "overdispersion_test"), "_glm_fit"),
    "GLMFit": "_glm_result",
    **dict.fromkeys(("LINKS", "Link", "LinkRecord"), "_links"),
    "glm_start": "_start",
    **dict.fromkeys(("Dispersion", "glm_covariance", "glm_dispersion"), "_summaries"),
}


if not TYPE_CHECKING:  # hidden from type checkers, so that a misspelt name is still an error there

    def __getattr__(name: str) -> object:
        """Import ``name`` on first use (PEP 562), after the GLM plug-ins, and keep it in the module."""
        module = _LAZY.get(name)
        if module is None:
            raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
        for plugin in _PLUGINS:
            importlib.import_module(f"{__name__}.{plugin}")
        value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
        globals()[name] = value
        return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})


__all__ = [
    "FAMILIES",
    "FAMILY_TRAITS",
    "GLM",
    "LIKELIHOOD_WEIGHTS",
    "LINKS",
    "BoundaryTest",
    "Dispersion",
    "EtaSide",
    "ExtraParameter",
    "Family",
    "FamilyRecord",
    "FamilyTraits",
    "GLMFit",
    "Link",
    "LinkRecord",
    "fit_glm",
    "glm",
    "glm_covariance",
    "glm_dispersion",
    "glm_start",
    "linear_regression",
    "null_deviance",
    "overdispersion_test",
    "takes_weights",
]
