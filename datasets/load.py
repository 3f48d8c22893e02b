"""Loading API used by the model code: validated, typed views of the shipped evidence."""

from __future__ import annotations

import csv
import hashlib
import io
import math
import os
from pathlib import Path

import pandas as pd

from nadfit.datasets import units
from nadfit.datasets.errors import UserError
from nadfit.datasets.schema import EVIDENCE_COLUMNS, StudyMeta, split_multi
from nadfit.datasets.validate import parse_float, parse_n, parse_paths, read_study_yaml

DATA_DIR = Path(__file__).resolve().parent
#: one folder per study: ``studies/<author><year>[_qualifier]/`` with ``study.yaml`` + ``evidence.csv``
STUDIES_DIR = DATA_DIR / "studies"


def _display(path: Path) -> str:
    """Shipped files are named relative to the current directory when possible."""
    try:
        rel = os.path.relpath(path)
    except ValueError:
        return str(path)
    return str(path) if rel.startswith("..") else rel


def study_dirs(root: Path | str | None = None) -> list[str]:
    base = str(root) if root is not None else _display(STUDIES_DIR)
    return sorted(os.path.join(base, d) for d in os.listdir(base)
                  if os.path.isfile(os.path.join(base, d, "study.yaml")))


def _raise_problems(problems) -> None:
    if problems:
        first = problems[0]
        more = f" (and {len(problems) - 1} more problems; run 'nadfit datasets validate')" \
            if len(problems) > 1 else ""
        raise UserError(first.message + more, file=first.file, row=first.row, field=first.field)


def load_evidence(paths=None) -> pd.DataFrame:
    """All shipped studies (or the given study folders / evidence files), validated and typed.

    Columns: the evidence.csv columns (``value`` float, ``n`` Int64, ``doses_per_day`` and
    ``duration_days`` float, ``time`` float) plus ``n_text`` (n as written when it is not a
    single integer, e.g. "3-4"), ``dose_list`` (tuple of floats), ``time_days`` (float, NaN
    without time), ``source_file`` and ``source_row`` (line number). Sorted by evidence_id.
    Raises :class:`UserError` on the first validation problem.
    """
    parsed, problems = parse_paths(paths if paths is not None else study_dirs())
    _raise_problems(problems)
    records = []
    for st in parsed:
        for pf in st.files:
            for line, r in pf.rows:
                rec = {c: r[c] for c in EVIDENCE_COLUMNS}
                n, n_text, _ = parse_n(r["n"])
                rec["n"] = n
                rec["n_text"] = n_text if n_text is not None else ""
                rec["value"] = parse_float(r["value"]) if r["value"] else math.nan
                for col in ("doses_per_day", "duration_days", "time"):
                    rec[col] = parse_float(r[col]) if r[col] else math.nan
                rec["dose_list"] = tuple(float(t) for t in split_multi(r["dose"]))
                rec["time_days"] = (units.to_days(rec["time"], r["time_unit"])
                                    if r["time"] else math.nan)
                rec["source_file"] = pf.path
                rec["source_row"] = line
                records.append(rec)
    cols = list(EVIDENCE_COLUMNS) + ["n_text", "dose_list", "time_days", "source_file", "source_row"]
    df = pd.DataFrame.from_records(records, columns=cols)
    df["n"] = pd.array(df["n"].tolist(), dtype="Int64")
    for col in ("value", "doses_per_day", "duration_days", "time", "time_days"):
        df[col] = df[col].astype(float)
    df["source_row"] = df["source_row"].astype(int)
    return df.sort_values("evidence_id", kind="stable").reset_index(drop=True)


def _canon(v) -> str:
    if v is None or v is pd.NA:
        return ""
    if isinstance(v, float):
        return "" if math.isnan(v) else repr(v)
    return str(v)


def evidence_fingerprint(df: pd.DataFrame) -> str:
    """sha256 of the canonical CSV of the evidence columns of ``df`` (rows sorted by id).

    Independent of row order, of extra columns and of the source file location.
    """
    missing = [c for c in EVIDENCE_COLUMNS if c not in df.columns]
    if missing:
        raise UserError(f"evidence frame lacks columns {missing}")
    sub = df.loc[:, list(EVIDENCE_COLUMNS)].sort_values("evidence_id", kind="stable")
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(EVIDENCE_COLUMNS)
    for row in sub.itertuples(index=False):
        w.writerow([_canon(v) for v in row])
    return hashlib.sha256(buf.getvalue().encode("utf-8")).hexdigest()


def load_studies(root: Path | str | None = None) -> dict[str, StudyMeta]:
    """study_id -> :class:`StudyMeta` for every study folder (validated)."""
    out: dict[str, StudyMeta] = {}
    problems = []
    for d in study_dirs(root):
        meta = read_study_yaml(os.path.join(d, "study.yaml"), problems, os.path.basename(d))
        if meta is not None:
            out[meta.study_id] = meta
    _raise_problems(problems)
    return out


def load_study(study_id: str) -> StudyMeta:
    studies = load_studies()
    if study_id not in studies:
        raise UserError(f"unknown study {study_id!r}; see 'nadfit datasets list'")
    return studies[study_id]


def _read_plain_csv(name: str, required: tuple[str, ...]) -> pd.DataFrame:
    path = DATA_DIR / name
    try:
        df = pd.read_csv(path, dtype=str, keep_default_na=False)
    except (OSError, pd.errors.ParserError, UnicodeDecodeError) as exc:
        raise UserError(f"cannot read: {exc.__class__.__name__}", file=f"datasets/{name}") from exc
    missing = [c for c in required if c not in df.columns]
    if missing:
        raise UserError(f"missing columns {missing}", file=f"datasets/{name}", row=1)
    return df


GAP_COLUMNS = ("gap_id", "study_id", "study", "source_url", "where", "what", "constrains", "priority")


def load_gaps() -> pd.DataFrame:
    """Rows of gaps.md's tables (results known to exist only in unreadable figures/tables)."""
    df = _read_plain_csv("gaps.csv", GAP_COLUMNS)
    for i, p in enumerate(df["priority"], start=2):
        if p not in ("A", "B", "C"):
            raise UserError(f"priority {p!r} is not A, B or C", file="datasets/gaps.csv", row=i,
                            field="priority")
    return df


def load_kinetic_priors() -> pd.DataFrame:
    """kinetic_priors.csv (dossier copy plus ``row_id`` KP001..); ``value`` as float."""
    df = _read_plain_csv("kinetic_priors.csv", ("row_id", "parameter", "value", "unit"))
    vals = []
    for i, v in enumerate(df["value"], start=2):
        f = parse_float(v)
        if f is None:
            raise UserError(f"value {v!r} is not a finite number", file="datasets/kinetic_priors.csv",
                            row=i, field="value")
        vals.append(f)
    df["value"] = vals
    return df
