"""External validation: reproduce posteriordb's ``one_comp_mm_elim_abs`` posterior.

The fixture (BSD-3 posteriordb data + reference draws) lives in
``<repo>/../shared/reference/posteriordb_one_comp_mm_elim_abs`` or in ``$NADFIT_REFERENCE_DIR``.

Model (as in the fixture README): one-compartment PK with first-order absorption and
Michaelis–Menten elimination, C(0) = 0,

    dC/dt = (D k_a / V) exp(-k_a t) - (V_m / V) C / (K_m + C),

half-Cauchy(0, 1) priors on k_a, K_m, V_m, sigma, and C_hat[n] ~ LogNormal(log C(t_n), sigma).
The ODE is solved with diffrax (adaptive, ``throw=False``; failure -> -inf log density) wrapped
via ``pytensor.wrap_jax`` (:mod:`nadfit.fitting.benchmark.ode_jax`), and sampled with nutpie's JAX backend.

``check_reference`` compares posterior means (z-score with combined MCSE) and marginals
(two-sample KS against the reference draws) and returns a JSON-able verdict.
"""

from __future__ import annotations

import json
import os
import time
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

PARAMS = ("k_a", "K_m", "V_m", "sigma")
FIXTURE_NAME = "posteriordb_one_comp_mm_elim_abs"
Z_LIMIT = 4.0
KS_P_LIMIT = 1e-3
# A parameter counts as heavy-tailed when the reference's own second moment is poorly determined
# (relative MCSE of E[x^2] above this). For such a parameter (K_m here: Cauchy-like tail, 99.9th
# percentile 84 vs median 1) the MCSE of a 4,000-draw mean is itself unreliable, so the raw-mean
# z-score is reported but does not gate; the log-scale mean z and the KS test do.
HEAVY_TAIL_REL_MCSE_M2 = 0.05


class ReferenceNotFound(FileNotFoundError):
    """The posteriordb fixture directory is missing (tests turn this into a skip)."""


@dataclass(frozen=True)
class Reference:
    """The fixture: data, reference draws (10 chains x 1000) and reference means with MCSE."""

    dir: Path
    data: dict[str, Any]
    draws: dict[str, np.ndarray]  # name -> (n_chains, n_draws)
    mean: dict[str, float]
    mcse_mean: dict[str, float]
    mean_sq: dict[str, float]
    mcse_mean_sq: dict[str, float]
    ess_bulk: dict[str, float]  # of the reference draws (reference_draws.info.json)

    def heavy_tailed(self, p: str) -> bool:
        return self.mcse_mean_sq[p] / self.mean_sq[p] > HEAVY_TAIL_REL_MCSE_M2

    @property
    def times(self) -> np.ndarray:
        return np.asarray(self.data["times"], dtype=float)

    @property
    def C_hat(self) -> np.ndarray:
        return np.asarray(self.data["C_hat"], dtype=float)


def _default_dir() -> Path:
    env = os.environ.get("NADFIT_REFERENCE_DIR")
    if env:
        return Path(env)
    repo = Path(__file__).resolve().parents[2]  # <repo>/fitting/benchmark/reference.py
    return repo.parent / "shared" / "reference" / FIXTURE_NAME


def _read_zipped_json(path: Path) -> Any:
    with zipfile.ZipFile(path) as zf:
        names = [n for n in zf.namelist() if not n.endswith("/")]
        if len(names) != 1:
            raise ValueError(f"{path}: expected one member, found {names}")
        return json.loads(zf.read(names[0]))


def load_reference(dir: str | os.PathLike | None = None) -> Reference:  # noqa: A002
    """Load the posteriordb fixture; raises :class:`ReferenceNotFound` with the reason."""
    d = Path(dir) if dir is not None else _default_dir()
    needed = ("data.json.zip", "reference_draws.json.zip", "reference_mean_value.json")
    missing = [n for n in needed if not (d / n).is_file()]
    if missing:
        raise ReferenceNotFound(
            f"posteriordb reference fixture not found: {d} lacks {', '.join(missing)} "
            "(set NADFIT_REFERENCE_DIR to the posteriordb_one_comp_mm_elim_abs directory)"
        )
    data = _read_zipped_json(d / "data.json.zip")
    chains = _read_zipped_json(d / "reference_draws.json.zip")
    draws = {p: np.asarray([c[p] for c in chains], dtype=float) for p in PARAMS}
    mv = json.loads((d / "reference_mean_value.json").read_text())
    mean = dict(zip(mv["names"], map(float, mv["mean_value"]), strict=True))
    mcse = dict(zip(mv["names"], map(float, mv["mcse_mean"]), strict=True))
    mean_sq: dict[str, float] = {}
    mcse_sq: dict[str, float] = {}
    if (d / "reference_mean_squared_value.json").is_file():
        ms = json.loads((d / "reference_mean_squared_value.json").read_text())
        mean_sq = dict(zip(ms["names"], map(float, ms["mean_squared_value"]), strict=True))
        mcse_sq = dict(zip(ms["names"], map(float, ms["mcse_mean"]), strict=True))
    else:  # estimate from the draws, treating them as independent
        for p in PARAMS:
            x2 = draws[p].ravel() ** 2
            mean_sq[p] = float(x2.mean())
            mcse_sq[p] = float(x2.std(ddof=1) / np.sqrt(x2.size))
    ess = {p: float(draws[p].size) for p in PARAMS}
    if (d / "reference_draws.info.json").is_file():
        info = json.loads((d / "reference_draws.info.json").read_text())
        diag = info.get("diagnostics", {})
        names = diag.get("diagnostic_information", {}).get("names", [])
        vals = diag.get("effective_sample_size_bulk", [])
        ess.update({n: float(v) for n, v in zip(names, vals, strict=False)})
    return Reference(dir=d, data=data, draws=draws, mean=mean, mcse_mean=mcse,
                     mean_sq=mean_sq, mcse_mean_sq=mcse_sq, ess_bulk=ess)


# --------------------------------------------------------------------------------------------
# Model
# --------------------------------------------------------------------------------------------


def make_pk_rhs(D: float, V: float):
    """RHS ``rhs(t, y, theta, xp)`` with theta = (k_a, K_m, V_m); y = [C]."""
    D = float(D)
    V = float(V)

    def rhs(t, y, theta, xp):
        k_a, K_m, V_m = theta[0], theta[1], theta[2]
        C = y[0]
        dose = xp.exp(-k_a * t) * D * k_a / V
        elim = (V_m / V) * C / (K_m + C)
        return xp.stack([dose - elim])

    return rhs


def pk_solver_jax(ref: Reference, **solver_kwargs):
    """Jitted ``solve(y0, theta) -> (ys, ok)`` for the reference PK problem."""
    from nadfit.fitting.benchmark.ode_jax import make_jax_solver

    kw = {"solver": "tsit5", "rtol": 1e-8, "atol": 1e-10} | solver_kwargs
    return make_jax_solver(
        make_pk_rhs(ref.data["D"], ref.data["V"]), ref.times, t0=float(ref.data["t0"]), **kw
    )


def build_pk_model(ref: Reference, *, solver: str = "tsit5", rtol: float = 1e-8, atol: float = 1e-10):
    """The posteriordb model in PyMC 6 (diffrax via ``pytensor.wrap_jax``)."""
    import pymc as pm
    import pytensor.tensor as pt

    from nadfit.fitting.benchmark.ode_jax import failure_logp, ode_solve_pt

    rhs = make_pk_rhs(ref.data["D"], ref.data["V"])
    with pm.Model() as model:
        k_a = pm.HalfCauchy("k_a", beta=1.0)
        K_m = pm.HalfCauchy("K_m", beta=1.0)
        V_m = pm.HalfCauchy("V_m", beta=1.0)
        sigma = pm.HalfCauchy("sigma", beta=1.0)
        theta = pt.stack([k_a, K_m, V_m])
        ys, ok = ode_solve_pt(
            rhs, ref.times, np.zeros(1), theta,
            t0=float(ref.data["t0"]), solver=solver, rtol=rtol, atol=atol,
        )
        C = ys[:, 0]
        pm.Potential("ode_ok", failure_logp(ok))
        pm.LogNormal("C_hat", mu=pt.log(pt.maximum(C, 1e-300)), sigma=sigma, observed=ref.C_hat)
    return model


def logp_at(model, values: dict[str, float]) -> float:
    """Model log density (on the transformed space, incl. Jacobian) at constrained ``values``."""
    ip = model.initial_point()
    point = {}
    for rv in model.free_RVs:
        vv = model.rvs_to_values[rv]
        tr = model.rvs_to_transforms.get(rv)
        x = np.asarray(values[rv.name], dtype=float)
        point[vv.name] = np.asarray(tr.forward(x).eval() if tr is not None else x, dtype=ip[vv.name].dtype)
    return float(model.compile_logp()(point))


# --------------------------------------------------------------------------------------------
# Check
# --------------------------------------------------------------------------------------------


def _mcse_array(x: np.ndarray) -> float:
    """ArviZ MCSE of the mean for a (chain, draw) array."""
    import arviz as az

    return float(az.mcse(az.from_dict({"posterior": {"v": x}}), method="mean")["v"])


def _sample_nutpie(model, *, draws: int, tune: int, chains: int, seed: int, cores: int, target_accept: float):
    import nutpie

    t0 = time.perf_counter()
    compiled = nutpie.compile_pymc_model(model, backend="jax", gradient_backend="jax")
    t1 = time.perf_counter()
    dt = nutpie.sample(
        compiled, draws=draws, tune=tune, chains=chains, cores=cores, seed=seed,
        progress_bar=False, target_accept=target_accept,
    )
    t2 = time.perf_counter()
    return dt, t1 - t0, t2 - t1


def check_reference(
    draws: int = 1000,
    chains: int = 4,
    seed: int = 20261122,
    *,
    tune: int = 1000,
    cores: int = 2,
    target_accept: float = 0.9,
    solver: str = "tsit5",
    rtol: float = 1e-8,
    ref_dir: str | os.PathLike | None = None,
) -> dict[str, Any]:
    """Sample the PK model and compare with the posteriordb reference posterior.

    Per parameter (all must pass):

    * z = (ours - theirs) / sqrt(mcse_ours^2 + mcse_theirs^2) on the posterior mean, theirs from
      reference_mean_value.json, ours = max(arviz ``mcse(method="mean")``, ref_sd/sqrt(ESS_bulk))
      (tail-robust); |z| < 4 required unless the parameter is heavy-tailed (see
      ``HEAVY_TAIL_REL_MCSE_M2``; K_m), where it is reported only;
    * the same z on the mean of log(parameter), reference MCSE = sd/sqrt(reference bulk ESS);
      |z_log| < 4 required;
    * two-sample KS of our draws thinned by ceil(N / min(bulk, tail ESS)) against the 10,000
      reference draws: p > 0.001.

    Returns a JSON-able dict.
    """
    import arviz as az
    from scipy import stats

    t_start = time.perf_counter()
    ref = load_reference(ref_dir)
    model = build_pk_model(ref, solver=solver, rtol=rtol)
    dt, compile_s, sample_s = _sample_nutpie(
        model, draws=draws, tune=tune, chains=chains, seed=seed, cores=cores,
        target_accept=target_accept,
    )
    post = dt["posterior"]
    ess_b = az.ess(dt, var_names=list(PARAMS), method="bulk")
    ess_t = az.ess(dt, var_names=list(PARAMS), method="tail")
    rhat = az.rhat(dt, var_names=list(PARAMS))
    mcse = az.mcse(dt, var_names=list(PARAMS), method="mean")
    divergences = int(np.asarray(dt["sample_stats"]["diverging"]).sum())

    per: dict[str, Any] = {}
    ok_all = True
    for p in PARAMS:
        x = np.asarray(post[p])  # (chain, draw)
        r_draws = ref.draws[p]
        eb = float(ess_b[p])
        et = float(ess_t[p])
        ref_sd = float(r_draws.std(ddof=1))
        # raw mean: ours MCSE made tail-robust with the reference sd (our sample sd
        # underestimates it whenever the chains missed the far tail)
        ours_mean = float(x.mean())
        ours_mcse_az = float(mcse[p])
        ours_mcse = max(ours_mcse_az, ref_sd / np.sqrt(max(eb, 1.0)))
        z = (ours_mean - ref.mean[p]) / float(np.hypot(ours_mcse, ref.mcse_mean[p]))
        # log-scale mean (well defined for all four positive parameters)
        lx = np.log(x)
        lr = np.log(r_draws)
        l_mcse = max(float(np.asarray(_mcse_array(lx))), float(lr.std(ddof=1)) / np.sqrt(max(eb, 1.0)))
        l_ref_mcse = float(lr.std(ddof=1)) / np.sqrt(ref.ess_bulk[p])
        z_log = (float(lx.mean()) - float(lr.mean())) / float(np.hypot(l_mcse, l_ref_mcse))
        # KS on our draws thinned to roughly independent ones
        thin = max(1, int(np.ceil(x.size / max(min(eb, et), 1.0))))
        ours_thin = x[:, ::thin].ravel()
        ks = stats.ks_2samp(ours_thin, r_draws.ravel())
        heavy = ref.heavy_tailed(p)
        passed = bool(
            abs(z_log) < Z_LIMIT
            and ks.pvalue > KS_P_LIMIT
            and (heavy or abs(z) < Z_LIMIT)
        )
        ok_all &= passed
        per[p] = {
            "mean": ours_mean,
            "mcse": ours_mcse,
            "mcse_arviz": ours_mcse_az,
            "ref_mean": ref.mean[p],
            "ref_mcse": ref.mcse_mean[p],
            "z": float(z),
            "heavy_tailed": heavy,
            "z_gates": not heavy,
            "log_mean": float(lx.mean()),
            "ref_log_mean": float(lr.mean()),
            "z_log": float(z_log),
            "sd": float(x.std(ddof=1)),
            "ref_sd": ref_sd,
            "q99": float(np.quantile(x, 0.99)),
            "ref_q99": float(np.quantile(r_draws, 0.99)),
            "ks_stat": float(ks.statistic),
            "ks_p": float(ks.pvalue),
            "ks_n_ours": int(ours_thin.size),
            "thin": thin,
            "ess_bulk": eb,
            "ess_tail": et,
            "r_hat": float(rhat[p]),
            "pass": passed,
        }
    wall = time.perf_counter() - t_start
    return {
        "reference": FIXTURE_NAME,
        "settings": {
            "draws": draws, "tune": tune, "chains": chains, "seed": seed, "cores": cores,
            "target_accept": target_accept, "solver": solver, "rtol": rtol,
            "sampler": "nutpie (JAX backend, JAX gradients)",
            "z_limit": Z_LIMIT, "ks_p_limit": KS_P_LIMIT,
        },
        "params": per,
        "compile_s": compile_s,
        "sample_s": sample_s,
        "wall_s": wall,
        "min_ess_bulk": float(min(per[p]["ess_bulk"] for p in PARAMS)),
        "max_r_hat": float(max(per[p]["r_hat"] for p in PARAMS)),
        "divergences": divergences,
        "verdict": "pass" if ok_all else "fail",
    }


def format_table(result: dict[str, Any]) -> str:
    """Markdown table of a :func:`check_reference` result."""
    rows = [
        "| param | ours mean | ref mean | z (gates?) | z log-mean | ours sd | ref sd | KS p | ESS bulk | r_hat | pass |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for p, r in result["params"].items():
        rows.append(
            f"| {p} | {r['mean']:.4g} ± {r['mcse']:.2g} | {r['ref_mean']:.4g} ± {r['ref_mcse']:.2g} "
            f"| {r['z']:+.2f} ({'yes' if r['z_gates'] else 'no, heavy tail'}) | {r['z_log']:+.2f} | {r['sd']:.3g} | {r['ref_sd']:.3g} | {r['ks_p']:.3g} "
            f"| {r['ess_bulk']:.0f} | {r['r_hat']:.3f} | {r['pass']} |"
        )
    return "\n".join(rows)


if __name__ == "__main__":  # python -m nadfit.fitting.benchmark.reference
    res = check_reference()
    print(format_table(res))
    print(json.dumps({k: v for k, v in res.items() if k != "params"}, indent=2))
