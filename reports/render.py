"""Self-contained HTML reports of a run folder (``nadfit report``) and of a comparison folder
(``nadfit report-compare``, also called by ``nadfit compare``).

Design choice — static figures instead of an interactive plotting library: every figure is a
matplotlib PNG embedded as a ``data:`` URI and the page carries no JavaScript at all (a
Content-Security-Policy meta tag forbids scripts and any network fetch). That keeps a report one
small file that opens offline from disk, renders identically everywhere, is deterministic for a
given run folder (no timestamps in the images), and cannot execute anything that came from the
evidence metadata. Jinja2 autoescaping is on, so study titles, notes and locators are text.

Intervals: 89 % equal-tailed (ETI) throughout, 50 % ETI as the inner band (``CI_PROB``).
"""

from __future__ import annotations

import math
import sys
from pathlib import Path

import numpy as np

from nadfit.datasets.errors import UserError
from nadfit.reports.conventions import CI_PROB, CI_QUANTILES, PARETO_K_BAD, retry_note
from nadfit.reports.diagnostics import BFMI_MIN, RANK_ALPHA, rank_uniformity
from nadfit.reports.diagnostics import bfmi as _bfmi_per_chain

CONTRACTION_MIN = 0.1
KEY_PAIR_PARAMS = ("pi_nmn", "pi_nr", "t_blood_days", "sigma_person", "lambda_blood_unspecified")
RUN_SECTIONS = ("header", "diagnostics", "parameters", "fit", "dose-response", "provenance")
COMPARISON_SECTIONS = ("header", "elpd", "weights", "by-study", "pointwise", "secondary", "bayes-factors",
                       "observation-grid", "sensitivity", "human-only", "trial-designs", "phi-share",
                       "calibration")
#: trial points overlaid on the dose-response figures (Huang 2022, serum NAD+/NADH, 300 mg/day)
HUANG_POINTS = (
    {"evidence_id": "EV026", "dose": 300.0, "day": 30, "pct": 11.3},
    {"evidence_id": "EV028", "dose": 300.0, "day": 60, "pct": 38.0},
)


# --------------------------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------------------------

def _env():
    import jinja2

    env = jinja2.Environment(
        loader=jinja2.PackageLoader("nadfit.reports", "templates"),
        autoescape=jinja2.select_autoescape(enabled_extensions=("html", "j2", "html.j2"), default=True),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["num"] = fmt_num
    return env


def fmt_num(v, digits: int = 3) -> str:
    """Compact number formatting for tables; None/NaN become an en dash."""
    if v is None:
        return "–"
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, (int, np.integer)):
        return str(int(v))
    try:
        f = float(v)
    except (TypeError, ValueError):
        return str(v)
    if not math.isfinite(f):
        return "–"
    if 1e3 <= abs(f) < 1e6:
        return f"{f:,.0f}"
    return f"{f:.{digits}g}"


def _safe_url(url) -> str | None:
    """Only http(s) links are rendered as links (no javascript:/data: URLs from metadata)."""
    if isinstance(url, str) and url.strip().lower().startswith(("https://", "http://")):
        return url.strip()
    return None


def _write(path: Path, html: str) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(html, encoding="utf-8")
    tmp.replace(path)
    return path


def _check_out(out) -> Path:
    out = Path(out)
    if out.exists() and out.is_dir():
        raise UserError("--out names a folder; give a file name such as report.html", file=str(out))
    if out.suffix.lower() not in (".html", ".htm"):
        raise UserError("--out must end in .html", file=str(out))
    return out


def _draws(da) -> np.ndarray:
    """(chain, draw, ...) -> (sample, ...) numpy."""
    dims = [d for d in ("chain", "draw") if d in da.dims]
    if not dims:
        return np.asarray(da.values, dtype=float)
    return np.asarray(da.stack(sample=dims).transpose("sample", ...).values, dtype=float)


# --------------------------------------------------------------------------------------------
# evidence change check
# --------------------------------------------------------------------------------------------

def evidence_change(run) -> str | None:
    """A one-line warning when the shipped evidence differs from what ``run`` was fitted to."""
    from nadfit.datasets import evidence_fingerprint

    if run.evidence is None:
        return f"the shipped evidence cannot be loaded or re-selected ({run.evidence_problem}); the run may be stale"
    recorded = run.summary.get("evidence_fingerprint")
    current = evidence_fingerprint(run.evidence)
    if recorded and recorded != current:
        return (f"the evidence changed since this fit (fingerprint {recorded[:12]}… at fit time, "
                f"{current[:12]}… now); refit before relying on these results")
    return None


# --------------------------------------------------------------------------------------------
# evidence rows: arm, time, statistic
# --------------------------------------------------------------------------------------------

def _blank(v) -> bool:
    return v is None or (isinstance(v, float) and math.isnan(v)) or (isinstance(v, str) and not v.strip())


def _stat_text(r) -> str:
    """The reported statistic in words: '+11.3 % vs own baseline', 'p ≤ 0.001 vs placebo', ..."""
    st, v, vt, unit = r.get("statistic"), r.get("value"), r.get("value_text"), r.get("unit")
    comp = "" if _blank(r.get("comparator")) else f" vs {r['comparator']}"
    unit = "" if _blank(unit) else (unit if unit == "%" else f" {unit}")
    val = "" if _blank(v) else f"{float(v):g}"
    if st == "pct_change_from_baseline":
        return f"{float(v):+g} %{comp}" if val else f"% change{comp}"
    if st == "pct_change_median":
        return f"median {float(v):+g} %{comp}" if val else f"median % change{comp}"
    if st == "p_value_upper_bound":
        return f"p ≤ {val}{comp}"
    if st == "p_value":
        return f"p = {val}{comp}"
    if st in ("direction", "statement"):
        return f"{st}: {'' if _blank(vt) else vt}{comp}"
    if st in ("range_low", "range_high"):
        return f"{'lower' if st == 'range_low' else 'upper'} bound {val}{unit}{comp}"
    if st == "approx_time_to_plateau":
        plural = "s" if unit.strip() in ("day", "week", "month", "hour") and val != "1" else ""
        return f"≈ {val}{unit}{plural} to plateau"
    shown = val or ("" if _blank(vt) else str(vt))
    return f"{st} {shown}{unit}{comp}".strip()


def _when(r) -> str:
    t, unit = r.get("time"), r.get("time_unit")
    if _blank(t):
        return "time not stated"
    unit = "" if _blank(unit) else str(unit)
    if unit in ("day", "days", "week", "weeks", "month", "months", "hour", "hours"):
        return f"{unit.rstrip('s')} {float(t):g}"
    return f"{float(t):g} {unit}".strip()


def describe_evidence(evidence) -> dict[str, dict]:
    """evidence_id -> {arm, when, stat, matrix, analyte, short}: what distinguishes rows of one
    study (e.g. Yi 2022's six p-value rows differ only in arm and day)."""
    out = {}
    if evidence is None:
        return out
    for r in evidence.to_dict(orient="records"):
        arm = "" if _blank(r.get("group")) else str(r["group"])
        matrix = "" if _blank(r.get("matrix")) else str(r["matrix"]).replace("_", " ")
        d = {"arm": arm or "–", "when": _when(r), "stat": _stat_text(r), "matrix": matrix,
             "analyte": "" if _blank(r.get("analyte")) else str(r["analyte"]), "study_id": str(r.get("study_id", ""))}
        d["short"] = " · ".join(x for x in (arm, d["when"] if d["when"] != "time not stated" else "", matrix) if x)
        out[str(r["evidence_id"])] = d
    return out


def _short(text: str, n: int = 48) -> str:
    return text if len(text) <= n else text[: n - 1].rstrip() + "…"


#: what the model quantity of a row scored by a test statistic, a bound or a time means
#: (observable of models/evidence_map.yaml -> meaning, and how exp(q) reads)
QUANTITY_MEANING = {
    "human_t_vs_placebo": ("log ratio of the arm's blood NAD+ to placebo's at that day; the reported p-value is "
                           "scored against the t statistic it implies", "×{:.2f} vs placebo"),
    "human_dose_contrast": ("log ratio of blood NAD+ between two arms at that day", "×{:.2f} between arms"),
    "human_t_paired": ("log fold change of blood NAD+ from the arm's own baseline; the reported p-value is scored "
                       "against the paired t statistic it implies", "×{:.2f} from baseline"),
    "human_log_fold": ("log fold change from baseline", "×{:.2f} from baseline"),
    "human_cv_extreme": ("log of the smallest or largest between-person coefficient of variation of the change "
                         "across the arms", "CV ≈ {:.0%}"),
    "human_t90": ("log of the days the blood pool needs to reach 90 % of its plateau", "≈ {:.1f} days"),
}


def _quantity_note(observable: str | None, median: float | None) -> str:
    meaning, fmt = QUANTITY_MEANING.get(observable or "", ("the model quantity this row scores (log scale)", None))
    if fmt and median is not None and math.isfinite(median):
        try:
            return f"{meaning}; exp = {fmt.format(math.exp(median))}"
        except OverflowError:
            pass
    return meaning


# --------------------------------------------------------------------------------------------
# run report
# --------------------------------------------------------------------------------------------

def _gates(summary: dict) -> list[dict]:
    out = []
    for name, g in (summary.get("gates") or {}).items():
        op = {"r_hat_max": "≤", "ess_bulk_min": "≥", "divergences": "≤"}.get(name, "vs")
        out.append({"name": name, "value": g.get("value"), "threshold": g.get("threshold"), "op": op,
                    "passed": bool(g.get("passed"))})
    return out


def _bfmi(dt) -> list[float] | None:
    if "sample_stats" not in dt.children or "energy" not in dt["sample_stats"].data_vars:
        return None
    return _bfmi_per_chain(dt["sample_stats"]["energy"].values)


def _rank_tests(post, scalar: list[str], vectors: list[str]) -> dict[str, dict]:
    """Rank-ECDF uniformity test of every scalar parameter and every element of the latent
    vectors, keyed like ``summary.json``'s parameters (``z_het[yi2022]``)."""
    out = {}
    if "chain" not in post.dims or post.sizes["chain"] < 2:
        return out
    for name in scalar:
        out[name] = {"name": name, **rank_uniformity(post[name].transpose("chain", "draw").values)}
    for v in vectors:
        da = post[v]
        dims = [d for d in da.dims if d not in ("chain", "draw")]
        if len(dims) != 1:
            continue
        for lab in da[dims[0]].values:
            key = f"{v}[{lab}]"
            out[key] = {"name": key, **rank_uniformity(da.sel({dims[0]: lab}).transpose("chain", "draw").values)}
    return out


def _fmt_p(p) -> str:
    return "–" if p is None else (f"{p:.3f}" if p >= 0.001 else "< 0.001")


def run_checks(gates: list[dict], rank: dict[str, dict], bfmi: list[float] | None, fit_rows: list[dict],
               psense_rows: list[dict] | None, uninformed: list[str], evidence_changed: str | None) -> dict:
    """Every diagnostic the run report shows, as one checklist for the top banner.

    Each check: ``name``, ``status`` (``pass`` | ``fail`` | ``warn`` | ``absent``), ``text``
    (what was found) and ``anchor`` (the section that shows it). ``level`` is the banner's class
    (``bad`` when any check fails, ``warn`` when any warns or is absent, else ``good``) and
    ``headline`` says what passed and what did not — never "all passed" above a failing panel."""
    checks = []
    gate_names = {"r_hat_max": "R-hat", "ess_bulk_min": "bulk ESS", "divergences": "divergent transitions"}
    for g in gates:
        label = gate_names.get(g["name"], g["name"])
        checks.append({"name": label, "status": "pass" if g["passed"] else "fail", "anchor": "diagnostics",
                       "text": f"{fmt_num(g['value'], 4)} (gate {g['op']} {fmt_num(g['threshold'])})",
                       "gate": True})
    tested = {k: r for k, r in rank.items() if r.get("p") is not None}
    if tested:
        bad = sorted((r for r in tested.values() if not r["passed"]), key=lambda r: r["p"])
        text = (f"{len(tested) - len(bad)} of {len(tested)} parameters uniform "
                f"(simultaneous {100 * (1 - RANK_ALPHA):g} % envelope, per-parameter α = {RANK_ALPHA:g})")
        if bad:
            text = ("chains disagree for " + ", ".join(f"{r['name']} (p {_fmt_p(r['p'])})" for r in bad[:6])
                    + (f" and {len(bad) - 6} more" if len(bad) > 6 else "") + "; " + text)
        checks.append({"name": "rank-ECDF uniformity", "status": "fail" if bad else "pass", "anchor": "diagnostics",
                       "text": text})
    else:
        checks.append({"name": "rank-ECDF uniformity", "status": "absent", "anchor": "diagnostics",
                       "text": "not computed (needs two or more chains)"})
    if bfmi:
        low = [i for i, b in enumerate(bfmi) if b < BFMI_MIN]
        checks.append({"name": "E-BFMI", "status": "fail" if low else "pass", "anchor": "diagnostics",
                       "text": ", ".join(f"chain {i}: {b:.2f}" for i, b in enumerate(bfmi))
                       + f" (flagged below {BFMI_MIN})"})
    else:
        checks.append({"name": "E-BFMI", "status": "absent", "anchor": "diagnostics",
                       "text": "not computed (no energy in sample_stats)"})
    vals = [r for r in fit_rows if r["kind"] == "value"]
    finds = [r for r in fit_rows if r["kind"] == "finding"]
    if vals or finds:
        out_v = [r["evidence_id"] for r in vals if not r["inside"]]
        out_f = [r["evidence_id"] for r in finds if r["p"] < 0.5]
        text = (f"{len(vals) - len(out_v)} of {len(vals)} numeric rows inside the replicated {CI_PROB:.0%} ETI"
                f"{' (outside: ' + ', '.join(out_v) + ')' if out_v else ''}; "
                f"{len(finds) - len(out_f)} of {len(finds)} reported findings reproduced with P ≥ 0.5"
                f"{' (not: ' + ', '.join(out_f) + ')' if out_f else ''}")
        checks.append({"name": "fit to the evidence", "status": "warn" if (out_v or out_f) else "pass",
                       "anchor": "fit", "text": text})
    else:
        checks.append({"name": "fit to the evidence", "status": "absent", "anchor": "fit",
                       "text": "not computed (no posterior predictive group)"})
    if psense_rows:
        flagged = [r["name"] for r in psense_rows if r.get("diagnosis", "–") != "–"]
        checks.append({"name": "power-scaling sensitivity", "status": "warn" if flagged else "pass",
                       "anchor": "parameters",
                       "text": (f"{len(flagged)} of {len(psense_rows)} parameters sensitive to the prior or likelihood"
                                if flagged else f"none of {len(psense_rows)} parameters flagged")})
    else:
        checks.append({"name": "power-scaling sensitivity", "status": "absent", "anchor": "parameters",
                       "text": "not computed"})
    if uninformed:
        checks.append({"name": "informed by the evidence", "status": "warn", "anchor": "parameters",
                       "text": f"{len(uninformed)} parameters barely moved from the prior (contraction < "
                               f"{CONTRACTION_MIN}): " + ", ".join(uninformed)})
    if evidence_changed:
        checks.append({"name": "evidence unchanged since the fit", "status": "fail", "anchor": "header",
                       "text": evidence_changed})
    return _summarise(checks)


def _summarise(checks: list[dict]) -> dict:
    """Banner level and headline of a checklist: what failed, what passed, what to read with care."""
    failed = [c["name"] for c in checks if c["status"] == "fail"]
    warned = [c["name"] for c in checks if c["status"] in ("warn", "absent")]
    passed = [c["name"] for c in checks if c["status"] == "pass"]
    gates_failed = [c.get("short", c["name"]) for c in checks if c.get("gate") and c["status"] == "fail"]
    other_failed = [c["name"] for c in checks if c["status"] == "fail" and not c.get("gate")]
    parts = []
    if gates_failed:
        parts.append("CONVERGENCE GATES FAILED: " + ", ".join(gates_failed) + ".")
    if other_failed:
        parts.append(("Also failed: " if gates_failed else "Failed: ") + ", ".join(other_failed) + ".")
    if not failed and not warned:
        parts.append("Every diagnostic in this report passed: " + ", ".join(passed) + ".")
    else:
        if not failed:
            parts.append("No diagnostic failed.")
        if passed:
            parts.append("Passed: " + ", ".join(passed) + ".")
    if warned:
        parts.append("Read with care: " + ", ".join(warned) + ".")
    level = "bad" if failed else "warn" if warned else "good"
    head = " ".join(parts)
    return {"checks": checks, "level": level, "headline": head, "failed": failed, "warned": warned,
            "passed": passed}


def _prior_dist(prior_dict: dict, widen: float):
    """Frozen scipy prior (None when the prior was widened — then prior draws are used)."""
    if widen != 1.0:
        return None
    from nadfit.models.priors import Prior

    try:
        p = Prior(**{k: (tuple(v) if k == "rows" else v) for k, v in prior_dict.items() if k != "summary"})
        return p.scipy()
    except Exception:  # noqa: BLE001 — unknown family in an old run: fall back to prior draws
        return None


#: how a prior's unit is shown in the parameter table
UNIT_SHOWN = {"1": "dimensionless", "log": "log scale (SD of a log quantity)"}


def _parameter_rows(dt, summary: dict, widen: float) -> list[dict]:
    post = dt["posterior"]
    prior = dt["prior"] if "prior" in dt.children else None
    rows = []
    for name, pr in (summary.get("priors") or {}).items():
        if name not in post.data_vars:
            continue
        draws = _draws(post[name]).reshape(-1)
        pdraws = _draws(prior[name]).reshape(-1) if prior is not None and name in prior.data_vars else None
        dist = _prior_dist(pr, widen)
        log = pr.get("family") == "lognormal"
        tr = np.log if log else (lambda v: v)
        if log and dist is not None:
            prior_var = float(pr["args"]["sigma"]) ** 2
        elif dist is not None:
            prior_var = float(dist.var())
        elif pdraws is not None and pdraws.size > 2:
            prior_var = float(np.var(tr(pdraws)))
        else:
            prior_var = math.nan
        post_var = float(np.var(tr(draws)))
        contraction = 1.0 - post_var / prior_var if prior_var > 0 else math.nan
        s = (summary.get("parameters") or {}).get(name, {})
        rows.append({
            "name": name, "unit": pr.get("unit", ""), "unit_shown": UNIT_SHOWN.get(pr.get("unit") or "1", pr.get("unit")),
            "prior": pr.get("summary", ""),
            "description": pr.get("description", ""), "basis": pr.get("basis", ""),
            "rows": list(pr.get("rows") or []), "weak": bool(pr.get("weak")),
            "mean": s.get("mean"), "sd": s.get("sd"), "lo": s.get("ci89_low"), "hi": s.get("ci89_high"),
            "r_hat": s.get("r_hat"), "ess_bulk": s.get("ess_bulk"), "ess_tail": s.get("ess_tail"),
            "contraction": contraction if math.isfinite(contraction) else None,
            "uninformed": math.isfinite(contraction) and contraction < CONTRACTION_MIN,
            "log": log, "post": draws, "prior_draws": pdraws, "dist": dist,
        })
    return rows


def _evidence_fit(dt, evidence, labels: dict, studies: dict, desc: dict | None = None) -> list[dict]:
    pp = dt["posterior_predictive"] if "posterior_predictive" in dt.children else None
    obs = dt["observed_data"] if "observed_data" in dt.children else None
    if pp is None or obs is None:
        return []
    ev = evidence.set_index("evidence_id") if evidence is not None else None
    ids = [str(i) for i in obs["evidence_id"].values]
    y_rep = _draws(pp["y_rep"]) if "y_rep" in pp.data_vars else None
    p_find = _draws(pp["p_finding"]) if "p_finding" in pp.data_vars else None
    post = dt["posterior"]
    mq = _draws(post["model_quantity"]) if "model_quantity" in post.data_vars else None
    ll = _draws(post["loglik_item"]) if "loglik_item" in post.data_vars else None
    rows = []
    for k, eid in enumerate(ids):
        study = str(obs["study_id"].values[k])
        r = {"evidence_id": eid, "study_id": study, "statistic": str(obs["statistic"].values[k]),
             "finding": str(obs["finding"].values[k]), "observed": float(obs["value"].values[k]),
             "label": labels.get(eid, eid), "url": None, "locator": "", "kind": None,
             "observable": str(obs["observable"].values[k]) if "observable" in obs.data_vars else None,
             "desc": (desc or {}).get(eid)}
        r["unit"] = ""
        if ev is not None and eid in ev.index:
            r["url"] = _safe_url(ev.at[eid, "source_url"])
            r["locator"] = str(ev.at[eid, "locator"])
            unit = ev.at[eid, "unit"]
            r["unit"] = "" if _blank(unit) else str(unit)
        yr = y_rep[:, k] if y_rep is not None else np.array([np.nan])
        pf = p_find[:, k] if p_find is not None else np.array([np.nan])
        if np.isfinite(yr).any() and math.isfinite(r["observed"]):
            q = np.quantile(yr[np.isfinite(yr)], (CI_QUANTILES[0], 0.25, 0.5, 0.75, CI_QUANTILES[1]))
            r.update(kind="value", q=[float(x) for x in q],
                     inside=bool(q[0] <= r["observed"] <= q[4]))
        elif np.isfinite(pf).any():
            r.update(kind="finding", p=float(np.nanmean(pf)))
        else:
            r.update(kind="other")
            if mq is not None:
                v = mq[:, k][np.isfinite(mq[:, k])]
                if v.size:
                    r["mq"] = [float(x) for x in np.quantile(v, (CI_QUANTILES[0], 0.5, CI_QUANTILES[1]))]
                    r["mq_note"] = _quantity_note(r["observable"], r["mq"][1])
            if ll is not None:
                r["p_mean"] = float(np.mean(np.exp(ll[:, k])))
        rows.append(r)
    rows.sort(key=lambda r: (r["study_id"], r["evidence_id"]))
    return rows


def _decisions(run_ids: set[str]) -> dict[str, dict]:
    """evidence_id -> {kind, detail} from models/evidence_map.yaml."""
    try:
        from nadfit.models.model import load_evidence_map

        emap = load_evidence_map() or {}
    except Exception:  # noqa: BLE001
        return {}
    out = {}
    for kind, entries in emap.items():
        for eid, spec in (entries or {}).items():
            if kind == "likelihood":
                detail = spec.get("observable", "") if isinstance(spec, dict) else ""
                if isinstance(spec, dict) and spec.get("note"):
                    detail += f" — {spec['note']}"
                if eid not in run_ids:
                    kind_shown = "likelihood (not scored in this run)"
                else:
                    kind_shown = "likelihood"
                out[eid] = {"kind": kind_shown, "detail": detail}
            elif isinstance(spec, list):
                out[eid] = {"kind": kind, "detail": " — ".join(str(s) for s in spec)}
            else:
                out[eid] = {"kind": kind, "detail": str(spec)}
    return out


def _provenance(df, run_ids: set[str]) -> list[dict]:
    """Every evidence row of the run's selection with its source and how it entered."""
    if df is None:
        return []
    dec = _decisions(run_ids)
    rows = []
    for r in df.itertuples(index=False):
        d = dec.get(r.evidence_id, {"kind": "not in evidence_map.yaml", "detail": ""})
        value = "" if (r.value is None or (isinstance(r.value, float) and math.isnan(r.value))) else fmt_num(r.value, 4)
        rows.append({
            "evidence_id": r.evidence_id, "study_id": r.study_id, "analyte": r.analyte,
            "statistic": r.statistic, "value": value, "value_text": r.value_text, "unit": r.unit,
            "grade": r.grade, "url": _safe_url(r.source_url), "source_url": r.source_url,
            "locator": r.locator, "note": r.note, "decision": d["kind"], "detail": d["detail"],
            "scored": r.evidence_id in run_ids,
        })
    return rows


def studied_doses(evidence, run_ids, studies: dict) -> dict:
    """Daily oral NMN doses (mg/day) of the human rows scored by the run: ``quant`` the range
    of rows that report a magnitude (a % change, a p-value, a bound), ``any`` that of every row
    (directions included), with the studies behind each; ranges are None when no row has one."""
    quant, anyd, q_st, a_st = [], [], set(), set()
    if evidence is None:
        return {"quant": None, "any": None, "quant_studies": [], "any_studies": []}
    for r in evidence.to_dict(orient="records"):
        if str(r["evidence_id"]) not in run_ids or str(r.get("compound")) != "NMN":
            continue
        m = studies.get(r["study_id"])
        if (m is not None and getattr(m, "species", "human") != "human") or r.get("route") != "oral" \
                or r.get("dose_unit") != "mg/day":
            continue
        doses = [float(d) for d in (r.get("dose_list") or ()) if d is not None and float(d) > 0]
        if not doses:
            continue
        anyd += doses
        a_st.add(r["study_id"])
        if r.get("statistic") not in ("direction", "statement"):
            quant += doses
            q_st.add(r["study_id"])
    rng = lambda v: (min(v), max(v)) if v else None  # noqa: E731
    return {"quant": rng(quant), "any": rng(anyd), "quant_studies": sorted(q_st), "any_studies": sorted(a_st)}


def _dose_response(dt, evidence, summary, figures=None, studied: dict | None = None) -> dict:
    if "predictions" not in dt.children or "blood_nad_fold_nmn" not in dt["predictions"].data_vars:
        return {"available": False}
    da = dt["predictions"]["blood_nad_fold_nmn"]
    fold = np.asarray(da.transpose("sample", "dose_mg", "day").values, dtype=float)
    doses = np.asarray(da["dose_mg"].values, dtype=float)
    days = np.asarray(da["day"].values, dtype=float)
    overlay = []
    ids = set(evidence["evidence_id"]) if evidence is not None else set()
    for p in HUANG_POINTS:
        pct = p["pct"]
        if evidence is not None and p["evidence_id"] in ids:
            v = float(evidence.loc[evidence["evidence_id"] == p["evidence_id"], "value"].iloc[0])
            if math.isfinite(v):
                pct = v
        overlay.append({"dose": p["dose"], "day": p["day"], "fold": 1 + pct / 100.0,
                        "label": f"Huang 2022 serum +{pct:g} % (d{p['day']}, {p['evidence_id']})"})
    table = []
    for d in (30, 60, 90):
        k = int(np.argmin(np.abs(days - d)))
        for i, mg in enumerate(doses):
            if mg <= 0:
                continue
            f = fold[:, i, k]
            q = (studied or {}).get("quant")
            table.append({"day": int(days[k]), "dose": mg, "median": float(np.median(f)),
                          "lo": float(np.quantile(f, CI_QUANTILES[0])), "hi": float(np.quantile(f, CI_QUANTILES[1])),
                          "extrapolated": bool(q) and not (q[0] - 1e-9 <= mg <= q[1] + 1e-9)})
    if figures is None:
        from nadfit.reports import figures

    return {
        "available": True, "n_samples": fold.shape[0],
        "fig_time": figures.dose_time_plot(fold, doses, days, overlay, studied),
        "fig_dose": figures.dose_response_plot(fold, doses, days, 60, overlay, studied),
        "table": [t for t in table if t["day"] == 60], "overlay": overlay, "studied": studied or {},
    }


def run_context(run, psense: dict | None = None, figures_on: bool = True) -> dict:
    """Everything the run template needs (figures already rendered to data URIs).

    ``run`` is a loaded fitted run (``nadfit.fitting.inference.runs.FittedRun``: ``dir``,
    ``summary``, ``config``, ``evidence``, ``dt``); ``psense`` the power-scaling result computed
    by the fitting layer (``{"rows", "note"}``). ``figures_on=False`` skips drawing."""
    from nadfit.datasets import load_evidence, load_gaps, load_studies
    from nadfit.reports import figures

    summary, dt = run.summary, run.dt
    config = run.config.to_dict()
    widen = float(config.get("widen_priors", 1.0) or 1.0)
    warnings_ = []
    change = evidence_change(run)
    if change:
        warnings_.append(change)
    try:
        evidence = load_evidence()
    except UserError as err:
        evidence = None
        warnings_.append(f"shipped evidence cannot be loaded: {err}")
    try:
        studies = load_studies()
    except UserError:
        studies = {}
    try:
        gaps = load_gaps().to_dict(orient="records")
    except UserError:
        gaps = []
    for g in gaps:
        g["url"] = _safe_url(g.get("source_url"))
    run_ids = [str(i) for i in summary.get("evidence_ids", [])]
    labels = {}
    try:
        from nadfit.models.model import EvidenceModel

        if evidence is not None:
            labels = {it.evidence_id: it.label for it in EvidenceModel(summary["hypothesis"], evidence).items}
    except Exception:  # noqa: BLE001 — labels are cosmetic; fall back to analyte
        pass
    if evidence is not None:
        for r in evidence.itertuples(index=False):
            labels.setdefault(r.evidence_id, f"{r.study_id}: {r.analyte} ({r.statistic})")
    studies_used = sorted({labels.get(i, i).split(":")[0] for i in run_ids} |
                          ({str(s) for s in dt["observed_data"]["study_id"].values}
                           if "observed_data" in dt.children else set()))
    study_list = []
    for sid in studies_used:
        m = studies.get(sid)
        study_list.append({"study_id": sid, "citation": m.citation if m else "", "url": _safe_url(m.url) if m else None,
                           "doi": m.doi if m else None,
                           "n_rows": sum(1 for i in run_ids if labels.get(i, "").startswith(sid + ":"))})

    # diagnostics
    post = dt["posterior"]
    scalar = [n for n in (summary.get("priors") or {}) if n in post.data_vars]
    vectors = [str(v) for v in post.data_vars if str(v).startswith("z_")]
    bfmi = _bfmi(dt)
    diverging = (int(np.asarray(dt["sample_stats"]["diverging"].values).sum())
                 if "sample_stats" in dt.children and "diverging" in dt["sample_stats"].data_vars
                 else summary.get("divergences"))
    param_rows = _parameter_rows(dt, summary, widen)
    vector_rows = [{"name": k, **v} for k, v in (summary.get("parameters") or {}).items() if "[" in k]
    rank = _rank_tests(post, scalar, vectors)
    for r in param_rows + vector_rows:
        t = rank.get(r["name"]) or {}
        r["rank_p"], r["rank_passed"] = t.get("p"), t.get("passed")
    rank_shown = [rank[n] for n in scalar if n in rank and rank[n].get("p") is not None] + \
        [r for k, r in rank.items() if "[" in k and r.get("passed") is False]
    worst = sorted(param_rows, key=lambda r: -(r["r_hat"] or 0))[:4]
    pair_vars = [v for v in KEY_PAIR_PARAMS if v in post.data_vars]
    psense = psense or {"rows": None, "note": "not computed"}
    psense_rows, psense_note = psense.get("rows"), psense.get("note", "")
    desc = describe_evidence(evidence)
    fit_rows = _evidence_fit(dt, evidence, labels, studies, desc)
    by_study: dict[str, list] = {}
    for r in fit_rows:
        by_study.setdefault(r["study_id"], []).append(r)
    fit_groups = [{"study_id": s, "citation": studies[s].citation if s in studies else "",
                   "url": _safe_url(studies[s].url) if s in studies else None, "rows": rs}
                  for s, rs in by_study.items()]

    if not figures_on:
        figures = _NoFigures()
    figs = {
        "rank": figures.rank_ecdf_plot(rank_shown) if rank_shown else None,
        "trace": figures.trace_plot(dt, [r["name"] for r in worst]) if worst else None,
        "energy": figures.energy_plot(dt) if bfmi is not None else None,
        "prior_posterior": figures.prior_posterior_grid(param_rows) if param_rows else None,
        "quantile_forest": figures.prior_quantile_forest(param_rows) if param_rows else None,
        "forest": figures.forest_plot(dt, vectors) if vectors else None,
        "pair": figures.pair_plot(dt, pair_vars) if len(pair_vars) >= 2 else None,
        "psense": figures.psense_plot(psense_rows) if psense_rows else None,
        # the figure's left panel is on the % change scale: value rows in other units are in the tables
        "fit": figures.evidence_fit_plot([{**r, "label": _fit_label(r)} for r in fit_rows
                                          if r["kind"] == "finding" or (r["kind"] == "value" and r["unit"] == "%")])
        if fit_rows else None,
    }
    for r in param_rows:  # drop arrays before templating
        for k in ("post", "prior_draws", "dist"):
            r.pop(k, None)
    gates = _gates(summary)
    failed = [g for g in gates if not g["passed"]]
    uninformed = [r["name"] for r in param_rows if r["uninformed"]]
    checks = run_checks(gates, rank, bfmi, fit_rows, psense_rows, uninformed, change)
    return {
        "kind": "run",
        "title": f"nadfit run report — {summary.get('hypothesis')}",
        "summary": summary, "config": config, "run_dir": str(run.dir),
        "status": summary.get("status"), "gates": gates, "failed_gates": failed,
        "warnings": warnings_, "studies": study_list, "n_scored": len(run_ids),
        "versions": summary.get("versions") or {}, "sampler": summary.get("sampler") or {},
        "retry_note": retry_note(summary.get("attempts")),
        "bfmi": bfmi, "divergences": diverging, "param_rows": param_rows, "vector_rows": vector_rows,
        "uninformed": uninformed, "checks": checks, "rank_alpha": RANK_ALPHA, "bfmi_min": BFMI_MIN,
        "n_rank_shown": len(rank_shown),
        "pair_vars": pair_vars, "psense": psense_rows, "psense_note": psense_note,
        "fit_groups": fit_groups, "coverage": predictive_coverage(fit_rows),
        "dose": _dose_response(dt, evidence, summary, figures, studied_doses(evidence, set(run_ids), studies)),
        "provenance": _provenance(run.evidence if run.evidence is not None else evidence, set(run_ids)), "gaps": gaps,
        "figs": figs, "sections": RUN_SECTIONS, "ci_prob": CI_PROB, "contraction_min": CONTRACTION_MIN,
    }


def predictive_coverage(fit_rows: list[dict]) -> dict | None:
    """How many rows with a reported number fall inside their posterior predictive interval:
    human rows (the quantity nadfit predicts for users) and the others, with the ids outside."""
    from nadfit.models.systems import is_human_observable

    vals = [r for r in fit_rows if r["kind"] == "value"]
    if not vals:
        return None
    human = [r for r in vals if is_human_observable(r.get("observable") or "")]
    other = [r for r in vals if r not in human]
    return {"human": len(human), "human_inside": sum(r["inside"] for r in human),
            "human_outside": [r["evidence_id"] for r in human if not r["inside"]],
            "other": len(other), "other_inside": sum(r["inside"] for r in other),
            "other_outside": [r["evidence_id"] for r in other if not r["inside"]]}


def _fit_label(r: dict) -> str:
    """Tick label of an evidence row in the fit figure: id, study, and what tells it apart."""
    d = r.get("desc") or {}
    extra = d.get("short") or ""
    return _short(f"{r['evidence_id']} {r['study_id']}" + (f" · {extra}" if extra else ""), 52)


class _NoFigures:
    """Stand-in for reports.figures when drawing is switched off."""

    def __getattr__(self, name):
        from nadfit.reports.figures import FigureError

        return lambda *a, **k: FigureError("figures switched off")


def render_run(run, out=None, *, psense: dict | None = None, figures: bool = True) -> Path:
    """Write ``RUN/report.html`` (or ``out``) for a loaded run; returns the path. Warns on stderr
    when the shipped evidence changed since the fit. ``figures=False`` writes text and tables only."""
    out = _check_out(out) if out is not None else None
    ctx = run_context(run, psense=psense, figures_on=figures)
    html = _env().get_template("run.html.j2").render(**ctx)
    for w in ctx["warnings"]:
        print(f"nadfit: warning: {w}", file=sys.stderr)
    return _write(out or Path(run.dir) / "report.html", html)


# --------------------------------------------------------------------------------------------
# comparison report
# --------------------------------------------------------------------------------------------

def _pointwise_status(r: dict, h: str) -> str:
    """LOO status of one row for one hypothesis (older comparison.json files: from k alone)."""
    st = (r.get("loo_status") or {}).get(h)
    if st:
        return st
    k = (r.get("pareto_k") or {}).get(h)
    return "unknown" if k is None else "high_k" if k > PARETO_K_BAD else "ok"


def _marginals(comp: dict, hyps: list[str]) -> tuple[list[dict], list[dict]]:
    """Per hypothesis: both log marginal-likelihood estimates; per pair: both log Bayes factors
    and whether they agree (``agree`` | ``disagree`` | ``one estimator`` )."""
    smc, bridge = comp.get("smc") or {}, comp.get("bridge") or {}
    ml = []
    for h in hyps:
        s_, b_ = smc.get(h), bridge.get(h)
        if not s_ and not b_:
            continue
        ml.append({"hypothesis": h,
                   "smc": (s_["log_ml_mean"], s_.get("log_ml_mc_se") or 0.0) if s_ else None,
                   "smc_runs": (s_ or {}).get("log_ml_runs") or [],
                   "bridge": (b_["log_ml"], b_.get("mc_se") or 0.0) if b_ else None,
                   "bridge_runs": (b_ or {}).get("runs") or [],
                   # per-hypothesis agreement within 1 nat, and why not (comparison.assemble.ml_agreement)
                   "agree": ((comp.get("ml_agreement") or {}).get(h) or {}).get("agree"),
                   "gap": ((comp.get("ml_agreement") or {}).get(h) or {}).get("gap"),
                   "reasons": ((comp.get("ml_agreement") or {}).get(h) or {}).get("reasons") or []})
    bfs = []
    for b in comp.get("bayes_factors") or []:
        e_smc = (b["log_bf"], b.get("mc_se") or 0.0) if b.get("log_bf") is not None else None
        e_br = (b["bridge_log_bf"], b.get("bridge_mc_se") or 0.0) if b.get("bridge_log_bf") is not None else None
        if e_smc is None and e_br is None:
            continue
        if e_smc and e_br:
            agree = "agree" if b.get("estimators_agree", True) else "disagree"
            gap = abs(e_smc[0] - e_br[0])
        else:
            agree, gap = "one estimator", None
        bfs.append({"h1": b["h1"], "h2": b["h2"], "smc": e_smc, "bridge": e_br, "agreement": agree, "gap": gap,
                    "sign_differs": bool(e_smc and e_br and e_smc[0] * e_br[0] < 0)})
    return ml, bfs


def comparison_checks(comp: dict, runs: list[dict], hyps: list[str], pits: dict, bfs: list[dict],
                      fingerprints_differ: bool) -> dict:
    """Every diagnostic the comparison report shows, as one checklist for the top banner."""
    checks = []
    bad_runs = [f"{r['hypothesis']} ({r['status']})" for r in runs if r.get("status") != "ok"]
    checks.append({"name": "convergence gates of the compared runs", "status": "fail" if bad_runs else "pass",
                   "anchor": "header", "gate": True,
                   "short": "runs " + ", ".join(r["hypothesis"] for r in runs if r.get("status") != "ok"),
                   "text": ("not passed by " + ", ".join(bad_runs)) if bad_runs else
                   f"passed by all {len(runs)} runs"})
    checks.append({"name": "same evidence", "status": "fail" if fingerprints_differ else "pass", "anchor": "header",
                   "text": "the runs were fitted to different evidence: their ELPDs are not comparable"
                   if fingerprints_differ else "all runs fitted to the same evidence rows"})
    loo = comp.get("loo") or {}
    unit = comp.get("unit") or {"name": "row", "plural": "rows"}
    if loo:
        n_units = unit.get("n") or comp.get("n_rows") or len(comp.get("pointwise") or [])
        bad = {h: v.get("n_bad_k", 0) for h, v in loo.items()}
        exact = {h: v.get("n_exact") for h, v in loo.items() if v.get("n_exact")}
        raw = {h: v.get("n_raw_is") for h, v in loo.items() if v.get("n_raw_is")}
        text = (f"unreliable {unit['plural']} (Pareto k > {PARETO_K_BAD:g} or not estimable): "
                + ", ".join(f"{h} {n}" for h, n in bad.items()) + (f" of {n_units}" if n_units else ""))
        if raw:
            text += "; plain importance sampling (smoothing failed): " + ", ".join(f"{h} {n}" for h, n in raw.items())
        if exact:
            text += (f"; exact {unit['plural']} (constant log-likelihood, not counted): "
                     + ", ".join(f"{h} {n}" for h, n in exact.items()))
        refits = comp.get("study_refits") or {}
        if refits:
            text += "; exact refits: " + ", ".join(f"{h} {len(v)}" for h, v in refits.items())
        checks.append({"name": f"PSIS-LOO reliability over {unit['plural']} (Pareto k)",
                       "status": "fail" if any(bad.values()) else "pass", "anchor": "elpd", "text": text})
    loso = comp.get("loso") or {}
    if loso:  # comparisons written before the study became the primary unit
        bad = {h: v.get("n_bad_k", 0) for h, v in loso.items()}
        checks.append({"name": "leave-one-study-out reliability", "status": "fail" if any(bad.values()) else "pass",
                       "anchor": "secondary", "text": "studies with Pareto k > " + f"{PARETO_K_BAD:g}: "
                       + ", ".join(f"{h} {n}" for h, n in bad.items())})
    grid = comp.get("observation_grid")
    if grid:
        unrel = grid.get("unreliable") or []
        status = "fail" if not grid.get("ranking_holds", True) else "warn" if unrel else "pass"
        text = (f"ranking {'holds' if grid.get('ranking_holds', True) else 'changes'} across "
                f"{grid.get('n_reliable', 0)} reliably reweighted of {grid.get('n_points', 0)} settings")
        if grid.get("flips"):
            text += "; other order under " + ", ".join(f["name"] for f in grid["flips"])
        if unrel:
            text += "; reweighting unreliable (refit needed) under " + ", ".join(u["name"] for u in unrel)
        checks.append({"name": "ranking across the observation settings", "status": status,
                       "anchor": "observation-grid", "text": text})
    else:
        checks.append({"name": "ranking across the observation settings", "status": "absent",
                       "anchor": "observation-grid", "text": "not computed"})
    if pits:
        bad = [h for h, t in pits.items() if t["passed"] is False]
        few = min(t["n"] for t in pits.values())
        checks.append({"name": "LOO-PIT calibration", "anchor": "elpd",
                       "status": "fail" if bad else "warn" if few < 10 else "pass",
                       "text": (("not uniform for " + ", ".join(bad) + "; ") if bad else "")
                       + ", ".join(f"{h} p {_fmt_p(t['p'])}" for h, t in pits.items())
                       + f" ({few} numeric rows{': a weak check' if few < 10 else ''})"})
    else:
        checks.append({"name": "LOO-PIT calibration", "status": "absent", "anchor": "elpd",
                       "text": "not computed (no numeric rows with replicated values in comparison.json)"})
    if bfs:
        dis = [b for b in bfs if b["agreement"] == "disagree"]
        one = [b for b in bfs if b["agreement"] == "one estimator"]
        text = ", ".join(f"{b['h1']} vs {b['h2']}" + (" (opposite signs)" if b["sign_differs"] else "") for b in dis)
        checks.append({"name": "marginal-likelihood estimators agree", "anchor": "bayes-factors",
                       "status": "fail" if dis else "warn" if one else "pass",
                       "text": ("SMC and bridge sampling disagree for " + text) if dis else
                       ("only one estimator for " + ", ".join(f"{b['h1']} vs {b['h2']}" for b in one) +
                        ": not cross-checked") if one else "SMC and bridge sampling agree for every pair"})
    else:
        checks.append({"name": "marginal-likelihood estimators agree", "status": "absent", "anchor": "bayes-factors",
                       "text": "no marginal likelihoods computed"})
    sens = comp.get("sensitivity") or {}
    if sens.get("wider_prior_best") is not None:
        best = hyps[0] if hyps else None
        same = sens["wider_prior_best"] == best
        checks.append({"name": "ranking under the wider priors", "status": "pass" if same else "fail",
                       "anchor": "sensitivity",
                       "text": f"'{sens['wider_prior_best']}' ranks first under the wider prior set"
                       + ("" if same else f" (not '{best}')")})
    if sens.get("psense"):
        flagged = sens.get("psense_flagged") or []
        total = sum(len((v or {}).get("rows") or []) for v in sens["psense"].values())
        checks.append({"name": "power-scaling sensitivity", "status": "warn" if flagged else "pass",
                       "anchor": "sensitivity",
                       "text": f"{len(flagged)} of {total} parameter fits sensitive to the prior or likelihood"})
    if not (comp.get("calibration") or {}).get("confusion"):
        checks.append({"name": "calibration of the model choice", "status": "absent", "anchor": "calibration",
                       "text": "not computed"})
    return _summarise(checks)


def comparison_context(comp: dict, folder, runs: list[dict]) -> dict:
    """Everything the comparison template needs. ``comp`` is the loaded ``comparison.json``;
    ``runs`` one entry per compared run (``hypothesis``, ``dir``, ``status``, ``fingerprint``,
    ``warnings``) looked up by the fitting layer."""
    from nadfit.reports import figures
    from nadfit.reports.diagnostics import pit_uniformity

    folder = Path(folder)
    loo = comp.get("loo") or {}
    ranking = sorted(comp.get("ranking") or [], key=lambda r: r.get("rank", 0))
    hyps = [r["hypothesis"] for r in ranking] or list(loo)
    best = hyps[0] if hyps else None
    weights = comp.get("stacking_weights") or {r["hypothesis"]: r.get("weight") for r in ranking
                                                if r.get("weight") is not None}
    pointwise = comp.get("pointwise") or []
    by_study = comp.get("by_study") or []
    warnings_ = [w for r in runs for w in r.get("warnings", [])]
    fps = {r["fingerprint"] for r in runs if r["fingerprint"]}
    if len(fps) > 1:
        warnings_.append("the compared runs were fitted to different evidence (fingerprints differ); "
                         "their ELPDs are not comparable")
    try:
        from nadfit.datasets import load_evidence

        desc = describe_evidence(load_evidence())
    except UserError:
        desc = {}
    pw_rows = []
    for r in pointwise:
        e = r.get("elpd") or {}
        diff = (e.get(hyps[1], math.nan) - e.get(best, math.nan)) if len(hyps) > 1 else math.nan
        cells = {h: {"elpd": e.get(h), "k": (r.get("pareto_k") or {}).get(h), "status": _pointwise_status(r, h)}
                 for h in hyps}
        pw_rows.append({**r, "diff": diff, "desc": desc.get(r.get("evidence_id")), "cells": cells})
    pw_rows.sort(key=lambda r: (r.get("study_id", ""), r.get("evidence_id", "")))
    loo_rows = []
    for rk in ranking:
        h = rk["hypothesis"]
        v = loo.get(h, {})
        st = [c["cells"][h]["status"] for c in pw_rows] if pw_rows else []
        loo_rows.append({**rk, **{f"loo_{k}": x for k, x in v.items()},
                         "n_bad": v.get("n_bad_k", 0), "n_exact": v.get("n_exact", st.count("exact") or None),
                         "n_not_estimable": (v.get("n_raw_is") or len(v.get("k_not_estimable_rows") or [])
                                             or (st.count("not_estimable") if not comp.get("unit") else 0)),
                         "k_max": v.get("k_max")})
    ml, bfs = _marginals(comp, hyps)
    pits = {}
    for h in hyps:
        p = (comp.get("loo_pit") or {}).get(h)
        if p and len([x for x in p.get("pit", []) if x is not None]) >= 2:
            pits[h] = {**pit_uniformity(p["pit"]), "evidence_id": p["evidence_id"]}
    checks = comparison_checks(comp, runs, hyps, pits, bfs, len(fps) > 1)
    phi = comp.get("phi_share") or {}
    calib = (comp.get("calibration") or {}).get("confusion")
    conf = None
    if calib:
        conf = _confusion(calib)
    k_rows = [{"label": _short(f"{r['evidence_id']} {r.get('study_id', '')}"
                               + (f" · {r['desc']['short']}" if r.get("desc") and r["desc"].get("short") else ""), 50),
               "k": {h: r["cells"][h]["k"] for h in hyps}, "status": {h: r["cells"][h]["status"] for h in hyps}}
              for r in pw_rows]
    verdict = comp.get("verdict_parts") or ({"headline": comp.get("verdict"), "points": [], "provisional": []}
                                            if comp.get("verdict") else None)
    figs = {
        "elpd": figures.elpd_plot(loo) if loo else None,
        "pareto_k": figures.pareto_k_plot(k_rows, hyps, PARETO_K_BAD) if k_rows and any(
            r["cells"][h]["status"] != "unknown" for r in pw_rows for h in hyps) else None,
        "loo_pit": figures.loo_pit_plot(pits) if pits else None,
        "weights": figures.weights_plot(weights) if weights else None,
        "by_study": figures.by_study_plot(by_study, hyps, best) if by_study and best else None,
        "loso": figures.interval_plot([{"label": h, "mid": v["elpd"], "lo": v["elpd"] - v.get("se", 0),
                                        "hi": v["elpd"] + v.get("se", 0)} for h, v in comp["loso"].items()],
                                      "leave-one-study-out ELPD ± 1 SE") if comp.get("loso") else None,
        "grid": figures.interval_plot(_grid_figure_rows(comp.get("observation_grid"), best),
                                      "ELPD minus that of '" + str(best) + "' per setting (± 2 dSE)", ref=0.0)
        if comp.get("observation_grid") and best and _grid_figure_rows(comp.get("observation_grid"), best) else None,
        "marginal": figures.marginal_plot(
            [{"label": m["hypothesis"], "smc": m["smc"], "bridge": m["bridge"]} for m in ml],
            [{"label": f"{b['h1']} vs {b['h2']}", "smc": b["smc"], "bridge": b["bridge"],
              "flag": b["agreement"] == "disagree"} for b in bfs]) if (ml or bfs) else None,
        "phi": figures.interval_plot([{"label": s, "mid": v["mean"], "lo": v["ci89_low"], "hi": v["ci89_high"]}
                                      for s, v in phi.items()],
                                     "share of NMN use via the direct (SLC12A8) route, mean and 89 % ETI")
        if phi else None,
        "confusion": figures.confusion_plot(conf["labels"], conf["matrix"], conf["xlabel"], conf["ylabel"])
        if conf else None,
    }
    sens = comp.get("sensitivity") or {}
    return {
        "kind": "comparison", "title": "nadfit comparison report", "comp": comp, "dir": str(folder),
        "runs": runs, "loo": loo, "loo_rows": loo_rows, "ranking": ranking, "hyps": hyps, "best": best,
        "weights": weights, "pointwise": pw_rows, "by_study": by_study, "loso": comp.get("loso"),
        "unit": {"name": "row", "plural": "rows", "n": None, "method": None, **(comp.get("unit") or {})},
        "secondary": comp.get("secondary") or {},
        "grid": comp.get("observation_grid"), "grid_rows": _grid_table(comp.get("observation_grid"), hyps),
        "refit_cost": comp.get("study_refit_cost"),
        "ml": ml, "bfs": bfs, "pits": pits, "checks": checks,
        "sensitivity": comp.get("sensitivity"), "psense_table": _psense_table(sens.get("psense"), hyps),
        "sensitivity_rows": _flatten({k: v for k, v in sens.items() if k not in ("psense", "psense_flagged")})
        if sens else [],
        "human_only": _human_only_table(comp.get("human_only"), hyps),
        "designs": _designs_table(comp.get("designs"), hyps),
        "phi_share": phi or None, "calibration": comp.get("calibration"), "confusion": conf,
        "verdict": verdict, "warnings": warnings_, "figs": figs,
        "sections": COMPARISON_SECTIONS, "ci_prob": CI_PROB, "k_bad": PARETO_K_BAD,
    }


def _human_only_table(shift: dict | None, hyps: list[str]) -> dict | None:
    """``comparison.json``'s ``human_only`` (:func:`nadfit.reports.human_only.prediction_shift`
    per hypothesis) as table rows: regimen, then per hypothesis all-evidence and PSIS
    human-only intervals, then the human-only refit."""
    if not shift:
        return None
    hs = [h for h in hyps if h in shift]
    if not hs:
        return None
    first = shift[hs[0]]
    rows = []
    for i, r in enumerate(first["rows"]):
        cells = {h: {"all": shift[h]["rows"][i]["all_evidence"], "psis": shift[h]["rows"][i].get("human_only_psis")}
                 for h in hs if i < len(shift[h]["rows"])}
        rows.append({"regimen": f"NMN {r['dose_mg']:g} mg/day, day {r['day']}", "cells": cells,
                     "refit": r.get("human_only_refit")})
    return {"hyps": hs, "rows": rows, "k": {h: shift[h]["pareto_k"] for h in hs},
            "reliable": {h: shift[h]["reliable"] for h in hs},
            "studies": first["non_human_studies"], "refit_run": first.get("human_only_run"),
            "refit_hypothesis": first.get("human_only_hypothesis") or "mixed",
            "refit_status": first.get("human_only_status"), "refit_gates": first.get("human_only_gates") or {}}


def _designs_table(designs: dict | None, hyps: list[str]) -> dict | None:
    """``comparison.json``'s ``designs`` (:mod:`nadfit.fitting.comparison.designs`) as tables:
    per design its arms' predicted fold changes per hypothesis, and per arm size the expected
    log Bayes factor of each ordered pair (row: the true hypothesis) with the pairs' verdicts."""
    if not designs or not designs.get("designs"):
        return None
    out = []
    for d in designs["designs"]:
        hs = [h for h in hyps if h in d["arms"][0]["fold_change_mean_effect"]]
        sizes = []
        for blk in d["by_arm_size"]:
            rows = [{"true": t, "cells": [blk["expected_log_bf"][t].get(b) if b != t else None for b in hs]}
                    for t in hs if t in blk["expected_log_bf"]]
            sizes.append({"n": blk["arm_size"], "rows": rows, "pairs": blk["pairs"]})
        out.append({**{k: d[k] for k in ("key", "title", "question", "control", "arms")}, "hyps": hs,
                    "sizes": sizes})
    return {**{k: v for k, v in designs.items() if k != "designs"}, "designs": out}


def _grid_table(grid: dict | None, hyps: list[str]) -> list[dict]:
    """Observation-settings grid as rows: setting, per hypothesis ELPD / weight / reweighting k,
    Bayes factors, reliability and whether the order differs from the first row's reference."""
    if not grid:
        return []
    flips = {f["name"] for f in grid.get("flips") or []}
    rows = []
    for p in grid.get("points") or []:
        rk = {r["hypothesis"]: r for r in p.get("ranking") or []}
        rw = p.get("reweighting") or {}
        rows.append({"name": p["name"], "overrides": p.get("overrides") or {}, "note": p.get("note", ""),
                     "order": p.get("order") or [], "reliable": p.get("reliable", True), "flip": p["name"] in flips,
                     "refit_needed": p.get("refit_needed") or [],
                     "cells": {h: {"elpd": (rk.get(h) or {}).get("elpd"), "diff": (rk.get(h) or {}).get("elpd_diff"),
                                   "dse": (rk.get(h) or {}).get("dse"), "weight": (rk.get(h) or {}).get("weight"),
                                   "k": (rw.get(h) or {}).get("pareto_k"), "shift": (rw.get(h) or {}).get("log_ml_shift"),
                                   "n_bad_k": (rk.get(h) or {}).get("n_bad_k")} for h in hyps},
                     "bfs": p.get("bayes_factors") or []})
    return rows


def _grid_figure_rows(grid: dict | None, best: str | None) -> list[dict]:
    """ELPD of each other hypothesis minus that of ``best`` at every grid point, ± 2 dSE."""
    rows = []
    for p in (grid or {}).get("points") or []:
        for pr in p.get("pairs") or []:
            if best not in (pr["h1"], pr["h2"]) or pr.get("elpd_diff") is None:
                continue
            other = pr["h2"] if pr["h1"] == best else pr["h1"]
            d = -pr["elpd_diff"] if pr["h1"] == best else pr["elpd_diff"]
            se = pr.get("dse") or 0.0
            rows.append({"label": f"{p['name']}: {other}", "mid": d, "lo": d - 2 * se, "hi": d + 2 * se})
    return rows


def _psense_table(psense: dict | None, hyps: list[str]) -> list[dict]:
    """Power-scaling rows as parameter x hypothesis: {name, cells: {h: {prior, likelihood, diagnosis}}}."""
    if not psense:
        return []
    names: list[str] = []
    cells: dict[str, dict] = {}
    for h in hyps:
        for r in ((psense.get(h) or {}).get("rows") or []):
            if r["name"] not in cells:
                names.append(r["name"])
                cells[r["name"]] = {}
            cells[r["name"]][h] = r
    return [{"name": n, "cells": cells[n]} for n in names]


def _confusion(calib: dict) -> dict | None:
    """Accept {labels, matrix} or nested {true: {chosen: count}}."""
    if "matrix" in calib:
        labels = [str(x) for x in calib.get("labels") or range(len(calib["matrix"]))]
        return {"labels": labels, "matrix": calib["matrix"], "xlabel": calib.get("xlabel", "chosen"),
                "ylabel": calib.get("ylabel", "true (simulated from)")}
    if all(isinstance(v, dict) for v in calib.values()):
        labels = sorted(set(calib) | {k for v in calib.values() for k in v})
        matrix = [[float(calib.get(t, {}).get(c, 0)) for c in labels] for t in labels]
        return {"labels": labels, "matrix": matrix, "xlabel": "chosen", "ylabel": "true (simulated from)"}
    return None


def _flatten(obj, prefix: str = "") -> list[dict]:
    """Nested dict -> rows of (key path, value) for a generic table."""
    rows = []
    if isinstance(obj, dict):
        for k, v in obj.items():
            rows.extend(_flatten(v, f"{prefix}.{k}" if prefix else str(k)))
    elif isinstance(obj, list) and obj and all(not isinstance(v, (dict, list)) for v in obj):
        rows.append({"key": prefix, "value": ", ".join(fmt_num(v) if isinstance(v, (int, float)) else str(v)
                                                       for v in obj)})
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            rows.extend(_flatten(v, f"{prefix}[{i}]"))
    else:
        rows.append({"key": prefix, "value": fmt_num(obj) if isinstance(obj, (int, float)) else str(obj)})
    return rows


def render_comparison(comp: dict, comparison_dir, runs: list[dict], out=None) -> Path:
    """Write ``DIR/comparison.html`` (or ``out``) from the loaded ``comparison.json``; returns the path."""
    folder = Path(comparison_dir)
    out = _check_out(out) if out is not None else None
    ctx = comparison_context(comp, folder, runs)
    html = _env().get_template("comparison.html.j2").render(**ctx)
    for w in ctx["warnings"]:
        print(f"nadfit: warning: {w}", file=sys.stderr)
    return _write(out or folder / "comparison.html", html)
