"""Human dosing scenarios: the regimens of the trials whose blood NAD+ findings are scored.

Each regimen is built from the study's stated schedule (see the evidence rows' ``regimen``
column); where a schedule is only partly stated, the unknown part is a model parameter
(``titration`` for Airhart 2017) rather than a guess.
"""

from __future__ import annotations

from nadfit.models.core import Regimen, Segment, daily_regimen

#: step of the slow-time integrator (days); every scored day is a multiple of it
DT_DAYS = 1.0
#: last simulated day (12-week trials)
T_END_DAYS = 84.0
#: the likelihood's grid (``likelihood_nodes``): steps of DT_DAYS up to this day (the first days
#: of a regimen, where the pools rise fastest, and Airhart 2017's daily schedule), then ...
EARLY_DAYS = 14.0
#: ... steps of at most this many days (models/VERIFICATION.md, "Session 17": the error this
#: costs in log b at every scored day, against the grid of DT_DAYS steps)
MAX_STEP_DAYS = 4.0


def likelihood_nodes(regimens, read_days, t_end: float = T_END_DAYS, early: float = EARLY_DAYS,
                     max_step: float = MAX_STEP_DAYS):
    """Node times (days) of the grid on which the likelihood's blood course is integrated.

    Every day of DT_DAYS up to ``early``, every regimen change (``Regimen.change_days``: a step
    never straddles one), the days on either side of every scored day (``read_days``: the blood
    pool is read at nodes, or interpolated between the two nodes around a fractional day), and
    ``t_end``; gaps longer than ``max_step`` are cut into equal steps."""
    import math

    import numpy as np

    fixed = {float(t) for t in np.arange(0.0, min(early, t_end) + 0.5 * DT_DAYS, DT_DAYS)}
    fixed |= {t for reg in regimens for t in reg.change_days() if 0.0 <= t <= t_end}
    fixed |= {float(f(d / DT_DAYS) * DT_DAYS) for d in read_days for f in (math.floor, math.ceil)}
    fixed.add(float(t_end))
    ts = sorted(t for t in fixed if 0.0 <= t <= t_end)
    nodes = [ts[0]]
    for a, b in zip(ts[:-1], ts[1:]):
        k = max(1, math.ceil((b - a) / max_step - 1e-9))
        nodes.extend(a + (b - a) * (i + 1) / k for i in range(k))
    return np.asarray(nodes)


def fixed_scenarios() -> dict[str, Regimen]:
    return {
        "yi_placebo": daily_regimen("none", 0.0, 60),
        "yi_nmn300": daily_regimen("NMN", 300.0, 60),
        "yi_nmn600": daily_regimen("NMN", 600.0, 60),
        "yi_nmn900": daily_regimen("NMN", 900.0, 60),
        "huang_nmn300": daily_regimen("NMN", 300.0, 60),
        "igarashi_nmn250": daily_regimen("NMN", 250.0, 84),
        "okabe_nmn250": daily_regimen("NMN", 250.0, 84),
        "morifuji_nmn250": daily_regimen("NMN", 250.0, 84),
        "pencina_nmn2000": daily_regimen("NMN", 2000.0, 28, doses_per_day=2),
        "teijin_nmn750": daily_regimen("NMN", 750.0, 28),
        # 30-day NMN trial of the 2026-11-30 addendum (EV248/EV250: 500 and 1000 mg once daily)
        "x30_nmn500": daily_regimen("NMN", 500.0, 30),
        "x30_nmn1000": daily_regimen("NMN", 1000.0, 30),
    }


def steady_scenarios() -> dict[str, Regimen]:
    """Regimens of rows read at steady state only (serum NAM: hours), not on the blood course."""
    return {
        # Katayoshi 2023: one 125 mg capsule twice daily for 12 weeks (EV046)
        "katayoshi_nmn250": daily_regimen("NMN", 250.0, 84, doses_per_day=2),
    }


def airhart_regimen(titration: float) -> Regimen:
    """Airhart 2017: 250 mg on days 1-2, up-titrated to 1000 mg twice daily on days 7-8,
    1000 mg at t = 0 on day 9. Days 3-6 are not stated: 250 + titration * 1750 mg/day."""
    mid = 250.0 + titration * 1750.0
    return Regimen("NR", (
        Segment(0.0, 2.0, 250.0, 1),
        Segment(2.0, 6.0, mid, 2),
        Segment(6.0, 8.0, 2000.0, 2),
        Segment(8.0, 9.0, 1000.0, 1),
    ))


SCENARIO_NAMES = tuple(fixed_scenarios()) + ("airhart_nr",) + tuple(steady_scenarios())


# --------------------------------------------------------------------------------------------
# prior predictive shape of the human dose-response (issue #15 item 5)
# --------------------------------------------------------------------------------------------

#: doses (mg/day, NMN once daily) and day of the shape check: each dose doubles the previous one
SHAPE_DOSES_MG = (250.0, 500.0, 1000.0, 2000.0)
SHAPE_DAY = 30


def dose_response_shape(log_effects) -> float:
    """Mean log2 ratio of successive log effects over dose doublings: 1 when each doubling
    doubles the log effect (proportional), < 1 concave (less than proportional, as the
    addendum's 30-day trial: 0.56 -> 0.90 is 0.68), > 1 convex."""
    import numpy as np

    le = np.asarray(log_effects, dtype=float)
    return float(np.mean(np.log2(le[1:] / le[:-1])))


def prior_shape_check(model, n_draws: int, rng, doses=SHAPE_DOSES_MG, day: int = SHAPE_DAY) -> dict:
    """Prior predictive shapes of the whole-blood dose-response (NMN, once daily, day ``day``).

    ``model`` is an EvidenceModel (duck-typed: ``prior_draw``, ``_blood_params``). Returns the
    per-draw shape indices (``dose_response_shape``) and the shares of concave (< 0.9) and
    convex (> 1.1) draws."""
    import jax
    import jax.numpy as jnp
    import numpy as np

    from nadfit.models import averaged
    from nadfit.models.core import daily_regimen

    regs = [daily_regimen("NMN", mg, day) for mg in doses]
    nmn, nr = averaged.rate_grid(regs, DT_DAYS, day)
    d = averaged.doses_grid(regs, DT_DAYS, day)

    @jax.jit
    def log_eff(th):
        b, _ = averaged.blood_course(model._blood_params(th), jnp.asarray(nmn), jnp.asarray(nr), DT_DAYS,
                                     doses_per_day=d)
        return jnp.log(b[-1])

    shapes = []
    for _ in range(n_draws):
        th = {k: jnp.asarray(np.asarray(v, dtype=float)) for k, v in model.prior_draw(rng).items()}
        le = np.asarray(log_eff(th))
        if np.all(le > 1e-9) and np.all(np.isfinite(le)):
            shapes.append(dose_response_shape(le))
    s = np.asarray(shapes)
    return {"shape": s, "concave": float(np.mean(s < 0.9)), "convex": float(np.mean(s > 1.1)),
            "doses_mg": tuple(doses), "day": day}
