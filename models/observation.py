"""Observation model: what each kind of reported statistic means as a likelihood.

Every scored evidence row becomes one term ``log p(row | theta)``:

* **Arm-level percent change** (``pct_change_from_baseline``, ``pct_change_median``):
  ``log(1 + value/100) ~ Normal(mu, sigma_arm)``, with ``mu`` the model's log fold change in
  that matrix, including study effects.
* **Direction findings** (``direction``/``statement`` rows): the reported finding is a binary
  observation ``F`` of a model quantity ``delta`` (a log ratio). ``P(F | delta) = eps + (1 - 2 eps)
  * Phi(...)`` with tolerance ``tau`` on the log scale and a misreport/contested-claim floor
  ``eps``:

  =====================  ===========================================================
  increase-like          Phi(delta / tau)
  decrease               Phi(-delta / tau)
  no_change              Phi((band - delta)/tau) - Phi((-band - delta)/tau)
  abolished / required   Phi((log(abolished_max) - delta) / tau)   (delta = log residual ratio)
  not_required           Phi((delta - log(not_required_min)) / tau)
  =====================  ===========================================================

* **p-value upper bound** ("p <= a vs placebo", two-sided two-sample t-test with n1, n2): the
  test statistic is censored: ``P(T >= t_crit)`` (a reported increase) where ``T`` is non-central t with
  ``ncp = diff / (sigma_person * sqrt(1/n1 + 1/n2))``, approximated by a normal with variance
  ``1 + ncp^2 / (2 df)``.
* **exact p-value** (paired test vs baseline, n): the observed |t| = ``t_{df}^{-1}(1 - p/2)`` has
  likelihood ``Normal(|t|; ncp, sqrt(1 + ncp^2/(2 df)))``.
* **Range of within-arm CVs** (min and max over arms): ``log CV_obs ~ Normal(log CV_model,
  se)``, ``CV_model = sigma_person / mu_arm`` (log-scale approximation of SD/mean of the change),
  ``se = sqrt(1/(2n) + CV_obs^2/n)`` (McKay's relative SE of a CV); min/max via a smooth min/max.
* **Range bounds of a model quantity** (e.g. NAD+ +40-60 %): soft one-sided bounds as for
  directions (``range_low``: Phi((delta - log(1+low))/tau); ``range_high`` the mirror).
* **Approximate values** (``approx_time_to_plateau``): ``log value ~ Normal(log model,
  log(approx_factor))``; a change stated as "about X %" across tissues (``pct_change_median``):
  ``log(1 + X/100) ~ Normal(model log fold, approx_log_sd)`` (it is not an arm mean with a
  sampling error, so the arm-level SD does not apply).
"""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np
from jax.scipy.stats import norm

from nadfit.models.settings import ObservationSettings  # noqa: F401 (defined there: no JAX needed)
from nadfit.models.special import ndtr

INCREASE = {"increase", "enabled", "restored", "higher", "high", "dose_dependent_increase",
            "improved", "occurs"}
DECREASE = {"decrease", "lower"}
NO_CHANGE = {"no_change"}
ABOLISHED = {"abolished", "required"}
NOT_REQUIRED = {"not_required", "preserved"}
KNOWN_DIRECTIONS = INCREASE | DECREASE | NO_CHANGE | ABOLISHED | NOT_REQUIRED


def direction_keyword(value_text: str) -> str:
    """'required (NRK1)' -> 'required'; 'no_change (maintained)' -> 'no_change'."""
    return str(value_text).split("(")[0].strip().split(" ")[0].strip()


def direction_prob(delta, keyword: str, s: ObservationSettings):
    """Probability of the reported finding given the model's log ratio ``delta``."""
    t = s.tau
    if keyword in INCREASE:
        p = ndtr(delta / t)
    elif keyword in DECREASE:
        p = ndtr(-delta / t)
    elif keyword in NO_CHANGE:
        p = ndtr((s.no_change_band - delta) / t) - ndtr((-s.no_change_band - delta) / t)
    elif keyword in ABOLISHED:
        p = ndtr((np.log(s.abolished_max) - delta) / t)
    elif keyword in NOT_REQUIRED:
        p = ndtr((delta - np.log(s.not_required_min)) / t)
    else:
        raise ValueError(f"no likelihood for direction keyword {keyword!r}")
    return s.eps + (1.0 - 2.0 * s.eps) * p


def log_direction(delta, keyword, s):
    return jnp.log(direction_prob(delta, keyword, s))


def log_bound(delta, bound_log, side: str, s: ObservationSettings):
    """Soft one-sided bound: side 'low' means delta >= bound_log, 'high' means delta <= bound."""
    z = (delta - bound_log) / s.tau if side == "low" else (bound_log - delta) / s.tau
    return jnp.log(s.eps + (1.0 - 2.0 * s.eps) * ndtr(z))


def _nct_sd(ncp, df):
    return jnp.sqrt(1.0 + ncp ** 2 / (2.0 * df))


def log_p_upper_bound(ncp, t_crit, df):
    """log P(T >= t_crit) for T ~ approx Normal(ncp, 1 + ncp^2/(2 df)).

    One-sided: the reported event is a significant *increase* (a significant decrease would not
    have been reported as one), so the lower tail of the two-sided test does not count."""
    sd = _nct_sd(ncp, df)
    p = ndtr((ncp - t_crit) / sd)
    return jnp.log(jnp.clip(p, 1e-300, 1.0))


def log_t_observed(ncp, t_obs, df):
    """Log density of an observed |t| (a two-sided p-value gives only the size of t): the
    normal approximation of the noncentral t folded at zero."""
    sd = _nct_sd(ncp, df)
    return jnp.logaddexp(norm.logpdf(t_obs, loc=ncp, scale=sd), norm.logpdf(-t_obs, loc=ncp, scale=sd))


#: smallest simulated two-sided p-value: ``stats.t.isf(P_FLOOR / 2, df)`` stays finite for every
#: df >= 1 (at 1e-300 it is -inf for df 7), so a simulated p round-trips to its |t|
P_FLOOR = 1e-250


def t_from_two_sided_p(p: float, df: float) -> float:
    """|t| of a two-sided p-value (``isf``: exact to machine precision for tiny p, where
    ``ppf(1 - p/2)`` loses digits below ~1e-12 and is infinite below ~1e-16)."""
    from scipy import stats

    return float(stats.t.isf(p / 2.0, df))


def two_sided_p(t: float, df: float) -> float:
    """Two-sided p-value of |t|, floored at :data:`P_FLOOR` (simulated results)."""
    from scipy import stats

    return float(max(2.0 * stats.t.sf(abs(t), df), P_FLOOR))


def log_normal_obs(y, mu, sigma):
    return norm.logpdf(y, loc=mu, scale=sigma)


def cv_relative_se(cv, n):
    """McKay's approximation of the relative standard error of a sample CV."""
    return float(np.sqrt(1.0 / (2.0 * n) + cv ** 2 / n))


def smooth_extreme(x, which: str, k: float):
    """Smooth min/max of a vector of log values."""
    from jax.scipy.special import logsumexp

    if which == "max":
        return logsumexp(k * x) / k
    return -logsumexp(-k * x) / k
