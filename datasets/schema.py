"""Column layout, closed vocabularies and metadata models of the nadfit evidence data.

Everything a user may write into ``datasets/<study>/evidence*.csv`` or ``study.yaml`` is checked
against the sets defined here (see :mod:`nadfit.datasets.validate`). Vocabularies are closed on purpose:
a token that is not listed is an error, never guessed.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from pydantic import BaseModel, ConfigDict, field_validator

# --------------------------------------------------------------------------------------------
# evidence*.csv
# --------------------------------------------------------------------------------------------

EVIDENCE_COLUMNS: tuple[str, ...] = (
    "evidence_id", "study_id", "group", "comparator", "n", "compound", "dose", "dose_unit",
    "route", "regimen", "doses_per_day", "duration_days", "time", "time_unit", "matrix",
    "analyte", "statistic", "value", "value_text", "unit", "test", "grade", "source_url",
    "locator", "note",
)
REQUIRED_CELLS: tuple[str, ...] = (
    "evidence_id", "study_id", "group", "analyte", "statistic", "grade", "source_url", "locator",
)

# primary     - read in the study's own text (article, abstract, registry, preprint)
# model-input - a literature value used to set a model input
# digitised   - read off a figure with WebPlotDigitizer
# secondary   - a third-party copy of a primary result (review table, company or news page,
#               aggregator summary) that could not be read in the primary source; its likelihood
#               is to be widened by a documented factor (datasets/README.md)
GRADES = frozenset({"primary", "model-input", "digitised", "secondary"})

COMPOUNDS = frozenset({
    "NMN", "NR", "NAM", "NA", "NAD", "niacin", "tryptophan",
    "NMN_labelled", "NR_labelled", "NAM_labelled",
    "NR_or_NMN", "NMN_or_NR_or_NAD",
    "placebo", "saline", "vehicle",
    "ethanol", "LPS", "FK866", "APCP", "H2O2",
})

DOSE_UNITS = frozenset({
    "mg", "mg/day", "g", "g/day", "mg/kg", "mg/kg/day", "g/kg", "nM", "uM", "mM",
})

ROUTES = frozenset({
    "oral", "oral_gavage", "i.p.", "i.v.", "s.c.", "injection", "sub-retinal", "infusion",
    "diet", "drinking_water", "in_vitro",
})

TIME_UNITS = frozenset({"min", "h", "day", "week", "month"})

MATRICES = frozenset({
    "whole_blood", "serum", "plasma", "serum_or_plasma", "blood_unspecified", "circulation",
    "PBMC", "T_cells", "liver", "kidney", "small_intestine", "jejunum_ileum", "ileum",
    "intestine", "spleen", "gastrointestinal_tract", "gut_lumen", "brain", "skeletal_muscle",
    "RPE", "RPE_cells", "joint", "synovioblasts", "hepatocytes", "cells", "medium_and_cells",
    "myotubes", "tumour", "tissues_multiple", "whole_animal", "recombinant_enzyme", "urine",
    "adipose",
})

STATISTICS = frozenset({
    "mean", "sd", "se", "dispersion_unspecified", "median", "iqr", "central_unspecified",
    "pct_change_from_baseline", "pct_change_vs_control", "pct_change_median",
    "fold_change", "fold_change_max", "fold_change_lower_bound", "ratio", "half_life",
    "range_low", "range_high", "p_value", "p_value_upper_bound", "ed50", "ci95_low",
    "ci95_high", "mean_difference_vs_placebo", "interval_low", "interval_high",
    "effect_size_d", "r_squared", "n_total", "n_randomized", "n_planned", "n_completed",
    "percent", "percent_labelled", "percent_lower_bound", "approx_threshold",
    "approx_time_to_plateau", "association", "direction", "statement",
})
TEXT_STATISTICS = frozenset({"direction", "association", "statement"})
NUMERIC_STATISTICS = STATISTICS - TEXT_STATISTICS
P_STATISTICS = frozenset({"p_value", "p_value_upper_bound"})
COUNT_STATISTICS = frozenset({"n_total", "n_randomized", "n_planned", "n_completed"})
DISPERSION_NEEDING_N = frozenset({"sd", "se"})
# statistics whose value may legitimately be negative (changes, differences, interval ends of
# differences, effect sizes); every other numeric statistic must be >= 0
SIGNED_STATISTICS = frozenset({
    "pct_change_from_baseline", "pct_change_vs_control", "pct_change_median",
    "mean_difference_vs_placebo", "interval_low", "interval_high", "effect_size_d",
    "mean", "median", "range_low", "range_high", "ci95_low", "ci95_high",
})
# units that denote an amount/concentration/time: a value in one of them must be >= 0 even when
# the statistic is otherwise signed (a mean concentration cannot be negative)
NONNEGATIVE_UNITS = frozenset({
    "nmol/L", "umol/L", "uM", "nM", "mM", "pmol/mg", "nmol/mg", "nmol/g", "pmol/10^6 cells",
    "nmol/mL", "ng/mL", "min", "h", "day", "week", "month", "participants", "fold", "ratio",
})

DIRECTION_KEYWORDS = frozenset({
    "increase", "decrease", "no_change", "abolished", "required", "not_required", "preserved",
    "prevented", "not_prevented", "restored", "improved", "worsened", "mitigated", "enabled",
    "impaired", "highest", "lowest", "high", "dose_dependent_increase", "occurs",
    "none_reported",
})
ASSOCIATION_KEYWORDS = frozenset({
    "correlated", "negative correlation", "positive correlation", "no correlation",
})
# keyword optionally followed by " (qualifier)"; the qualifier is kept exactly as written
DIRECTION_RE = re.compile(r"^(?P<kw>[a-z_]+)(?: \((?P<qual>[^()]*(?:\([^()]*\)[^()]*)*)\))?$")

# Units. Dimensional ones are understood by datasets.units (pint); dimensionless ones are labels.
DIMENSIONAL_UNITS = frozenset({
    "nmol/L", "umol/L", "uM", "nM", "mM", "nmol/mL", "pmol/mg", "nmol/mg", "nmol/g", "ng/mL",
    "mg", "g", "kg", "mmHg", "min", "h", "day", "week", "month", "years",
})
DIMENSIONLESS_UNITS = frozenset({"%", "fold", "ratio", "participants", "1"})
UNITS = DIMENSIONAL_UNITS | DIMENSIONLESS_UNITS

ID_RE = re.compile(r"^[A-Za-z][A-Za-z0-9_.\-]*$")
STUDY_ID_RE = re.compile(r"^[a-z][a-z0-9_]*$")
N_RANGE_RE = re.compile(r"^(\d+)-(\d+)$")
N_TEXT_RE = re.compile(r"^(\d+) [A-Za-z][A-Za-z ]*$")


def split_multi(cell: str) -> list[str]:
    """Split a ``;``-separated cell into stripped tokens (empty cell -> [])."""
    return [t.strip() for t in cell.split(";")] if cell.strip() else []


# --------------------------------------------------------------------------------------------
# study.yaml
# --------------------------------------------------------------------------------------------

STUDY_KEYS: tuple[str, ...] = (
    "study_id", "citation", "doi", "pmcid", "url", "species", "system", "design", "arms",
    "compounds", "matrices", "assay", "licence_note", "notes", "reliability",
)
#: kinds of published events that lower a study's reliability (models/claims.py)
RELIABILITY_FLAGS = ("correction", "matters_arising", "failed_replication", "retraction", "expression_of_concern")
NOT_STATED = "not stated in the text read"


class Arm(BaseModel):
    """One group label used in the study's evidence table."""

    model_config = ConfigDict(extra="forbid")
    name: str
    n: int | None = None
    compound: str | None = None
    dose: str | None = None
    dose_unit: str | None = None
    regimen: str | None = None

    @field_validator("n")
    @classmethod
    def _n_positive(cls, v):
        if v is not None and v < 1:
            raise ValueError("n must be >= 1")
        return v


class ReliabilityFlag(BaseModel):
    """A recorded event that questions the study's findings (correction, Matters Arising, ...)."""

    model_config = ConfigDict(extra="forbid")
    kind: str
    date: str | None = None
    source_url: str
    locator: str
    note: str | None = None

    @field_validator("kind")
    @classmethod
    def _known_kind(cls, v):
        if v not in RELIABILITY_FLAGS:
            raise ValueError(f"unknown reliability flag {v!r} (known: {', '.join(RELIABILITY_FLAGS)})")
        return v


class StudyMeta(BaseModel):
    """Metadata of one study folder (``study.yaml``)."""

    model_config = ConfigDict(extra="forbid")
    study_id: str
    citation: str
    doi: str | None = None
    pmcid: str | None = None
    url: str
    species: str
    system: list[str]
    design: list[str]
    arms: list[Arm]
    compounds: list[str]
    matrices: list[str]
    assay: str
    licence_note: str
    notes: str | None = None
    reliability: list[ReliabilityFlag] = []


# --------------------------------------------------------------------------------------------
# problems
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Problem:
    """One validation finding; ``str()`` gives ``file:row:field: message``."""

    file: str
    row: int | None
    field: str | None
    message: str

    def __str__(self) -> str:
        where = ":".join(str(p) for p in (self.file, self.row, self.field) if p is not None)
        return f"{where}: {self.message}"
