"""`mixed` nests `direct` (phi -> 1) and `via-nr` (phi -> 0)."""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np
import pytest
from model_helpers import draw_theta, jitted, normalize


@pytest.mark.parametrize("nested,mu_phi", [("direct", 30.0), ("via-nr", -30.0)])
def test_mixed_reduces_to_fixed_share(models, nested, mu_phi):
    mixed, other = models["mixed"], models[nested]
    assert mixed.evidence_ids == other.evidence_ids
    f_mixed, f_other = jitted(mixed)[0], jitted(other)[0]
    rng = np.random.default_rng(3)
    for k in range(4):
        th = draw_theta(mixed, rng) if k else mixed.prior_median_theta()
        th.update(mu_phi=jnp.asarray(mu_phi), tau_phi=jnp.asarray(0.0))
        th_other = {name: th[name] for name in list(other.scalar_parameters) + list(other.vector_parameters)}
        ll_m = np.asarray(f_mixed(normalize(th)))
        ll_o = np.asarray(f_other(normalize(th_other)))
        assert np.all(np.isfinite(ll_m)) and np.all(np.isfinite(ll_o))
        np.testing.assert_allclose(ll_m, ll_o, rtol=0, atol=1e-8)


def test_without_a_nam_pool_the_blood_course_is_the_pool_free_one(models):
    """No first pass (f_fp -> 0) and no NAM rise (clearance d -> inf): the human blood course is
    the one of a model without the NAM pool (the parameter mapping without its keys, m = 1)."""
    import jax

    from nadfit.models import averaged

    model = models["mixed"]
    rng = np.random.default_rng(8)
    th = draw_theta(model, rng)
    th.update(f_fp=jnp.asarray(1e-14), d_nam=jnp.asarray(1e14))
    p = model._blood_params(th)
    free = {k: v for k, v in p.items() if k not in ("sigma_nam", "d_nam", "fp_odds")}
    nr = model._nr_rate0 + th["titration"] * model._titration_mask

    def course(q):
        return averaged.blood_course(q, model._nmn_rate, nr, model._grid_steps, doses_per_day=model._doses,
                                     classes=model._classes)[0]

    np.testing.assert_allclose(np.asarray(jax.jit(course)(p)), np.asarray(jax.jit(course)(free)), rtol=1e-10)


def test_serum_nam_is_the_inflow_balance(models):
    """EV242's model quantity is log m = log(1 + (first pass + intact flux) / d) of the Katayoshi
    regimen, the same under every hypothesis at equal intact flux (NAM does not see the route)."""
    from nadfit.models.core import daily_regimen

    model = models["via-nr"]
    th = model.prior_median_theta()
    reg = daily_regimen("NMN", 250.0, 84, doses_per_day=2)
    got = float(model.log_nam(th, [reg])[0])
    p = model._blood_params(th)
    g = 0.25
    want = np.log1p((p["fp_odds"] * p["pi_nmn"] * g + p["pi_nmn"] * g) / p["d_nam"])  # via-nr: linear route
    assert abs(got - float(want)) < 1e-12
    i = model.evidence_ids.index("EV242")
    assert abs(float(model.loglik_and_pred(th)[1][i]) - got) < 1e-12
