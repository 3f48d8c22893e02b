"""Regenerate tests/datasets/bad/ (one small study folder per bad-input case).

    python tests/datasets/make_bad_corpus.py

CASES maps case name -> (mutation, expected 'file:row:field' suffix, message fragment); the
test module imports CASES so the expectations live next to the corpus they describe.
"""

from __future__ import annotations

import csv
import io
import shutil
from pathlib import Path

HERE = Path(__file__).resolve().parent
BAD = HERE / "bad"

COLUMNS = ["evidence_id", "study_id", "group", "comparator", "n", "compound", "dose", "dose_unit",
           "route", "regimen", "doses_per_day", "duration_days", "time", "time_unit", "matrix",
           "analyte", "statistic", "value", "value_text", "unit", "test", "grade", "source_url",
           "locator", "note"]

URL = "https://example.org/article"


def yaml_text(sid: str, extra: str = "") -> str:
    return f"""study_id: {sid}
citation: Test study
doi: null
pmcid: null
url: {URL}
species: human
system: [human trial]
design: [test]
arms:
- {{name: NMN 300 mg/day, n: 10, compound: NMN, dose: '300', dose_unit: mg/day, regimen: daily}}
- {{name: placebo, n: null, compound: placebo, dose: '0', dose_unit: mg/day, regimen: daily}}
compounds: [NMN, placebo]
matrices: [whole_blood]
assay: not stated in the text read
licence_note: test
notes: null
{extra}"""


def row(eid: str, sid: str, **kw) -> dict:
    r = {c: "" for c in COLUMNS}
    r.update(evidence_id=eid, study_id=sid, group="NMN 300 mg/day", n="10", compound="NMN",
             dose="300", dose_unit="mg/day", route="oral", regimen="daily", time="30",
             time_unit="day", matrix="whole_blood", analyte="NAD+", statistic="mean",
             value="30.5", unit="uM", grade="primary", source_url=URL, locator="Abstract")
    r.update(kw)
    return r


def csv_text(rows, columns=COLUMNS) -> str:
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=columns, lineterminator="\n", extrasaction="ignore")
    w.writeheader()
    w.writerows(rows)
    return buf.getvalue()


def base_rows(sid):
    return [row("T001", sid), row("T002", sid, statistic="sd", value="4.1")]


# name -> (function(sid) -> {filename: text}, where suffix, fragment)
def _csv(mut):
    def make(sid):
        rows = base_rows(sid)
        out = mut(rows, sid)
        return {"evidence.csv": out if isinstance(out, str) else csv_text(rows)}
    return make


def _set(i, **kw):
    def mut(rows, sid):
        rows[i].update(kw)
    return mut


CASES = {
    "malformed_csv": (lambda sid: {"evidence.csv": csv_text(base_rows(sid)) + 'T003,"unterminated\n'},
                      "evidence.csv:4", "malformed CSV"),
    "malformed_yaml": (lambda sid: {"study.yaml": "study_id: [unclosed\ncitation: x\n"},
                       "study.yaml:2", "malformed YAML"),
    "yaml_unknown_key": (lambda sid: {"study.yaml": yaml_text(sid, "colour: blue\n")},
                         "study.yaml:colour", "unknown key in study.yaml"),
    "unknown_column": (_csv(lambda rows, sid: csv_text([dict(r, foo="1") for r in rows], COLUMNS + ["foo"])),
                       "evidence.csv:1:foo", "unknown column 'foo'"),
    "missing_column": (_csv(lambda rows, sid: csv_text(rows, [c for c in COLUMNS if c != "locator"])),
                       "evidence.csv:1:locator", "missing column"),
    "unknown_statistic": (_csv(_set(0, statistic="avg")), "evidence.csv:2:statistic", "unknown statistic 'avg'"),
    "unknown_unit": (_csv(_set(0, unit="furlongs")), "evidence.csv:2:unit", "unknown unit 'furlongs'"),
    "unknown_matrix": (_csv(_set(0, matrix="blood")), "evidence.csv:2:matrix", "unknown matrix 'blood'"),
    "unknown_compound": (_csv(_set(0, compound="NMN;resveratrol")), "evidence.csv:2:compound",
                         "unknown compound 'resveratrol'"),
    "unknown_route": (_csv(_set(0, route="oral gavage")), "evidence.csv:2:route", "unknown route 'oral gavage'"),
    "unknown_direction": (_csv(_set(0, statistic="direction", value="", value_text="went up")),
                          "evidence.csv:2:value_text", "unknown direction keyword 'went'"),
    "missing_locator": (_csv(_set(0, locator="")), "evidence.csv:2:locator", "missing locator"),
    "missing_source_url": (_csv(_set(1, source_url="")), "evidence.csv:3:source_url", "missing source_url"),
    "non_http_url": (_csv(_set(0, source_url="ftp://example.org/x")), "evidence.csv:2:source_url",
                     "is not an http(s) URL"),
    "negative_dose": (_csv(_set(0, dose="-300")), "evidence.csv:2:dose", "negative dose '-300'"),
    "negative_concentration": (_csv(_set(0, value="-30.5")), "evidence.csv:2:value",
                               "negative value -30.5 where a non-negative quantity is expected"),
    "nonfinite_value": (_csv(_set(0, value="inf")), "evidence.csv:2:value", "is not a finite number"),
    "text_in_numeric": (_csv(_set(0, time="thirty")), "evidence.csv:2:time", "is not a finite number"),
    "negative_time": (_csv(_set(0, time="-1")), "evidence.csv:2:time", "negative time '-1'"),
    "n_zero": (_csv(_set(0, n="0")), "evidence.csv:2:n", "n < 1"),
    "n_negative": (_csv(_set(1, n="-4")), "evidence.csv:3:n", "n < 1"),
    "duplicate_id": (_csv(_set(1, evidence_id="T001")), "evidence.csv:3:evidence_id",
                     "duplicate evidence_id 'T001'"),
    "study_id_mismatch": (_csv(_set(0, study_id="other_study")), "evidence.csv:2:study_id",
                          "differs from folder/study.yaml"),
    "sd_without_n": (_csv(lambda rows, sid: csv_text([row("T001", sid, group="placebo", n="", compound="placebo", dose="0"),
                                                      row("T002", sid, group="placebo", n="", compound="placebo", dose="0",
                                                          statistic="sd", value="3")])),
                     "evidence.csv:3:n", "sd row without n for group 'placebo'"),
    "inconsistent_arms": (_csv(_set(0, group="NMN 600 mg/day")), "evidence.csv:2:group",
                          "group 'NMN 600 mg/day' is not an arm in study.yaml (inconsistent arms)"),
    "p_value_out_of_range": (_csv(_set(0, statistic="p_value", value="1.5", unit="")),
                             "evidence.csv:2:value", "p-value 1.5 outside (0, 1]"),
    "p_value_zero": (_csv(_set(0, statistic="p_value_upper_bound", value="0", unit="")),
                     "evidence.csv:2:value", "p-value 0 outside (0, 1]"),
    "range_inverted": (_csv(lambda rows, sid: csv_text([row("T001", sid, statistic="range_low", value="10"),
                                                        row("T002", sid, statistic="range_high", value="5")])),
                       "evidence.csv:2:value", "range_low 10 > range_high 5"),
    "truncated": (_csv(lambda rows, sid: csv_text(rows)[:-60]), "evidence.csv:3", "malformed CSV"),
    "numeric_value_missing": (_csv(_set(0, value="")), "evidence.csv:2:value", "needs a value"),
}


def build() -> None:
    if BAD.exists():
        shutil.rmtree(BAD)
    for name, (make, _, _) in CASES.items():
        d = BAD / name
        d.mkdir(parents=True)
        files = {"study.yaml": yaml_text(name), "evidence.csv": csv_text(base_rows(name))}
        files.update(make(name))
        for fn, text in files.items():
            (d / fn).write_text(text, encoding="utf-8")
    # duplicate ids across two studies: a small datasets root
    root = BAD / "duplicate_across_studies"
    for sid in ("study_a", "study_b"):
        (root / sid).mkdir(parents=True)
        (root / sid / "study.yaml").write_text(yaml_text(sid), encoding="utf-8")
        (root / sid / "evidence.csv").write_text(csv_text(base_rows(sid)), encoding="utf-8")


if __name__ == "__main__":
    build()
