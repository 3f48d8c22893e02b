"""WebPlotDigitizer import: synthetic figures with known values round-trip through JSON and CSV."""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import pytest

from nadfit.datasets.importers.webplotdigitizer import read_wpd_csv, read_wpd_json
from nadfit.fitting.cli import main

REPO = Path(__file__).resolve().parents[2]
TRUE_T = [0.0, 30.0, 60.0]
TRUE_MEAN = [20.0, 35.0, 50.0]
TRUE_SD = [4.0, 6.0, 9.0]


def _px(x, y, log_y):
    """Synthetic figure: slightly rotated axes (0.5 deg), y linear or log10; 0.1 px rounding."""
    u = 100 + 5.0 * x
    v = 500 - (200 * math.log10(y) if log_y else 6.0 * y)
    th = math.radians(0.5)
    pu = 100 + (u - 100) * math.cos(th) - (v - 500) * math.sin(th)
    pv = 500 + (u - 100) * math.sin(th) + (v - 500) * math.cos(th)
    return round(pu, 1), round(pv, 1)


def wpd_project(log_y: bool) -> dict:
    y1, y2 = (1.0, 100.0) if log_y else (0.0, 60.0)
    cal = [
        dict(zip(("px", "py"), _px(0, y1 if log_y else 0.0, log_y)), dx="0", dy="0", dz=None),
        dict(zip(("px", "py"), _px(60, y1 if log_y else 0.0, log_y)), dx="60", dy="0", dz=None),
        dict(zip(("px", "py"), _px(0, y1, log_y)), dx="0", dy=str(y1), dz=None),
        dict(zip(("px", "py"), _px(0, y2, log_y)), dx="0", dy=str(y2), dz=None),
    ]

    def ds(name, ys):
        data = []
        for t, y in zip(TRUE_T, ys):
            px, py = _px(t, y, log_y)
            data.append({"x": px, "y": py, "value": [t, y]})
        return {"name": name, "axesName": "XY", "colorRGB": [200, 0, 0, 255], "metadataKeys": [],
                "data": data, "autoDetectionData": None}

    return {
        "version": [4, 2],
        "axesColl": [{"name": "XY", "type": "XYAxes", "isLogX": False, "isLogY": log_y,
                      "noRotation": False, "calibrationPoints": cal}],
        "datasetColl": [ds("NMN 300 mean", TRUE_MEAN),
                        ds("upper", [m + s for m, s in zip(TRUE_MEAN, TRUE_SD)]),
                        ds("lower", [m - s for m, s in zip(TRUE_MEAN, TRUE_SD)])],
        "measurementColl": [],
    }


def wpd_csv_all() -> str:
    lines = ["NMN 300 mean,,upper,,lower,", "X,Y,X,Y,X,Y"]
    for t, m, s in zip(TRUE_T, TRUE_MEAN, TRUE_SD):
        lines.append(f"{t + 0.2:.4f},{m:.4f},{t - 0.1:.4f},{m + s:.4f},{t + 0.1:.4f},{m - s:.4f}")
    return "\n".join(lines) + "\n"


@pytest.mark.parametrize("log_y", [False, True])
def test_json_round_trip(tmp_path, log_y):
    p = tmp_path / "fig.json"
    p.write_text(json.dumps(wpd_project(log_y)))
    series = {s.name: s for s in read_wpd_json(str(p))}
    for (x, y), t, m in zip(series["NMN 300 mean"].points, TRUE_T, TRUE_MEAN):
        assert x == pytest.approx(t, abs=0.1)
        assert y == pytest.approx(m, rel=0.01)


def test_csv_reader(tmp_path):
    p = tmp_path / "fig.csv"
    p.write_text(wpd_csv_all())
    s = {x.name: x for x in read_wpd_csv(str(p))}
    assert [y for _, y in s["NMN 300 mean"].points] == TRUE_MEAN
    single = tmp_path / "single.csv"
    single.write_text("0.1,20\n30,35\n")
    assert read_wpd_csv(str(single))[0].points == [(0.1, 20.0), (30.0, 35.0)]


def _study(tmp_path):
    dst = tmp_path / "yi2022"
    shutil.copytree(REPO / "datasets" / "studies" / "yi2022", dst)
    return dst


def _args(inp, out, **over):
    a = {"--study": "yi2022", "--figure": "Fig 2B", "--x-unit": "day", "--y-unit": "nmol/L",
         "--analyte": "blood NAD concentration", "--matrix": "blood_unspecified",
         "--compound": "NMN", "--dose": "300", "--dose-unit": "mg/day",
         "--group": "Arm A: NMN 300 mg/day", "--error": "sd", "--x-nominal": "0;30;60",
         "--out": str(out)}
    a.update(over)
    argv = ["datasets", "import-digitised", str(inp)]
    for k, v in a.items():
        if v is not None:
            argv += [k, v]
    return argv


@pytest.mark.parametrize("kind", ["json_log", "json_lin", "csv"])
def test_import_digitised_cli(tmp_path, capsys, kind):
    from nadfit.datasets import load_evidence

    study = _study(tmp_path)
    inp = tmp_path / ("fig.csv" if kind == "csv" else "fig.json")
    if kind == "csv":
        inp.write_text(wpd_csv_all())
    else:
        inp.write_text(json.dumps(wpd_project(kind == "json_log")))
    out = study / "evidence_digitised.csv"
    rc = main(_args(inp, out))
    text = capsys.readouterr()
    assert rc == 0, text.err
    df = load_evidence([study])
    dg = df[df.grade == "digitised"].sort_values("evidence_id")
    assert len(dg) == 6
    assert (dg["locator"] == "Fig 2B (digitised with WebPlotDigitizer)").all()
    assert (dg["source_url"] == "https://pmc.ncbi.nlm.nih.gov/articles/PMC9735188").all()
    means = dg[dg.statistic == "mean"]
    sds = dg[dg.statistic == "sd"]
    assert list(means["time_days"]) == TRUE_T
    assert list(means["value"]) == pytest.approx(TRUE_MEAN, rel=0.01)
    assert list(sds["value"]) == pytest.approx(TRUE_SD, rel=0.05)
    assert len(df) == 14 + 6


def test_import_digitised_errors_write_nothing(tmp_path, capsys):
    study = _study(tmp_path)
    inp = tmp_path / "fig.json"
    inp.write_text(json.dumps(wpd_project(True)))
    out = study / "evidence_digitised.csv"
    cases = [
        ({"--group": "NMN 1200 mg/day"}, "inconsistent arms"),
        ({"--y-unit": "furlongs"}, "unknown unit 'furlongs'"),
        ({"--error": None}, "--error sd|se"),
        ({"--group": "NMN 300 mg/day"}, "sd row without n"),
        ({"--study": "other"}, "differs from"),
        ({"--x-nominal": "5;15"}, "nominal time"),
    ]
    for over, frag in cases:
        rc = main(_args(inp, out, **over))
        text = capsys.readouterr()
        assert rc == 2, over
        assert frag in text.err, (over, text.err)
        assert "Traceback" not in text.err + text.out
        assert not out.exists()
        assert not list(study.glob(".tmp-*"))
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    rc = main(_args(bad, out))
    assert rc == 2 and "malformed JSON" in capsys.readouterr().err and not out.exists()
