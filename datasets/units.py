"""Explicit unit conversion with pint. Unknown units are an error, never guessed.

The dossier's unit strings (``nmol/L``, ``pmol/mg``, ``uM``, ``day``...) are mapped to pint
expressions here; dimensionless labels (``%``, ``fold``, ``ratio``, ``participants``) convert only
to themselves.
"""

from __future__ import annotations

from functools import lru_cache

import pint

from nadfit.datasets.errors import UserError
from nadfit.datasets.schema import DIMENSIONLESS_UNITS

# dossier unit string -> pint expression
_PINT_NAMES: dict[str, str] = {
    "nmol/L": "nanomole / liter",
    "umol/L": "micromole / liter",
    "uM": "micromolar",
    "nM": "nanomolar",
    "mM": "millimolar",
    "nmol/mL": "nanomole / milliliter",
    "pmol/mg": "picomole / milligram",
    "nmol/mg": "nanomole / milligram",
    "nmol/g": "nanomole / gram",
    "ng/mL": "nanogram / milliliter",  # a mass concentration: converts to molar units only with a molar mass (not done here)
    "mg": "milligram",
    "g": "gram",
    "kg": "kilogram",
    "mmHg": "millimeter_Hg",
    "min": "minute",
    "h": "hour",
    "day": "day",
    "week": "week",
    "month": "month",
    "years": "year",
}


@lru_cache(maxsize=1)
def ureg() -> pint.UnitRegistry:
    reg = pint.UnitRegistry()
    reg.define("micromolar = micromole / liter")
    reg.define("nanomolar = nanomole / liter")
    reg.define("millimolar = millimole / liter")
    return reg


def is_known(unit: str) -> bool:
    return unit in _PINT_NAMES or unit in DIMENSIONLESS_UNITS


def _q(unit: str):
    if unit in DIMENSIONLESS_UNITS:
        raise UserError(f"unit {unit!r} is a dimensionless label and converts only to itself")
    if unit not in _PINT_NAMES:
        raise UserError(f"unknown unit {unit!r}; known units: {sorted(_PINT_NAMES) + sorted(DIMENSIONLESS_UNITS)}")
    return ureg()(_PINT_NAMES[unit])


def convert(value: float, from_unit: str, to_unit: str) -> float:
    """Convert ``value`` from one vocabulary unit to another (``UserError`` if impossible)."""
    if from_unit == to_unit:
        return float(value)
    src, dst = _q(from_unit), _q(to_unit)
    try:
        return float((value * src).to(dst).magnitude)
    except pint.DimensionalityError as exc:
        raise UserError(f"cannot convert {from_unit!r} to {to_unit!r}: incompatible dimensions") from exc


def to_days(value: float, unit: str) -> float:
    """A time in one of min/h/day/week/month as days (month = 1/12 of a Julian year in pint)."""
    return convert(value, unit, "day")


def to_hours(value: float, unit: str) -> float:
    return convert(value, unit, "h")


def to_uM(value: float, unit: str) -> float:
    """A molar concentration (nmol/L, nmol/mL, uM, nM, mM, umol/L) in micromolar."""
    return convert(value, unit, "uM")
