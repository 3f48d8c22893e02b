"""Grade `secondary`, unit ng/mL and statistic central_unspecified (issue #14 item 6): accepted by
the validator, with errors for their misuse."""

from __future__ import annotations

import csv

import pytest
import yaml

from nadfit import datasets
from nadfit.datasets import units
from nadfit.datasets.errors import UserError
from nadfit.datasets.schema import EVIDENCE_COLUMNS, GRADES, NONNEGATIVE_UNITS, STATISTICS, UNITS


def _study(tmp_path, **cells):
    d = tmp_path / "s1"
    d.mkdir(parents=True)
    (d / "study.yaml").write_text(yaml.safe_dump({
        "study_id": "s1", "citation": "c", "url": "https://example.org", "species": "human",
        "system": ["human trial"], "design": ["d"], "arms": [{"name": "placebo", "n": 18}],
        "compounds": [], "matrices": ["serum"], "assay": "a", "licence_note": "l"}))
    row = {c: "" for c in EVIDENCE_COLUMNS}
    row.update(evidence_id="T1", study_id="s1", group="placebo", matrix="serum", analyte="NAM",
               statistic="mean", value="10.9", unit="ng/mL", grade="secondary",
               source_url="https://example.org/table", locator="Table 1")
    row.update(cells)
    with open(d / "evidence.csv", "w", newline="", encoding="utf-8") as fh:
        w = csv.DictWriter(fh, fieldnames=list(EVIDENCE_COLUMNS))
        w.writeheader()
        w.writerow(row)
    return d


def _problems(path):
    return [str(p) for p in datasets.validate_paths([path])]


def test_vocabularies():
    assert "secondary" in GRADES and {"primary", "model-input", "digitised"} <= GRADES
    assert "ng/mL" in UNITS and "ng/mL" in NONNEGATIVE_UNITS and units.is_known("ng/mL")
    assert "central_unspecified" in STATISTICS


def test_secondary_ng_per_ml_row_validates(tmp_path):
    assert _problems(_study(tmp_path)) == []


def test_unknown_grade_is_rejected(tmp_path):
    probs = _problems(_study(tmp_path, grade="tertiary"))
    assert len(probs) == 1 and ":2:grade: unknown grade 'tertiary'" in probs[0]
    assert "'secondary'" in probs[0]


def test_negative_mass_concentration_is_rejected(tmp_path):
    probs = _problems(_study(tmp_path, value="-1"))
    assert len(probs) == 1 and ":2:value: negative value -1" in probs[0]


def test_central_unspecified(tmp_path):
    assert _problems(_study(tmp_path, statistic="central_unspecified", unit="uM", value="432")) == []
    probs = _problems(_study(tmp_path / "x", statistic="central_unspecified", value="-2"))
    assert len(probs) == 1 and ":2:value: negative value -2" in probs[0]


def test_ng_per_ml_converts_only_to_mass_concentrations():
    assert units.convert(2.0, "ng/mL", "ng/mL") == 2.0
    with pytest.raises(UserError, match="incompatible dimensions"):
        units.convert(1.0, "ng/mL", "uM")  # needs a molar mass, never guessed
