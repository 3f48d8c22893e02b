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

#: fast rates of the brute-force pulsed system (``--method full``). Only k_t rests on values:
#: the cell-line NAD+ half-life prior rows KP135/KP139/KP141 (~6 h); k_abs and k_x are stated
#: assumptions, no values were read for them.
FULL_FAST_RATES = {"k_t": math.log(2.0) / 0.25, "k_abs": 24.0, "k_x": 7.0}
FULL_RATES_NOTE = (
    "full pulsed system: k_t = ln2/0.25 per day (tissue NAD+ half-life ~6 h, cell-line rows "
    "KP135/KP139/KP141); k_abs = 24 per day and k_x = 7 per day are stated assumptions "
    "(no values were read for them); every dose is a jump of the gut state"
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

    ``n`` is tissue NAD+ at its quasi-steady state for the day's mean precursor flux and the
    day's NAMPT level (the fast state is not resolved within a day on this path).
    """
    import jax
    import jax.numpy as jnp

    from nadfit.models import averaged
    from nadfit.models.core import daily_regimen, oral_precursor_flux
    from nadfit.models.scenarios import DT_DAYS

    nmn, nr = averaged.rate_grid([daily_regimen(compound, mg_per_day, days, doses_per_day)], DT_DAYS, days)
    nmn_day = jnp.asarray(np.concatenate([nmn[:, 0], nmn[-1:, 0]]))
    nr_day = jnp.asarray(np.concatenate([nr[:, 0], nr[-1:, 0]]))

    @jax.jit
    def run(th):
        b, e = model.blood_curve(th, compound, mg_per_day, days, doses_per_day)
        phi = model._phi(th, "human")
        j = oral_precursor_flux(nmn_day, th["pi_nmn"], phi, th.get("k_a", jnp.inf), jnp) + th["pi_nr"] * nr_day
        u = averaged.steady_state_newton(jnp.zeros_like(e), j, e, th["beta"], th["kappa"], th["ell"], steps=30)
        return b, e, jnp.exp(u)

    return run


def full_params(model, th) -> dict:
    """Parameter mapping of ``nadfit.models.core.full_rhs`` from an EvidenceModel theta."""
    phi = float(model._phi(th, "human"))
    p = {k: float(th[k]) for k in ("beta", "kappa", "ell", "pi_nmn", "pi_nr")}
    p.update(gamma=float(model._blood_params(th)["gamma"]),  # the model's (monostable) exponent
             e_base=1.0, c=1.0, k_e=math.log(2.0) / float(th["t_nampt_days"]),
             k_b=math.log(2.0) / float(th["t_blood_days"]), phi=phi,
             k_a=float(th["k_a"]) if "k_a" in th else math.inf, **FULL_FAST_RATES)
    return p


def simulate_full_daily(model, th, compound: str, mg_per_day: float, days: int, doses_per_day: int = 1) -> dict:
    """Brute-force pulsed solve; values at integer days (just before that day's first dose) and
    the daily mean of b over each preceding day."""
    from nadfit.models.core import daily_regimen, simulate_full

    p = full_params(model, th)
    per_day = 48
    t = np.linspace(0.0, days, days * per_day + 1)
    y = simulate_full(p, daily_regimen(compound, mg_per_day, days, doses_per_day), float(days), t)
    idx = np.arange(0, days + 1) * per_day
    b_mean = [1.0] + [float(np.trapezoid(y[6, i - per_day:i + 1], t[i - per_day:i + 1])) for i in idx[1:]]
    return {"b": y[6, idx].tolist(), "e": y[5, idx].tolist(), "n": y[4, idx].tolist(), "b_daily_mean": b_mean}


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
            "note": "averaged path (models/averaged.py): daily-mean precursor flux; n is tissue NAD+ at "
                    "its quasi-steady state for that day's flux and NAMPT level",
        }
    if method in ("full", "both"):
        t0 = time.perf_counter()
        res = simulate_full_daily(model, th, comp, float(dose_mg), int(days), int(doses_per_day))
        res["time_s"] = time.perf_counter() - t0
        res["note"] = FULL_RATES_NOTE
        res["fast_rates_per_day"] = dict(FULL_FAST_RATES)
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
        if "b_daily_mean" in res:
            cols.append(f"b_mean[{m}]")
            series.append(res["b_daily_mean"])
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


