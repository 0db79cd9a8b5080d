"""Standard models, ready to fit: generalized linear models (``glm``) and linear regression.

Each GLM family is one :class:`FamilyRecord` in :data:`FAMILIES` (distribution, links,
variance function, starting mean, extra parameter, support, R's dispersion convention),
each link one :class:`LinkRecord` in :data:`LINKS`; everything else reads the records.

Example:
    >>> import fisherlab as fl, numpy as np
    >>> from fisherlab import models
    >>> X = np.column_stack([np.ones(6), [0.0, 0.0, 1.0, 1.0, 2.0, 2.0]])
    >>> y = np.array([0.0, 1.0, 0.0, 1.0, 1.0, 1.0])
    >>> m = models.glm("binomial")            # logit link, y a 0/1 outcome
    >>> res = fl.fit(m, y, X, init=models.glm_start(m, y, X))
    >>> sorted(models.glm_covariance(res).se())
    ['beta[0]', 'beta[1]']
"""

from . import _prediction as _prediction  # registers res.predict for GLM fits
from ._deviance import null_deviance as null_deviance  # and res.deviance, res.lr_test's GLM checks
from ._families import (
    FAMILIES as FAMILIES,
    EtaSide as EtaSide,
    ExtraParameter as ExtraParameter,
    Family as Family,
    FamilyRecord as FamilyRecord,
)
from ._glm import GLM as GLM, glm as glm, linear_regression as linear_regression
from ._glm_fit import (
    BoundaryTest as BoundaryTest,
    fit_glm as fit_glm,
    overdispersion_test as overdispersion_test,
)
from ._links import LINKS as LINKS, Link as Link, LinkRecord as LinkRecord
from ._start import glm_start as glm_start
from ._summaries import (
    Dispersion as Dispersion,
    glm_covariance as glm_covariance,
    glm_dispersion as glm_dispersion,
)

__all__ = [
    "FAMILIES",
    "GLM",
    "LINKS",
    "BoundaryTest",
    "Dispersion",
    "EtaSide",
    "ExtraParameter",
    "Family",
    "FamilyRecord",
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
]
