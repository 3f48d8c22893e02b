"""Observation-model helpers (models/observation.py): p-values and |t| round-trip, the density of
an observed |t| is normalised."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import integrate

from nadfit.models.observation import P_FLOOR, log_t_observed, t_from_two_sided_p, two_sided_p


@pytest.mark.parametrize("df", [1, 7, 32, 200])
def test_p_value_and_t_round_trip_down_to_the_floor(df):
    for t in (0.3, 2.0, 8.0, 40.0, 1e3, 1e6):
        p = two_sided_p(t, df)
        assert P_FLOOR <= p <= 1.0
        if p > P_FLOOR:
            assert t_from_two_sided_p(p, df) == pytest.approx(t, rel=1e-9)
    assert math.isfinite(t_from_two_sided_p(P_FLOOR, df))


def test_observed_abs_t_density_integrates_to_one():
    """A two-sided p-value gives |t|: its density on [0, inf) is the folded one (without the fold a
    small noncentrality would lose up to half the mass)."""
    for ncp in (0.0, 0.5, 2.0, 6.0):
        mass, _ = integrate.quad(lambda t: math.exp(float(log_t_observed(ncp, t, 7))), 0.0, np.inf)
        assert mass == pytest.approx(1.0, abs=1e-6)
