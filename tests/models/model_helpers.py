"""Helpers shared by the tests in tests/models (imported as a plain module)."""

from __future__ import annotations

import math

import jax.numpy as jnp
import numpy as np

from nadfit.models import averaged

HYPOTHESES = ("direct", "via-nr", "mixed")
SLOW_KEYS = ("beta", "kappa", "ell", "gamma", "k_e", "k_b", "k_t", "k_abs", "k_x", "pi_nmn", "pi_nr", "phi",
             "k_a")
#: the NAM pool's parameters (models/core.py nam_params): absent means no NAM pool
NAM_KEYS = ("sigma_nam", "d_nam", "fp_odds")


def draw_theta(model, rng: np.random.Generator) -> dict:
    """One prior draw: scalars from ``Prior.scipy().rvs``, z_* vectors from N(0, 1)."""
    th = {}
    for name, prior in model.priors().items():
        th[name] = jnp.asarray(np.float64(prior.scipy().rvs(random_state=rng)))
    for name, (_, labels) in model.vector_parameters.items():
        th[name] = jnp.asarray(rng.standard_normal(len(labels)))
    return th


def human_params(**kw) -> dict:
    """Parameters of the full (pulsed) system around the prior medians."""
    from nadfit.models.priors import registry

    reg = registry()
    p = dict(beta=reg["beta"].median(), kappa=1.0, ell=reg["ell"].median(), gamma=0.0, e_base=1.0,
             c=1.0, k_t=math.log(2.0) / 0.25, k_e=math.log(2.0) / 1.0, k_b=math.log(2.0) / 4.0,
             k_abs=24.0, k_x=7.0, pi_nmn=0.5, pi_nr=0.5, phi=1.0, k_a=1.0)
    p.update(kw)
    return p


def averaged_b(p: dict, compound: str, mg_per_day: float, days: float, doses_per_day: int = 1):
    """The production (time-scale-separated) path for one regimen: b at every day."""
    from nadfit.models.core import daily_regimen

    reg = daily_regimen(compound, mg_per_day, days, doses_per_day)
    nmn, nr = averaged.rate_grid([reg], 1.0, days)
    doses = averaged.doses_grid([reg], 1.0, days)
    keys = SLOW_KEYS + tuple(k for k in NAM_KEYS if k in p)
    b, e = blood_course_jit({k: jnp.asarray(float(p[k])) for k in keys}, jnp.asarray(nmn), jnp.asarray(nr), doses)
    return np.asarray(b[:, 0]), np.asarray(e[:, 0])


_blood_course_jit: dict = {}


def blood_course_jit(p, nmn, nr, doses):
    """``averaged.blood_course`` jitted once per dosing pattern (DT = 1 day) so repeated calls do
    not re-trace."""
    key = (np.shape(doses), np.asarray(doses).tobytes())
    if key not in _blood_course_jit:
        import jax

        d = np.asarray(doses)
        _blood_course_jit[key] = jax.jit(lambda p, a, b: averaged.blood_course(p, a, b, 1.0, doses_per_day=d))
    return _blood_course_jit[key](p, nmn, nr)


_JITTED: dict = {}


def normalize(th: dict) -> dict:
    """float64, non-weak arrays: one dtype signature, so jitted functions compile once."""
    return {k: jnp.asarray(np.asarray(v, dtype=np.float64)) for k, v in th.items()}


def jitted(model):
    """(loglik vector, summed loglik, gradient of the sum), jitted once per model object."""
    if id(model) not in _JITTED:
        import jax

        ll = lambda t: model.loglik_and_pred(t)[0]  # noqa: E731
        total = lambda t: jnp.sum(ll(t))  # noqa: E731
        _JITTED[id(model)] = (jax.jit(ll), jax.jit(total), jax.jit(jax.grad(total)))
    return _JITTED[id(model)]
