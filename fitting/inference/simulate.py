"""Simulation of one oral regimen (library behind ``nadfit simulate``).

* ``nadfit simulate --hypothesis H --compound NMN|NR --dose X --doses-per-day K --days D
  [--params FILE.json] [--method production|full|both] [--json] [--plot FILE.png]`` — daily
  trajectories of whole-blood NAD+ fold change ``b``, NAMPT expression ``e`` and tissue NAD+ ``n``
  at prior-median parameters (or those in FILE: JSON name -> value; vectors as lists).
User mistakes raise :class:`nadfit.datasets.errors.UserError` (one line on stderr, exit code 2).
"""

from __future__ import annotations

import json
import math
import time
from pathlib import Path

import numpy as np

from nadfit.datasets.errors import UserError
from nadfit.fitting.inference.regimen import validate_regimen

#: what ``--method full`` integrates (the model's own rates: the same parameters as production)
FULL_RATES_NOTE = (
    "full pulsed system (models/core.py full_rhs) at the same parameters, fast rates included "
    "(t_nad_tissue_hours, t_absorption_hours, t_exposure_hours); every dose is a jump of the gut state"
)


# --------------------------------------------------------------------------------------------
# inputs
# --------------------------------------------------------------------------------------------


def load_params(path: Path, model) -> dict:
    """Parameter values from a JSON file (name -> number, or list for z_* vectors)."""
    fname = str(path)
    try:
        data = json.loads(Path(path).read_text())
    except FileNotFoundError:
        raise UserError("parameter file not found", file=fname) from None
    except (OSError, json.JSONDecodeError) as exc:
        raise UserError(f"not a readable JSON file ({exc.__class__.__name__}: {exc})", file=fname) from None
    if not isinstance(data, dict):
        raise UserError("expected a JSON object mapping parameter name -> value", file=fname)
    scalars = set(model.scalar_parameters)
    vectors = {name: len(labels) for name, (_, labels) in model.vector_parameters.items()}
    out = {}
    for key, val in data.items():
        if key in scalars:
            if isinstance(val, bool) or not isinstance(val, (int, float)) or not math.isfinite(val):
                raise UserError(f"value {val!r} is not a finite number", file=fname, field=key)
            out[key] = float(val)
        elif key in vectors:
            arr = np.asarray(val, dtype=object)
            ok = (arr.ndim == 1 and arr.size == vectors[key]
                  and all(isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) for v in arr))
            if not ok:
                raise UserError(f"expected a list of {vectors[key]} finite numbers", file=fname, field=key)
            out[key] = [float(v) for v in arr]
        else:
            known = ", ".join(sorted(scalars) + sorted(vectors))
            raise UserError(f"unknown parameter for hypothesis {model.hypothesis.name} (known: {known})",
                            file=fname, field=key)
    return out


# --------------------------------------------------------------------------------------------
# simulation
# --------------------------------------------------------------------------------------------


def theta_for(model, overrides: dict | None = None) -> dict:
    import jax.numpy as jnp

    th = model.prior_median_theta()
    for k, v in (overrides or {}).items():
        th[k] = jnp.asarray(v)
    return th


def production_simulator(model, compound: str, mg_per_day: float, days: int, doses_per_day: int = 1):
    """A jitted ``theta -> (b, e, n)`` for one regimen on the production (averaged) path.

    ``n`` is tissue NAD+ averaged over each day's dosing intervals at that day's NAMPT level: the
    quasi-steady states at the nodes of the within-day rule of the filtered flux cells
    (``averaged.within_day_nodes``, the same profile that drives ``b`` and ``e``), weighted.
    """
    import jax
    import jax.numpy as jnp

    from nadfit.models import averaged
    from nadfit.models.core import daily_regimen
    from nadfit.models.scenarios import DT_DAYS

    reg = daily_regimen(compound, mg_per_day, days, doses_per_day)
    nmn, nr = averaged.rate_grid([reg], DT_DAYS, days)
    doses = averaged.doses_grid([reg], DT_DAYS, days)
    assert DT_DAYS == 1.0, "the day-indexed arrays below assume a 1-day grid"
    # day d (>= 1) uses the regimen of the step ending at d; day 0 is before the first dose (nodes set to 0)
    nmn_day = np.concatenate([nmn[:1, 0], nmn[:, 0]])
    nr_day = np.concatenate([nr[:1, 0], nr[:, 0]])
    doses_day = np.concatenate([doses[:1, 0], doses[:, 0]])

    @jax.jit
    def run(th):
        b, e = model.blood_curve(th, compound, mg_per_day, days, doses_per_day)
        p = model._blood_params(th)
        nodes, weights, scale, beta = averaged.within_day_nodes(p, jnp.asarray(nmn_day), jnp.asarray(nr_day),
                                                                doses_day)
        day0 = jnp.arange(len(e))[:, None] == 0  # day 0: before the first dose (no flux, baseline NAM)
        nodes = jnp.where(day0, 0.0, nodes)
        scale = jnp.where(day0, 1.0, scale)
        beta = jnp.where(day0, p["beta"], beta)
        u = averaged.steady_state_newton(jnp.zeros_like(nodes), nodes, e[:, None] * scale, beta, p["kappa"],
                                         p["ell"], steps=30)
        return b, e, jnp.sum(weights * jnp.exp(u), axis=-1)

    return run


def full_params(model, th) -> dict:
    """Parameter mapping of ``nadfit.models.core.full_rhs`` from an EvidenceModel theta: the
    production path's human parameters (``EvidenceModel._blood_params``: monostable gamma, the
    fast rates k_t, k_abs, k_x) as floats, at baseline NAMPT (e_base = 1) and consumption (c = 1)."""
    p = {k: float(v) for k, v in model._blood_params(th).items()}
    p.update(e_base=1.0, c=1.0)
    return p


def simulate_full_daily(model, th, compound: str, mg_per_day: float, days: int, doses_per_day: int = 1) -> dict:
    """Brute-force pulsed solve; values at integer days (just before that day's first dose) and
    the daily means of b and n over each preceding day."""
    from nadfit.models.core import daily_regimen, simulate_full

    p = full_params(model, th)
    per_day = 48
    t = np.linspace(0.0, days, days * per_day + 1)
    y = simulate_full(p, daily_regimen(compound, mg_per_day, days, doses_per_day), float(days), t)
    idx = np.arange(0, days + 1) * per_day
    def daily_mean(row):
        return [1.0] + [float(np.trapezoid(y[row, i - per_day:i + 1], t[i - per_day:i + 1])) for i in idx[1:]]

    return {"b": y[6, idx].tolist(), "e": y[5, idx].tolist(), "n": y[4, idx].tolist(), "b_daily_mean": daily_mean(6),
            "n_daily_mean": daily_mean(4)}


def simulate(hypothesis: str, compound: str, dose_mg: float, doses_per_day: int, days: int,
             params: Path | None = None, method: str = "production") -> dict:
    from nadfit.datasets import load_evidence
    from nadfit.models.model import EvidenceModel

    comp, dose_mg, doses_per_day, _ = validate_regimen(compound, dose_mg, doses_per_day, days, day_option="--days")
    if int(days) != days:
        raise UserError(f"--days must be a whole number of days, got {days!r}")
    if method not in ("production", "full", "both"):
        raise UserError(f"unknown method {method!r}; choose production, full or both", field="method")
    model = EvidenceModel(hypothesis, load_evidence())
    overrides = load_params(params, model) if params else {}
    th = theta_for(model, overrides)
    out = {
        "hypothesis": model.hypothesis.name, "compound": comp, "dose_mg_per_day": float(dose_mg),
        "doses_per_day": int(doses_per_day), "days": int(days),
        "parameters": {k: (np.asarray(v).tolist()) for k, v in th.items()},
        "parameter_source": str(params) if params else "prior medians (z_* vectors = 0)",
        "day": list(range(int(days) + 1)), "methods": {},
        "timing_note": "compile time is excluded: each path is run once to compile/warm up, then timed",
    }
    if method in ("production", "both"):
        run = production_simulator(model, comp, float(dose_mg), int(days), int(doses_per_day))
        t0 = time.perf_counter()
        res = run(th)
        res[0].block_until_ready()
        compile_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        b, e, n = run(th)
        b.block_until_ready()
        out["methods"]["production"] = {
            "b": np.asarray(b).tolist(), "e": np.asarray(e).tolist(), "n": np.asarray(n).tolist(),
            "time_s": time.perf_counter() - t0, "compile_s": compile_s,
            "note": "averaged path (models/averaged.py): within-day quadrature of the dosing interval; n is "
                    "tissue NAD+ averaged over the day at its quasi-steady state for the low-passed flux "
                    "and that day's NAMPT level",
        }
    if method in ("full", "both"):
        t0 = time.perf_counter()
        res = simulate_full_daily(model, th, comp, float(dose_mg), int(days), int(doses_per_day))
        res["time_s"] = time.perf_counter() - t0
        res["note"] = FULL_RATES_NOTE
        out["methods"]["full"] = res
    return out


def format_simulation(out: dict) -> str:
    lines = [f"nadfit simulate — hypothesis {out['hypothesis']}, {out['compound']} "
             f"{out['dose_mg_per_day']:g} mg/day in {out['doses_per_day']} dose(s)/day for {out['days']} days",
             f"parameters: {out['parameter_source']}"]
    cols = ["day"]
    series = []
    for m, res in out["methods"].items():
        for q in ("b", "e", "n"):
            cols.append(f"{q}[{m}]")
            series.append(res[q])
        for q in ("b", "n"):
            if f"{q}_daily_mean" in res:
                cols.append(f"{q}_mean[{m}]")
                series.append(res[f"{q}_daily_mean"])
    lines.append("  ".join(f"{c:>14s}" for c in cols))
    for i, d in enumerate(out["day"]):
        lines.append("  ".join([f"{d:>14d}"] + [f"{s[i]:>14.5f}" for s in series]))
    lines.append("b = whole-blood NAD+ fold change; e = NAMPT expression; n = tissue NAD+ (all relative to baseline)")
    for m, res in out["methods"].items():
        extra = f" (compile {res['compile_s']:.2f} s)" if "compile_s" in res else ""
        lines.append(f"{m}: {res['note']}; time per simulation {res['time_s'] * 1e3:.2f} ms{extra}")
    lines.append(f"note: {out['timing_note']}")
    return "\n".join(lines)


def plot_simulation(out: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(12, 3.5))
    for m, res in out["methods"].items():
        for ax, q, title in zip(axes, ("b", "e", "n"), ("whole-blood NAD+ b", "NAMPT e", "tissue NAD+ n"), strict=True):
            ax.plot(out["day"], res[q], label=m, marker="." if m == "full" else None)
            ax.set_title(title)
            ax.set_xlabel("day")
    axes[0].set_ylabel("fold change vs baseline")
    axes[0].legend()
    fig.suptitle(f"{out['hypothesis']}: {out['compound']} {out['dose_mg_per_day']:g} mg/day")
    fig.tight_layout()
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)


