"""Property test: random corruptions of a valid study folder are always reported, never crash."""

from __future__ import annotations

import csv
import io
import shutil
import tempfile
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from nadfit.datasets import load_evidence, validate_paths
from nadfit.datasets.errors import UserError
from nadfit.datasets.schema import EVIDENCE_COLUMNS, REQUIRED_CELLS

REPO = Path(__file__).resolve().parents[2]
SRC = REPO / "datasets" / "studies" / "yi2022"
NUMERIC_FIELDS = ("dose", "time", "doses_per_day", "duration_days", "value")
VOCAB_FIELDS = ("compound", "matrix", "route", "unit", "statistic", "dose_unit", "time_unit", "grade")


def _rows():
    with open(SRC / "evidence.csv", newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


ROWS = _rows()

corruption = st.one_of(
    st.tuples(st.just("delete_required"), st.integers(0, len(ROWS) - 1), st.sampled_from(REQUIRED_CELLS)),
    st.tuples(st.just("text_in_numeric"), st.integers(0, len(ROWS) - 1), st.sampled_from(NUMERIC_FIELDS),
              st.text(alphabet="abcxyz ", min_size=1, max_size=6).filter(lambda s: s.strip())),
    st.tuples(st.just("negative_n"), st.integers(0, len(ROWS) - 1), st.integers(0, 500)),
    st.tuples(st.just("unknown_vocab"), st.integers(0, len(ROWS) - 1), st.sampled_from(VOCAB_FIELDS),
              st.sampled_from(["zzz", "Blood", "mg per day", "avg", "oral gavage", "secs"])),
    st.tuples(st.just("duplicate_id"), st.integers(0, len(ROWS) - 1), st.integers(0, len(ROWS) - 1)),
    st.tuples(st.just("truncate"), st.floats(0.05, 0.999)),
)


def _write(rows, path):
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=list(EVIDENCE_COLUMNS), lineterminator="\n")
    w.writeheader()
    w.writerows(rows)
    path.write_text(buf.getvalue(), encoding="utf-8")


def _apply(c, folder: Path) -> None:
    rows = [dict(r) for r in ROWS]
    kind = c[0]
    if kind == "truncate":
        text = (SRC / "evidence.csv").read_text(encoding="utf-8")
        header_end = text.index("\n") + 1
        cut = header_end + int(c[1] * (len(text) - header_end))
        while cut < len(text) and (text[cut - 1] == "\n"):  # cut inside a row, never on a boundary
            cut += 1
        cut = min(cut, len(text) - 1)
        (folder / "evidence.csv").write_text(text[:cut], encoding="utf-8")
        return
    i = c[1]
    if kind == "delete_required":
        rows[i][c[2]] = ""
    elif kind == "text_in_numeric":
        rows[i][c[2]] = c[3]
    elif kind == "negative_n":
        rows[i]["n"] = str(-c[2])
    elif kind == "unknown_vocab":
        rows[i][c[2]] = c[3]
    elif kind == "duplicate_id":
        j = c[2] if c[2] != i else (i + 1) % len(rows)
        rows[i]["evidence_id"] = rows[j]["evidence_id"]
    _write(rows, folder / "evidence.csv")


def test_unmodified_copy_is_valid(tmp_path):
    dst = tmp_path / "yi2022"
    shutil.copytree(SRC, dst)
    assert validate_paths([dst]) == []


@settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(corruption)
def test_corruption_never_silently_accepted(c):
    with tempfile.TemporaryDirectory() as tmp:
        dst = Path(tmp) / "yi2022"
        shutil.copytree(SRC, dst)
        _apply(c, dst)
        problems = validate_paths([dst])
        assert problems, f"corruption {c!r} was accepted"
        for p in problems:
            assert str(p).startswith(str(dst))
        try:
            load_evidence([dst])
        except UserError:
            pass
        else:
            raise AssertionError(f"load_evidence accepted corruption {c!r}")
