"""Reproducibility: same seed -> same run; changed evidence -> changed fingerprint -> compare refuses.

The two real fits (draws=40, tune=40, chains=1, prior_draws=20) take ~2 x 60-120 s on the shared
2-core machine, so they are marked ``slow`` (run with ``pytest -m slow tests/reliability``). The
fingerprint and refusal checks run in the default suite without sampling.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from reliability_helpers import make_run

from nadfit.datasets.errors import UserError

TINY = {"draws": 40, "tune": 40, "chains": 1, "prior_draws": 20, "seed": 4242, "accept_failed_gates": True}


def _changed_evidence(tmp: Path):
    """A copy of the shipped study folders with one evidence value changed; returns (original, changed)."""
    from nadfit.datasets import load_evidence
    from nadfit.datasets.load import STUDIES_DIR, study_dirs

    original = load_evidence()
    row = original[np.isfinite(original["value"])].iloc[0]
    copies = []
    for d in study_dirs(STUDIES_DIR):
        dst = tmp / "datasets" / Path(d).name
        shutil.copytree(d, dst)
        copies.append(dst)
    src = tmp / "datasets" / Path(row["source_file"]).parent.name / Path(row["source_file"]).name
    lines = src.read_text().splitlines(keepends=True)
    line = lines[int(row["source_row"]) - 1]
    assert row["evidence_id"] in line
    import csv
    import io

    header = next(csv.reader([lines[0]]))
    cells = next(csv.reader([line]))
    cells[header.index("value")] = repr(float(row["value"]) * 1.5 + 1.0)
    buf = io.StringIO()
    csv.writer(buf, lineterminator=line[len(line.rstrip("\r\n")):] or "\n").writerow(cells)
    lines[int(row["source_row"]) - 1] = buf.getvalue()
    src.write_text("".join(lines))
    changed = load_evidence(copies)
    return original, changed, row["evidence_id"]


@pytest.fixture(scope="module")
def evidence_pair(tmp_path_factory):
    return _changed_evidence(tmp_path_factory.mktemp("ev"))


def test_changing_one_value_changes_the_fingerprint(evidence_pair):
    from nadfit.datasets import evidence_fingerprint

    original, changed, eid = evidence_pair
    assert list(original["evidence_id"]) == list(changed["evidence_id"])
    assert evidence_fingerprint(original) != evidence_fingerprint(changed)
    same = changed.copy()
    same.loc[same["evidence_id"] == eid, "value"] = original.loc[original["evidence_id"] == eid, "value"].values
    assert evidence_fingerprint(same) == evidence_fingerprint(original)  # only the values matter


def test_config_hash_depends_on_config_and_evidence():
    from nadfit.fitting.inference.config import FitConfig
    from nadfit.fitting.inference.fit import config_hash

    a = FitConfig(**TINY)
    assert config_hash(a, "f1") == config_hash(FitConfig(**TINY), "f1")
    assert config_hash(a, "f1") != config_hash(a, "f2")
    assert config_hash(a, "f1") != config_hash(FitConfig(**{**TINY, "seed": 1}), "f1")


def test_compare_refuses_runs_fitted_to_different_evidence(tmp_path, evidence_pair, capsys):
    from reliability_helpers import run_cli

    from nadfit.datasets import evidence_fingerprint

    original, changed, _ = evidence_pair
    a = make_run(tmp_path / "a", hypothesis="direct", fingerprint=evidence_fingerprint(original))
    b = make_run(tmp_path / "b", hypothesis="via-nr", fingerprint=evidence_fingerprint(changed))
    rc, _, err = run_cli(capsys, ["compare", a, b, "--out", tmp_path / "cmp"])
    assert rc == 2 and err.startswith(f"nadfit: error: {b}: run was fitted to different evidence than {a}"), err
    assert not (tmp_path / "cmp").exists()


# ------------------------------------------------------------------------------------------------
# real fits (slow)
# ------------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def two_fits(tmp_path_factory):
    from nadfit.fitting.inference.config import FitConfig
    from nadfit.fitting.inference.fit import run_fit

    base = tmp_path_factory.mktemp("repro")
    for name in ("a", "b"):
        run_fit(FitConfig(hypothesis="direct", **TINY), base / name)
    return base / "a", base / "b"


@pytest.mark.slow
def test_same_seed_same_summary(two_fits):
    a, b = two_fits
    sa, sb = (json.loads((d / "summary.json").read_text()) for d in two_fits)
    assert sa.pop("wall_time_s") >= 0 and sb.pop("wall_time_s") >= 0
    for att in sa["attempts"] + sb["attempts"]:  # each attempt's sampling time (recorded since session 17)
        assert att.pop("sampling_s") >= 0
    assert sa == sb
    assert (a / "config.json").read_text() == (b / "config.json").read_text()
    from nadfit.fitting.inference.runs import load_posterior

    pa, pb = load_posterior(a), load_posterior(b)
    for var in ("gamma", "pi_nmn", "loglik_item"):
        np.testing.assert_array_equal(pa["posterior"][var].values, pb["posterior"][var].values)


@pytest.mark.slow
def test_config_hash_and_fingerprint_recorded(two_fits):
    from nadfit.datasets import evidence_fingerprint, load_evidence
    from nadfit.fitting.inference.config import FitConfig
    from nadfit.fitting.inference.fit import config_hash
    from nadfit.fitting.inference.runs import load_posterior, load_summary

    a, _ = two_fits
    s = load_summary(a)
    dt = load_posterior(a)
    assert dt.attrs["config_hash"] == s["config_hash"]
    assert dt.attrs["evidence_fingerprint"] == s["evidence_fingerprint"] == evidence_fingerprint(load_evidence())
    cfg = FitConfig(**json.loads((a / "config.json").read_text()))
    assert config_hash(cfg, s["evidence_fingerprint"]) == s["config_hash"]


@pytest.mark.slow
def test_compare_refuses_real_run_after_evidence_changed(two_fits, evidence_pair, tmp_path, monkeypatch):
    """The real run and a run with the same rows: compare re-checks the current evidence and refuses."""
    from nadfit import datasets
    from nadfit.fitting.comparison.pipeline import run_compare
    from nadfit.fitting.inference.runs import load_posterior, load_summary

    a, _ = two_fits
    s = load_summary(a)
    study_ids = [str(x) for x in load_posterior(a)["observed_data"]["study_id"].values]
    other = make_run(tmp_path / "other", hypothesis="via-nr", fingerprint=s["evidence_fingerprint"],
                     evidence_ids=s["evidence_ids"], study_ids=study_ids)
    _, changed, _ = evidence_pair
    monkeypatch.setattr(datasets, "load_evidence", lambda paths=None: changed.copy())
    with pytest.raises(UserError, match="the shipped evidence changed since this run was fitted"):
        run_compare([a, other], tmp_path / "cmp", smc_runs=0, bridge=False, psense=False, html=False)
    assert not (tmp_path / "cmp").exists()
