"""Plots of forecasts: ``fl.plot.triangle`` draws the marginal confidence regions of information matrices.

Figures are :class:`matplotlib.figure.Figure` objects built without ``pyplot`` (no global backend
or figure registry is touched); Matplotlib is imported on the first call, not with this module.
"""

from ._triangle import triangle as triangle

__all__ = ["triangle"]
