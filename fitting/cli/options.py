"""One option vocabulary for every command: shared help texts, option helpers, and the old
spellings that are still accepted (hidden, rewritten before parsing with a note on stderr)."""

from __future__ import annotations

from typing import Annotated, Optional

import typer


def split_ids(values: Optional[list[str]]) -> list[str]:
    """``--evidence a,b --evidence c`` -> ["a", "b", "c"] (study or evidence ids)."""
    out: list[str] = []
    for v in values or []:
        out += [t.strip() for t in v.split(",") if t.strip()]
    return out


EVIDENCE_HELP = "keep only these study/evidence ids (comma-separated or repeated)"
EXCLUDE_HELP = "leave out these study/evidence ids (comma-separated or repeated)"
JSON_HELP = "print machine-readable JSON instead of tables"
HYPOTHESIS_HELP = "direct | via-nr | mixed"
COMPOUND_HELP = "compound taken by mouth: NMN | NR"
DOSE_HELP = "daily dose, in --dose-unit"
DOSE_UNIT_HELP = "unit of --dose: mg/day or g/day"
DOSES_PER_DAY_HELP = "the daily dose split into this many doses"
DAYS_HELP = "days of continuous daily dosing (at most 365)"
SEED_HELP = "random seed"
WORKERS_HELP = "local worker processes (one core each)"
ADDRESS_HELP = "Dask scheduler address (tcp://host:8786) instead of a local cluster"
QUIET_HELP = "print only errors and the final summary"
VERBOSE_HELP = "print every step, and every third-party warning (also those nadfit understands and hides)"
FORCE_FILE_HELP = "overwrite an existing --out file"

# Options that several commands share, declared once (``quiet: Quiet = False``)
Quiet = Annotated[bool, typer.Option("--quiet", "-q", help=QUIET_HELP)]
VERBOSE_FLAGS = ("--verbose", "-v")
Verbose = Annotated[bool, typer.Option(*VERBOSE_FLAGS, help=VERBOSE_HELP)]
Workers = Annotated[int, typer.Option(help=WORKERS_HELP)]
Address = Annotated[Optional[str], typer.Option(help=ADDRESS_HELP)]
ForceFile = Annotated[bool, typer.Option("--force", help=FORCE_FILE_HELP)]

#: Old spellings still accepted, per command: old -> new. They are not shown in ``--help``; the
#: command line is rewritten before parsing and a one-line note names the new spelling.
DEPRECATED_OPTIONS: dict[str, dict[str, str]] = {
    "simulate": {"--dose-mg": "--dose"},
    "predict": {"--dose-mg": "--dose", "--day": "--days"},
    "compare": {"--allow-failed": "--accept-failed-gates", "--wider": "--wider-runs"},
    "compare-calibration": {"--hypotheses": "--hypothesis"},
}


def rewrite_deprecated(argv: list[str]) -> tuple[list[str], list[str]]:
    """``argv`` with the deprecated spellings of its command replaced, and one note per spelling."""
    argv = list(argv)
    cmd_at = next((i for i, a in enumerate(argv) if not a.startswith("-")), None)
    if cmd_at is None or argv[cmd_at] not in DEPRECATED_OPTIONS:
        return argv, []
    table, notes = DEPRECATED_OPTIONS[argv[cmd_at]], []
    for i in range(cmd_at + 1, len(argv)):
        tok = argv[i]
        if tok == "--":
            break
        old, sep, value = tok.partition("=")
        new = table.get(old)
        if new is None:
            continue
        argv[i] = new + sep + value
        note = f"{old} is deprecated; use {new} (same meaning)"
        if note not in notes:
            notes.append(note)
    return argv, notes


def dose_mg_per_day(dose: float, unit: str) -> float:
    """``--dose`` in ``--dose-unit`` (mg/day or g/day) as mg per day; one-line error otherwise."""
    from nadfit.datasets.errors import UserError

    unit = str(unit).strip()
    if unit == "mg/day":
        return dose
    if unit == "g/day":
        from nadfit.datasets.units import convert

        return convert(dose, "g", "mg")
    raise UserError(f"--dose-unit must be mg/day or g/day, got {unit!r}", field="--dose-unit")
