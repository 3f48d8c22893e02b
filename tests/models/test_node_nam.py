"""The NAM level at the within-day rule's nodes (``averaged.within_day_nodes``) stays physical.

Found by replaying `direct`'s divergent NUTS transitions (session 23): with a strongly saturating
direct route (small k_a), fast tissue NAD+ and a strong NAM pool, the least-squares line of the
cells' first-pass inflow on their intact flux is steep, and at the lower node it went below
zero: a NAM level below 0, a negative NAMPT capacity and a non-finite log density
(Pencina 2023's twice-daily 2 g NMN)."""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from model_helpers import averaged_b, human_params

from nadfit.models import averaged
from nadfit.models.core import nam_level, nam_params

#: the parameters of one replayed divergence (rounded): direct route, k_a 0.06 g/day, tissue NAD+
#: half-life 8 min, NAM saturation sigma 0.994, pool clearance 0.56/day, first pass 61 %
SATURATED = human_params(phi=1.0, k_a=0.0612, k_t=24.0 * math.log(2.0) / 0.138, k_abs=24.0 * math.log(2.0) / 0.804,
                         k_x=24.0 * math.log(2.0) / 1.281, beta=262.9, kappa=0.894, ell=0.359, gamma=0.113,
                         pi_nmn=1.05, sigma_nam=167.3 / 168.3, d_nam=0.564, fp_odds=0.6068 / 0.3932)


def _nodes(p, g_per_day, doses):
    q = {k: jnp.asarray(float(v)) for k, v in p.items()}
    return averaged.within_day_nodes(q, jnp.array([g_per_day]), jnp.array([0.0]), np.array([doses]))


@pytest.mark.parametrize("doses", [1, 2])
def test_saturated_direct_route_keeps_nam_at_or_above_baseline(doses):
    nodes, weights, scale, beta = _nodes(SATURATED, 2.0, doses)
    assert np.all(np.isfinite(np.asarray(scale))) and np.all(np.asarray(scale) > 0.0)
    assert np.all(np.asarray(beta) > 0.0)
    b, _ = averaged_b(SATURATED, "NMN", 2000.0, 28.0, doses)
    assert np.all(np.isfinite(b)) and b[-1] > 1.0


@pytest.mark.parametrize("p", [SATURATED, human_params(phi=1.0, k_a=0.2, sigma_nam=0.9, d_nam=0.3, fp_odds=2.0)])
def test_node_nam_inside_the_cells_range(p):
    """The node's first-pass inflow lies within the cells' (filtered) range, so its NAM level lies
    between the cells' lowest and highest."""
    q = {k: jnp.asarray(float(v)) for k, v in p.items()}
    j, f, h = averaged.flux_cells(q, jnp.array([1.0]), jnp.array([0.0]), np.array([1]))
    lo = float(nam_level(jnp.min(j + f), nam_params(q)[1]))
    hi = float(nam_level(jnp.max(j + f), nam_params(q)[1]))
    _, _, scale, _ = _nodes(p, 1.0, 1)
    # NAMPT's capacity factor rises with the NAM level (core.nampt_at_nam): bounded by the cells'
    from nadfit.models.core import nampt_at_nam
    s_lo = float(nampt_at_nam(1.0, q["beta"], lo, nam_params(q)[0])[0])
    s_hi = float(nampt_at_nam(1.0, q["beta"], hi, nam_params(q)[0])[0])
    assert np.all(np.asarray(scale) >= s_lo * (1 - 1e-9)) and np.all(np.asarray(scale) <= s_hi * (1 + 1e-9))


def test_soft_clamp_is_the_identity_inside_and_bounded_outside():
    x = jnp.linspace(-1.0, 2.0, 301)
    y = np.asarray(averaged.soft_clamp(x, 0.0, 1.0))
    inside = (np.asarray(x) >= 0.1) & (np.asarray(x) <= 0.9)
    assert np.max(np.abs(y[inside] - np.asarray(x)[inside])) <= math.log1p(math.exp(-5.0)) / 50.0 + 1e-12
    assert y.min() >= 0.0 and y.max() <= 1.0 and np.all(np.diff(y) >= 0.0)
    # an empty range (every cell equal, e.g. no intake) returns it, with finite derivatives
    g = jax.grad(lambda a: averaged.soft_clamp(a, a, a))(0.0)
    assert np.isfinite(float(g)) and float(averaged.soft_clamp(0.3, 0.0, 0.0)) == 0.0
