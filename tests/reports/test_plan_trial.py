"""``nadfit plan-trial`` on tiny synthetic posteriors (fitting.comparison.designs.plan_trial)."""

from __future__ import annotations

import json

import pytest

from nadfit.datasets.errors import UserError
from nadfit.fitting.comparison.designs import Arm, check_plan, parse_arm, plan_trial


def test_plan_trial_json(synth_run, synth_failed_run, capsys):
    from nadfit.fitting.cli import main

    rc = main(["plan-trial", str(synth_run), str(synth_failed_run), "--arm", "NMN:500", "--arm", "NR:500:2",
               "--days", "20", "--per-arm", "12", "--per-arm", "120", "--trials", "200", "--accept-failed-gates",
               "--json"])
    assert rc == 0
    out = json.loads(capsys.readouterr().out)
    assert out["day"] == 20 and out["arm_sizes"] == [12, 120] and out["trials"] == 200
    (d,) = out["designs"]
    assert [a["label"] for a in d["arms"]] == ["NMN 500 mg/day", "NR 2 x 250 mg/day"]
    assert set(d["arms"][0]["fold_change_mean_effect"]) == {"via-nr", "direct"}
    for blk in d["by_arm_size"]:
        for t, row in blk["expected_log_bf"].items():
            for b, v in row.items():
                assert v["mcse"] >= 0 and 0 <= v["p_favours_true"] <= 1 and len(v["halves"]) == 2
        assert blk["pairs"][0]["verdict"] in ("not informative", "positive", "strong")


def test_plan_trial_table(synth_run, synth_failed_run, capsys):
    from nadfit.fitting.cli import main

    assert main(["plan-trial", str(synth_run), str(synth_failed_run), "--arm", "NMN:300", "--trials", "100",
                 "--accept-failed-gates"]) == 0
    text = capsys.readouterr().out
    assert "NMN 300 mg/day" in text and "30 per arm" in text and "300 per arm" in text
    assert "via-nr vs direct" in text or "direct vs via-nr" in text


def test_plan_trial_refuses_a_failed_run_and_one_hypothesis(synth_run, synth_failed_run):
    with pytest.raises(UserError, match="failed its diagnostics gates"):
        plan_trial([synth_run, synth_failed_run], [Arm("NMN", 300)], trials=100)
    with pytest.raises(UserError, match="at least two hypotheses"):
        plan_trial([synth_run], [Arm("NMN", 300)], trials=100)


@pytest.mark.parametrize("argv,msg", [
    (["--arm", "NMN"], "--arm must be COMPOUND:MG_PER_DAY"),
    (["--arm", "NAD:300"], "compound must be NMN or NR"),
    (["--arm", "NMN:0"], "dose must be a positive finite number"),
    (["--arm", "NMN:300:x"], "doses per day must be a whole number"),
    (["--arm", "NMN:300", "--arm", "nmn:300"], "same regimen"),
    (["--arm", "NMN:300", "--days", "0"], "--days must be a whole number in [1, 365]"),
    (["--arm", "NMN:300", "--per-arm", "1"], "--per-arm must be whole numbers"),
    (["--arm", "NMN:300", "--trials", "5"], "--trials must be a whole number"),
    (["--arm", "NMN:300", *sum((["--per-arm", str(n)] for n in range(10, 15)), [])], "at most 4 --per-arm"),
    (["--arm", "NMN:300:99999999999999999999999"], "doses per day must be a whole number in [1, 24]"),
    (["--arm", "NMN:1e308"], "dose must be at most 100000 mg/day"),
])
def test_plan_trial_bad_options_one_line(argv, msg, tmp_path, capsys):
    """Options are checked before any run folder is read (the folders here do not exist)."""
    from nadfit.fitting.cli import main

    rc = main(["plan-trial", str(tmp_path / "a"), str(tmp_path / "b"), *argv])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and msg in err and len(err.splitlines()) == 1 and "Traceback" not in err


def test_parse_arm_and_check_plan():
    assert parse_arm(" nr:1000:2 ") == Arm("NR", 1000.0, 2)
    assert check_plan([Arm("NMN", 300)], 30, [30], 100) == (30, (30,), 100)
    assert check_plan([Arm("NMN", 300)], 30, [30, 30, 40], 100)[1] == (30, 40)  # a repeated size counts once
    with pytest.raises(UserError, match="1 to 8"):
        check_plan([Arm("NMN", 100 + i) for i in range(9)], 30, [30], 100)
