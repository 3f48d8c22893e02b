"""Three inference paths for one ODE problem, timed the same way (used by ``nadfit bench``).

A problem is an :class:`OdeProblem`: an RHS ``rhs(t, y, theta, xp)`` written against an array
namespace (``jax.numpy``, ``numpy`` or ``pytensor.tensor``; build the result with
``xp.stack([...])``), a fixed ``y0``, observation times, observed log-values (NaN = missing),
log-normal priors for each kinetic parameter and a log-normal prior for the log-scale noise
``sigma``. The likelihood is ``observed_log ~ Normal(log y[t, observed_states], sigma)``, i.e. a
log-normal likelihood on the original scale.

Paths (each ``run_*`` returns the same keys, see :data:`RESULT_KEYS`):

1. :func:`run_pm_ode` — ``pm.ode.DifferentialEquation`` (scipy odeint + forward sensitivities),
   PyMC's own NUTS driven draw by draw so a wall-time cap can stop it; total time is then
   extrapolated from the iterations completed (``extrapolated=True``).
2. :func:`run_production_like` — diffrax via ``pytensor.wrap_jax`` in PyMC, nutpie JAX backend.
3. :func:`run_numpyro_diffrax` — pure numpyro model with the same diffrax solve, numpyro's NUTS
   kernel stepped iteration by iteration (``chain_method`` "sequential" or "vectorized";
   "parallel" fails with diffrax under jax 0.12), with the same optional wall-time cap.

Capped runs are summarised by :func:`_capped_summary` (time and ESS per draw extrapolated to the
planned run); chains whose draws are all identical are counted in ``stuck_chains`` and get no ESS.

``peak_mem_mb`` is the increase of the process's peak RSS (``resource.getrusage`` maxrss)
during the run: it is a lower bound when an earlier run in the same process already peaked higher.
"""

from __future__ import annotations

import resource
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

RESULT_KEYS = (
    "path", "compile_s", "sample_s", "total_s", "min_ess_bulk", "ess_per_s", "max_rhat",
    "divergences", "peak_mem_mb", "draws_done", "extrapolated",
)


@dataclass
class OdeProblem:
    """A generic ODE fitting problem (see module docstring)."""

    name: str
    rhs: Callable[[Any, Any, Any, Any], Any]
    y0: np.ndarray
    times: np.ndarray
    observed_log: np.ndarray  # (n_times, n_observed_states); NaN = missing
    observed_states: Sequence[int]
    param_names: Sequence[str]
    prior_log_mu: Sequence[float]
    prior_log_sd: Sequence[float]
    sigma_prior: tuple[float, float] = (np.log(0.1), 1.0)  # LogNormal(mu, sd) of noise sd
    t0: float = 0.0
    solver_kwargs: dict[str, Any] = field(default_factory=dict)  # for fitting.ode_jax

    def __post_init__(self) -> None:
        self.y0 = np.asarray(self.y0, dtype=float)
        self.times = np.asarray(self.times, dtype=float)
        obs = np.asarray(self.observed_log, dtype=float)
        if obs.ndim == 1:
            obs = obs[:, None]
        self.observed_log = obs
        self.observed_states = tuple(int(i) for i in self.observed_states)
        if obs.shape != (self.times.size, len(self.observed_states)):
            raise ValueError(
                f"observed_log has shape {obs.shape}, expected "
                f"({self.times.size}, {len(self.observed_states)})"
            )
        n = len(self.param_names)
        if not (len(self.prior_log_mu) == len(self.prior_log_sd) == n):
            raise ValueError("one prior (mu, sd) per parameter is needed")

    @property
    def obs_index(self) -> np.ndarray:
        """Flat indices (row-major into ``observed_log``) of the non-missing observations."""
        return np.flatnonzero(np.isfinite(self.observed_log.ravel()))

    @property
    def obs_flat(self) -> np.ndarray:
        return self.observed_log.ravel()[self.obs_index]


# --------------------------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------------------------


def _maxrss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # KiB on Linux


def _diag_from_arrays(samples: dict[str, np.ndarray]) -> tuple[float | None, float | None]:
    """(min bulk ESS, max rank r-hat) over all variables of ``{name: (chain, draw)}`` arrays."""
    import arviz as az

    if not samples or min(a.shape[1] for a in samples.values()) < 4:
        return None, None
    dt = az.from_dict({"posterior": samples})
    ess = az.ess(dt, method="bulk")
    rhat = az.rhat(dt)
    names = list(samples)
    min_ess = float(min(float(ess[n]) for n in names))
    rh = [float(rhat[n]) for n in names]
    max_rhat = float(np.nanmax(rh)) if np.any(np.isfinite(rh)) else None
    return min_ess, max_rhat


def _result(path: str, *, compile_s, sample_s, total_s, min_ess, max_rhat, divergences,
            peak_mem_mb, draws_done, extrapolated, ess_per_s=None, **extra) -> dict[str, Any]:
    if ess_per_s is None:
        ess_per_s = None if (min_ess is None or not total_s) else min_ess / total_s
    out = {
        "path": path,
        "compile_s": float(compile_s),
        "sample_s": float(sample_s),
        "total_s": float(total_s),
        "min_ess_bulk": None if min_ess is None else float(min_ess),
        "ess_per_s": None if ess_per_s is None else float(ess_per_s),
        "max_rhat": None if max_rhat is None else float(max_rhat),
        "divergences": int(divergences),
        "peak_mem_mb": float(peak_mem_mb),
        "draws_done": int(draws_done),
        "extrapolated": bool(extrapolated),
    }
    out.update(extra)
    return out


def _param_samples_from_tree(dt, names: Sequence[str]) -> dict[str, np.ndarray]:
    post = dt["posterior"]
    return {n: np.asarray(post[n]) for n in names}


# --------------------------------------------------------------------------------------------
# PyMC models
# --------------------------------------------------------------------------------------------


def _pm_priors(problem: OdeProblem):
    import pymc as pm
    import pytensor.tensor as pt

    params = [
        pm.LogNormal(n, mu=float(m), sigma=float(s))
        for n, m, s in zip(problem.param_names, problem.prior_log_mu, problem.prior_log_sd, strict=True)
    ]
    sigma = pm.LogNormal("sigma", mu=float(problem.sigma_prior[0]), sigma=float(problem.sigma_prior[1]))
    return pt.stack(params), sigma


def _pm_likelihood(problem: OdeProblem, ys, sigma) -> None:
    import pymc as pm
    import pytensor.tensor as pt

    pred = ys[:, list(problem.observed_states)]
    mu = pt.log(pt.maximum(pred, 1e-300)).flatten()[problem.obs_index]
    pm.Normal("obs_log", mu=mu, sigma=sigma, observed=problem.obs_flat)


def build_pm_ode_model(problem: OdeProblem):
    """PyMC model using ``pm.ode.DifferentialEquation`` (pytensor RHS)."""
    import pymc as pm
    import pytensor.tensor as pt

    n_states = problem.y0.size
    n_theta = len(problem.param_names)
    ode = pm.ode.DifferentialEquation(
        func=lambda y, t, p: problem.rhs(t, y, p, pt),
        times=problem.times,
        n_states=n_states,
        n_theta=n_theta,
        t0=problem.t0,
    )
    with pm.Model() as model:
        theta, sigma = _pm_priors(problem)
        ys = ode(y0=list(map(float, problem.y0)), theta=[theta[i] for i in range(n_theta)])
        _pm_likelihood(problem, ys, sigma)
    return model


def build_jax_pm_model(problem: OdeProblem):
    """PyMC model with the diffrax solve wrapped by ``pytensor.wrap_jax``."""
    import pymc as pm

    from nadfit.fitting.benchmark.ode_jax import failure_logp, ode_solve_pt

    with pm.Model() as model:
        theta, sigma = _pm_priors(problem)
        ys, ok = ode_solve_pt(problem.rhs, problem.times, problem.y0, theta, t0=problem.t0,
                              **problem.solver_kwargs)
        pm.Potential("ode_ok", failure_logp(ok))
        _pm_likelihood(problem, ys, sigma)
    return model


def _capped_summary(per_chain, names, compile_s, sample_s, iters_done, total_iters, stopped,
                    draws_per_chain: int | None = None, chains: int | None = None) -> dict:
    """Timing and diagnostics of a run that may have been stopped at a wall-time cap.

    If stopped, the sampling time is extrapolated linearly to ``total_iters`` iterations (warm-up
    included; early warm-up iterations are often the most expensive, so the extrapolation can go
    either way). ESS / r-hat come from the post-warm-up draws done: the complete chains if any
    chain finished, else all chains with draws truncated to a common length
    (``ess_draws_used`` draws in all). For a stopped run ``ess_per_s`` extrapolates the ESS
    per draw to the planned ``draws_per_chain * chains`` draws of the full run (ESS grows about
    linearly with the draws of a mixing chain) and divides by the extrapolated total time, so
    it is comparable with a complete run's ESS / total time."""
    sample_total = sample_s / max(iters_done, 1) * total_iters if stopped else sample_s
    total_s = compile_s + sample_total
    min_ess = max_rhat = ess_per_s = None
    stuck = used = 0
    lens = [len(k) for k in per_chain if len(k) > 0]
    if lens:
        complete = [k for k in per_chain if draws_per_chain and len(k) >= draws_per_chain]
        chosen = complete or [k[:min(lens)] for k in per_chain if len(k) > 0]
        arr = np.stack([np.asarray(k) for k in chosen])  # (chain, draw, p)
        stuck = stuck_chains(arr)
        used = int(arr.shape[0] * arr.shape[1])
        if stuck < arr.shape[0]:  # ESS of chains that never moved is meaningless (ArviZ reports n)
            min_ess, max_rhat = _diag_from_arrays({nm: arr[:, :, j] for j, nm in enumerate(names)})
            if min_ess is not None and stopped and draws_per_chain:
                ess_per_s = min_ess / used * draws_per_chain * (chains or len(per_chain)) / total_s
    return {"compile_s": compile_s, "sample_s": sample_s, "total_s": total_s,
            "min_ess": min_ess, "max_rhat": max_rhat, "draws_done": sum(len(k) for k in per_chain),
            "stuck_chains": stuck, "ess_draws_used": used, "ess_per_s": ess_per_s}


def stuck_chains(arr: np.ndarray) -> int:
    """Number of chains of a ``(chain, draw, param)`` array whose draws are all identical."""
    if arr.shape[1] < 2:
        return 0
    return int(np.sum(np.all(arr == arr[:, :1, :], axis=(1, 2))))


def _cap_note(stopped: bool, max_seconds, iters_done: int, total_iters: int) -> str:
    if not stopped:
        return "ran to completion"
    return (f"stopped at the {max_seconds:g} s cap after {iters_done} of {total_iters} NUTS "
            "iterations (incl. warm-up); total_s extrapolated linearly; ESS from the post-warm-up draws "
            "done (complete chains if any), ESS/s with the ESS per draw extrapolated to the planned draws")


# --------------------------------------------------------------------------------------------
# path 1: pm.ode + PyMC NUTS with a wall-time cap
# --------------------------------------------------------------------------------------------


def run_pm_ode(
    problem: OdeProblem,
    *,
    chains: int = 4,
    tune: int = 500,
    draws: int = 500,
    seed: int = 1,
    max_seconds: float = 900.0,
    target_accept: float = 0.8,
    max_tree_depth: int = 10,
) -> dict[str, Any]:
    """``pm.ode`` + PyMC NUTS, chains run one after another, stopped after ``max_seconds``.

    NUTS is initialised as ``pm.sample`` does (``pm.init_nuts(init="jitter+adapt_diag")``) and
    stepped draw by draw. If the cap is hit, ``total_s`` is extrapolated as
    ``compile_s + elapsed / iterations_done * chains * (tune + draws)`` and ``extrapolated`` is
    True; ESS / r-hat are then computed from the post-warm-up draws completed (None if fewer than
    4 per chain), and ``ess_per_s`` uses the *extrapolated* total so it is comparable.
    """
    import pymc as pm

    rss0 = _maxrss_mb()
    t_start = time.perf_counter()
    model = build_pm_ode_model(problem)
    with model:
        init_points, step = pm.init_nuts(
            init="jitter+adapt_diag", chains=chains, random_seed=seed, progressbar=False,
            tune=tune, target_accept=target_accept, max_treedepth=max_tree_depth,
        )
        # value variables -> constrained values (compile_fn on the RVs themselves would draw
        # fresh random values instead)
        uvv = {v.name: v for v in model.unobserved_value_vars}
        to_constrained = model.compile_fn(
            [uvv[n] for n in list(problem.param_names) + ["sigma"]], inputs=model.value_vars,
            point_fn=True, on_unused_input="ignore",
        )
    compile_s = time.perf_counter() - t_start

    names = list(problem.param_names) + ["sigma"]
    rngs = np.random.default_rng(seed).spawn(chains)
    initial_state = step.sampling_state
    per_chain: list[list[np.ndarray]] = []
    divergences = 0
    iters_done = 0
    stopped = False
    t_s0 = time.perf_counter()
    for c in range(chains):
        step.sampling_state = initial_state
        step.setup_chain(rngs[c], tune, draws)
        step.tune = bool(tune)
        if hasattr(step, "reset_tuning"):
            step.reset_tuning()
        point = init_points[c]
        kept: list[np.ndarray] = []
        for i in range(tune + draws):
            if i == 0 and hasattr(step, "iter_count"):
                step.iter_count = 0
            if i == tune:
                step.stop_tuning()
            point, stats = step.step(point)
            iters_done += 1
            if i >= tune:
                kept.append(np.array([float(v) for v in to_constrained(point)]))
                divergences += int(bool(stats[0].get("diverging", False)))
            if time.perf_counter() - t_s0 > max_seconds:
                stopped = not (c == chains - 1 and i == tune + draws - 1)
                break
        per_chain.append(kept)
        if stopped:
            break
    sample_s = time.perf_counter() - t_s0
    total_iters = chains * (tune + draws)
    return _result(
        "pm_ode",
        **_capped_summary(per_chain, names, compile_s, sample_s, iters_done, total_iters, stopped,
                           draws_per_chain=draws, chains=chains),
        divergences=divergences,
        peak_mem_mb=_maxrss_mb() - rss0,
        extrapolated=stopped,
        iterations_done=iters_done,
        iterations_planned=total_iters,
        note=_cap_note(stopped, max_seconds, iters_done, total_iters),
    )


# --------------------------------------------------------------------------------------------
# path 2: diffrax + wrap_jax + nutpie (JAX backend)
# --------------------------------------------------------------------------------------------


def run_production_like(
    problem: OdeProblem,
    *,
    chains: int = 4,
    tune: int = 500,
    draws: int = 500,
    seed: int = 1,
    cores: int = 2,
    target_accept: float = 0.8,
) -> dict[str, Any]:
    """PyMC model with the diffrax solve via ``pytensor.wrap_jax``, sampled by nutpie (JAX)."""
    import nutpie

    rss0 = _maxrss_mb()
    t0 = time.perf_counter()
    model = build_jax_pm_model(problem)
    compiled = nutpie.compile_pymc_model(model, backend="jax", gradient_backend="jax")
    compile_s = time.perf_counter() - t0
    t1 = time.perf_counter()
    dt = nutpie.sample(
        compiled, draws=draws, tune=tune, chains=chains, cores=min(cores, chains), seed=seed,
        progress_bar=False, target_accept=target_accept,
    )
    sample_s = time.perf_counter() - t1
    names = list(problem.param_names) + ["sigma"]
    min_ess, max_rhat = _diag_from_arrays(_param_samples_from_tree(dt, names))
    return _result(
        "production_like",
        compile_s=compile_s,
        sample_s=sample_s,
        total_s=compile_s + sample_s,
        min_ess=min_ess,
        max_rhat=max_rhat,
        divergences=int(np.asarray(dt["sample_stats"]["diverging"]).sum()),
        peak_mem_mb=_maxrss_mb() - rss0,
        draws_done=chains * draws,
        extrapolated=False,
        note="compile_s = PyMC model build + nutpie.compile_pymc_model (JAX jit happens lazily in sampling)",
    )


# --------------------------------------------------------------------------------------------
# path 3: numpyro + diffrax
# --------------------------------------------------------------------------------------------


def numpyro_model_fn(problem: OdeProblem):
    """numpyro model function for ``problem`` (same density as the PyMC models)."""
    import jax.numpy as jnp
    import numpyro
    import numpyro.distributions as dist

    from nadfit.fitting.benchmark.ode_jax import make_jax_solver

    solve = make_jax_solver(problem.rhs, problem.times, t0=problem.t0, **problem.solver_kwargs)
    y0 = jnp.asarray(problem.y0)
    states = jnp.asarray(problem.observed_states)
    idx = jnp.asarray(problem.obs_index)
    obs = jnp.asarray(problem.obs_flat)
    mus = [float(m) for m in problem.prior_log_mu]
    sds = [float(s) for s in problem.prior_log_sd]

    def model():
        theta = jnp.stack([
            numpyro.sample(n, dist.LogNormal(m, s))
            for n, m, s in zip(problem.param_names, mus, sds, strict=True)
        ])
        sigma = numpyro.sample("sigma", dist.LogNormal(float(problem.sigma_prior[0]),
                                                       float(problem.sigma_prior[1])))
        ys, ok = solve(y0, theta)
        numpyro.factor("ode_ok", jnp.where(ok > 0.5, 0.0, -jnp.inf))
        mu = jnp.log(jnp.maximum(ys[:, states], 1e-300)).ravel()[idx]
        numpyro.sample("obs_log", dist.Normal(mu, sigma), obs=obs)

    return model


def jittered_init(problem: OdeProblem, chains: int, seed: int) -> dict[str, np.ndarray]:
    """Unconstrained (log-scale) starting points, ``(chains,)`` per variable: the prior median
    plus uniform(-1, 1) jitter, as PyMC's ``init="jitter+adapt_diag"`` starts a log-normal."""
    rng = np.random.default_rng([seed, 7])
    mus = list(problem.prior_log_mu) + [problem.sigma_prior[0]]
    names = list(problem.param_names) + ["sigma"]
    return {n: float(m) + rng.uniform(-1.0, 1.0, size=chains) for n, m in zip(names, mus, strict=True)}


def run_numpyro_diffrax(
    problem: OdeProblem,
    *,
    chains: int = 4,
    tune: int = 500,
    draws: int = 500,
    seed: int = 1,
    chain_method: str = "sequential",
    target_accept: float = 0.8,
    max_tree_depth: int = 10,
    max_seconds: float | None = None,
) -> dict[str, Any]:
    """Pure numpyro + diffrax NUTS, stepped iteration by iteration so a wall-time cap can stop it.

    The kernel is numpyro's ``NUTS`` (windowed step-size / diagonal mass adaptation during the
    ``tune`` iterations), driven as ``numpyro.infer.MCMC`` drives it: ``kernel.init`` then one
    jitted ``kernel.sample`` per iteration. ``chain_method`` "sequential" runs the chains one
    after another (one core); "vectorized" advances all chains together under ``jax.vmap``
    (on this problem slower: a vmapped tree build runs as deep as the deepest chain's).
    ``compile_s`` = model initialisation + ahead-of-time compilation of one NUTS iteration.
    Chains start where PyMC's ``jitter+adapt_diag`` starts them (:func:`jittered_init`), not at
    numpyro's default ``init_to_uniform`` (uniform in [-2, 2] on the log scale): on the nadfit
    bench problem that default put chain 1 at beta = 0.64 (prior median 66), where the gradient
    of the log density is ~1e17; the step size fell from 2.3 to 9e-21 within 30 warm-up
    iterations and the chain never moved again, at 1023 leapfrog steps per iteration (measured
    2026-11-23).
    ``max_seconds`` (None = no cap) stops sampling as :func:`run_pm_ode` does and extrapolates
    ``total_s`` linearly from the iterations completed (``extrapolated=True``).
    """
    if chain_method not in ("sequential", "vectorized"):
        raise ValueError(f"chain_method must be 'sequential' or 'vectorized', not {chain_method!r} "
                         "('parallel' fails with diffrax under jax 0.12)")
    import jax
    import jax.numpy as jnp
    from numpyro.infer import NUTS

    rss0 = _maxrss_mb()
    t0 = time.perf_counter()
    model = numpyro_model_fn(problem)
    kernel = NUTS(model, target_accept_prob=target_accept, max_tree_depth=max_tree_depth)
    keys = jax.random.split(jax.random.PRNGKey(seed), chains)
    z0 = jittered_init(problem, chains, seed)
    if chain_method == "vectorized":
        groups = [(keys, {n: jnp.asarray(v) for n, v in z0.items()})]
    else:
        groups = [(keys[c], {n: jnp.asarray(v[c]) for n, v in z0.items()}) for c in range(chains)]
    state = kernel.init(groups[0][0], tune, init_params=groups[0][1], model_args=(), model_kwargs={})
    step = jax.jit(lambda s: kernel.sample(s, (), {})).lower(state).compile()
    post = kernel.postprocess_fn((), {})
    to_constrained = jax.jit(jax.vmap(post) if chain_method == "vectorized" else post)
    jax.block_until_ready(to_constrained(state.z))
    compile_s = time.perf_counter() - t0

    names = list(problem.param_names) + ["sigma"]
    per_chain: list[list[np.ndarray]] = [[] for _ in range(chains)]
    divergences = iters_done = 0
    stopped = False
    width = chains if chain_method == "vectorized" else 1  # chains advanced per step
    t_s0 = time.perf_counter()
    for g, (key, init) in enumerate(groups):
        if g > 0:
            state = kernel.init(key, tune, init_params=init, model_args=(), model_kwargs={})
        for i in range(tune + draws):
            state = step(state)
            iters_done += width
            if i >= tune:
                z = to_constrained(state.z)
                vals = np.stack([np.asarray(z[n]) for n in names], axis=-1).reshape(width, len(names))
                for w in range(width):
                    per_chain[g * width + w].append(vals[w])  # sequential: g, vectorized: w
                divergences += int(jnp.sum(state.diverging))
            if max_seconds is not None and time.perf_counter() - t_s0 > max_seconds:
                stopped = not (g == len(groups) - 1 and i == tune + draws - 1)
                break
        if stopped:
            break
    sample_s = time.perf_counter() - t_s0
    total_iters = chains * (tune + draws)
    return _result(
        "numpyro_diffrax",
        **_capped_summary(per_chain, names, compile_s, sample_s, iters_done, total_iters, stopped,
                           draws_per_chain=draws, chains=chains),
        divergences=divergences,
        peak_mem_mb=_maxrss_mb() - rss0,
        extrapolated=stopped,
        chain_method=chain_method,
        iterations_done=iters_done,
        iterations_planned=total_iters,
        note=_cap_note(stopped, max_seconds, iters_done, total_iters),
    )


PATHS: dict[str, Callable[..., dict[str, Any]]] = {
    "pm_ode": run_pm_ode,
    "production_like": run_production_like,
    "numpyro_diffrax": run_numpyro_diffrax,
}


def run_all(
    problem: OdeProblem,
    *,
    chains: int = 4,
    tune: int = 500,
    draws: int = 500,
    seed: int = 1,
    pm_ode_max_seconds: float = 900.0,
    paths: Sequence[str] = tuple(PATHS),
) -> list[dict[str, Any]]:
    """Run the selected paths one after another (never concurrently) and return their results."""
    out = []
    for p in paths:
        kw: dict[str, Any] = {"chains": chains, "tune": tune, "draws": draws, "seed": seed}
        if p == "pm_ode":
            kw["max_seconds"] = pm_ode_max_seconds
        out.append(PATHS[p](problem, **kw))
    return out


def pk_problem(ref=None) -> OdeProblem:
    """The posteriordb PK problem as an :class:`OdeProblem` (log-normal priors, not the
    reference's half-Cauchy ones: this is a timing problem, not the reference check)."""
    from nadfit.fitting.benchmark.reference import load_reference, make_pk_rhs

    ref = ref if ref is not None else load_reference()
    return OdeProblem(
        name="one_comp_mm_elim_abs",
        rhs=make_pk_rhs(ref.data["D"], ref.data["V"]),
        y0=np.zeros(1),
        times=ref.times,
        observed_log=np.log(ref.C_hat)[:, None],
        observed_states=(0,),
        param_names=("k_a", "K_m", "V_m"),
        prior_log_mu=(0.0, 0.0, 0.0),
        prior_log_sd=(1.0, 1.5, 1.0),
        sigma_prior=(np.log(0.2), 1.0),
        t0=float(ref.data["t0"]),
        solver_kwargs={"solver": "tsit5", "rtol": 1e-8, "atol": 1e-10},
    )


def format_table(results: Sequence[dict[str, Any]]) -> str:
    """Markdown table of bench results."""
    def f(v, fmt):
        return "–" if v is None else format(v, fmt)

    rows = ["| path | compile (s) | sample (s) | total (s) | min bulk ESS | ESS/s | max r_hat "
            "| div | peak mem (MB) | draws | extrapolated |",
            "|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in results:
        rows.append(
            f"| {r['path']} | {r['compile_s']:.1f} | {r['sample_s']:.1f} | {r['total_s']:.1f} "
            f"| {f(r['min_ess_bulk'], '.0f')} | {f(r['ess_per_s'], '.2f')} | {f(r['max_rhat'], '.3f')} "
            f"| {r['divergences']} | {r['peak_mem_mb']:.0f} | {r['draws_done']} | {r['extrapolated']} |"
        )
    return "\n".join(rows)


if __name__ == "__main__":  # python -m nadfit.fitting.benchmark.paths [chains tune draws cap]
    import json
    import sys

    a = [int(x) for x in sys.argv[1:4]] or [4, 500, 500]
    cap = float(sys.argv[4]) if len(sys.argv) > 4 else 300.0
    res = run_all(pk_problem(), chains=a[0], tune=a[1], draws=a[2], pm_ode_max_seconds=cap)
    print(format_table(res))
    print(json.dumps(res, indent=1))
