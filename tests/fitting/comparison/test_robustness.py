"""Study-level comparison and the observation-settings grid (importance reweighting)."""

import json
import math

import numpy as np
import pytest
import xarray as xr
from scipy.stats import multivariate_normal, norm

from nadfit.fitting.comparison.assemble import (
    build_comparison,
    grid_summary,
    load_runs,
    log_mean_ratio,
    psis_loo,
    robustness_of,
    verdict,
)
from nadfit.fitting.comparison.robustness import SENSITIVITY_GRID, check_grid
from nadfit.fitting.inference.runs import RUN_SCHEMA
from tests.fitting.comparison.test_assemble import IDS, STUDIES, _cmp, _ll
from tests.fitting.synthetic_runs import make_run

# ---------------------------------------------------------------------------------------------
# a conjugate normal model: exact LOO and marginal likelihoods under two noise SDs
# ---------------------------------------------------------------------------------------------
S0, SIG_A, SIG_B = 2.0, 1.0, 1.3
Y = np.array([0.3, -1.1, 0.8, 2.2, 0.1, -0.4, 1.5, 0.9])


def _posterior_draws(sig, n_draws=4000, seed=0):
    prec = 1 / S0**2 + len(Y) / sig**2
    mean = Y.sum() / sig**2 / prec
    return np.random.default_rng(seed).normal(mean, prec**-0.5, size=(2, n_draws))


def _normal_ll(theta, sig):
    return norm.logpdf(Y[None, None, :], loc=theta[..., None], scale=sig)


def _exact_loo(sig):
    out = []
    for i in range(len(Y)):
        rest = np.delete(Y, i)
        prec = 1 / S0**2 + len(rest) / sig**2
        out.append(norm.logpdf(Y[i], loc=rest.sum() / sig**2 / prec, scale=math.sqrt(sig**2 + 1 / prec)))
    return np.array(out)


def _log_ml(sig):
    n = len(Y)
    return multivariate_normal(np.zeros(n), sig**2 * np.eye(n) + S0**2 * np.ones((n, n))).logpdf(Y)


def test_reweighted_loo_and_marginal_likelihood_match_the_exact_values():
    """Draws from the posterior under SD 1, reweighted to SD 1.3: PSIS-LOO and the log-ML shift
    agree with the closed forms under SD 1.3 (and differ clearly from those under SD 1)."""
    theta = _posterior_draws(SIG_A)
    ll_a, ll_b = _normal_ll(theta, SIG_A), _normal_ll(theta, SIG_B)
    lw = (ll_b - ll_a).sum(-1)
    res = psis_loo(ll_b, log_weights=lw)
    exact_b, exact_a = _exact_loo(SIG_B), _exact_loo(SIG_A)
    assert np.max(np.abs(exact_b - exact_a)) > 0.2  # the pointwise check below can tell the two apart
    np.testing.assert_allclose(res["elpd_i"], exact_b, atol=0.02)
    assert (res["k"] <= 0.7).all()
    ml = log_mean_ratio(lw)
    assert ml["method"] == "psis" and ml["k"] <= 0.7
    assert ml["log_mean"] == pytest.approx(_log_ml(SIG_B) - _log_ml(SIG_A), abs=0.02)
    # unweighted, the same draws give the LOO under SD 1
    np.testing.assert_allclose(psis_loo(ll_a)["elpd_i"], exact_a, atol=0.02)


def test_grid_summary_ranks_by_the_reweighted_elpd_and_shifts_bayes_factors():
    theta = _posterior_draws(SIG_A)
    ll_a, ll_b = _normal_ll(theta, SIG_A), _normal_ll(theta, SIG_B)
    fixed = np.broadcast_to(norm.logpdf(Y, 0.0, 2.0), ll_a.shape).copy()  # a hypothesis without parameters
    primary = {"free": ll_a, "fixed": fixed}
    deltas = {"free": [np.zeros_like(ll_a), ll_b - ll_a], "fixed": [np.zeros_like(fixed), np.zeros_like(fixed)]}
    smc = {"free": {"log_ml_mean": _log_ml(SIG_A)}, "fixed": {"log_ml_mean": float(fixed[0, 0].sum())}}
    g = grid_summary(primary, deltas, ["sd 1", "sd 1.3"], smc=smc)
    p0, p1 = g["points"]
    e0 = {r["hypothesis"]: r["elpd"] for r in p0["ranking"]}
    e1 = {r["hypothesis"]: r["elpd"] for r in p1["ranking"]}
    assert e0["free"] == pytest.approx(psis_loo(ll_a)["elpd"], rel=1e-5)
    assert e1["free"] == pytest.approx(_exact_loo(SIG_B).sum(), abs=0.1)
    assert e1["fixed"] == e0["fixed"]
    bf = p1["bayes_factors"][0]
    assert bf["smc_log_bf"] == pytest.approx(_log_ml(SIG_B) - smc["fixed"]["log_ml_mean"], abs=0.03)
    assert p0["reweighting"]["free"]["method"] == "exact" and p1["reliable"]


def test_reweighting_to_the_run_settings_reproduces_the_comparison_exactly(tmp_path):
    runs = load_runs([make_run(tmp_path / h, h, _ll(shift, seed), IDS, STUDIES)
                      for h, shift, seed in (("direct", [0, 0, -2, -2, 0, 0], 1), ("via-nr", [-2, -2, 0, 0, 0, 0], 2))])
    ll = {h: r.dt["log_likelihood"]["evidence"].values for h, r in runs.items()}
    rng = np.random.default_rng(9)
    grid = {"grid": [{"name": "own", "overrides": {}}, {"name": "other", "overrides": {"eps": 0.1}}],
            "runs": {h: {"stored_gap": 0.0, "points": [{"delta": {"evidence": np.zeros_like(v)}},
                                                       {"delta": {"evidence": rng.normal(0, 0.05, v.shape)}}]}
                     for h, v in ll.items()}}
    cmp = build_comparison(runs, obs_grid=grid)
    own = cmp["observation_grid"]["points"][0]
    for r in own["ranking"]:
        ref = next(x for x in cmp["ranking"] if x["hypothesis"] == r["hypothesis"])
        assert (r["elpd"], r["elpd_diff"], r["dse"], r["weight"]) == (ref["elpd"], ref["elpd_diff"], ref["dse"], ref["weight"])
    assert own["order"] == [r["hypothesis"] for r in cmp["ranking"]]
    lw = np.zeros(ll["direct"].shape[:2])
    a, b = psis_loo(ll["direct"]), psis_loo(ll["direct"], log_weights=lw)
    assert np.array_equal(a["elpd_i"], b["elpd_i"]) and np.array_equal(a["k"], b["k"]) and a["p_loo"] == b["p_loo"]
    assert cmp["observation_grid"]["ranking_holds"] is True
    assert "holds across the 2 observation settings" in cmp["verdict_parts"]["headline"]


def _study_level_run(path, hypothesis, ll, studies):
    """A run whose primary log-likelihood is already per study (dimension 'study', no row mapping)."""
    path.mkdir(parents=True)
    chains, draws, _ = ll.shape
    coords = {"chain": np.arange(chains), "draw": np.arange(draws)}
    dt = xr.DataTree.from_dict({
        "posterior": xr.Dataset({"sigma_arm": (("chain", "draw"), np.ones((chains, draws)))}, coords=coords),
        "log_likelihood": xr.Dataset({"evidence": (("chain", "draw", "study"), ll)}, coords={**coords, "study": studies}),
        "observed_data": xr.Dataset({"study_id": (("evidence_id",), np.array(STUDIES))}, coords={"evidence_id": IDS}),
    })
    dt.attrs.update({"hypothesis": hypothesis, "config": json.dumps({"hypothesis": hypothesis})})
    dt.to_netcdf(path / "posterior.nc", engine="h5netcdf")
    (path / "summary.json").write_text(json.dumps({"schema": RUN_SCHEMA, "hypothesis": hypothesis, "status": "ok",
                                                   "evidence_ids": IDS, "evidence_fingerprint": "f" * 64}))
    (path / "COMPLETE").write_text("ok\n")
    return path


def test_loso_by_aggregating_rows_equals_psis_on_per_study_terms(tmp_path):
    shifts = {"direct": ([0, 0, -2, -2, 0, 0], 1), "via-nr": ([-2, -2, 0, 0, 0, 0], 2),
              "mixed": ([-0.2, -0.2, -0.2, -0.2, 0, 0], 3)}
    rows = load_runs([make_run(tmp_path / "rows" / h, h, _ll(s, seed), IDS, STUDIES) for h, (s, seed) in shifts.items()])
    studies = ["a", "b", "c", "d"]
    summed = {}
    for h, (s, seed) in shifts.items():
        ll = _ll(s, seed)
        summed[h] = np.stack([ll[..., [i for i, x in enumerate(STUDIES) if x == st]].sum(-1) for st in studies], -1)
    pre = load_runs([_study_level_run(tmp_path / "studies" / h, h, summed[h], studies) for h in shifts])
    a, b = build_comparison(rows), build_comparison(pre)
    assert b["unit"]["dim"] == "study" and b["unit"]["aggregated_from"] is None and not b["secondary"]
    assert a["loo"] == b["loo"] and a["ranking"] == b["ranking"]
    for sa, sb in zip(a["by_study"], b["by_study"]):
        assert (sa["study_id"], sa["elpd"], sa["pareto_k"], sa["diff"]) == (sb["study_id"], sb["elpd"], sb["pareto_k"], sb["diff"])
    for h in shifts:
        ref = psis_loo(summed[h])
        assert a["loo"][h]["elpd"] == pytest.approx(ref["elpd"], rel=1e-5)


def _grid(orders, reliable=None, names=None):
    names = names or [f"eps {e:g}" for e in (0.02, 0.05, 0.1, 0.2)][: len(orders)]
    reliable = reliable or [True] * len(orders)
    pts = []
    for n, o, ok in zip(names, orders, reliable):
        pts.append({"name": n, "order": o, "reliable": ok, "refit_needed": [] if ok else [o[0]],
                    "ranking": [{"hypothesis": h, "elpd": -10.0 - i, "weight": 1.0 if i == 0 else 0.0}
                                for i, h in enumerate(o)],
                    "reweighting": {h: {"pareto_k": 0.3 if ok else 0.9} for h in o},
                    "bayes_factors": [{"h1": o[0], "h2": o[1], "smc_log_bf": 2.0}]})
    g = {"points": pts}
    default = orders[0]
    return {"grid": [{"name": n, "overrides": {"eps": float(n.split()[1])}} for n in names], **g,
            **robustness_of(g, default)}


def test_verdict_says_not_robust_when_a_grid_point_flips_the_ranking():
    base = ["mixed", "via-nr", "direct"]
    cmp = _cmp([20.0, 30.0], [3.0, 4.0])
    cmp["observation_grid"] = _grid([base, base, ["via-nr", "mixed", "direct"], base])
    v = verdict(cmp)
    assert "Not robust" in v["headline"] and "under eps 0.1" in v["headline"]
    assert "not robust to the observation settings" in v["provisional"]
    assert any("eps 0.1" in p["text"] and "ranking differs" in p["text"] for p in v["points"])
    # the same grid without the flip: the ranking holds, nothing provisional from it
    cmp["observation_grid"] = _grid([base] * 4)
    v = verdict(cmp)
    assert "The ranking holds across the 4 observation settings (eps 0.02–0.2)." in v["headline"]
    assert "Not robust" not in v["headline"] and v["provisional"] == []
    # a flip where the reweighting is unreliable is not counted, but says that a refit is needed
    cmp["observation_grid"] = _grid([base, base, base, ["direct", "mixed", "via-nr"]],
                                    reliable=[True, True, True, False])
    v = verdict(cmp)
    assert "holds" in v["headline"] and "refit needed" in v["headline"]
    assert any("UNRELIABLE" in p["text"] and "refit" in p["text"] for p in v["points"])


def test_log_mean_ratio_of_known_ratios():
    rng = np.random.default_rng(4)
    x = rng.normal(0.0, 0.5, size=(2, 4000))
    r = log_mean_ratio(x)
    assert r["method"] == "psis" and r["k"] <= 0.7
    assert r["log_mean"] == pytest.approx(0.125, abs=0.03)  # E[exp(N(0, 0.5^2))] = exp(0.125)
    assert log_mean_ratio(np.full((2, 10), -1.5)) == {"log_mean": -1.5, "k": 0.0, "ess": 20.0, "method": "exact"}


def test_the_grid_is_one_valid_documented_structure():
    check_grid()
    rho = sorted(p.overrides["unreliable_prior"] for p in SENSITIVITY_GRID if "unreliable_prior" in p.overrides)
    assert rho == [0.02, 0.05, 0.1, 0.2]  # the eps-equivalents of issue #14
    assert any("tau" in p.overrides for p in SENSITIVITY_GRID)
    with pytest.raises(ValueError, match="unknown observation settings"):
        from nadfit.fitting.comparison.robustness import GridPoint

        check_grid((GridPoint("x", {"not_a_setting": 1.0}),))


def test_study_refits_are_a_registered_sweep_task_kind():
    from nadfit.fitting.comparison.refits import refit_tasks, study_of_labels, task_study_refit
    from nadfit.fitting.sweep.engine import TASK_KINDS, resolve

    assert resolve(TASK_KINDS["study_refit"]) is task_study_refit
    tasks = refit_tasks({"mixed": ("/tmp/runs/mixed", ["grozio2019", "yi 2022"]), "direct": ("/tmp/runs/direct", [])})
    assert [t.kind for t in tasks] == ["study_refit"] * 2
    assert [t.id for t in tasks] == ["refit-mixed-grozio2019", "refit-mixed-yi_2022"]
    assert tasks[0].params["study"] == "grozio2019" and tasks[0].params["draws"] == tasks[0].params["tune"]
    import pandas as pd

    ev = pd.DataFrame({"evidence_id": ["EV1", "EV2"], "study_id": ["a", "b"]})
    assert study_of_labels(["EV2", "EV1", "c"], ev) == ["b", "a", "c"]


def test_an_exact_study_refit_leaves_out_the_whole_study_unit():
    """Yi 2022's post-hoc finding (its own study id) belongs to the claim of study yi2022: the
    refit without yi2022 leaves it out too (it failed to build before: the claim's joint rule
    had no test rows left), and a claim left with rows its joint rule cannot combine is scored
    row by row."""
    from nadfit.datasets import load_evidence
    from nadfit.fitting.comparison.refits import unit_exclusions
    from nadfit.fitting.inference.config import select_evidence
    from nadfit.models.model import EvidenceModel

    ev = load_evidence()
    full = EvidenceModel("mixed", ev)
    out = unit_exclusions(full, "yi2022")
    assert out == ["yi2022", "EV015"] and set(ev.loc[ev.evidence_id == "EV015", "study_id"]) == {"yi2022_posthoc"}
    assert unit_exclusions(full, "huang2022") == ["huang2022"]
    reduced = EvidenceModel("mixed", select_evidence(ev, [], out))
    assert "yi2022" not in {c.study_id for c in reduced.claims} and "EV015" not in reduced.evidence_ids
    partial = EvidenceModel("mixed", select_evidence(ev, [], ["yi2022"]))  # a user's --exclude yi2022
    (c,) = [c for c in partial.claims if c.claim_id == "yi2022_nad_vs_placebo"]
    assert c.joint == "product" and len(c.rows) == 1
