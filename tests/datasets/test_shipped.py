"""Shipped evidence: provenance, fidelity to the dossier, Yi 2022 content, gaps, CLI."""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import pandas as pd
import pytest

from nadfit import datasets
from nadfit.datasets.importers.dossier import _rename_in_text, shipped_study_id
from nadfit.datasets.schema import EVIDENCE_COLUMNS, NUMERIC_STATISTICS
from nadfit.fitting.cli import main

REPO = Path(__file__).resolve().parents[2]
DOSSIER = REPO.parent / "shared" / "literature"


@pytest.fixture(scope="module")
def ev():
    return datasets.load_evidence()


def test_provenance_and_finiteness(ev):
    assert len(ev) >= 224
    assert list(ev.columns[: len(EVIDENCE_COLUMNS)]) == list(EVIDENCE_COLUMNS)
    assert ev["evidence_id"].is_unique
    assert (ev["source_url"].str.match(r"^https?://")).all()
    assert (ev["locator"].str.len() > 0).all()
    num = ev[ev["statistic"].isin(NUMERIC_STATISTICS)]
    assert num["value"].map(math.isfinite).all()
    txt = ev[~ev["statistic"].isin(NUMERIC_STATISTICS)]
    assert txt["value"].isna().all() and (txt["value_text"].str.len() > 0).all()
    assert str(ev["n"].dtype) == "Int64"
    assert list(ev["evidence_id"]) == sorted(ev["evidence_id"])


def test_every_csv_has_exact_header():
    for d in (REPO / "datasets" / "studies").iterdir():
        for f in d.glob("evidence*.csv") if d.is_dir() else []:
            with open(f, newline="", encoding="utf-8") as fh:
                assert next(csv.reader(fh)) == list(EVIDENCE_COLUMNS), f


@pytest.mark.skipif(not (DOSSIER / "evidence.csv").exists(), reason="dossier not beside the repo")
def test_every_dossier_row_present_with_same_value(ev):
    dos = pd.read_csv(DOSSIER / "evidence.csv", dtype=str, keep_default_na=False)
    by_id = ev.set_index("evidence_id")
    for r in dos.itertuples(index=False):
        assert r.evidence_id in by_id.index, r.evidence_id
        e = by_id.loc[r.evidence_id]
        assert e["study_id"] == shipped_study_id(r.study_id)
        assert e["source_url"] == r.source_url and e["locator"] == r.locator
        assert e["grade"] == r.grade
        assert e["group"] == r.group and e["analyte"] == r.analyte
        assert e["note"].startswith(_rename_in_text(r.note)), r.evidence_id
        if r.statistic in ("direction", "association"):
            # value text kept (or mapped keyword with the original in note)
            assert e["value_text"] == r.value or f"dossier value: {r.value}" in e["note"]
        else:
            assert e["statistic"] == r.statistic
            assert e["value"] == float(r.value), r.evidence_id
        if r.n:
            assert (str(e["n"]) == r.n) if r.n.isdigit() else e["n_text"] == r.n
        if r.dose and r.dose != "low micromolar":
            assert e["dose"] == r.dose and e["dose_list"] == tuple(float(x) for x in r.dose.split(";"))
        if r.time and r.time_unit:
            assert e["time"] == float(r.time) and e["time_unit"] == r.time_unit


def test_yi2022(ev):
    studies = datasets.load_studies()
    yi = studies["yi2022"]
    assert yi.pmcid == "PMC9735188"
    arms = {a.name: a for a in yi.arms}
    for name in ("Arm A: NMN 300 mg/day", "Arm C: NMN 600 mg/day", "Arm E: NMN 900 mg/day"):
        assert arms[name].n == 20 and arms[name].compound == "NMN"
    y = ev[ev.study_id == "yi2022"]
    p = y[y.statistic == "p_value_upper_bound"]
    assert len(p) == 6
    assert set(p["time_days"]) == {30.0, 60.0}
    assert (p["value"] <= 0.001).all()
    assert set(p["dose_list"]) == {(300.0,), (600.0,), (900.0,)}
    assert (p["matrix"] == "blood_unspecified").all()
    assert (p["test"] == "vs placebo and vs own baseline").all()
    assert (y[y.evidence_id == "EV001"]["value"] == 80).all()
    ph = ev[ev.study_id == "yi2022_posthoc"].set_index("evidence_id")
    assert ph.loc["EV016", "value"] == 29.2 and ph.loc["EV016", "statistic"] == "range_low"
    assert ph.loc["EV017", "value"] == 113.3 and ph.loc["EV017", "statistic"] == "range_high"
    assert ph.loc["EV018", "value"] == 15.7 and ph.loc["EV018", "unit"] == "nmol/L"


def test_gaps_and_kinetic_priors():
    g = datasets.load_gaps().set_index("gap_id")
    for gid in ("H1", "H2", "H4"):
        assert gid in g.index
    assert g.loc["H1", "study_id"] == "yi2022" and g.loc["H1", "priority"] == "A"
    assert g.loc["H4", "study_id"] == "yi2022_posthoc"
    assert g.loc["H2", "what"].startswith("Matrix")
    assert set(g["priority"]) <= {"A", "B", "C"}
    kp = datasets.load_kinetic_priors()
    assert kp["row_id"].iloc[0] == "KP001" and kp["row_id"].is_unique
    if (DOSSIER / "kinetic_priors.csv").exists():
        src = pd.read_csv(DOSSIER / "kinetic_priors.csv", dtype=str, keep_default_na=False)
        assert len(src) == len(kp)
        assert list(src["parameter"]) == list(kp["parameter"])
        assert [float(v) for v in src["value"]] == list(kp["value"])
        assert list(src["source_url"]) == list(kp["source_url"])


def test_time_conversion_and_fingerprint(ev):
    t = ev.set_index("evidence_id")
    assert t.loc["EV153", "time_days"] == pytest.approx(15 / 1440)
    assert t.loc["EV044", "time_days"] == pytest.approx(84)
    assert math.isnan(t.loc["EV001", "time_days"])
    assert t.loc["EV151", "n_text"] == "3-4" and pd.isna(t.loc["EV151", "n"])
    fp = datasets.evidence_fingerprint(ev)
    assert fp == datasets.evidence_fingerprint(ev.sample(frac=1, random_state=1))
    ev2 = ev.copy()
    ev2.loc[0, "value"] = 81.0
    assert datasets.evidence_fingerprint(ev2) != fp


def test_units():
    from nadfit.datasets import units
    from nadfit.datasets.errors import UserError

    assert units.convert(1.0, "nmol/mL", "uM") == pytest.approx(1.0)
    assert units.to_uM(500.0, "nM") == pytest.approx(0.5)
    assert units.to_hours(2.0, "day") == pytest.approx(48)
    with pytest.raises(UserError):
        units.convert(1.0, "furlongs", "uM")
    with pytest.raises(UserError):
        units.convert(1.0, "uM", "day")


def test_cli_validate_and_json(capsys):
    assert main(["datasets", "validate", str(REPO / "datasets" / "studies")]) == 0
    assert "files valid" in capsys.readouterr().out
    assert main(["datasets", "list", "--json"]) == 0
    js = json.loads(capsys.readouterr().out)
    ids = {s["study_id"]: s for s in js["studies"]}
    assert ids["yi2022"]["n_rows"] == 14 and "H1" in ids["yi2022"]["gaps"]
    assert main(["datasets", "show", "yi2022", "--json"]) == 0
    js = json.loads(capsys.readouterr().out)
    assert js["study"]["study_id"] == "yi2022" and len(js["evidence"]) == 14
    assert main(["datasets", "gaps", "--json", "--priority", "A"]) == 0
    js = json.loads(capsys.readouterr().out)
    assert js["gaps"] and all(g["priority"] == "A" for g in js["gaps"])
    assert main(["datasets", "list"]) == 0
    assert "yi2022" in capsys.readouterr().out
