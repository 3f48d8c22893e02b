"""One-off, reproducible re-encoding of the shared literature dossier into study folders.

    python -m nadfit.datasets.importers.dossier ../shared/literature

Reads ``evidence.csv``, ``gaps.md`` and ``kinetic_priors.csv`` and writes
``datasets/<study_id>/{study.yaml,evidence.csv}``, ``datasets/gaps.csv`` and
``datasets/kinetic_priors.csv``. Every mapping from the dossier's free wording to a vocabulary
token is an explicit table below (nothing is parsed heuristically); the original wording is kept
in ``note`` whenever it changes. Values, source_url and locator are copied unchanged.
"""

from __future__ import annotations

import csv
import io
import re
import sys
from pathlib import Path

import yaml

from nadfit.datasets.schema import DIRECTION_KEYWORDS, EVIDENCE_COLUMNS, NOT_STATED
from nadfit.datasets.validate import safe_load_yaml

HERE = Path(__file__).resolve().parent.parent  # the datasets folder

COMPOUND_MAP = {
    "": "", "NMN": "NMN", "NR": "NR", "placebo": "placebo", "saline": "saline",
    "NMN (MIB-626, microcrystalline beta-NMN)": "NMN", "nicotinic acid": "NA",
    "NR (double-labelled)": "NR_labelled", "NR or NMN": "NR_or_NMN", "NMN; NAD+": "NMN;NAD",
    "NR; NMN": "NR;NMN", "NR; NA; NAM": "NR;NA;NAM", "niacin": "niacin", "ethanol": "ethanol",
    "NAM; NA": "NAM;NA", "labelled NMN": "NMN_labelled", "NAD+; NMN; NR": "NAD;NMN;NR",
    "NAD+; NMN": "NAD;NMN", "FK866; APCP": "FK866;APCP", "NAM": "NAM", "LPS": "LPS",
}
DOSE_MAP = {"low micromolar": ""}  # a word, not a number: kept in note
DOSE_UNIT_MAP = {
    "": "", "mg/day": "mg/day", "mg NR chloride (single doses)": "mg",
    "mg/kg/day": "mg/kg/day", "mg (single dose)": "mg", "mg/kg": "mg/kg",
}
ROUTE_MAP = {
    "": "", "oral": "oral", "in vitro": "in_vitro", "oral gavage": "oral_gavage", "i.p.": "i.p.",
    "injection": "injection", "i.v.": "i.v.", "i.v. (as stated for the niacin arm)": "i.v.",
}
# regimen text -> (doses_per_day, duration_days), only where the text states them
REGIMEN_MAP: dict[str, tuple[str, str]] = {
    "": ("", ""),
    "once daily for 60 days": ("1", "60"),
    "single doses": ("", ""),
    "two 500 mg tablets twice daily for 28 days": ("2", "28"),
    "two 150 mg capsules once daily after breakfast for 60 days (placebo: starch)": ("1", "60"),
    "daily for 12 weeks": ("", "84"),
    "one 125 mg capsule twice daily (250 mg/day) for 12 weeks": ("2", "84"),
    "250 mg on days 1-2, up-titrated to 1000 mg twice daily on days 7-8; 1000 mg at t=0 on day 9": ("", ""),
    "daily for 25 days": ("", "25"),
    "single bolus": ("", ""),
    "daily for 6 weeks": ("", "42"),
    "daily for 6 or 12 weeks": ("", ""),
    "once daily (morning or evening) for 12 weeks": ("1", "84"),
    "daily for 4 weeks": ("", "28"),
    "every other day": ("0.5", ""),
    "two 6-week periods (NR, placebo)": ("", ""),
    "daily for 14 days": ("", "14"),
    "once daily for up to 4 weeks": ("1", ""),
    "12 months": ("", ""),
    "single dose": ("", ""),
}
TIME_MAP = {"all timepoints": ""}
MATRIX_MAP = {
    "": "", "liver": "liver", "blood": "blood_unspecified", "whole animal": "whole_animal",
    "whole blood": "whole_blood", "cells": "cells",
    "blood (as in parent trial)": "blood_unspecified", "serum": "serum",
    "tissues": "tissues_multiple", "PBMC": "PBMC",
    "blood (matrix and assay not specified in the text read)": "blood_unspecified",
    "plasma": "plasma", "bEnd.3 cells": "cells", "tumour cells": "cells",
    "mammalian cells incl. hepatocytes": "cells", "myotubes": "myotubes",
    "HEK293 cells": "cells", "kidney": "kidney", "small intestine": "small_intestine",
    "across tissues": "tissues_multiple", "RPE": "RPE", "RPE cells": "RPE_cells",
    "blood (circulating)": "blood_unspecified", "serum/plasma": "serum_or_plasma",
    "hepatocytes": "hepatocytes", "blood T cells": "T_cells", "joints": "joint",
    "synovioblasts": "synovioblasts", "jejunum and ileum": "jejunum_ileum", "ileum": "ileum",
    "extracellular medium and cells": "medium_and_cells",
    "small intestine and spleen": "small_intestine;spleen",
    "skeletal muscle": "skeletal_muscle", "multiple tissues": "tissues_multiple",
    "metabolic organs": "tissues_multiple", "multiple organs": "tissues_multiple",
    "OVCAR-3 cells": "cells", "tumour": "tumour", "none (enzyme)": "recombinant_enzyme",
    "gastrointestinal tract": "gastrointestinal_tract", "gut lumen": "gut_lumen",
    "host tissues": "tissues_multiple", "brain": "brain", "circulation": "circulation",
    "most tissues": "tissues_multiple", "plasma; multiple tissues": "plasma;tissues_multiple",
    "liver and intestine": "liver;intestine",
}
UNIT_MAP = {
    "": "", "participants": "participants", "%": "%", "pmol/mg": "pmol/mg", "nmol/L": "nmol/L",
    "years (implied)": "years", "kg": "kg", "mmHg": "mmHg", "h": "h", "fold": "fold",
    "ratio (approx.)": "ratio", "% increase": "%", "day": "day", "week": "week", "min": "min",
}
DIRECTION_VALUE_MAP = {"none reported": "none_reported"}
TEST_FROM_COMPARATOR = {
    "placebo; and own baseline": "vs placebo and vs own baseline",
    "placebo": "vs placebo", "baseline": "vs baseline",
    "shock without NMN": "vs shock without NMN",
}


def _direction(value: str) -> tuple[str, str]:
    """(statistic, value_text) for a dossier ``direction`` value."""
    value = DIRECTION_VALUE_MAP.get(value, value)
    m = re.match(r"^([a-z_]+)(?: \((.*)\))?$", value)
    if m and m.group(1) in DIRECTION_KEYWORDS:
        return "direction", value
    return "statement", value


def _note(original: str, extras: list[str]) -> str:
    parts = [original] if original else []
    parts += extras
    return " | ".join(parts)


def convert_rows(rows: list[dict]) -> list[dict]:
    out = []
    for r in rows:
        extras: list[str] = []

        def mapped(field, table, col=None):
            raw = r[field]
            if raw not in table:
                raise SystemExit(f"{r['evidence_id']}: no mapping for {field}={raw!r}")
            new = table[raw]
            if new != raw.replace("; ", ";"):
                extras.append(f"dossier {col or field}: {raw}")
            return new

        compound = mapped("compound", COMPOUND_MAP)
        dose = DOSE_MAP.get(r["dose"], r["dose"])
        if dose != r["dose"]:
            extras.append(f"dossier dose: {r['dose']}")
        dose_unit = mapped("dose_unit", DOSE_UNIT_MAP)
        route = mapped("route", ROUTE_MAP)
        dpd, dur = REGIMEN_MAP[r["regimen"]]
        time = TIME_MAP.get(r["time"], r["time"])
        time_unit = r["time_unit"]
        if time != r["time"]:
            extras.append(f"dossier time: {r['time']}")
            time_unit = ""
        matrix = mapped("matrix_or_tissue", MATRIX_MAP)
        unit = mapped("unit", UNIT_MAP)
        stat = r["statistic"]
        value, value_text = r["value"], ""
        if stat == "direction":
            stat, value_text = _direction(value)
            if value_text != value:
                extras.append(f"dossier value: {value}")
            value = ""
        elif stat == "association":
            value_text, value = value, ""
        test = ""
        if stat in ("p_value", "p_value_upper_bound"):
            test = TEST_FROM_COMPARATOR.get(r["comparator"], "")
        out.append({
            "evidence_id": r["evidence_id"], "study_id": r["study_id"], "group": r["group"],
            "comparator": r["comparator"], "n": r["n"], "compound": compound, "dose": dose,
            "dose_unit": dose_unit, "route": route, "regimen": r["regimen"],
            "doses_per_day": dpd, "duration_days": dur, "time": time, "time_unit": time_unit,
            "matrix": matrix, "analyte": r["analyte"], "statistic": stat, "value": value,
            "value_text": value_text, "unit": unit, "test": test, "grade": r["grade"],
            "source_url": r["source_url"], "locator": r["locator"],
            "note": _note(r["note"], extras),
        })
    return out


def _uniq(seq):
    seen = []
    for s in seq:
        if s and s not in seen:
            seen.append(s)
    return seen


def study_meta(sid: str, orig: list[dict], conv: list[dict], gap_ids: list[str]) -> dict:
    first = orig[0]
    ids = [t.strip() for t in first["doi_or_pmcid"].split(";")]
    doi = next((t for t in ids if t.startswith("10.")), None)
    pmcid = next((t for t in ids if t.startswith("PMC")), None)
    arms = []
    for g in _uniq(c["group"] for c in conv):
        rows = [c for c in conv if c["group"] == g]
        ns = {c["n"] for c in rows if c["n"]}
        n = int(next(iter(ns))) if len(ns) == 1 and next(iter(ns)).isdigit() else None
        comp = _uniq(c["compound"] for c in rows)
        doses = _uniq(c["dose"] for c in rows)
        du = _uniq(c["dose_unit"] for c in rows)
        reg = _uniq(c["regimen"] for c in rows)
        arms.append({
            "name": g, "n": n,
            "compound": comp[0] if len(comp) == 1 else None,
            "dose": doses[0] if len(doses) == 1 else None,
            "dose_unit": du[0] if len(du) == 1 else None,
            "regimen": reg[0] if len(reg) == 1 else None,
        })
    compounds = _uniq(t for c in conv for t in c["compound"].split(";"))
    matrices = _uniq(t for c in conv for t in c["matrix"].split(";"))
    assay = NOT_STATED
    notes = [f"Citation as given in the dossier; identifiers: {first['doi_or_pmcid']}."]
    if gap_ids:
        notes.append("Unreadable results listed in datasets/gaps.csv: " + ", ".join(gap_ids) + ".")
    return {
        "study_id": sid,
        "citation": first["citation_short"],
        "doi": doi,
        "pmcid": pmcid,
        "url": first["source_url"],
        "species": first["species"],
        "system": _uniq(o["system"] for o in orig),
        "design": _uniq(o["design"] for o in orig) or [NOT_STATED],
        "arms": arms,
        "compounds": compounds,
        "matrices": matrices,
        "assay": assay,
        "licence_note": ("numbers and short factual statements extracted from the cited article; "
                         "no text reproduced beyond short quotations"),
        "notes": " ".join(notes),
    }


#: dossier study ids renamed to ``<author><year>`` in the shipped folders (first authors verified
#: 2026-11-30; sources in each study.yaml's notes)
RENAMED_STUDIES = {"hsniacin_pmc6353685": "subramani2019", "humgenomics2019": "assiri2019",
                   "pnp_pmc9667316": "kropotov2022", "rpe_aging10_6": "jadeja2018",
                   "mcreynolds_aged": "mcreynolds2020"}


def shipped_study_id(dossier_id: str) -> str:
    return RENAMED_STUDIES.get(dossier_id, dossier_id)


def _rename_in_text(value: str) -> str:
    for old, new in RENAMED_STUDIES.items():
        value = re.sub(rf"(?<![A-Za-z0-9_]){re.escape(old)}(?![A-Za-z0-9_])", new, value)
    return value


GAP_COLUMNS = ("gap_id", "study_id", "study", "source_url", "where", "what", "constrains", "priority")


def parse_gaps(text: str) -> list[dict]:
    rows = []
    for line in text.splitlines():
        m = re.match(r"^\| ([HRK]\d+) \|(.*)\|\s*$", line)
        if not m:
            continue
        cells = [c.strip() for c in m.group(2).split(" | ")]
        gid = m.group(1)
        if gid.startswith("K"):
            quantity, where, constrains, prio = cells
            url = re.search(r"https?://\S+?(?=\)|$|\s)", where)
            rows.append({"gap_id": gid, "study_id": "", "study": quantity,
                         "source_url": url.group(0) if url else "", "where": where,
                         "what": quantity, "constrains": constrains, "priority": prio})
            continue
        study, where, what, constrains, prio = cells
        sid = re.search(r"\[([a-z0-9_]+)\]", study)
        url = re.search(r"https?://\S+", study)
        name = re.split(r" \[| — ", study)[0].strip()
        rows.append({"gap_id": gid, "study_id": sid.group(1) if sid else "", "study": name,
                     "source_url": url.group(0) if url else "", "where": where, "what": what,
                     "constrains": constrains, "priority": prio})
    return rows


def _write_csv(path: Path, columns, rows) -> None:
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=list(columns), lineterminator="\n")
    w.writeheader()
    w.writerows(rows)
    path.write_text(buf.getvalue(), encoding="utf-8")


def keep_extra(generated: list[dict], existing: list[dict], key: str) -> list[dict]:
    """``generated`` followed by the ``existing`` entries whose ``key`` it does not produce.

    Entries added to the shipped files after the dossier import (gaps.csv rows of later searches,
    arms used by ``evidence_addendum.csv`` files) survive a re-import; dossier entries are replaced.
    """
    made = {g[key] for g in generated}
    return list(generated) + [e for e in existing if e[key] not in made]


def main(src: str) -> None:
    src_p = Path(src)
    with open(src_p / "evidence.csv", newline="", encoding="utf-8") as fh:
        orig = [{k: _rename_in_text(v) for k, v in r.items()} for r in csv.DictReader(fh)]
    conv = convert_rows(orig)
    gaps = parse_gaps(_rename_in_text((src_p / "gaps.md").read_text(encoding="utf-8")))
    if (HERE / "gaps.csv").exists():
        with open(HERE / "gaps.csv", newline="", encoding="utf-8") as fh:
            gaps = keep_extra(gaps, list(csv.DictReader(fh)), "gap_id")
    _write_csv(HERE / "gaps.csv", GAP_COLUMNS, gaps)
    for sid in _uniq(r["study_id"] for r in orig):
        o = [r for r in orig if r["study_id"] == sid]
        c = [r for r in conv if r["study_id"] == sid]
        d = HERE / "studies" / sid
        d.mkdir(exist_ok=True)
        gap_ids = [g["gap_id"] for g in gaps if g["study_id"] == sid]
        meta = study_meta(sid, o, c, gap_ids)
        if (d / "study.yaml").exists():
            shipped = safe_load_yaml((d / "study.yaml").read_text(encoding="utf-8")) or {}
            meta["arms"] = keep_extra(meta["arms"], shipped.get("arms") or [], "name")
        (d / "study.yaml").write_text(
            yaml.safe_dump(meta, sort_keys=False, allow_unicode=True, width=100), encoding="utf-8")
        _write_csv(d / "evidence.csv", EVIDENCE_COLUMNS, c)
    with open(src_p / "kinetic_priors.csv", newline="", encoding="utf-8") as fh:
        kp = [{k: _rename_in_text(v) for k, v in r.items()} for r in csv.DictReader(fh)]
    cols = ["row_id"] + list(kp[0].keys())
    for i, r in enumerate(kp, 1):
        r["row_id"] = f"KP{i:03d}"
    _write_csv(HERE / "kinetic_priors.csv", cols, kp)


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else str(HERE.parent.parent / "shared" / "literature"))
