"""jax.grad of the summed evidence log-likelihood vs central finite differences (float64)."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from model_helpers import HYPOTHESES, draw_theta

REL_STEP = 1e-6
REL_TOL = 1e-4
#: derivatives smaller than this (absolute) are treated as ~0 and skipped
ZERO = 1e-6


def gradient_errors(model, th) -> dict[str, float]:
    """Relative error |ad - fd| / max(|ad|, |fd|) per scalar coordinate (vectors as name[i])."""
    f = jax.jit(lambda t: jnp.sum(model.loglik_and_pred(t)[0]))
    g = jax.jit(jax.grad(lambda t: jnp.sum(model.loglik_and_pred(t)[0])))(th)
    out = {}
    for name, val in th.items():
        arr = np.atleast_1d(np.asarray(val, dtype=float))
        for i in range(arr.size):
            h = REL_STEP * max(abs(arr[i]), 1e-2)
            up, dn = arr.copy(), arr.copy()
            up[i] += h
            dn[i] -= h
            shape = np.shape(val)
            tu = dict(th, **{name: jnp.asarray(up.reshape(shape))})
            td = dict(th, **{name: jnp.asarray(dn.reshape(shape))})
            fd = (float(f(tu)) - float(f(td))) / (2 * h)
            ad = float(np.atleast_1d(np.asarray(g[name]))[i])
            if max(abs(ad), abs(fd)) < ZERO:
                continue
            key = name if arr.size == 1 and np.ndim(val) == 0 else f"{name}[{i}]"
            out[key] = abs(ad - fd) / max(abs(ad), abs(fd))
    return out


def thetas(model, n_random=3, seed=11):
    rng = np.random.default_rng(seed)
    return [model.prior_median_theta()] + [draw_theta(model, rng) for _ in range(n_random)]


@pytest.mark.parametrize("hypothesis", HYPOTHESES)
def test_gradient_matches_finite_differences(models, hypothesis):
    model = models[hypothesis]
    for k, th in enumerate(thetas(model)):
        errs = gradient_errors(model, th)
        assert errs, "no non-zero derivative found"
        worst = max(errs, key=errs.get)
        assert errs[worst] < REL_TOL, (hypothesis, k, worst, errs[worst])
