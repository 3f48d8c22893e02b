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


SCENARIO_NAMES = tuple(fixed_scenarios()) + ("airhart_nr",)
