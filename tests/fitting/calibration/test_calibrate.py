"""``nadfit calibrate``: the plan of tasks, resume checks, aggregation and report (fast, on
synthetic task results), and a reduced end-to-end run with real NUTS fits (slow)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from nadfit.datasets.errors import UserError
from nadfit.fitting.calibration import calibrate as cal

HYPS = ["direct", "via-nr", "mixed"]


def test_plan_ids_sizes_and_bf_draws():
    tasks = cal.plan(HYPS, sbc_sims=3, compare_reps=2, misspec_reps=1, bf_sims=40, recovery_truths=2, draws=100,
                     tune=100, chains=2, rank_draws=49)
    ids = [t.id for t in tasks]
    assert len(ids) == len(set(ids))
    assert sum(i.startswith("sbc-") for i in ids) == 9
    assert sum(i.startswith("compare-") for i in ids) == 6
    assert sum(i.startswith("misspec-") for i in ids) == 3
    assert sum(i.startswith("ident-") for i in ids) == 3 and sum(i.startswith("recovery-") for i in ids) == 6
    mis = [t for t in tasks if t.id.startswith("misspec-")]
    assert all(t.params["gen_observation"] == cal.MISSPECIFIED and t.params["fit_observation"] == {} for t in mis)
    bf = [t.params["generating"] for t in tasks if t.id.startswith("bf-")]
    assert len(bf) == 40 and set(bf) <= set(HYPS) and len(set(bf)) > 1
    again = cal.plan(HYPS, bf_sims=40, draws=100, tune=100, chains=2)
    assert [t.params for t in again if t.id.startswith("bf-")] == [t.params for t in tasks if t.id.startswith("bf-")]
    # every target is importable
    from nadfit.fitting.sweep.engine import resolve

    for t in tasks:
        assert callable(resolve(t.target))


def test_plan_refuses_impossible_settings():
    with pytest.raises(UserError):
        cal.plan(HYPS, sbc_sims=2, draws=10, chains=2, rank_draws=99)
    with pytest.raises(UserError):
        cal.plan(HYPS)
    with pytest.raises(UserError):
        cal.plan(["nope"], sbc_sims=1)


def test_parse_prior():
    assert cal.parse_prior(None, HYPS) == {h: pytest.approx(1 / 3) for h in HYPS}
    p = cal.parse_prior("direct=0.25,via-nr=0.25,mixed=0.5", HYPS)
    assert p["mixed"] == 0.5
    for bad in ("direct=0.5,via-nr=0.5", "direct=0.5,via-nr=0.5,mixed=0.5", "x=1", "direct=a,via-nr=0.5,mixed=0.5"):
        with pytest.raises(UserError):
            cal.parse_prior(bad, HYPS)


def test_resume_refuses_other_settings(tmp_path):
    tasks = cal.plan(HYPS, sbc_sims=1, draws=100, tune=100, chains=2, rank_draws=49)
    (tmp_path / "sweep.json").write_text(json.dumps({"tasks": {t.id: {"params": t.params} for t in tasks}}))
    cal._check_resume(tmp_path, tasks)  # same settings: fine
    other = cal.plan(HYPS, sbc_sims=1, draws=200, tune=100, chains=2, rank_draws=49)
    with pytest.raises(UserError, match="draws"):
        cal._check_resume(tmp_path, other)


def _fake_results(tmp_path: Path, tasks: list, rng) -> dict:
    """Plausible result.json of every task (calibrated by construction), as the task kinds write them."""
    for t in tasks:
        p = t.params
        if t.kind == "cal-sbc":
            labels = ["beta", "kappa", "T:loglik", "T:fold_day60_600mg_nmn"]
            res = {"sim": p["sim"], "rank_draws": p["rank_draws"], "ranks": {k: int(rng.integers(0, p["rank_draws"] + 1))
                                                                              for k in labels},
                   "enough_ess": True, "divergences": 0, "fit_wall_s": [12.0], "wall_time_s": 13.0}
        elif t.kind == "cal-compare":
            elpd = {h: float(rng.normal()) + (3.0 if h == p["generating"] else 0.0) for h in p["hypotheses"]}
            prior = p.get("prior") or {h: 1 / len(p["hypotheses"]) for h in p["hypotheses"]}
            from nadfit.fitting.calibration.stats import posterior_model_probs

            scores = {h: {"elpd": v, "n_bad_k": 0, "divergences": 0} for h, v in elpd.items()}
            if p.get("bridge"):
                for h, v in elpd.items():
                    scores[h].update(log_ml=v - 5.0, log_ml_se=0.1, bridge_s=2.0)
            res = {"generating": p["generating"], "index": p["index"], "picked": max(elpd, key=elpd.get),
                   "scores": scores, "probs": posterior_model_probs(elpd, prior), "stacking": {h: 1 / 3 for h in elpd},
                   "probs_bridge": posterior_model_probs(elpd, prior) if p.get("bridge") else None,
                   "gen_observation": p["gen_observation"], "fit_observation": p["fit_observation"],
                   "fit_wall_s": [10.0] * 3}
        elif t.kind == "cal-ident":
            res = {"hypothesis": p["hypothesis"], "identifiable": ["beta"], "rule": "test rule",
                   "parameters": {"beta": {"forecast_contraction": 0.8}, "kappa": {"forecast_contraction": 0.1}},
                   "wall_time_s": 5.0, "fit_wall_s": []}
        elif t.kind == "cal-recovery":
            res = {"hypothesis": p["hypothesis"], "index": p["index"], "interval": 0.94, "fit_wall_s": [11.0],
                   "parameters": {k: {"covered": bool(rng.random() < 0.94), "quantile": float(rng.random()),
                                      "contraction": c} for k, c in (("beta", 0.8), ("kappa", 0.05))}}
        else:
            raise AssertionError(t.kind)
        (tmp_path / t.id).mkdir()
        (tmp_path / t.id / "result.json").write_text(json.dumps(res))
        (tmp_path / t.id / "COMPLETE").write_text("nadfit:task\n")
    return {"tasks": {}}


def test_aggregate_and_report_from_synthetic_results(tmp_path):
    rng = np.random.default_rng(4)
    tasks = cal.plan(HYPS, sbc_sims=20, compare_reps=3, misspec_reps=2, bf_sims=30, recovery_truths=4, draws=100,
                     tune=100, chains=2, rank_draws=49)
    tasks = [t for t in tasks if t.id != "sbc-mixed-0019"]
    manifest = _fake_results(tmp_path, tasks, rng)
    missing = cal.plan(["mixed"], sbc_sims=21, draws=100, tune=100, chains=2, rank_draws=49)[-1]
    doc = cal.aggregate(tmp_path, tasks + [missing], manifest, hypotheses=HYPS,
                        settings={"draws": 100, "tune": 100, "chains": 2, "seed": 1, "rank_draws": 49},
                        workers=2, sizes={}, wall_time_s=1.0)
    assert [f["task"] for f in doc["failed_tasks"]] == [missing.id]
    assert doc["sbc"]["mixed"]["n_sims"] == 19 and doc["sbc"]["direct"]["n_sims"] == 20
    assert doc["sbc"]["direct"]["test_quantities"] == ["T:loglik", "T:fold_day60_600mg_nmn"]
    c = doc["confusion"]
    assert sum(map(sum, c["matrix"])) == 9 and c["recovery"]["n"] == 9
    assert doc["confusion_misspecified"]["generating_observation"] == cal.MISSPECIFIED
    bf = doc["bf_calibration"]
    assert bf["n"] == 30 and sum(v["generated_share"] for v in bf["hypotheses"].values()) == pytest.approx(1.0)
    assert bf["estimator"] == cal.BF_ESTIMATORS["bridge"] and bf["pseudo_bma"]["n"] == 30
    rec = doc["recovery"]["mixed"]
    assert rec["identifiable"] == ["beta"] and rec["coverage_identifiable"]["n"] == 4
    assert rec["parameters"]["kappa"]["forecast_contraction"] == 0.1
    t = doc["timing"]
    assert t["n_fits"] == 59 + 9 * 3 + 6 * 3 + 30 * 3 + 12 and t["full_fits"] > t["n_fits"]
    assert t["mean_bridge_s"] == 2.0
    json.dumps(doc, allow_nan=False)
    from nadfit.fitting.calibration.stats import coverage_table, covers

    rows = [{"study": "s1", "evidence_id": "EV1", "label": "arm", "kind": "arm_mean_change", "reported": 3.0,
             **covers(np.linspace(0, 6, 101), 3.0), "median": 3.0},
            {"study": "s1", "evidence_id": "EV2", "label": "finding", "kind": "finding", "reported": None,
             "p_reported": 0.7}]
    doc["coverage"] = {"hypothesis": "mixed", "studies": ["s1"], "rows": rows, "table": coverage_table(rows[:1])}

    from nadfit.reports.calibration import render_calibration

    html = render_calibration(doc, tmp_path / "calibration.html").read_text()
    for section in ("sbc", "confusion", "bf-calibration", "coverage", "recovery", "timing"):
        assert f'id="{section}"' in html
    assert "data:image/png;base64," in html and "<script" not in html
    assert "Figure “SBC ranks" not in html  # figures drew
    assert "pseudo-BMA" in html and "Bridge sampling after each fit" in html
    # a calibration.json written before the bridge estimate (session 19) still renders
    del doc["timing"]["mean_bridge_s"]
    for key in ("pseudo_bma", "bridge_missing"):
        del doc["bf_calibration"][key]
    html = render_calibration(doc, tmp_path / "old.html").read_text()
    assert "Bridge sampling after each fit" not in html and 'id="bf-calibration"' in html


@pytest.mark.slow
def test_reduced_calibration_end_to_end(tmp_path):
    """Every part with real NUTS fits at reduced size (two hypotheses, tiny samples): every task
    finishes, every section is filled with sane numbers, resume skips finished work."""
    sizes = {"sbc_sims": 2, "compare_reps": 1, "misspec_reps": 1, "bf_sims": 2, "loso": True,
             "loso_hypothesis": "mixed", "loso_studies": ["airhart2017"], "recovery_truths": 1, "draws": 100,
             "tune": 150, "chains": 2, "rank_draws": 49, "ident_prior_draws": 200}
    out = tmp_path / "cal"
    doc = cal.run_calibration(out, ["via-nr", "mixed"], workers=2, **sizes)
    assert doc["failed_tasks"] == []
    for h in ("via-nr", "mixed"):
        s = doc["sbc"][h]
        assert s["n_sims"] == 2 and set(s["test_quantities"]) == {"T:loglik", "T:fold_day60_600mg_nmn"}
        assert all(0 <= r <= 49 for v in s["ranks"].values() for r in v)
    assert doc["confusion"]["recovery"]["n"] == 2 and doc["confusion_misspecified"]["recovery"]["n"] == 2
    for r in doc["confusion"]["replicates"]:
        assert all(np.isfinite(v) for v in r["elpd"].values())
    bf = doc["bf_calibration"]
    # at this size (2 x 100 draws) a bridge estimate can be non-finite (session 20: mixed in one of
    # the two replicates); such a replicate leaves the bridge calibration and is counted
    with_bridge = [rec for rec in bf["records"] if "probs_bridge" in rec]
    assert bf["bridge_missing"] == len(bf["records"]) - len(with_bridge)
    assert bf["estimator"] == cal.BF_ESTIMATORS["bridge" if with_bridge else "pseudo-BMA"]
    for rec in bf["records"]:
        assert sum(rec["probs"].values()) == pytest.approx(1.0, abs=1e-3)
    for rec in with_bridge:
        assert sum(rec["probs_bridge"].values()) == pytest.approx(1.0, abs=1e-3)
        assert all(np.isfinite(v) for v in rec["log_ml"].values())
    rows = [r for r in doc["coverage"]["rows"] if "pit" in r]
    assert rows and all(0.0 <= r["pit"] <= 1.0 and r["low_90"] <= r["low_50"] <= r["high_50"] <= r["high_90"]
                        for r in rows)
    for h in ("via-nr", "mixed"):
        assert doc["recovery"][h]["rule"] and doc["recovery"][h]["n_truths"] == 1
    assert doc["timing"]["n_fits"] == 4 + 4 + 4 + 4 + 1 + 2
    assert (out / "calibration.html").exists()
    # resume: nothing is refitted
    again = cal.run_calibration(out, ["via-nr", "mixed"], workers=1, **sizes)
    manifest = json.loads((out / "sweep.json").read_text())
    assert manifest["n_skipped"] == manifest["n_tasks"] and again["n_done"] == doc["n_done"]


def test_timing_scales_only_the_sampling_not_the_compilation():
    """The full-size cost model: set-up and XLA compilation are paid once per fit, the rest of the
    sampling grows with the number of steps."""
    tasks = cal.plan(["mixed"], sbc_sims=2, draws=100, tune=150, chains=2, rank_draws=49)
    tm = {"total_s": 100.0, "setup_s": 4.0, "sample_s": 96.0, "compile_s": 60.0, "mean_tree_steps": 31.0}
    done = {t.id: {"fit_wall_s": [100.0], "fit_timing": [tm]} for t in tasks if t.kind == "cal-sbc"}
    out = cal.timing(done, tasks, workers=1)
    scale = (cal.FULL_SIZES["chains"] * (cal.FULL_SIZES["draws"] + cal.FULL_SIZES["tune"])) / (2 * 250)
    assert out["mean_compile_s"] == 60.0 and out["mean_tree_steps"] == 31.0
    assert out["full_per_fit_s_upper"] == pytest.approx(4.0 + 60.0 + 36.0 * scale, abs=0.1)
    old = dict(tm, compile_s=None)  # results written before the split: the whole sampling is scaled
    done = {k: {"fit_wall_s": [100.0], "fit_timing": [old]} for k in done}
    assert cal.timing(done, tasks, workers=1)["full_per_fit_s_upper"] == pytest.approx(4.0 + 96.0 * scale, abs=0.1)


def test_bf_replicate_carries_bridge_probabilities(tmp_path, monkeypatch):
    """A Bayes-factor replicate fits every hypothesis and turns each fit's bridge-sampling log
    marginal likelihood into posterior model probabilities (the product's Bayes factors); a
    replicate without a finite estimate for every hypothesis gets none."""
    import xarray as xr

    from nadfit.fitting.calibration.stats import posterior_model_probs

    log_ml = {"direct": -30.0, "via-nr": -27.5, "mixed": -28.0}
    rng = np.random.default_rng(0)

    def fake_fit(h, evidence, cfg, outcomes=None):
        ll = rng.normal(-1.0, 0.1, (cfg.chains, cfg.draws, 3))
        post = xr.Dataset({"loglik_study": (("chain", "draw", "study"), ll)})
        return h, xr.DataTree.from_dict({"posterior": post}), {"total_s": 1.0}

    from nadfit.models.model import EvidenceModel

    monkeypatch.setattr(EvidenceModel, "prior_draw", lambda self, rng: {})  # the simulation is not tested here
    monkeypatch.setattr(EvidenceModel, "simulate_outcomes", lambda self, th, rng: {})
    monkeypatch.setattr(cal, "_fit", fake_fit)
    monkeypatch.setattr(cal, "_bridge", lambda model, dt, cfg: {"log_ml": log_ml[model], "log_ml_se": 0.1})
    task = next(t for t in cal.plan(HYPS, bf_sims=3, draws=20, tune=20, chains=2) if t.id.startswith("bf-"))
    assert task.params["bridge"] is True
    cal.task_compare(task.params, tmp_path / "a")
    res = json.loads((tmp_path / "a" / "result.json").read_text())
    assert res["probs_bridge"] == pytest.approx(posterior_model_probs(log_ml, task.params["prior"]))
    assert {h: s["log_ml"] for h, s in res["scores"].items()} == log_ml
    log_ml["mixed"] = None
    cal.task_compare(task.params, tmp_path / "b")
    assert json.loads((tmp_path / "b" / "result.json").read_text())["probs_bridge"] is None
    compare = next(t for t in cal.plan(HYPS, compare_reps=1, draws=20, tune=20, chains=2))
    assert "bridge" not in compare.params  # the confusion matrix picks by PSIS-LOO only


def test_bf_calibration_uses_bridge_and_keeps_pseudo_bma():
    prior = {h: 1 / 3 for h in HYPS}
    rng = np.random.default_rng(1)
    res = []
    for i in range(30):
        g = HYPS[i % 3]
        p = {h: (0.8 if h == g else 0.1) for h in HYPS}
        res.append({"generating": g, "probs": p, "stacking": p, "scores": {h: {"log_ml": -1.0} for h in HYPS},
                    "probs_bridge": ({h: float(x) for h, x in zip(HYPS, rng.dirichlet([1, 1, 1]))} if i < 25 else None)})
    bf = cal.bf_calibration_of(res, prior)
    assert bf["estimator"] == cal.BF_ESTIMATORS["bridge"] and bf["n"] == 25 and bf["bridge_missing"] == 5
    assert bf["pseudo_bma"]["n"] == 30 and bf["pseudo_bma"]["estimator"] == cal.BF_ESTIMATORS["pseudo-BMA"]
    assert sum("probs_bridge" in r for r in bf["records"]) == 25
    old = [{k: v for k, v in r.items() if k != "probs_bridge"} for r in res]  # results written before bridge
    bf_old = cal.bf_calibration_of(old, prior)
    assert bf_old["estimator"] == cal.BF_ESTIMATORS["pseudo-BMA"] and bf_old["n"] == 30
    assert "pseudo_bma" not in bf_old and bf_old["bridge_missing"] == 30


def test_bf_calibration_from_one_bridge_replicate_is_written_and_rendered(tmp_path):
    """Found with a real run (2 replicates, 2 x 100 draws): one replicate's bridge estimate was
    not finite, the other alone gave a mean without an SE, and calibration.json was refused
    (NaN). The SE and the verdict are now null, and the report shows them as missing."""
    from nadfit.fitting.storage.outputs import write_json
    from nadfit.reports.calibration import render_calibration

    prior = {"via-nr": 0.5, "mixed": 0.5}
    res = [{"generating": "mixed", "probs": {"via-nr": 0.02, "mixed": 0.98}, "stacking": {"via-nr": 0.0, "mixed": 1.0},
            "scores": {"via-nr": {"log_ml": -16.4}, "mixed": {"log_ml": -11.6}},
            "probs_bridge": {"via-nr": 0.01, "mixed": 0.99}},
           {"generating": "mixed", "probs": {"via-nr": 0.51, "mixed": 0.49}, "stacking": {"via-nr": 0.5, "mixed": 0.5},
            "scores": {"via-nr": {"log_ml": -13.8}, "mixed": {"log_ml": None}}, "probs_bridge": None}]
    bf = cal.bf_calibration_of(res, prior)
    assert bf["n"] == 1 and bf["bridge_missing"] == 1 and bf["all_consistent"] is None
    assert all(v["se"] is None and v["consistent"] is None for v in bf["hypotheses"].values())
    assert bf["pseudo_bma"]["n"] == 2 and bf["pseudo_bma"]["hypotheses"]["mixed"]["se"] > 0
    empty = cal.bf_calibration_of([{**r, "probs_bridge": None} for r in res], prior)  # no bridge estimate at all
    assert empty["estimator"] == cal.BF_ESTIMATORS["pseudo-BMA"] and empty["n"] == 2
    from nadfit.fitting.calibration.stats import bf_calibration

    none = bf_calibration([], prior)
    assert none["hypotheses"]["mixed"]["mean_posterior"] is None
    doc = {"schema": cal.CALIBRATE_SCHEMA, "hypotheses": list(prior), "n_tasks": 2, "sizes": {},
           "settings": {"draws": 100, "tune": 150, "chains": 2, "seed": 1, "rank_draws": 49},
           "n_done": 2, "failed_tasks": [], "workers": 1, "wall_time_s": 1.0, "sbc": {}, "recovery": {},
           "bf_calibration": bf, "timing": {"n_fits": 0}}
    write_json(tmp_path / "calibration.json", doc)  # refused NaN before
    html = render_calibration(doc, tmp_path / "calibration.html").read_text()
    assert 'id="bf-calibration"' in html and "1 of the replicates have no finite bridge estimate" in html
