"""Issue #15 item 5: the human dose-response shape is learnable (both shapes reachable a priori),
and the identifiability table (posterior/prior width per parameter)."""

from __future__ import annotations

import numpy as np

from nadfit.models.priors import identifiability_table, registry
from nadfit.models.scenarios import dose_response_shape, prior_shape_check


def test_shape_index():
    assert abs(dose_response_shape([0.1, 0.2, 0.4]) - 1.0) < 1e-12
    assert dose_response_shape([0.56, 0.90]) < 0.9  # the addendum's 30-day trial (concave)
    assert dose_response_shape([0.1, 0.3]) > 1.1


def test_prior_predictive_reaches_concave_and_convex(models):
    """Prior draws of `mixed` give both concave and convex NMN dose-responses at day 30."""
    out = prior_shape_check(models["mixed"], 40, np.random.default_rng(11))
    assert len(out["shape"]) >= 30
    assert out["concave"] > 0.0 and out["convex"] > 0.0, out


def test_identifiability_table():
    reg = registry()
    rng = np.random.default_rng(0)
    prior_like = reg["beta"].scipy().rvs(size=4000, random_state=rng)
    narrow = np.full(4000, reg["gamma"].median()) + 0.01 * rng.standard_normal(4000)
    z = rng.standard_normal((4000, 3))
    rows = {r["parameter"]: r for r in identifiability_table(
        {"beta": prior_like, "gamma": narrow, "z_het": z}, {"beta": reg["beta"], "gamma": reg["gamma"]})}
    assert 0.9 < rows["beta"]["ratio"] < 1.1
    assert rows["gamma"]["ratio"] < 0.1
    assert set(rows) == {"beta", "gamma", "z_het[0]", "z_het[1]", "z_het[2]"}
    assert 0.9 < rows["z_het[1]"]["ratio"] < 1.1
