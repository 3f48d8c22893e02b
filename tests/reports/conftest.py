"""Synthetic run and comparison folders with the exact structure ``nadfit fit``/``compare`` write.

Parameters are drawn from the central part of each prior (numpy only, no sampling), so the
model's ``blood_curve`` works on them and every report section has data; the folder is small
(2 chains x 40 draws) and built in well under a second.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts"
CHAINS, DRAWS, PRIOR_DRAWS = 2, 40, 30
HYPOTHESIS = "via-nr"


def _central_draws(prior, rng, shape):
    u = rng.uniform(0.3, 0.7, size=shape)
    return prior.scipy().ppf(u)


def make_run(out: Path, hypothesis: str = HYPOTHESIS, seed: int = 7, status: str = "ok") -> Path:
    import xarray as xr

    from nadfit.datasets import evidence_fingerprint, load_evidence
    from nadfit.fitting.inference.runs import RUN_SCHEMA
    from nadfit.fitting.storage.outputs import write_json
    from nadfit.models.model import EvidenceModel

    rng = np.random.default_rng(seed)
    evidence = load_evidence()
    model = EvidenceModel(hypothesis, evidence)
    priors = model.priors()
    ids = model.evidence_ids
    n_ev = len(ids)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)

    def group(chains, draws, with_items=True):
        data, coords = {}, {"chain": np.arange(chains), "draw": np.arange(draws)}
        for name, p in priors.items():
            data[name] = (("chain", "draw"), _central_draws(p, rng, (chains, draws)))
        for name, (dim, labels) in model.vector_parameters.items():
            data[name] = (("chain", "draw", dim), rng.normal(0, 0.7, size=(chains, draws, len(labels))))
            coords[dim] = list(labels)
        if with_items:
            coords["evidence_id"] = ids
            data["loglik_item"] = (("chain", "draw", "evidence_id"), -np.abs(rng.normal(0, 1.5, (chains, draws, n_ev))))
            data["model_quantity"] = (("chain", "draw", "evidence_id"), rng.normal(0.2, 0.1, (chains, draws, n_ev)))
        return xr.Dataset(data, coords=coords)

    post = group(CHAINS, DRAWS)
    prior = group(1, PRIOR_DRAWS)
    cd = {"chain": np.arange(CHAINS), "draw": np.arange(DRAWS), "evidence_id": ids}
    y_rep = np.full((CHAINS, DRAWS, n_ev), np.nan)
    p_find = np.full((CHAINS, DRAWS, n_ev), np.nan)
    for k, it in enumerate(model.items):
        if it.keyword is not None or it.observable == "nampt_overexpression_nad":
            p_find[..., k] = rng.beta(8, 2, size=(CHAINS, DRAWS))
        elif it.statistic in ("pct_change_from_baseline", "pct_change_median"):
            y_rep[..., k] = (it.value or 0.0) + rng.normal(0, 15, size=(CHAINS, DRAWS))
        elif it.kind == "approximate_time":  # a value row in weeks/days, outside the % scale
            y_rep[..., k] = (it.value or 1.0) * rng.lognormal(0.0, 0.3, size=(CHAINS, DRAWS))
    doses = np.array([0.0, 100.0, 250.0, 300.0, 500.0, 600.0, 900.0, 1200.0, 2000.0])
    days = np.arange(91)
    amp = rng.lognormal(np.log(0.4), 0.3, size=(30, 1, 1))
    fold = 1 + amp * (doses[None, :, None] / 1000.0) * (1 - np.exp(-days[None, None, :] / 10.0))
    energy = rng.normal(0, 3, size=(CHAINS, DRAWS)).cumsum(axis=1) * 0.3 + rng.normal(0, 2, (CHAINS, DRAWS))
    diverging = np.zeros((CHAINS, DRAWS), dtype=bool)
    if status != "ok":
        diverging[0, :3] = True
    fingerprint = evidence_fingerprint(evidence)
    cfg = {"hypothesis": hypothesis, "evidence": [], "exclude": [], "draws": DRAWS, "tune": DRAWS,
           "chains": CHAINS, "seed": seed, "target_accept": 0.95, "widen_priors": 1.0,
           "accept_failed_gates": False, "prior_draws": PRIOR_DRAWS, "observation": {}}
    versions = {"python": "3.13", "nadfit": "0.1.0", "synthetic": "tests/reports"}
    dt = xr.DataTree.from_dict({
        "posterior": post,
        "prior": prior,
        "log_likelihood": xr.Dataset({"evidence": post["loglik_item"]}),
        "posterior_predictive": xr.Dataset({"y_rep": (("chain", "draw", "evidence_id"), y_rep),
                                            "p_finding": (("chain", "draw", "evidence_id"), p_find)}, coords=cd),
        "observed_data": xr.Dataset({
            "value": (("evidence_id",), np.array([np.nan if it.value is None else it.value for it in model.items])),
            "statistic": (("evidence_id",), np.array([it.statistic for it in model.items])),
            "finding": (("evidence_id",), np.array([it.keyword or "" for it in model.items])),
            "observable": (("evidence_id",), np.array([it.observable for it in model.items])),
            "study_id": (("evidence_id",), np.array([it.study_id for it in model.items]))},
            coords={"evidence_id": ids}),
        "predictions": xr.Dataset({"blood_nad_fold_nmn": (("sample", "dose_mg", "day"), fold)},
                                  coords={"sample": np.arange(30), "dose_mg": doses, "day": days}),
        "sample_stats": xr.Dataset({"diverging": (("chain", "draw"), diverging),
                                    "energy": (("chain", "draw"), energy),
                                    "step_size": (("chain", "draw"), np.full((CHAINS, DRAWS), 0.1))},
                                   coords={"chain": np.arange(CHAINS), "draw": np.arange(DRAWS)}),
    })
    dt.attrs.update({"nadfit_schema": RUN_SCHEMA, "hypothesis": hypothesis, "seed": seed, "config_hash": "synthetic",
                     "evidence_fingerprint": fingerprint, "evidence_ids": json.dumps(ids),
                     "versions": json.dumps(versions), "config": json.dumps(cfg), "status": status})
    dt.to_netcdf(out / "posterior.nc", engine="h5netcdf")

    import arviz_stats as azs

    names = list(model.scalar_parameters) + list(model.vector_parameters)
    s = azs.summary(dt, var_names=names, ci_prob=0.89, ci_kind="eti")
    params = {str(lbl): {"mean": float(r["mean"]), "sd": float(r["sd"]), "ci89_low": float(r.iloc[2]),
                         "ci89_high": float(r.iloc[3]), "ess_bulk": float(r["ess_bulk"]),
                         "ess_tail": float(r["ess_tail"]), "r_hat": float(r["r_hat"])} for lbl, r in s.iterrows()}
    ndiv = int(diverging.sum())
    rhat = max(p["r_hat"] for p in params.values())
    ess = min(p["ess_bulk"] for p in params.values())
    gates = {"r_hat_max": {"value": rhat, "threshold": 1.01, "passed": status == "ok"},
             "ess_bulk_min": {"value": ess, "threshold": 400, "passed": status == "ok"},
             "divergences": {"value": ndiv, "threshold": 0, "passed": ndiv == 0}}
    summary = {
        "schema": RUN_SCHEMA, "hypothesis": hypothesis, "status": status, "seed": seed,
        "sampler": {"name": "nutpie", "backend": "jax", "draws": DRAWS, "tune": DRAWS, "chains": CHAINS,
                    "target_accept": 0.95},
        "wall_time_s": 1.5, "divergences": ndiv, "gates": gates, "config_hash": "synthetic",
        "evidence_fingerprint": fingerprint, "evidence_ids": ids, "n_evidence_rows": int(len(evidence)),
        "ci": {"prob": 0.89, "kind": "eti"}, "parameters": params,
        "priors": {n: p.to_dict() for n, p in priors.items()}, "versions": versions,
    }
    write_json(out / "summary.json", summary)
    write_json(out / "config.json", cfg)
    (out / "COMPLETE").write_text("ok\n")
    return out


def make_comparison(out: Path, runs: dict[str, Path], full: bool = True) -> Path:
    from nadfit.datasets import load_evidence
    from nadfit.fitting.comparison.assemble import COMPARISON_SCHEMA
    from nadfit.fitting.storage.outputs import write_json
    from nadfit.models.model import EvidenceModel

    rng = np.random.default_rng(3)
    hyps = list(runs)
    items = EvidenceModel("via-nr", load_evidence()).items
    pointwise = [{"evidence_id": it.evidence_id, "study_id": it.study_id, "label": it.label,
                  "elpd": {h: float(-abs(rng.normal(0, 1))) for h in hyps}} for it in items]
    studies = sorted({p["study_id"] for p in pointwise})
    by_study = [{"study_id": s, "elpd": {h: sum(p["elpd"][h] for p in pointwise if p["study_id"] == s)
                                         for h in hyps}} for s in studies]
    loo = {h: {"elpd": sum(p["elpd"][h] for p in pointwise), "se": 3.0 + i, "p_loo": 5.0 + i,
               "n_bad_k": i, "k_max": 0.5 + 0.2 * i} for i, h in enumerate(hyps)}
    order = sorted(hyps, key=lambda h: -loo[h]["elpd"])
    ranking = [{"hypothesis": h, "rank": i + 1, "elpd_diff": loo[order[0]]["elpd"] - loo[h]["elpd"],
                "dse": 0.0 if i == 0 else 1.5, "weight": w}
               for i, (h, w) in enumerate(zip(order, np.linspace(0.7, 0.1, len(order))))]
    comp = {"schema": COMPARISON_SCHEMA, "runs": {h: str(p) for h, p in runs.items()}, "loo": loo,
            "ranking": ranking, "stacking_weights": {r["hypothesis"]: r["weight"] for r in ranking},
            "pointwise": pointwise, "by_study": by_study,
            "verdict": f"{order[0]} is preferred by LOO; the difference is within 2 SE (synthetic)"}
    if full:
        # the current comparison.json: LOO status per row (two exact rows, one not estimable),
        # LOO-PIT, both marginal-likelihood estimators (one pair disagreeing), a structured verdict
        n_rows = len(pointwise)
        for j, p in enumerate(pointwise):
            p["pareto_k"] = {h: round(float(rng.uniform(-0.2, 0.9)), 3) for h in hyps}
            p["loo_status"] = {h: ("high_k" if p["pareto_k"][h] > 0.7 else "ok") for h in hyps}
            if j in (0, 1):
                p["pareto_k"] = {h: None for h in hyps}
                p["loo_status"] = {h: "exact" for h in hyps}
            if j == 2:
                p["pareto_k"][hyps[0]] = None
                p["loo_status"][hyps[0]] = "not_estimable"
        for h in hyps:
            st = [p["loo_status"][h] for p in pointwise]
            ks = [p["pareto_k"][h] for p in pointwise if p["pareto_k"][h] is not None]
            loo[h].update(n_bad_k=st.count("high_k") + st.count("not_estimable"), n_exact=st.count("exact"),
                          k_max=max(ks), exact_rows=[p["evidence_id"] for p in pointwise if p["loo_status"][h] == "exact"],
                          k_not_estimable_rows=[p["evidence_id"] for p in pointwise
                                                if p["loo_status"][h] == "not_estimable"])
        comp["n_rows"] = n_rows
        comp["run_status"] = {h: "ok" for h in hyps}
        comp["loo_pit"] = {h: {"evidence_id": ["EV026", "EV028", "EV029", "EV080", "EV211"],
                               "pit": [0.17, 0.72, 0.72, 0.79, 0.62]} for h in hyps}
        comp["verdict_parts"] = {
            "headline": f"'{order[0]}' and '{order[1]}' cannot be told apart by PSIS-LOO (synthetic). "
                        "Provisional: PSIS-LOO unreliable for some rows; Bayes-factor estimators disagree.",
            "provisional": ["PSIS-LOO unreliable for some rows", "Bayes-factor estimators disagree"],
            "points": [{"aspect": "not decided", "text": "ΔELPD within 2 SE (synthetic)."},
                       {"aspect": "why", "text": "driven by grozio2019 (synthetic)."},
                       {"aspect": "robustness", "text": "SMC and bridge sampling disagree (synthetic)."}]}
        comp["unit"] = {"name": "study", "plural": "studies", "variable": "evidence", "dim": "study",
                        "aggregated_from": "evidence_id", "n": len(studies), "method": "synthetic"}
        comp["secondary"] = {"evidence": {"dim": "evidence_id", "unit": "row", "units": "rows", "n_units": n_rows,
                                          "loo": {h: {**loo[h], "n_raw_is": 1 if h == hyps[0] else 0} for h in hyps}}}
        points = []
        for j, eps in enumerate((0.02, 0.05, 0.1, 0.2)):
            rk = [{"hypothesis": h, "elpd": loo[h]["elpd"] - j, "elpd_diff": loo[order[0]]["elpd"] - loo[h]["elpd"],
                   "dse": 1.5, "weight": r["weight"], "n_bad_k": 0} for h, r in zip(order, ranking)]
            points.append({"name": f"eps {eps:g}", "overrides": {"eps": eps}, "order": order, "ranking": rk,
                           "pairs": [{"h1": order[0], "h2": h, "elpd_diff": 2.0 + j, "dse": 1.0} for h in order[1:]],
                           "reweighting": {h: {"pareto_k": 0.2 + 0.1 * j, "log_ml_shift": -0.5 * j} for h in hyps},
                           "bayes_factors": [{"h1": order[0], "h2": order[1], "smc_log_bf": 1.0 + j}],
                           "reliable": j < 3, "refit_needed": [] if j < 3 else [order[0]]})
        comp["observation_grid"] = {"grid": [{"name": p["name"], "overrides": p["overrides"]} for p in points],
                                    "points": points, "ranking_holds": True, "leader_holds": True, "flips": [],
                                    "unreliable": [{"name": "eps 0.2", "refit_needed": [order[0]], "order": order}],
                                    "n_points": 4, "n_reliable": 3, "wall_time_s": 12.0}
        comp["smc"] = {h: {"log_ml_runs": [-50.0 - i, -50.4 - i], "log_ml_mean": -50.2 - i, "log_ml_mc_se": 0.2}
                       for i, h in enumerate(hyps)}
        comp["bridge"] = {h: {"log_ml": -46.0 - 2 * i, "mc_se": 0.1, "runs": [-46.0 - 2 * i, -46.1 - 2 * i]}
                          for i, h in enumerate(hyps)}
        comp["bayes_factors"] = [{"h1": hyps[0], "h2": h, "log_bf": 1.2, "mc_se": 0.3, "bridge_log_bf": -1.1,
                                  "bridge_mc_se": 0.15, "estimators_agree": False}
                                 for h in hyps[1:]]
        comp["sensitivity"] = {"wider_priors": {"ranking": order, "elpd_diff": 1.3},
                               "observation": {"approx_factor_x2": {"elpd_diff": 0.8}}}
        comp["phi_share"] = {"human": {"mean": 0.4, "ci89_low": 0.1, "ci89_high": 0.8},
                             "grozio2019_gut": {"mean": 0.7, "ci89_low": 0.4, "ci89_high": 0.95}}
        comp["calibration"] = {"confusion": {h: {g: (8 if g == h else 1) for g in hyps} for h in hyps}}
        # reports.human_only.prediction_shift per hypothesis: one reliable reweighting, one not
        from nadfit.reports.human_only import SHIFT_REGIMENS

        def q(m):
            return {"q05": 0.8 * m, "median": m, "q95": 1.4 * m}

        comp["human_only"] = {
            h: {"non_human_studies": ["grozio2019", "hara2019"], "pareto_k": 0.4 if i == 0 else 1.2,
                "reliable": i == 0, "ess": 300.0 if i == 0 else 5.0, "human_only_run": "runs/x/fits-human-only/mixed",
                "human_only_hypothesis": "mixed", "human_only_status": "accepted_failed_gates",
                "human_only_gates": {"r_hat_max": 1.02, "ess_bulk_min": 350.0, "divergences": 0},
                "rows": [{"compound": "NMN", "dose_mg": d, "day": day, "all_evidence": q(1 + d / 600),
                          "human_only_psis": q(1 + d / 700) if i == 0 else None, "human_only_refit": q(1 + d / 800)}
                         for d, day in SHIFT_REGIMENS]}
            for i, h in enumerate(hyps)}
        # fitting.comparison.designs on small synthetic predictions (numpy only)
        from nadfit.fitting.comparison.designs import DESIGNS, Predictive, compare_designs
        from nadfit.fitting.comparison.pipeline import clean_json

        def pred(i, k):
            mu = rng.normal(0.3 + 0.2 * i, 0.1, (20, k))
            return Predictive(mu, np.full(20, 0.2), np.full(20, 0.1), np.full(20, 0.3))

        comp["designs"] = clean_json(compare_designs(
            {h: {d.key: pred(i, len(d.arms)) for d in DESIGNS} for i, h in enumerate(hyps)}, trials=100))
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    write_json(out / "comparison.json", comp)
    (out / "COMPLETE").write_text("ok\n")
    return out


@pytest.fixture(scope="session")
def synth_run(tmp_path_factory) -> Path:
    return make_run(tmp_path_factory.mktemp("runs") / "via-nr")


@pytest.fixture(scope="session")
def synth_failed_run(tmp_path_factory) -> Path:
    return make_run(tmp_path_factory.mktemp("runs_failed") / "direct", hypothesis="direct", status="failed_gates")


@pytest.fixture(scope="session")
def rendered_run(synth_run, tmp_path_factory) -> Path:
    return render_run_dir(synth_run, tmp_path_factory.mktemp("html") / "report.html")


@pytest.fixture(scope="session")
def synth_comparison(synth_run, synth_failed_run, tmp_path_factory) -> Path:
    return make_comparison(tmp_path_factory.mktemp("cmp") / "comparison",
                           {"via-nr": synth_run, "direct": synth_failed_run})


@pytest.fixture(scope="session")
def rendered_comparison(synth_comparison) -> Path:
    from nadfit.fitting.comparison.pipeline import render_comparison_folder

    return render_comparison_folder(synth_comparison)


def render_run_dir(run_dir, out=None, figures: bool = True):
    """Load a run folder the way the CLI does and render its report."""
    from nadfit.fitting.comparison.sensitivity import power_scaling
    from nadfit.fitting.inference.runs import load_run
    from nadfit.reports.render import render_run

    run = load_run(run_dir)
    return render_run(run, out, psense=power_scaling(run), figures=figures)
