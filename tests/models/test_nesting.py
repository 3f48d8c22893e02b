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
