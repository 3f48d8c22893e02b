"""``nadfit predict`` on a tiny synthetic posterior."""

from __future__ import annotations

import json

import pytest

from nadfit.datasets.errors import UserError
from nadfit.fitting.inference.predict import predict

KEYS = {"compound", "dose_mg", "doses_per_day", "day", "matrix", "hypothesis", "n_draws", "fold_change",
        "fold_change_mean_effect", "without_non_human_evidence"}
QKEYS = {"median", "q05", "q25", "q75", "q95"}


def test_predict_json_and_monotone_in_dose(synth_run, capsys):
    from nadfit.fitting.cli import main

    res = [predict(synth_run, "NMN", mg, 30) for mg in (100.0, 500.0, 2000.0)]
    for r in res:
        assert set(r) == KEYS and set(r["fold_change"]) == QKEYS and set(r["fold_change_mean_effect"]) == QKEYS
        assert r["n_draws"] == 80 and r["hypothesis"] == "via-nr"
        # the synthetic posterior has no per-study log-likelihood: no reweighting, said as null
        ho = r["without_non_human_evidence"]
        assert ho is None
        q = r["fold_change"]
        assert q["q05"] <= q["q25"] <= q["median"] <= q["q75"] <= q["q95"]
    for key in ("fold_change", "fold_change_mean_effect"):
        med = [r[key]["median"] for r in res]
        assert med[0] < med[1] < med[2]
        assert med[0] > 1.0
    # the CLI prints the same JSON
    assert main(["predict", str(synth_run), "--compound", "NR", "--dose", "500", "--days", "14.5",
                 "--doses-per-day", "2", "--matrix", "serum", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert set(out) == KEYS and out["matrix"] == "serum" and out["doses_per_day"] == 2 and out["day"] == 14.5


@pytest.mark.parametrize("args,msg", [
    (["--compound", "NAM", "--dose", "300", "--days", "30"], "NMN or NR"),
    (["--compound", "NMN", "--dose", "0", "--days", "30"], "--dose must"),
    (["--compound", "NMN", "--dose", "-5", "--days", "30"], "--dose must"),
    (["--compound", "NMN", "--dose", "inf", "--days", "30"], "--dose must"),
    (["--compound", "NMN", "--dose", "300", "--days", "0"], "--days"),
    (["--compound", "NMN", "--dose", "300", "--days", "400"], "--days"),
    (["--compound", "NMN", "--dose", "300", "--days", "30", "--doses-per-day", "0"], "doses-per-day"),
    (["--compound", "NMN", "--dose", "300", "--days", "30", "--matrix", "plasma"], "--matrix"),
])
def test_predict_bad_options(synth_run, capsys, args, msg):
    from nadfit.fitting.cli import main

    assert main(["predict", str(synth_run), *args]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("nadfit: error:") and msg in err[0]


def test_predict_bad_run(tmp_path, capsys):
    from nadfit.fitting.cli import main

    with pytest.raises(UserError, match="does not exist"):
        predict(tmp_path / "missing", "NMN", 300, 30)
    (tmp_path / "empty").mkdir()
    assert main(["predict", str(tmp_path / "empty"), "--compound", "NMN", "--dose", "300", "--days", "30"]) == 2
    assert "empty" in capsys.readouterr().err
