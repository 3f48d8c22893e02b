"""Comparison arithmetic on synthetic runs: attribution sums, stacking, refusals."""

import numpy as np
import pytest

from nadfit.datasets.errors import UserError
from nadfit.fitting.comparison.assemble import (
    BAD_K,
    CONSTANT_LL_TOL,
    build_comparison,
    chain_elpd,
    chain_split_mcse,
    exact_elpd,
    load_runs,
    loo_pit,
    loo_status,
    psis_loo,
    stacking_weights,
    verdict,
    verdict_text,
)
from tests.fitting.synthetic_runs import make_run

IDS = ["EV1", "EV2", "EV3", "EV4", "EV5", "EV6"]
STUDIES = ["a", "a", "b", "b", "c", "d"]


def _ll(shift, seed):
    rng = np.random.default_rng(seed)
    base = rng.normal(-1.0, 0.3, size=(2, 200, len(IDS)))
    return base + np.asarray(shift)


@pytest.fixture()
def runs(tmp_path):
    dirs = [
        make_run(tmp_path / "direct", "direct", _ll([0, 0, -2, -2, 0, 0], 1), IDS, STUDIES),
        make_run(tmp_path / "via-nr", "via-nr", _ll([-2, -2, 0, 0, 0, 0], 2), IDS, STUDIES),
        make_run(tmp_path / "mixed", "mixed", _ll([-0.2, -0.2, -0.2, -0.2, 0, 0], 3), IDS, STUDIES, mixed=True),
    ]
    return load_runs(dirs)


def test_pointwise_and_study_attribution_sum_to_totals(runs):
    """The study is the primary unit: per-study contributions sum to the total; the rows are secondary."""
    cmp = build_comparison(runs)
    assert cmp["unit"]["name"] == "study" and cmp["unit"]["aggregated_from"] == "evidence_id"
    best = cmp["ranking"][0]["hypothesis"]
    for h in runs:
        total = cmp["loo"][h]["elpd"]
        by_study = sum(s["elpd"][h] for s in cmp["by_study"])
        assert by_study == pytest.approx(total, abs=1e-4)
        assert sum(s["diff"][h] for s in cmp["by_study"]) == pytest.approx(total - cmp["loo"][best]["elpd"], abs=1e-4)
        rows = sum(r["elpd"][h] for r in cmp["pointwise"])
        assert rows == pytest.approx(cmp["secondary"]["evidence"]["loo"][h]["elpd"], abs=1e-4)
        assert sum(s["rows_elpd"][h] for s in cmp["by_study"]) == pytest.approx(rows, abs=1e-4)
    assert [s["study_id"] for s in cmp["by_study"]] == ["a", "b", "c", "d"]
    assert [s["n_rows"] for s in cmp["by_study"]] == [2, 2, 1, 1]


def test_ranking_weights_and_verdict(runs):
    cmp = build_comparison(runs)
    assert cmp["ranking"][0]["hypothesis"] == "mixed"
    assert cmp["ranking"][0]["elpd_diff"] == 0
    w = cmp["stacking_weights"]
    assert sum(w.values()) == pytest.approx(1.0, abs=1e-6) and min(w.values()) >= 0
    # findings that pull in opposite directions show up in the attribution
    a = next(s for s in cmp["by_study"] if s["study_id"] == "a")
    b = next(s for s in cmp["by_study"] if s["study_id"] == "b")
    assert a["elpd"]["direct"] > a["elpd"]["via-nr"] and b["elpd"]["via-nr"] > b["elpd"]["direct"]
    v = cmp["verdict_parts"]
    assert "'mixed'" in v["headline"] and cmp["verdict"].startswith(v["headline"])
    assert {p["aspect"] for p in v["points"]} >= {"not decided", "why", "robustness"}
    assert cmp["phi_share"] is not None and "population_median_system" in cmp["phi_share"]


def test_stacking_prefers_the_model_that_predicts_each_point():
    elpd = {"x": np.log(np.array([0.9, 0.9, 0.1, 0.1])), "y": np.log(np.array([0.1, 0.1, 0.9, 0.9]))}
    w = stacking_weights(elpd, {})
    assert w["x"] == pytest.approx(0.5, abs=0.02)
    elpd["y"] = np.log(np.array([0.1, 0.1, 0.1, 0.1]))
    assert stacking_weights(elpd, {})["x"] > 0.95


def test_psis_loo_matches_exact_for_flat_likelihood():
    ll = np.full((2, 100, 3), -0.5)
    res = psis_loo(ll)
    assert res["elpd"] == pytest.approx(-1.5, abs=1e-9)


def test_refuses_runs_on_different_evidence(tmp_path):
    a = make_run(tmp_path / "a", "direct", _ll([0] * 6, 1), IDS, STUDIES, fingerprint="1" * 64)
    b = make_run(tmp_path / "b", "via-nr", _ll([0] * 6, 2), IDS, STUDIES, fingerprint="2" * 64)
    with pytest.raises(UserError, match="different evidence"):
        load_runs([a, b])


def test_refuses_duplicate_hypothesis_and_failed_gates(tmp_path):
    a = make_run(tmp_path / "a", "direct", _ll([0] * 6, 1), IDS, STUDIES)
    b = make_run(tmp_path / "b", "direct", _ll([0] * 6, 2), IDS, STUDIES)
    with pytest.raises(UserError, match="two runs for hypothesis"):
        load_runs([a, b])
    c = make_run(tmp_path / "c", "via-nr", _ll([0] * 6, 3), IDS, STUDIES, status="failed_gates")
    with pytest.raises(UserError, match="failed its diagnostics gates"):
        load_runs([a, c])
    assert set(load_runs([a, c], allow_failed=True)) == {"direct", "via-nr"}


def test_constant_and_nearly_constant_rows_are_exact_not_bad_k():
    """Rows whose log-likelihood barely varies got k = 7.17, 7.73 or NaN (shown as a hidden '–')
    and inflated 'PSIS is unreliable for N rows': they are exact to CONSTANT_LL_TOL nats."""
    rng = np.random.default_rng(5)
    ll = rng.normal(-1.0, 0.3, size=(2, 200, 5))
    ll[..., 1] = -0.02                                                  # constant
    ll[..., 2] = -0.02 - rng.uniform(0, 1.2e-3, size=(2, 200))          # k was 7.73 on a real fit
    ll[..., 3] = np.log(0.02) + 6e-9 * rng.normal(size=(2, 200))        # k was NaN
    ll[..., 4] = -0.02 - rng.uniform(0, 0.9 * CONSTANT_LL_TOL, size=(2, 200))
    res = psis_loo(ll)
    assert loo_status(res) == ["ok", "exact", "exact", "exact", "exact"]
    assert not (res["k"] > BAD_K).any() and np.isfinite(res["k"]).all()
    for j in range(1, 5):
        lo, hi = ll[..., j].min(), ll[..., j].max()
        assert lo - 1e-12 <= res["elpd_i"][j] <= hi + 1e-12  # inside the row's range: exact to its width
    assert res["elpd_i"][1] == pytest.approx(-0.02, abs=1e-12)


def test_rows_whose_k_cannot_be_estimated_count_as_unreliable():
    """Ties in the importance ratios (a finding on its floor in a few draws) break Pareto
    smoothing: plain importance sampling is used and the row counts as unreliable, never as ok."""
    rng = np.random.default_rng(6)
    ll = rng.normal(-1.0, 0.3, size=(2, 200, 3))
    ll[..., 1] = -0.02
    ll[0, :5, 1] = -3.9
    ll[..., 2] = -0.02
    ll[0, :1, 2] = -3.9
    res = psis_loo(ll)
    st = loo_status(res)
    assert st[0] == "ok" and all(s in ("high_k", "not_estimable") for s in st[1:])
    assert (res["k"][1:] > BAD_K).all()


def test_comparison_reports_exact_rows_and_counts_only_unreliable_ones(tmp_path):
    shift = np.zeros(6)
    lls = {}
    for h, seed in (("direct", 1), ("via-nr", 2)):
        ll = _ll(shift, seed)
        ll[..., 4] = -0.02 - np.random.default_rng(seed).uniform(0, 1e-3, size=ll.shape[:2])   # nearly constant
        ll[..., 5] = -0.02
        ll[0, :5, 5] = -3.9                                                                       # ties: unreliable
        lls[h] = ll
    runs = load_runs([make_run(tmp_path / h, h, ll, IDS, STUDIES) for h, ll in lls.items()])
    cmp = build_comparison(runs)
    for h in lls:
        lo = cmp["secondary"]["evidence"]["loo"][h]
        assert lo["exact_units"] == ["EV5"] and lo["n_exact"] == 1
        assert lo["bad_k_units"] == ["EV6"] and lo["n_bad_k"] == 1
        assert lo["k_max"] is not None and lo["k_max"] < 7  # never a hidden '–', never the exact row's 7.x
        st = cmp["loo"][h]  # EV5 and EV6 are the only rows of studies c and d
        assert st["exact_units"] == ["c"] and st["bad_k_units"] == ["d"]
    row5 = next(r for r in cmp["pointwise"] if r["evidence_id"] == "EV5")
    row6 = next(r for r in cmp["pointwise"] if r["evidence_id"] == "EV6")
    assert row5["loo_status"] == {"direct": "exact", "via-nr": "exact"} and row5["pareto_k"]["direct"] is None
    assert set(row6["loo_status"].values()) <= {"high_k", "not_estimable"}
    assert "1 study(s) of direct" in cmp["verdict"]
    assert "Studies with a constant log-likelihood are exact and not counted: 1 of direct, 1 of via-nr" in cmp["verdict"]


def _cmp(diffs, dses, *, bad_k=None, bfs=None, status=None, wider_best=None, flagged=None):
    """A comparison.json-like dict with the given ELPD differences (first hypothesis best)."""
    hyps = ["mixed", "via-nr", "direct"][: len(diffs) + 1]
    ranking = [{"hypothesis": hyps[0], "rank": 0, "elpd_diff": 0.0, "dse": 0.0}] + [
        {"hypothesis": h, "rank": i + 1, "elpd_diff": d, "dse": se} for i, (h, d, se) in enumerate(zip(hyps[1:], diffs, dses))]
    by_study = [{"study_id": "grozio2019", "elpd": {h: (-1.0 if h == hyps[0] else -12.0) for h in hyps}},
                {"study_id": "fletcher2017", "elpd": {h: (-0.8 if h == hyps[0] else -0.1) for h in hyps}}]
    return {"ranking": ranking, "stacking_weights": {h: (1.0 if i == 0 else 0.0) for i, h in enumerate(hyps)},
            "loo": {h: {"n_bad_k": (bad_k or {}).get(h, 0), "n_exact": 2} for h in hyps}, "n_rows": 41,
            "by_study": by_study, "bayes_factors": bfs or [], "run_status": status or {h: "ok" for h in hyps},
            "sensitivity": {"wider_prior_best": wider_best, "psense_flagged": flagged or []}, "phi_share": None}


def test_verdict_clear_winner_is_a_short_headline_without_qualifiers():
    v = verdict(_cmp([20.0, 30.0], [3.0, 4.0], bfs=[{"h1": "mixed", "h2": "via-nr", "log_bf": 5.0, "mc_se": 0.2,
                                                     "bridge_log_bf": 5.1, "bridge_mc_se": 0.1,
                                                     "estimators_agree": True}], wider_best="mixed"))
    assert v["headline"] == "'mixed' is preferred: it predicts the evidence clearly better than 'via-nr' and 'direct'."
    assert v["provisional"] == []
    aspects = [p["aspect"] for p in v["points"]]
    assert aspects.count("decided") == 2 and "not decided" not in aspects
    assert any("SMC and bridge sampling agree" in p["text"] for p in v["points"])
    assert any("survives the wider prior set" in p["text"] for p in v["points"])


def test_verdict_of_the_issue_run_never_overstates():
    """Issue 18's comparison: via-nr within 2 SE of mixed, direct modestly worse, many rows with
    unreliable PSIS, SMC and bridge of opposite sign for via-nr vs mixed, failed gates."""
    bfs = [{"h1": "via-nr", "h2": "mixed", "log_bf": 3.24, "mc_se": 0.3, "bridge_log_bf": -2.39,
            "bridge_mc_se": 0.1, "estimators_agree": False}]
    v = verdict(_cmp([10.1, 15.8], [6.1, 7.7], bad_k={"direct": 11, "via-nr": 8, "mixed": 16}, bfs=bfs,
                     status={"mixed": "accepted_failed_gates", "via-nr": "ok", "direct": "ok"},
                     flagged=["beta (mixed)", "kappa (mixed)", "beta (direct)"]))
    h = v["headline"]
    assert h.startswith("'mixed' and 'via-nr' cannot be told apart by PSIS-LOO; 'direct' predicts the evidence worse.")
    assert "Provisional: convergence gates failed; PSIS-LOO unreliable for some rows; Bayes-factor estimators disagree." in h
    assert "favours" not in h and "preferred" not in h
    texts = " ".join(p["text"] for p in v["points"])
    assert "DISAGREE for via-nr vs mixed" in texts and "SMC +3.2" in texts and "bridge -2.4" in texts
    assert "16 row(s) of mixed" in texts and "(1.7 SE), within noise" in texts
    assert "not a probability that the hypothesis is true" in texts
    assert "grozio2019 (+11.0)" in texts and "against it: fletcher2017 (-0.7)" in texts
    assert "2 parameters of mixed" in texts and "1 parameters of direct" in texts
    assert len(v["points"]) <= 8
    text = verdict_text(v)
    assert text.splitlines()[0] == h and all(line.startswith("  • ") for line in text.splitlines()[1:])


def test_verdict_no_preference_and_priors_flip():
    v = verdict(_cmp([1.0, 2.0], [3.0, 3.0], wider_best="direct",
                     bfs=[{"h1": "mixed", "h2": "via-nr", "bridge_log_bf": 1.0, "bridge_mc_se": 0.1}]))
    assert v["headline"].startswith("No hypothesis is preferred")
    assert "not robust to the priors" in v["headline"]
    assert any("one estimator only (not cross-checked)" in p["text"] for p in v["points"])


def test_chain_split_mcse_is_the_sd_of_the_chains_differences():
    """Log-likelihoods constant within each chain: each chain's PSIS-LOO is exact, so the
    per-chain differences are known and the error is their SD / sqrt(chains); identical chains
    give 0, and an exactly refitted unit adds nothing."""
    chains, units = 4, 3
    best = np.zeros((chains, 50, units))
    other = np.zeros((chains, 50, units))
    other[..., 0] = np.array([-1.0, -2.0, -0.5, -3.0])[:, None]  # chain-dependent, unit 0 only
    per_chain = -other[:, 0, 0]  # elpd(best) - elpd(other) of each chain
    b, o = chain_elpd(best, psis_loo(best)), chain_elpd(other, psis_loo(other))
    assert o[:, 0] == pytest.approx(-per_chain)
    assert chain_split_mcse(b, o) == pytest.approx(np.std(per_chain, ddof=1) / 2.0, rel=1e-9)
    assert chain_split_mcse(b, b) == 0.0
    assert chain_split_mcse(b, chain_elpd(other, psis_loo(other), refitted=[0])) == 0.0
    assert chain_split_mcse(b[:1], o[:1]) is None


def _ar1(rng, rho, shape):
    """AR(1) series along the last axis with unit marginal variance."""
    x = np.empty(shape)
    x[..., 0] = rng.normal(size=shape[:-1])
    for t in range(1, shape[-1]):
        x[..., t] = rho * x[..., t - 1] + np.sqrt(1 - rho * rho) * rng.normal(size=shape[:-1])
    return x


@pytest.mark.parametrize("rho", [0.0, 0.8])
def test_exact_elpd_standard_error_matches_the_spread_over_replicates(rho):
    """The Monte Carlo SE of an exact refit's log mean likelihood: over 400 replicate refits
    (2 chains x 300 draws, held-out log-likelihood N(0, 0.7) with autocorrelation rho), the mean
    stated SE equals the SD of the estimates within 15 %. With rho = 0.8 an SE that ignored the
    autocorrelation would be 3x too small."""
    rng = np.random.default_rng(11)
    ll = 0.7 * _ar1(rng, rho, (400, 2, 300))
    est = np.array([exact_elpd(x) for x in ll])
    assert est[:, 1].mean() == pytest.approx(est[:, 0].std(ddof=1), rel=0.15)
    naive = np.mean([np.exp(x - x.max()).std(ddof=1) / np.exp(x - x.max()).mean() / np.sqrt(x.size) for x in ll])
    if rho > 0:
        assert naive < 0.5 * est[:, 0].std(ddof=1)
    assert exact_elpd(np.full((2, 10), -3.0)) == (pytest.approx(-3.0), 0.0)
    assert exact_elpd(np.full((1, 2), -np.inf))[1] is None


def test_refit_errors_enter_the_monte_carlo_error_of_a_difference(runs):
    """Exact refits replace PSIS values and are constant across the run's chains, so the chains'
    error leaves them out; their own sampling errors are added (root sum of squares over the
    refitted studies of both hypotheses). Without them the MC error is the chains' alone."""
    base = build_comparison(runs)
    refits = {"via-nr": {"a": -3.0, "b": -2.5}, "direct": {"b": -4.0}}
    se = {"via-nr": {"a": 0.3, "b": 0.4}, "direct": {"b": 0.5}}
    cmp = build_comparison(runs, study_refits=refits, study_refit_mcse=se)
    no_se = build_comparison(runs, study_refits=refits)
    best = cmp["ranking"][0]["hypothesis"]
    for r, r0 in zip(cmp["ranking"][1:], no_se["ranking"][1:]):
        h = r["hypothesis"]
        parts = [v for hh in {best, h} for v in se.get(hh, {}).values()]
        assert r["mcse_refits"] == pytest.approx(np.sqrt(np.sum(np.square(parts))), abs=1e-3)
        assert r["mcse"] == pytest.approx(np.hypot(r["mcse_chains"], r["mcse_refits"]), abs=2e-3)
        assert r0["mcse_refits"] is None and r0["mcse"] == r0["mcse_chains"]
    assert cmp["study_refit_mcse"]["via-nr"] == {"a": 0.3, "b": 0.4}
    assert all(r["mcse_refits"] in (0.0, None) for r in base["ranking"])


def test_verdict_counts_the_monte_carlo_error_of_the_difference():
    """Session 18's default-seed run: via-nr vs mixed 1.7 ± 0.8 is 2.2 SE on the data-level SE
    alone, but its Monte Carlo error over the chains was 0.53 (other realisations gave 0.05-1.6):
    combined it is 1.8 SE, not decided. Without a Monte Carlo error the old rule applies."""
    cmp = _cmp([1.73, 5.95], [0.78, 6.33])
    assert verdict(cmp)["points"][0]["aspect"] == "decided"
    cmp["ranking"][1]["mcse"], cmp["ranking"][2]["mcse"] = 0.53, 0.16
    v = verdict(cmp)
    assert v["headline"].startswith("No hypothesis is preferred")
    assert "(data-level and Monte Carlo error combined)" in v["headline"]
    assert "ΔELPD 1.7 ± 0.8; Monte Carlo error ± 0.5 (1.8 SE combined), within noise" in v["points"][0]["text"]


def test_loo_pit_of_numeric_rows():
    """PIT = P(y_rep <= y); with a flat log-likelihood the LOO weights are uniform and the PIT
    is the plain predictive CDF at the reported value. Rows without y_rep (findings) are left out."""
    import xarray as xr
    from scipy.stats import norm

    rng = np.random.default_rng(7)
    obs = np.array([-1.0, 0.0, 1.5, np.nan])
    yrep = rng.normal(size=(2, 2000, 4))
    yrep[..., 3] = np.nan
    ids = ["EV1", "EV2", "EV3", "EV4"]
    dt = xr.DataTree.from_dict({
        "posterior_predictive": xr.Dataset({"y_rep": (("chain", "draw", "evidence_id"), yrep)}, coords={"evidence_id": ids}),
        "observed_data": xr.Dataset({"value": (("evidence_id",), obs)}, coords={"evidence_id": ids}),
        "log_likelihood": xr.Dataset({"evidence": (("chain", "draw", "evidence_id"), np.full((2, 2000, 4), -1.0))},
                                     coords={"evidence_id": ids}),
        "posterior": xr.Dataset({"a": (("chain", "draw"), np.zeros((2, 2000)))}),
    })
    res = loo_pit(dt)
    assert res["evidence_id"] == ["EV1", "EV2", "EV3"]
    assert res["pit"] == pytest.approx(norm.cdf(obs[:3]), abs=0.03)
    assert loo_pit(xr.DataTree.from_dict({"posterior": dt["posterior"].to_dataset()})) is None


def test_loo_pit_leaves_out_the_rows_claim_when_rows_have_no_own_terms():
    """Claim-level likelihood (no per-row log-likelihood): each row's PIT is weighted by its
    claim's leave-one-claim-out term. A flat claim term gives the plain predictive CDF; a claim
    term that is low where the replicated value is high (LOO weights exp(-ll) then favour high
    values: a tilted N(2, 1)) lowers the PIT of its own row only. Without the row -> claim map no
    PIT is computed."""
    import xarray as xr
    from scipy.stats import norm

    rng = np.random.default_rng(8)
    obs = np.array([-1.0, 0.0, 1.5])
    yrep = rng.normal(size=(2, 2000, 3))
    ids = ["EV1", "EV2", "EV3"]
    ll_claim = np.stack([np.full((2, 2000), -1.0), -2.0 * yrep[..., 2]], axis=-1)  # claims A, B
    dt = xr.DataTree.from_dict({
        "posterior_predictive": xr.Dataset({"y_rep": (("chain", "draw", "evidence_id"), yrep)}, coords={"evidence_id": ids}),
        "observed_data": xr.Dataset({"value": (("evidence_id",), obs)}, coords={"evidence_id": ids}),
        "log_likelihood": xr.Dataset({"evidence": (("chain", "draw", "study"), np.full((2, 2000, 1), -1.0)),
                                      "claim": (("chain", "draw", "claim_id"), ll_claim)},
                                     coords={"study": ["S1"], "claim_id": ["A", "B"]}),
        "posterior": xr.Dataset({"a": (("chain", "draw"), np.zeros((2, 2000)))}),
    })
    assert loo_pit(dt) is None
    res = loo_pit(dt, {"EV1": "A", "EV2": "A", "EV3": "B"})
    assert res["left_out"] == "claim" and res["evidence_id"] == ids
    assert res["pit"][:2] == pytest.approx(norm.cdf(obs[:2]), abs=0.03)
    assert res["pit"][2] < norm.cdf(1.5) - 0.2


def test_ml_agreement_within_one_nat_and_why_not():
    from nadfit.fitting.comparison.assemble import ml_agreement

    smc = {"log_ml_runs": [-37.0, -37.2, -37.1], "log_ml_mean": -37.1, "log_ml_mc_se": 0.06,
           "mean_acceptance": [0.6, 0.62, 0.64]}
    ok = ml_agreement(smc, {"log_ml": -36.5, "mc_se": 0.04, "neff": 1500})
    assert ok["agree"] is True and ok["reasons"] == [] and ok["gap"] == pytest.approx(-0.6)
    bad = ml_agreement(smc, {"log_ml": -35.0, "mc_se": 0.04, "neff": 1500})
    assert bad["agree"] is False
    assert len(bad["reasons"]) == 1 and bad["reasons"][0].startswith("SMC below bridge")
    assert "a bias, not noise" in bad["reasons"][0]
    noisy = ml_agreement({**smc, "log_ml_mc_se": 0.8, "mean_acceptance": [0.05]},
                         {"log_ml": -39.0, "mc_se": 0.6, "neff": 40})
    text = " ".join(noisy["reasons"])
    assert noisy["agree"] is False and "SMC runs scatter" in text and "too few effective posterior draws" in text
    assert "accepted only 5 %" in text and text.count("bridge below SMC") == 1
    missing = ml_agreement(None, {"log_ml": float("nan"), "note": "not computed: too few draws"})
    assert missing["agree"] is None and missing["reasons"] == ["SMC not run", "not computed: too few draws"]


def test_verdict_does_not_rank_a_wide_loser_above_a_narrow_one():
    """Second place beyond 2 SE (narrow SE), third place within 2 SE (wide SE), as in the main job
    with a trial prior of ell (session 10: via-nr, mixed 1.7 +- 0.8, direct 6.3 +- 6.3): saying
    the third "cannot be told apart" from the best while the second "predicts worse" would put
    the last-ranked hypothesis above the second."""
    v = verdict(_cmp([1.7, 6.3], [0.8, 6.3]))
    assert v["headline"].startswith("PSIS-LOO ranks 'mixed' first: it predicts the evidence modestly better than "
                                    "'via-nr'; its difference from 'direct' is within 2 standard errors.")
    assert "cannot be told apart" not in v["headline"] and "preferred" not in v["headline"]
    aspects = {p["aspect"]: p["text"] for p in v["points"]}
    assert "(2.1 SE)" in aspects["decided"] and "(1.0 SE), within noise" in aspects["not decided"]
    v = verdict(_cmp([1.0, 9.0], [3.0, 2.0]))  # the tied one ranks above the worse one: grouped as before
    assert v["headline"].startswith("'mixed' and 'via-nr' cannot be told apart by PSIS-LOO; 'direct' predicts")
