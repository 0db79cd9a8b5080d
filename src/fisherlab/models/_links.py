r"""GLM link functions, one record each: :math:`\eta = g(\mu)`, its inverse and :math:`d\mu/d\eta`.

===================  ============================  =============================  ===========================
link                 :math:`g(\mu)`                :math:`g^{-1}(\eta)`           :math:`d\mu/d\eta`
===================  ============================  =============================  ===========================
``identity``         :math:`\mu`                   :math:`\eta`                   1
``log``              :math:`\log\mu`               :math:`e^\eta`                 :math:`e^\eta`
``logit``            :math:`\log\{\mu/(1-\mu)\}`   :math:`1/(1+e^{-\eta})`        :math:`\mu(1-\mu)`
``probit``           :math:`\Phi^{-1}(\mu)`        :math:`\Phi(\eta)`             :math:`\varphi(\eta)`
``cauchit``          :math:`\tan\{\pi(\mu-1/2)\}`  :math:`1/2+\arctan(\eta)/\pi`  :math:`1/\{\pi(1+\eta^2)\}`
``cloglog``          :math:`\log\{-\log(1-\mu)\}`  :math:`1-\exp(-e^\eta)`        :math:`e^{\eta-e^\eta}`
``inverse``          :math:`1/\mu`                 :math:`1/\eta`                 :math:`-1/\eta^2`
``inverse_squared``  :math:`1/\mu^2`               :math:`1/\sqrt\eta`            :math:`-\eta^{-3/2}/2`
``sqrt``             :math:`\sqrt\mu`              :math:`\eta^2`                 :math:`2\eta`
===================  ============================  =============================  ===========================

The links of a probability (all but ``log`` among the binomial's) also carry
:math:`\log\{\mu/(1-\mu)\}` as a function of :math:`\eta` computed without rounding
:math:`\mu` to 0 or 1 (:attr:`LinkRecord.logit`): the binomial log-mass
:math:`y\,\mathrm{logit} - n\log(1+e^{\mathrm{logit}})` then stays finite, with its
derivatives, far into the tails, where ``probs=`` would give :math:`\log 0`.

Examples:
    >>> from fisherlab.models import LINKS, Link
    >>> float(LINKS[Link.LOGIT].inv(0.0)), LINKS[Link.LOG].logit is None
    (0.5, True)

References:
    R Core Team, ``?make.link``, ``?family``.
"""

from __future__ import annotations

import dataclasses
import enum
import math
from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import Any

import jax
import jax.numpy as jnp
from jax.scipy.special import log_ndtr, ndtr, ndtri

from ._aliases import names_of, resolve

__all__ = ["LINKS", "Link", "LinkRecord", "as_link"]

ArrayFn = Callable[[Any], Any]


class Link(str, enum.Enum):
    r"""Link functions :math:`\eta = g(\mu)`."""

    IDENTITY = "identity"
    LOG = "log"
    LOGIT = "logit"
    PROBIT = "probit"
    CAUCHIT = "cauchit"
    CLOGLOG = "cloglog"
    INVERSE = "inverse"
    INVERSE_SQUARED = "inverse_squared"
    SQRT = "sqrt"


@dataclasses.dataclass(frozen=True)
class LinkRecord:
    r"""Everything fisherlab knows about one link (JAX functions, any shape).

    Attributes:
        link: the :class:`Link`.
        fun: :math:`g(\mu)`.
        inv: :math:`g^{-1}(\eta)`.
        mu_eta: :math:`d\mu/d\eta` as a function of :math:`\eta`.
        logit: :math:`\log\{\mu/(1-\mu)\}` as a function of :math:`\eta`, accurate in
            both tails, for a link whose mean is a probability; ``None`` for the others
            (``log`` included: its mean :math:`e^\eta` may leave (0, 1), and the
            binomial then uses ``probs=`` so that the distribution reports it).
        aliases: R's other spellings (matched after lower-casing).
    """

    link: Link
    fun: ArrayFn
    inv: ArrayFn
    mu_eta: ArrayFn
    logit: ArrayFn | None = None
    aliases: tuple[str, ...] = ()


_RECORDS = (
    LinkRecord(Link.IDENTITY, lambda m: m, lambda e: e, jnp.ones_like),
    LinkRecord(Link.LOG, jnp.log, jnp.exp, jnp.exp),
    LinkRecord(
        Link.LOGIT,
        lambda m: jnp.log(m) - jnp.log1p(-m),
        jax.nn.sigmoid,
        lambda e: jax.nn.sigmoid(e) * jax.nn.sigmoid(-e),
        logit=lambda e: e,
    ),
    LinkRecord(
        Link.PROBIT,
        ndtri,
        ndtr,
        lambda e: jnp.exp(-0.5 * e**2) / math.sqrt(2.0 * math.pi),
        logit=lambda e: log_ndtr(e) - log_ndtr(-e),
    ),
    LinkRecord(
        Link.CAUCHIT,
        lambda m: jnp.tan(math.pi * (m - 0.5)),
        lambda e: 0.5 + jnp.arctan(e) / math.pi,
        lambda e: 1.0 / (math.pi * (1.0 + e**2)),
        # mu = atan2(1, -eta)/pi and 1 - mu = atan2(1, eta)/pi, both accurate in the tails
        logit=lambda e: jnp.log(jnp.arctan2(1.0, -e)) - jnp.log(jnp.arctan2(1.0, e)),
    ),
    LinkRecord(
        Link.CLOGLOG,
        lambda m: jnp.log(-jnp.log1p(-m)),
        lambda e: -jnp.expm1(-jnp.exp(e)),
        lambda e: jnp.exp(e - jnp.exp(e)),
        # mu = 1 - exp(-e^eta): log(1 - mu) = -e^eta
        logit=lambda e: jnp.log(-jnp.expm1(-jnp.exp(e))) + jnp.exp(e),
    ),
    LinkRecord(Link.INVERSE, lambda m: 1.0 / m, lambda e: 1.0 / e, lambda e: -1.0 / e**2),
    LinkRecord(
        Link.INVERSE_SQUARED,
        lambda m: 1.0 / m**2,
        lambda e: 1.0 / jnp.sqrt(e),
        lambda e: -0.5 * e**-1.5,
        aliases=("1/mu^2",),
    ),
    LinkRecord(Link.SQRT, jnp.sqrt, jnp.square, lambda e: 2.0 * e),
)

#: The link records, one per :class:`Link` (read-only).
LINKS: Mapping[Link, LinkRecord] = MappingProxyType({r.link: r for r in _RECORDS})

_BY_NAME = names_of(_RECORDS, "link")


def as_link(link: object) -> Link:
    """``link`` (a :class:`Link`, its value or an R alias, any case) as a :class:`Link`.

    Raises:
        ModelError: not a link, naming the valid ones.
    """
    return resolve(Link, _BY_NAME, link, "link", "links")
