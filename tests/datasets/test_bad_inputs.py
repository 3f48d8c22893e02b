"""Bad-input corpus: each case exits 2 with the exact 'file:row:field: message' line."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
from make_bad_corpus import BAD, CASES  # noqa: E402

from nadfit.fitting.cli import main  # noqa: E402


def _run(capsys, argv):
    rc = main(argv)
    out = capsys.readouterr()
    return rc, out.out + out.err


def test_corpus_is_complete():
    names = {p.name for p in BAD.iterdir() if p.is_dir()}
    assert set(CASES) | {"duplicate_across_studies"} == names


@pytest.mark.parametrize("case", sorted(CASES))
def test_bad_case(case, capsys):
    folder = str(BAD / case)
    _, where, fragment = CASES[case]
    rc, text = _run(capsys, ["datasets", "validate", folder])
    assert rc == 2, text
    assert "Traceback" not in text
    prefix = os.path.join(folder, where)
    lines = [ln for ln in text.splitlines() if ln.startswith(prefix + ":")]
    assert lines, f"no line starting {prefix}: in\n{text}"
    assert any(fragment in ln for ln in lines), text


def test_duplicate_across_studies(capsys):
    root = str(BAD / "duplicate_across_studies")
    rc, text = _run(capsys, ["datasets", "validate", root])
    assert rc == 2
    assert "Traceback" not in text
    expect = os.path.join(root, "study_b", "evidence.csv") + ":2:evidence_id: duplicate evidence_id 'T001'"
    assert any(ln.startswith(expect) for ln in text.splitlines()), text


@pytest.mark.parametrize("case", ["unknown_statistic", "malformed_yaml", "truncated"])
def test_load_evidence_raises_user_error(case):
    from nadfit.datasets import load_evidence
    from nadfit.datasets.errors import UserError

    with pytest.raises(UserError):
        load_evidence([BAD / case])


def test_missing_path(capsys, tmp_path):
    rc, text = _run(capsys, ["datasets", "validate", str(tmp_path / "nope")])
    assert rc == 2 and "no such file or directory" in text and "Traceback" not in text


def test_unknown_study(capsys):
    rc, text = _run(capsys, ["datasets", "show", "no_such_study"])
    assert rc == 2
    assert "unknown study 'no_such_study'" in text
    assert len([ln for ln in text.splitlines() if ln.strip()]) == 1
