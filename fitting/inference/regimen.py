"""An oral regimen as the user gives it (compound, mg/day, doses per day, day): one validator for
``nadfit simulate`` and ``nadfit predict``."""

from __future__ import annotations

import math

import numpy as np

from nadfit.datasets.errors import UserError

COMPOUNDS = ("NMN", "NR")
#: the longest continuous dosing the production path simulates (days)
MAX_DAYS = 365
#: input bounds of a regimen (not evidence: far beyond any human dose, where the simulator still
#: returns finite numbers; hourly dosing at most)
MAX_MG_PER_DAY = 100_000.0
MAX_DOSES_PER_DAY = 24


def validate_regimen(compound, dose_mg, doses_per_day, day, day_option: str = "--days") -> tuple[str, float, int, float]:
    """``(compound, mg per day, doses per day, day)`` checked; one-line UserError otherwise.

    ``day`` may be fractional (prediction at day 14.5); it must lie in (0, MAX_DAYS]. Messages name
    the command-line options (``day_option`` for the day)."""
    match = {c.lower(): c for c in COMPOUNDS}.get(str(compound).strip().lower())
    if match is None:
        raise UserError(f"--compound must be NMN or NR, got {compound!r}")
    try:
        dose = float(dose_mg)
    except (TypeError, ValueError):
        raise UserError(f"--dose must be a number, got {dose_mg!r}") from None
    if not math.isfinite(dose) or dose <= 0:
        raise UserError(f"--dose must be a positive finite number, got {dose_mg!r} mg/day")
    if dose > MAX_MG_PER_DAY:
        raise UserError(f"--dose must be at most {MAX_MG_PER_DAY:g} mg/day, got {dose_mg!r}")
    if (isinstance(doses_per_day, bool) or not isinstance(doses_per_day, (int, np.integer))
            or not 1 <= doses_per_day <= MAX_DOSES_PER_DAY):
        raise UserError(f"--doses-per-day must be a whole number in [1, {MAX_DOSES_PER_DAY}], got {doses_per_day!r}")
    try:
        d = float(day)
    except (TypeError, ValueError):
        raise UserError(f"{day_option} must be a number, got {day!r}") from None
    if not math.isfinite(d) or d <= 0 or d > MAX_DAYS:
        raise UserError(f"{day_option} must be in (0, {MAX_DAYS}], got {day!r}")
    return match, dose, int(doses_per_day), d


def studied_dose_range(compound: str) -> tuple[float, float, int] | None:
    """``(lowest, highest, studies)``: oral daily doses (mg/day, or mg of a single dose) of
    ``compound`` given to people in the shipped evidence rows (studies whose species is human);
    None when no such row exists."""
    from nadfit.datasets import load_evidence, load_studies

    human = {sid for sid, meta in load_studies().items() if "human" in str(meta.species).lower()
             or "homo" in str(meta.species).lower()}
    ev = load_evidence()
    rows = ev[(ev["study_id"].isin(human)) & (ev["compound"].astype(str) == compound)
              & (ev["route"].astype(str) == "oral") & (ev["dose_unit"].astype(str).isin(["mg/day", "mg"]))]
    doses, studies = [], set()
    for sid, text in zip(rows["study_id"], rows["dose"].astype(str)):
        for tok in text.split(";"):
            try:
                v = float(tok)
            except ValueError:
                continue
            if math.isfinite(v) and v > 0:
                doses.append(v)
                studies.add(sid)
    return (min(doses), max(doses), len(studies)) if doses else None


def dose_plausibility(compound: str, dose_mg: float) -> str | None:
    """A one-line warning when ``dose_mg`` (mg/day) lies outside the studied human range."""
    rng = studied_dose_range(compound)
    if rng is None:
        return f"no human trial of oral {compound} in the shipped evidence; every dose is an extrapolation"
    lo, hi, n = rng
    if lo <= dose_mg <= hi:
        return None
    return (f"{dose_mg:g} mg/day {compound} is outside the studied human range ({lo:g}-{hi:g} mg/day, "
            f"{n} human trial{'s' if n != 1 else ''} in the shipped evidence); the result is an extrapolation")
