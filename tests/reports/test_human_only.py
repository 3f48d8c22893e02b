"""The human prediction without the non-human evidence (reports.human_only)."""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr

from nadfit.reports.human_only import (
    K_RELIABLE,
    SHIFT_REGIMENS,
    drop_studies_weights,
    non_human_studies,
    prediction_shift,
    weighted_quantiles,
)


def _dt(slope: float, n_chain=4, n_draw=1000, seed=0):
    """Draws x ~ N(0, 1); study 'rodent' has log-likelihood slope * x, 'trial' a constant;
    the stored prediction is exp(x) at every dose and day."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n_chain, n_draw))
    ll = np.stack([np.full_like(x, -1.3), slope * x], axis=-1)
    post = xr.Dataset({"loglik_study": (("chain", "draw", "study"), ll)},
                      coords={"chain": np.arange(n_chain), "draw": np.arange(n_draw), "study": ["trial", "rodent"]})
    obs = xr.Dataset({"study_id": (("evidence_id",), ["trial", "trial", "rodent"]),
                      "observable": (("evidence_id",), ["human_log_fold", "human_t90", "aged"])},
                     coords={"evidence_id": ["E1", "E2", "E3"]})
    idx = np.arange(0, n_chain * n_draw, 2)
    doses = np.array([0.0, 300.0, 500.0, 600.0, 900.0, 1000.0])
    days = np.arange(91)
    flat = np.exp(x.reshape(-1)[idx])
    fold = np.broadcast_to(flat[:, None, None], (idx.size, doses.size, days.size)).copy()
    pred = xr.Dataset({"blood_nad_fold_nmn": (("sample", "dose_mg", "day"), fold)},
                      coords={"sample": idx, "dose_mg": doses, "day": days})
    return xr.DataTree.from_dict({"posterior": post, "observed_data": obs, "predictions": pred}), x


def test_a_study_with_any_non_human_row_is_non_human():
    dt, _ = _dt(0.3)
    assert non_human_studies(dt["observed_data"]) == ["rodent"]


def test_removing_a_log_linear_likelihood_shifts_a_normal_posterior_by_its_slope():
    """p(x) = N(0, 1) with a study term 0.3 x; without it the posterior is N(-0.3, 1)."""
    dt, x = _dt(0.3)
    w, k = drop_studies_weights(dt["posterior"], ["rodent"])
    assert k < K_RELIABLE
    med = weighted_quantiles(x.reshape(-1), w, [0.5])[0]
    assert med == pytest.approx(-0.3, abs=0.08)
    res = prediction_shift(dt)
    assert res["reliable"] and res["non_human_studies"] == ["rodent"]
    row = res["rows"][0]
    assert (row["dose_mg"], row["day"]) == SHIFT_REGIMENS[0]
    assert row["all_evidence"]["median"] == pytest.approx(1.0, abs=0.1)
    assert row["human_only_psis"]["median"] == pytest.approx(np.exp(-0.3), abs=0.08)
    assert "human_only_refit" not in row


def test_a_dominating_study_makes_the_reweighting_unreliable_and_no_numbers_are_shown():
    dt, _ = _dt(6.0)
    res = prediction_shift(dt, human_dt=dt)
    assert not res["reliable"] and res["pareto_k"] > K_RELIABLE
    assert all(r["human_only_psis"] is None for r in res["rows"])
    assert all(r["human_only_refit"]["median"] == pytest.approx(r["all_evidence"]["median"]) for r in res["rows"])


def test_weighted_quantiles_with_equal_weights_are_the_ordinary_ones():
    x = np.random.default_rng(1).normal(size=2001)
    q = weighted_quantiles(x, np.ones_like(x), [0.05, 0.5, 0.95])
    assert np.allclose(q, np.quantile(x, [0.05, 0.5, 0.95]), atol=0.01)


def test_compare_refuses_a_human_only_run_fitted_to_non_human_evidence(tmp_path, synth_run, synth_failed_run):
    """--human-only-run must be a fit to human evidence alone: one line, before any work."""
    from nadfit.datasets.errors import UserError
    from nadfit.fitting.comparison.pipeline import run_compare

    with pytest.raises(UserError, match="fitted to non-human evidence too"):
        run_compare([synth_run, synth_failed_run], tmp_path / "cmp", human_only=synth_run, bridge=False,
                    psense=False, obs_grid=False, html=False, allow_failed=True)
    assert not (tmp_path / "cmp").exists()


def test_a_run_too_short_for_a_pareto_tail_is_unreliable_not_an_error():
    dt, _ = _dt(0.3, n_chain=2, n_draw=10)
    res = prediction_shift(dt)
    assert not res["reliable"] and res["pareto_k"] is None
    assert all(r["human_only_psis"] is None for r in res["rows"])


def test_every_table_regimen_is_in_the_fitted_prediction_grid():
    """The table's regimens come from the scenarios, and every one of them is predicted by a fit
    (``fit.CURVE_DOSES_MG`` x days 0..``CURVE_DAYS``): a dose missing from the grid would
    silently drop out of the table."""
    from nadfit.fitting.inference.fit import CURVE_DAYS, CURVE_DOSES_MG

    assert len(SHIFT_REGIMENS) == 5
    for dose, day in SHIFT_REGIMENS:
        assert any(abs(dose - d) < 1e-9 for d in CURVE_DOSES_MG), dose
        assert 0 < day <= CURVE_DAYS
