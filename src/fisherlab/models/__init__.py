"""Standard models, ready to fit: generalized linear models (``glm``) and linear regression.

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

from ._glm import (
    GLM as GLM,
    Dispersion as Dispersion,
    Family as Family,
    Link as Link,
    glm as glm,
    glm_covariance as glm_covariance,
    glm_dispersion as glm_dispersion,
    glm_start as glm_start,
    linear_regression as linear_regression,
)

__all__ = [
    "GLM",
    "Dispersion",
    "Family",
    "Link",
    "glm",
    "glm_covariance",
    "glm_dispersion",
    "glm_start",
    "linear_regression",
]
