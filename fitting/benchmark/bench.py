"""``nadfit bench``: the production inference path vs two generic ODE paths on one problem.

Bench problem (``direct`` hypothesis, synthetic data from the shipped averaged model at known
parameters, fixed seed):

* a Yi-2022-like design: placebo / 300 / 600 / 900 mg/day oral NMN for 60 days, whole-blood NAD+
  fold change observed at days 0, 7, 14, 30, 45, 60 per arm (log-normal noise);
* a rodent-like time course: tissue NAD+ under a constant NMN exposure (precursor flux equal to
  the baseline synthesis flux) over 48 h, observed at 2, 4, 6, 8, 12, 24, 36, 48 h.

Inferred: beta, kappa, pi_nmn, t_blood_days, t_nampt_days, one_plus_gamma (= 1 + gamma, so that
every parameter has a log-normal prior as :class:`nadfit.fitting.benchmark.paths.OdeProblem` requires;
LogNormal(0, 0.4) ~ the registry's gamma prior N(0, 0.4) near 0) and the noise sigma. ell = prior
median, k_a = 1 g/day and phi = 1 are fixed. True values are the registry's prior medians except
gamma = 0.3 (at the median 0 NAMPT never moves and t_nampt_days is unidentified) and sigma = 0.05.

Paths:

1. ``production`` — the nadfit way: ``nadfit.models.averaged.blood_course`` (daily-mean flux, tissue NAD+ at
   quasi-steady state, exponential-midpoint slow states) for the human arms and the same scheme
   on a 1-hour grid for the rodent course, in PyMC through ``pytensor.wrap_jax``, nutpie JAX
   backend with ``adaptation="low_rank"`` (as ``nadfit.fitting.inference.fit.sample_posterior``).
2. ``pm_ode`` — the same rate laws as a 14-state ODE (n, e, b per arm with the daily-mean dose as
   a constant infusion; n, e for the rodent), tissue NAD+ dynamic with a fixed k_t = 24 per day
   (stated assumption: the production path is its k_t -> inf limit), in
   ``pm.ode.DifferentialEquation`` + PyMC NUTS, time-capped and extrapolated
   (``nadfit.fitting.benchmark.paths.run_pm_ode``).
3. ``numpyro_diffrax`` — the same ODE with diffrax (Kvaerno3, implicit: with the explicit Tsit5 the
   reverse-mode gradient of this stiff system is wrong by ~170 orders of magnitude and NUTS
   stalls) in a pure numpyro model, chains one after another, time-capped and extrapolated like
   ``pm_ode`` (``nadfit.fitting.benchmark.paths.run_numpyro_diffrax``).
"""

from __future__ import annotations

import datetime as _dt
import math
import os
import platform
import sys
import time
from typing import Any

import numpy as np

from nadfit.fitting.benchmark.paths import (
    OdeProblem,
    _diag_from_arrays,
    _maxrss_mb,
    _pm_likelihood,  # noqa: F401  (same likelihood form, documented)
    _pm_priors,
    _result,
    format_table,
    run_numpyro_diffrax,
    run_pm_ode,
)

DOSES_MG = (0.0, 300.0, 600.0, 900.0)
HUMAN_DAYS = (0.0, 7.0, 14.0, 30.0, 45.0, 60.0)
RODENT_HOURS = (2.0, 4.0, 6.0, 8.0, 12.0, 24.0, 36.0, 48.0)
RODENT_J = 1.0  # models.model.REFERENCE_EXPOSURE
K_A = 1.0
K_T_ODE = 24.0
#: absorption and exposure rates (per day) of the production path's within-day profile
#: (the human-like rates of models/VERIFICATION.md; the ODE paths have no dosing profile)
WITHIN_DAY = {"k_abs": 24.0, "k_x": 7.0}
PARAMS = ("beta", "kappa", "pi_nmn", "t_blood_days", "t_nampt_days", "one_plus_gamma")
SIGMA_TRUE = 0.05
SEED = 20240601
FULL = {"chains": 4, "tune": 500, "draws": 500, "pm_ode_cap_s": 300.0, "numpyro_cap_s": 2400.0,
        "max_tree_depth": 10}
#: quick mode checks that every path runs and the JSON has its shape; its numbers are not a
#: benchmark (tiny runs, trees capped at depth 4 on every path so the stiff ODE paths finish).
QUICK = {"chains": 1, "tune": 20, "draws": 20, "pm_ode_cap_s": 5.0, "numpyro_cap_s": 60.0,
         "max_tree_depth": 4}
#: every path samples with NUTS's usual 0.8 (``nadfit fit`` uses 0.99 on the real evidence, where
#: the between-study funnels need it; the bench problem has none), so the paths differ only in
#: how the model is evaluated
TARGET_ACCEPT = 0.8
#: (studies, days) rows of the scaling table; quick mode times the first two only
SCALING = ((1, 60), (4, 60), (16, 60), (1, 30), (1, 120))


def _priors():
    from nadfit.models.priors import registry

    reg = registry()
    mu = [reg[n].args["mu"] for n in PARAMS[:5]] + [0.0]
    sd = [reg[n].args["sigma"] for n in PARAMS[:5]] + [0.4]
    return mu, sd, reg["ell"].median()


def true_theta() -> np.ndarray:
    from nadfit.models.priors import registry

    reg = registry()
    return np.array([reg[n].median() for n in PARAMS[:5]] + [1.3])


# --------------------------------------------------------------------------------------------
# the two formulations of the same rate laws
# --------------------------------------------------------------------------------------------


def make_rhs(ell: float, n_copies: int = 1):
    """14-state (per copy) RHS written once against ``xp`` (numpy, jax.numpy, pytensor)."""
    from nadfit.models.core import consumption_rate, nampt_rate

    rates = [d / 1000.0 for d in DOSES_MG] * n_copies

    def rhs(t, y, p, xp):
        beta, kappa, pi_nmn, t_b, t_e, g1 = (p[i] for i in range(6))
        gamma = g1 - 1.0
        k_e = math.log(2.0) / t_e
        k_b = math.log(2.0) / t_b
        out = []
        for a, r in enumerate(rates):
            n, e, b = y[3 * a], y[3 * a + 1], y[3 * a + 2]
            j = pi_nmn * r / (1.0 + r / K_A)
            out += [K_T_ODE * (nampt_rate(n, e, beta) + j - consumption_rate(n, kappa, ell)),
                    k_e * (xp.exp(gamma * xp.log(n)) - e),
                    k_b * (n - b)]
        k = 3 * len(rates)
        n, e = y[k], y[k + 1]
        out += [K_T_ODE * (nampt_rate(n, e, beta) + RODENT_J - consumption_rate(n, kappa, ell)),
                k_e * (xp.exp(gamma * xp.log(n)) - e)]
        return xp.stack(out)

    return rhs


def production_predict(ell: float, n_copies: int = 1, days: int = 60):
    """JAX ``theta -> (b[len(HUMAN_DAYS), arms], n_rodent[len(RODENT_HOURS)])`` on the averaged path."""
    import jax.numpy as jnp

    from nadfit.models import averaged

    rates = np.tile(np.array(DOSES_MG) / 1000.0, n_copies)
    nmn = jnp.asarray(np.tile(rates, (days, 1)))
    zero = jnp.zeros_like(nmn)
    day_idx = np.array([int(d) for d in HUMAN_DAYS if d <= days])
    dt_r = 1.0 / 24.0
    steps_r = int(RODENT_HOURS[-1])
    hour_idx = np.array([int(h) for h in RODENT_HOURS])
    nr_r = jnp.ones((steps_r, 1)) * RODENT_J
    zr = jnp.zeros((steps_r, 1))

    def predict(theta):
        beta, kappa, pi_nmn, t_b, t_e, g1 = (theta[i] for i in range(6))
        p = {"beta": beta, "kappa": kappa, "ell": ell, "gamma": g1 - 1.0, "k_e": math.log(2.0) / t_e,
             "k_b": math.log(2.0) / t_b, "pi_nmn": pi_nmn, "pi_nr": 1.0, "phi": 1.0, "k_a": K_A,
             "k_t": K_T_ODE, "k_abs": WITHIN_DAY["k_abs"], "k_x": WITHIN_DAY["k_x"]}
        # the bench ODE is a constant infusion, so the production path runs with a constant
        # exposure too (no within-day dosing profile): both paths solve the same model
        b, _ = averaged.blood_course(p, nmn, zero, 1.0, doses_per_day=np.zeros(nmn.shape, dtype=int))
        # the rodent course is a constant exposure (no dosing profile within a step)
        _, e_r = averaged.blood_course(p, zr, nr_r, dt_r, doses_per_day=np.zeros(zr.shape, dtype=int))
        e_obs = e_r[hour_idx, 0]
        u = averaged.steady_state_newton(jnp.zeros_like(e_obs), RODENT_J, e_obs, beta, kappa, ell, steps=30)
        return b[day_idx], jnp.exp(u)

    return predict


def bench_problem(seed: int = SEED) -> tuple[OdeProblem, Any]:
    """(OdeProblem for the ODE paths, production predict function); data from the production model."""
    mu, sd, ell = _priors()
    predict = production_predict(ell)
    b, n_r = predict(true_theta())
    rng = np.random.default_rng(seed)
    times = np.array(sorted(set(HUMAN_DAYS) | {h / 24.0 for h in RODENT_HOURS}))
    n_arms = len(DOSES_MG)
    obs = np.full((times.size, n_arms + 1), np.nan)
    for i, d in enumerate(HUMAN_DAYS):
        row = int(np.argmin(np.abs(times - d)))
        obs[row, :n_arms] = np.log(np.asarray(b[i])) + SIGMA_TRUE * rng.standard_normal(n_arms)
    for i, h in enumerate(RODENT_HOURS):
        row = int(np.argmin(np.abs(times - h / 24.0)))
        obs[row, n_arms] = math.log(float(n_r[i])) + SIGMA_TRUE * rng.standard_normal()
    problem = OdeProblem(
        name="nadfit_yi_rodent", rhs=make_rhs(ell), y0=np.ones(3 * n_arms + 2), times=times,
        observed_log=obs, observed_states=[3 * a + 2 for a in range(n_arms)] + [3 * n_arms],
        param_names=PARAMS, prior_log_mu=mu, prior_log_sd=sd, sigma_prior=(math.log(0.1), 0.5),
        t0=-1e-6,  # day-0 observations: dosing starts 1e-6 days before (effect ~1e-8)
        # implicit: the tissue equation is stiff (K_T_ODE * beta ~ 1600 per day at the truth), and
        # reverse-mode gradients through adaptive Tsit5 are wrong here (d/d beta 1e171 vs -0.002 by
        # finite differences at the truth, measured 2026-11-23); Kvaerno3 matches finite differences
        # and costs 18.7 ms per log density + gradient (Kvaerno5: 54.6 ms)
        solver_kwargs={"solver": "kvaerno3", "rtol": 1e-6, "atol": 1e-8},
    )
    return problem, predict


# --------------------------------------------------------------------------------------------
# production path
# --------------------------------------------------------------------------------------------


def production_loglik(problem: OdeProblem, predict):
    import jax.numpy as jnp

    n_h = len(HUMAN_DAYS)
    rows_h = [int(np.argmin(np.abs(problem.times - d))) for d in HUMAN_DAYS]
    rows_r = [int(np.argmin(np.abs(problem.times - h / 24.0))) for h in RODENT_HOURS]
    n_arms = len(DOSES_MG)
    y_h = jnp.asarray(problem.observed_log[rows_h, :n_arms])
    y_r = jnp.asarray(problem.observed_log[rows_r, n_arms])
    assert y_h.shape[0] == n_h

    def loglik(theta, sigma):
        b, n_r = predict(theta)
        resid = jnp.concatenate([(y_h - jnp.log(b)).ravel(), y_r - jnp.log(n_r)])
        return jnp.sum(-0.5 * (resid / sigma) ** 2 - jnp.log(sigma) - 0.5 * math.log(2 * math.pi))

    return loglik


def run_production(problem: OdeProblem, predict, *, chains=4, tune=500, draws=500, seed=1,
                   max_tree_depth: int = 10, target_accept: float = 0.8) -> dict:
    import nutpie
    import pymc as pm
    import pytensor

    rss0 = _maxrss_mb()
    t0 = time.perf_counter()
    fn = pytensor.wrap_jax(production_loglik(problem, predict))
    with pm.Model() as model:
        theta, sigma = _pm_priors(problem)
        pm.Potential("loglik", fn(theta, sigma))
    compiled = nutpie.compile_pymc_model(model, backend="jax", gradient_backend="jax")
    compile_s = time.perf_counter() - t0
    t1 = time.perf_counter()
    dt = nutpie.sample(compiled, draws=draws, tune=tune, chains=chains, cores=min(chains, os.cpu_count() or 1),
                       seed=seed, progress_bar=False, adaptation="low_rank",
                       maxdepth=max_tree_depth, target_accept=target_accept)
    sample_s = time.perf_counter() - t1
    names = list(problem.param_names) + ["sigma"]
    post = dt["posterior"]
    min_ess, max_rhat = _diag_from_arrays({n: np.asarray(post[n]) for n in names})
    return _result("production", compile_s=compile_s, sample_s=sample_s, total_s=compile_s + sample_s,
                   min_ess=min_ess, max_rhat=max_rhat,
                   divergences=int(np.asarray(dt["sample_stats"]["diverging"]).sum()),
                   peak_mem_mb=_maxrss_mb() - rss0, draws_done=chains * draws, extrapolated=False,
                   note="averaged model (models/averaged.py) via pytensor.wrap_jax, nutpie JAX backend, "
                        "low-rank modified mass matrix; compile_s excludes JAX jit (done in sampling)")


# --------------------------------------------------------------------------------------------
# scaling and simulate timings
# --------------------------------------------------------------------------------------------


def _time_calls(f, *args, n=20) -> float:
    import jax

    jax.block_until_ready(f(*args))
    t0 = time.perf_counter()
    for _ in range(n):
        jax.block_until_ready(f(*args))
    return (time.perf_counter() - t0) / n


def scaling_table(n_evals: int = 20, sizes=SCALING) -> list[dict]:
    """Cost of one log-density + gradient evaluation on the production path."""
    import jax
    import jax.numpy as jnp

    _, _, ell = _priors()
    theta = jnp.asarray(true_theta())
    rows = []
    for copies, days in sizes:
        predict = production_predict(ell, copies, days)

        def logp(th, predict=predict):
            b, n_r = predict(th)
            return jnp.sum(jnp.log(b) ** 2) + jnp.sum(jnp.log(n_r) ** 2)

        vg = jax.jit(jax.value_and_grad(logp))
        t0 = time.perf_counter()
        jax.block_until_ready(vg(theta))
        compile_s = time.perf_counter() - t0
        rows.append({"studies": copies, "arms": 4 * copies, "days": days,
                     "eval_ms": 1e3 * _time_calls(vg, theta, n=n_evals), "compile_s": compile_s})
    return rows


def simulate_timings() -> list[dict]:
    """Per-simulation time after compilation at prior medians: Yi 2022 design and an NR regimen."""
    from nadfit.datasets import load_evidence
    from nadfit.fitting.inference.simulate import production_simulator
    from nadfit.models.model import EvidenceModel

    ev = load_evidence()
    out = []
    for h in ("direct", "via-nr", "mixed"):
        model = EvidenceModel(h, ev)
        th = model.prior_median_theta()
        for compound, mg in (("NMN", 0.0), ("NMN", 300.0), ("NMN", 600.0), ("NMN", 900.0), ("NR", 1000.0)):
            run = production_simulator(model, compound, mg, 60)
            t0 = time.perf_counter()
            run(th)[0].block_until_ready()
            compile_s = time.perf_counter() - t0
            out.append({"hypothesis": h, "compound": compound, "mg_per_day": mg,
                        "days": 60, "sim_ms": 1e3 * _time_calls(run, th, n=10), "compile_s": compile_s})
    return out


# --------------------------------------------------------------------------------------------
# driver
# --------------------------------------------------------------------------------------------


def ratio_vs(prod: dict, other: dict, planned_draws: int) -> dict:
    """ESS/s of ``prod`` over ESS/s of ``other`` (two path results) and how it was obtained.

    ``basis`` "measured": both ESS were measured (``other``'s total time may be extrapolated
    from a capped run; see its note). When ``other`` was stopped at its cap before any post-warm-up
    draw its ESS is unknown: the ratio is then *estimated* with ``other``'s ESS per draw taken equal
    to production's (same NUTS algorithm on the same posterior; its time per iteration is
    measured), and ``floor`` is the ratio if ``other`` reached one effective draw per draw
    (``planned_draws``), a level a path's minimum bulk ESS rarely exceeds.
    """
    out = {"ratio": None, "basis": "unavailable", "floor": None}
    if not prod.get("ess_per_s"):
        return out
    if other.get("ess_per_s"):
        out["ratio"] = prod["ess_per_s"] / other["ess_per_s"]
        out["basis"] = "measured" + (" (other path's total time extrapolated)" if other["extrapolated"] else "")
        return out
    if other.get("stuck_chains"):
        out["basis"] = (f"unavailable: {other['stuck_chains']} chain(s) of {other['path']} never moved "
                        "after warm-up (all draws identical)")
        return out
    if other.get("total_s") and prod.get("min_ess_bulk") and prod.get("draws_done"):
        ess_per_draw = prod["min_ess_bulk"] / prod["draws_done"]
        out["ratio"] = prod["ess_per_s"] / (ess_per_draw * planned_draws / other["total_s"])
        out["floor"] = prod["ess_per_s"] / (planned_draws / other["total_s"])
        out["basis"] = (f"estimated: {other['path']} made no post-warm-up draw before its cap; its ESS per "
                        f"draw assumed equal to production's ({ess_per_draw:.3f}), its time per iteration "
                        "measured and extrapolated")
    return out


def run_bench(quick: bool = False, pm_ode_cap_s: float | None = None, numpyro_cap_s: float | None = None,
              with_scaling: bool = True, log=None) -> dict:
    """Run the three paths one after another (never concurrently), then the scaling tables.

    ``pm_ode_cap_s`` / ``numpyro_cap_s`` override the wall-time caps of the two generic paths
    (``numpyro_cap_s=0`` = no cap); ``log`` (e.g. ``print``) receives one progress line per step."""
    import jax

    log = log or (lambda msg: None)
    # every path compiles from scratch: the persistent compilation cache that the CLI enables
    # would otherwise hand the JAX paths programs compiled by an earlier run
    jax.config.update("jax_enable_compilation_cache", False)
    s = dict(QUICK if quick else FULL)
    if pm_ode_cap_s is not None:
        s["pm_ode_cap_s"] = pm_ode_cap_s
    if numpyro_cap_s is not None:
        s["numpyro_cap_s"] = numpyro_cap_s or None
    problem, predict = bench_problem()
    kw = {"chains": s["chains"], "tune": s["tune"], "draws": s["draws"], "seed": 1,
          "max_tree_depth": s["max_tree_depth"], "target_accept": TARGET_ACCEPT}
    cores = os.cpu_count() or 1
    paths = {}
    for name, run, extra, used in (
        ("production", run_production, {"problem": problem, "predict": predict}, min(s["chains"], cores)),
        ("pm_ode", run_pm_ode, {"problem": problem, "max_seconds": s["pm_ode_cap_s"]}, 1),
        ("numpyro_diffrax", run_numpyro_diffrax,
         {"problem": problem, "chain_method": "sequential", "max_seconds": s["numpyro_cap_s"]}, 1),
    ):
        t = time.perf_counter()
        log(f"bench: {name} ...")
        r = paths[name] = run(**extra, **kw) | {"cores_used": used}
        ess_s = "–" if r["ess_per_s"] is None else f"{r['ess_per_s']:.3g}"
        log(f"bench: {name} done in {time.perf_counter() - t:.0f} s "
            f"(ESS/s {ess_s}{', extrapolated' if r['extrapolated'] else ''})")
    planned = s["chains"] * s["draws"]
    r_pm = ratio_vs(paths["production"], paths["pm_ode"], planned)
    r_np = ratio_vs(paths["production"], paths["numpyro_diffrax"], planned)
    return {
        "date": _dt.datetime.now().isoformat(timespec="seconds"),
        "machine": {"cpus": os.cpu_count(), "python": sys.version.split()[0], "platform": platform.platform()},
        "settings": {**s, "quick": quick, "seed": SEED, "target_accept": TARGET_ACCEPT, "parameters": list(PARAMS) + ["sigma"],
                     "true_values": dict(zip(PARAMS, true_theta().tolist(), strict=True)) | {"sigma": SIGMA_TRUE},
                     "k_t_ode_per_day": K_T_ODE, "ode_solver_numpyro": problem.solver_kwargs,
                     "n_observations": int(problem.obs_index.size),
                     "compilation_cache": "off (every path compiles from scratch)",
                     "note": "pm_ode and numpyro_diffrax stop at their caps and their total time is then "
                             "extrapolated (see each path's note); ESS/s = min bulk ESS / (compile + "
                             "sampling) time, for a capped path with the ESS per draw extrapolated to the "
                             "planned draws; chains run one after another on pm_ode and numpyro_diffrax "
                             "(1 core), two at a time on production (cores_used)"},
        "paths": paths,
        "ratio_ess_per_s_vs_pm_ode": r_pm["ratio"],
        "ratio_ess_per_s_vs_numpyro_diffrax": r_np["ratio"],
        "ratio_basis": {"pm_ode": r_pm["basis"], "numpyro_diffrax": r_np["basis"]},
        "ratio_floor": {"pm_ode": r_pm["floor"], "numpyro_diffrax": r_np["floor"]},
        "scaling": (scaling_table(3, SCALING[:2]) if quick else scaling_table(20)) if with_scaling else [],
        "simulate": simulate_timings() if (with_scaling and not quick) else [],
    }


def format_report(res: dict) -> str:
    def f(v, fmt=".3g"):
        return "–" if v is None else format(v, fmt)

    lines = [f"nadfit bench ({res['date']}, {res['machine']['cpus']} cpus, python {res['machine']['python']})",
             f"settings: chains {res['settings']['chains']}, tune {res['settings']['tune']}, draws "
             f"{res['settings']['draws']}, pm_ode cap {res['settings']['pm_ode_cap_s']:g} s, numpyro cap "
             f"{res['settings']['numpyro_cap_s'] or 0:g} s (0 = none)", "",
             format_table(list(res["paths"].values())), "",
             f"ESS/s ratio production / pm_ode: {f(res['ratio_ess_per_s_vs_pm_ode'])} "
             f"({res['ratio_basis']['pm_ode']}; floor {f(res['ratio_floor']['pm_ode'])})",
             f"ESS/s ratio production / numpyro_diffrax: {f(res['ratio_ess_per_s_vs_numpyro_diffrax'])} "
             f"({res['ratio_basis']['numpyro_diffrax']}; floor {f(res['ratio_floor']['numpyro_diffrax'])})"]
    for name in ("pm_ode", "numpyro_diffrax"):
        if res["paths"][name].get("extrapolated"):
            lines.append(f"{name}: {res['paths'][name]['note']}")
    if res["scaling"]:
        lines += ["", "| studies | arms | days | logp+grad (ms) |", "|---|---|---|---|"]
        lines += [f"| {r['studies']} | {r['arms']} | {r['days']} | {r['eval_ms']:.2f} |" for r in res["scaling"]]
    if res.get("simulate"):
        lines += ["", "| hypothesis | compound | mg/day | sim (ms, after compile) |", "|---|---|---|---|"]
        lines += [f"| {r['hypothesis']} | {r['compound']} | {r['mg_per_day']:g} | {r['sim_ms']:.2f} |"
                  for r in res["simulate"]]
    return "\n".join(lines)


if __name__ == "__main__":  # python -m nadfit.fitting.benchmark.bench [--quick] [--json]
    import json

    result = run_bench(quick="--quick" in sys.argv)
    print(json.dumps(result, indent=1) if "--json" in sys.argv else format_report(result))
