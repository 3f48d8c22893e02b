"""nadfit simulate: outputs and one-line user errors."""

from __future__ import annotations

import json

import pytest

from nadfit.fitting.cli import main


def test_simulate_production_json(capsys):
    assert main(["simulate", "--hypothesis", "direct", "--compound", "NMN", "--dose", "900",
                 "--days", "10", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    prod = out["methods"]["production"]
    assert len(prod["b"]) == 11 and prod["b"][0] == pytest.approx(1.0)
    assert all(x >= 1.0 - 1e-12 for x in prod["b"])


def test_simulate_both_methods(capsys, tmp_path):
    png = tmp_path / "sim.png"
    assert main(["simulate", "--hypothesis", "via-nr", "--compound", "NR", "--dose", "1000",
                 "--days", "5", "--method", "both", "--plot", str(png)]) == 0
    text = capsys.readouterr().out
    assert "compile time is excluded" in text and "stated assumptions" in text
    assert png.stat().st_size > 0


@pytest.mark.parametrize("args", [
    ["--compound", "XYZ", "--dose", "300", "--days", "10"],
    ["--compound", "NMN", "--dose", "0", "--days", "10"],
    ["--compound", "NMN", "--dose", "nan", "--days", "10"],
    ["--compound", "NMN", "--dose", "300", "--days", "0"],
    ["--compound", "NMN", "--dose", "300", "--days", "400"],
    ["--compound", "NMN", "--dose", "300", "--days", "10", "--doses-per-day", "0"],
])
def test_simulate_user_errors(capsys, args):
    assert main(["simulate"] + args) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("nadfit: error:") and "\n" not in err


def test_params_file_errors(capsys, tmp_path):
    bad = tmp_path / "p.json"
    bad.write_text(json.dumps({"beta": 10.0, "nonsense": 1.0}))
    assert main(["simulate", "--compound", "NMN", "--dose", "300", "--days", "5", "--params", str(bad)]) == 2
    err = capsys.readouterr().err
    assert str(bad) in err and "nonsense" in err
    bad.write_text('{"beta": NaN}')
    assert main(["simulate", "--compound", "NMN", "--dose", "300", "--days", "5", "--params", str(bad)]) == 2
    err = capsys.readouterr().err
    assert str(bad) in err and "beta" in err
