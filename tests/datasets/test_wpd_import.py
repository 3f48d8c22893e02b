"""``nadfit datasets import-digitised``: --force, project tars read safely, replicate scatters,
the study's design window, one bad axes not blocking the others, and the one-line error contract."""

from __future__ import annotations

import copy
import csv
import gzip
import io
import json
import os
import sys
import tarfile
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
from wpd_cli import SYN, assert_refused, run, study_copy

from nadfit.datasets.importers import webplotdigitizer as wpdmod


def _project(tmp_path, doc, name="fig.json") -> Path:
    p = tmp_path / name
    p.write_text(json.dumps(doc))
    return p


def _all_axes():
    return json.loads((SYN / "wpd4_all_axis_types.json").read_text())


def _scatter_csv(tmp_path, jitter=True) -> Path:
    """Replicate scatter: 4 participants at days 0, 30, 60 (x jittered by clicking)."""
    lines = []
    for t, ys in ((0, [18.0, 21.0, 20.0, 25.0]), (30, [30.0, 36.0, 33.0, 29.0]), (60, [41.0, 47.0, 44.0, 50.0])):
        for k, y in enumerate(ys):
            lines.append(f"{t + (0.15 * k - 0.2 if jitter else 0):.2f}, {y}")
    p = tmp_path / "scatter.csv"
    p.write_text("\n".join(lines) + "\n")
    return p


# ------------------------------------------------------------------------------------------
# --out and --force
# ------------------------------------------------------------------------------------------


def test_existing_out_needs_force(tmp_path, capsys):
    study = study_copy(tmp_path)
    out = study / "evidence_digitised.csv"
    out.write_text("keep me\n")
    before = out.stat().st_mtime_ns
    res = run(tmp_path, capsys, SYN / "single_comma.csv", out=out)
    assert res.rc == 2
    assert res.err.splitlines() == [f"nadfit: error: --out: {out} exists; pass --force to replace it"]
    assert out.read_text() == "keep me\n" and out.stat().st_mtime_ns == before
    res = run(tmp_path, capsys, SYN / "single_comma.csv", out=out, **{"--force": True})
    assert res.rc == 0, res.err
    assert len(res.rows()) == 6
    # a second import over its own earlier output is not a duplicate-id conflict with --force
    res = run(tmp_path, capsys, SYN / "single_tab.tsv", out=out, **{"--force": True})
    assert res.rc == 0, res.err


# ------------------------------------------------------------------------------------------
# project tars
# ------------------------------------------------------------------------------------------


def _tar(path: Path, members: list[tuple[str, bytes | None]], *, gz=False, link=None) -> Path:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.USTAR_FORMAT) as tf:
        for name, data in members:
            ti = tarfile.TarInfo(name)
            if data is None:
                ti.type, ti.linkname = tarfile.SYMTYPE, link or "/etc/passwd"
                tf.addfile(ti)
            else:
                ti.size = len(data)
                tf.addfile(ti, io.BytesIO(data))
    raw = buf.getvalue()
    path.write_bytes(gzip.compress(raw) if gz else raw)
    return path


def test_tar_project_is_read_in_memory(tmp_path, capsys):
    doc = (SYN / "wpd4_all_axis_types.json").read_bytes()
    tar = _tar(tmp_path / "figure 2.tar", [("figure 2/info.json", b'{"version":[4,0],"json":"wpd.json"}'),
                                            ("figure 2/wpd.json", doc), ("../../escape.png", b"x")])
    listing = sorted(os.listdir(tmp_path))
    res = run(tmp_path, capsys, tar, **{"--series": "xy data"})
    assert res.rc == 0, res.err
    assert sorted(p for p in os.listdir(tmp_path) if not p.startswith("run")) == listing
    assert not (tmp_path.parent / "escape.png").exists()
    # info.json may name another JSON member
    tar2 = _tar(tmp_path / "named.tar", [("p/info.json", b'{"json":"data.json"}'), ("p/data.json", doc)])
    assert run(tmp_path, capsys, tar2, **{"--series": "xy data"}).rc == 0
    # a tar given another extension is recognised by its header
    other = tmp_path / "project.save"
    other.write_bytes(tar.read_bytes())
    assert run(tmp_path, capsys, other, **{"--series": "xy data"}).rc == 0


@pytest.mark.parametrize("kind, fragment", [
    ("gz", "not an uncompressed tar archive"),
    ("symlink", "wpd.json is not a regular file in the archive"),
    ("two", "several wpd.json members (a/wpd.json, b/wpd.json)"),
    ("none", "no wpd.json in the archive"),
    ("big", "larger than"),
    ("bad_json", "malformed JSON"),
])
def test_tar_refusals(tmp_path, capsys, monkeypatch, kind, fragment):
    doc = (SYN / "wpd3_xy.json").read_bytes()
    path = tmp_path / "p.tar"
    if kind == "gz":
        _tar(path, [("p/wpd.json", doc)], gz=True)
    elif kind == "symlink":
        _tar(path, [("p/wpd.json", None)])
    elif kind == "two":
        _tar(path, [("a/wpd.json", doc), ("b/wpd.json", doc)])
    elif kind == "none":
        _tar(path, [("p/image.png", b"png")])
    elif kind == "big":
        monkeypatch.setattr(wpdmod, "MAX_TEXT_BYTES", 100)
        _tar(path, [("p/wpd.json", doc)])
    else:
        _tar(path, [("p/wpd.json", b"{not json")])
    assert_refused(run(tmp_path, capsys, path), fragment)


# ------------------------------------------------------------------------------------------
# project formats and axes
# ------------------------------------------------------------------------------------------


def test_not_a_project_and_wpd3_messages(tmp_path, capsys):
    assert_refused(run(tmp_path, capsys, _project(tmp_path, {"hello": 1})), "not a WebPlotDigitizer project")
    w3 = json.loads((SYN / "wpd3_xy.json").read_text())
    w3["wpd"]["version"] = [2, 1]
    assert_refused(run(tmp_path, capsys, _project(tmp_path, w3, "old.json")),
                   "not a readable WebPlotDigitizer 3 project: 'wpd.version' is [2, 1]", where=f"{tmp_path}/old.json")
    polar = {"wpd": {"version": [3, 8], "axesType": "PolarAxes", "axesParameters": {"isDegrees": True},
                     "calibration": [], "dataSeries": [{"name": "Default Dataset", "metadataKeys": [],
                                                        "data": [{"x": 1, "y": 2}]}]}}
    assert_refused(run(tmp_path, capsys, _project(tmp_path, polar, "polar3.json")),
                   "dataset 'Default Dataset' is on PolarAxes 'Polar': polar axes give", where=f"{tmp_path}/polar3.json:wpd")
    v5 = dict(_all_axes(), version=[5, 0])
    assert_refused(run(tmp_path, capsys, _project(tmp_path, v5, "v5.json")), "version [5, 0] is not supported")


def test_one_bad_axes_does_not_block_others(tmp_path, capsys):
    doc = _all_axes()
    doc["axesColl"][1]["calibrationPoints"][0]["dy"] = "abc"     # Bar axes
    p = _project(tmp_path, doc)
    assert run(tmp_path, capsys, p, **{"--series": "xy data"}).rc == 0
    line = assert_refused(run(tmp_path, capsys, p, **{"--series": "bar data", "--bar-times": "Bar0=0"}),
                          "bar calibration value 'abc' is not a finite number",
                          where=f"{p}:axesColl[1].calibrationPoints[0].dy")
    assert "dataset 'bar data' is on BarAxes 'Bar'" in line
    doc = _all_axes()
    doc["datasetColl"].append({"name": "lost", "axesName": "", "metadataKeys": [], "data": [{"x": 1, "y": 1}]})
    p = _project(tmp_path, doc, "lost.json")
    assert run(tmp_path, capsys, p, **{"--series": "xy data"}).rc == 0
    assert_refused(run(tmp_path, capsys, p, **{"--series": "lost"}), "dataset 'lost': has no axes")


def _xy(cal, points, **ax):
    return {"version": [4, 2],
            "axesColl": [dict({"name": "XY", "type": "XYAxes", "isLogX": False, "isLogY": False},
                              calibrationPoints=cal, **ax)],
            "datasetColl": [{"name": "mean", "axesName": "XY", "metadataKeys": [],
                             "data": [{"x": x, "y": y} for x, y in points]}]}


def _cal(dx=("0", "60"), dy=("0", "60")):
    return [{"px": 100, "py": 400, "dx": dx[0], "dy": "0"}, {"px": 500, "py": 400, "dx": dx[1], "dy": "0"},
            {"px": 100, "py": 400, "dx": "0", "dy": dy[0]}, {"px": 100, "py": 100, "dx": "0", "dy": dy[1]}]


def test_miscalibrated_axes_are_refused(tmp_path, capsys):
    # every point collapses to x = 0 (log10 x below the smallest float)
    doc = _xy(_cal(dx=("1e-300", "1e-200")), [(-30, 300), (-40, 250), (-50, 200)], isLogX=True)
    assert_refused(run(tmp_path, capsys, _project(tmp_path, doc)),
                   "mis-calibrated axes: all 3 points map to the same x = 0 although they lie at different pixels")
    # points hundreds of calibration spans away
    doc = _xy(_cal(dx=("0", "1")), [(150, 300), (90000, 250)])
    assert_refused(run(tmp_path, capsys, _project(tmp_path, doc, "far.json")),
                   "calibration spans outside the calibrated range 0 ... 1", where=f"{tmp_path}/far.json:datasetColl[0].data[1]")
    # date on the y axis, date on a log axis, mixed number/date x
    assert_refused(run(tmp_path, capsys, _project(tmp_path, _xy(_cal(dy=("2020/01/01", "2020/02/01")), [(200, 200)]),
                                                  "ydate.json")), "date/time y axis")
    assert_refused(run(tmp_path, capsys, _project(tmp_path, _xy(_cal(dx=("2020/01/01", "2020/02/01")), [(200, 200)],
                                                                isLogX=True), "logdate.json")),
                   "log scale on a date/time axis")
    assert_refused(run(tmp_path, capsys, _project(tmp_path, _xy(_cal(dx=("0", "2020/02/01")), [(200, 200)]),
                                                  "mixed.json")), "mix a number and a date")


def test_overrides_and_multiline_names_stay_one_line(tmp_path, capsys):
    doc = _xy(_cal(), [(200, 200), (300, 250)])
    doc["datasetColl"][0]["data"][1]["metadata"] = {"overrides": {"y": 5}}
    assert_refused(run(tmp_path, capsys, _project(tmp_path, doc)), "typed in by hand (WPD 'override')")
    doc = _xy(_cal(), [(200, 200)])
    doc["datasetColl"][0]["name"] = "two\nlines"
    doc["axesColl"][0]["calibrationPoints"][1]["dx"] = "x\ny"
    assert_refused(run(tmp_path, capsys, _project(tmp_path, doc, "nl.json")), "'two\\nlines'")


# ------------------------------------------------------------------------------------------
# replicate scatters
# ------------------------------------------------------------------------------------------


def test_replicate_scatter_is_never_imported_as_means(tmp_path, capsys):
    sc = _scatter_csv(tmp_path)
    line = assert_refused(run(tmp_path, capsys, sc), "a replicate scatter, not one mean per time")
    assert "stand in columns" in line and "--replicates mean-sd|mean-se|points" in line
    assert_refused(run(tmp_path, capsys, sc, **{"--x-nominal": "0;30;60"}), "snap to the same --x-nominal time")
    res = run(tmp_path, capsys, sc, **{"--x-nominal": "0;30;60", "--replicates": "mean-sd"})
    assert res.rc == 0, res.err
    rows = res.rows()
    assert [(r["time"], r["statistic"], r["n"]) for r in rows] == [
        ("0", "mean", "4"), ("0", "sd", "4"), ("30", "mean", "4"), ("30", "sd", "4"),
        ("60", "mean", "4"), ("60", "sd", "4")]
    assert float(rows[0]["value"]) == pytest.approx(21.0)
    assert float(rows[1]["value"]) == pytest.approx(2.94392, rel=1e-4)     # sample SD of 18, 21, 20, 25
    res = run(tmp_path, capsys, sc, **{"--replicates": "mean-se"})
    assert res.rc == 0, res.err
    assert res.rows()[1]["statistic"] == "se"
    assert float(res.rows()[1]["value"]) == pytest.approx(2.94392 / 2, rel=1e-4)
    res = run(tmp_path, capsys, sc, **{"--x-nominal": "0;30;60", "--replicates": "points"})
    assert res.rc == 0, res.err
    assert len(res.rows()) == 12 and {r["n"] for r in res.rows()} == {"1"}
    assert_refused(run(tmp_path, capsys, sc, **{"--replicates": "points", "--n": "4"}),
                   "--n cannot be combined with --replicates")
    assert_refused(run(tmp_path, capsys, SYN / "single_comma.csv", **{"--replicates": "mean-sd"}),
                   "no two points of series 'single_comma' share an x")
    assert_refused(run(tmp_path, capsys, sc, **{"--replicates": "median"}), "--replicates must be one of")


def test_dense_curves_are_not_replicates(tmp_path, capsys):
    p = tmp_path / "curve.csv"
    p.write_text("".join(f"{0.05 * k:.3f}, {20 + k * 0.01}\n" for k in range(1000)))   # 1000 points, 0-50 days
    res = run(tmp_path, capsys, p)
    assert res.rc == 0, res.err


# ------------------------------------------------------------------------------------------
# the study's design window
# ------------------------------------------------------------------------------------------


def _strip_design(study: Path, regimen: str | None = None) -> None:
    y = (study / "study.yaml").read_text()
    y = y.replace("regimen: once daily for 60 days", f"regimen: {regimen or 'once daily'}")
    (study / "study.yaml").write_text(y)
    for path in study.glob("evidence*.csv"):
        with open(path, newline="") as fh:
            rows = list(csv.DictReader(fh))
        for r in rows:
            r["duration_days"] = r["time"] = r["time_unit"] = r["regimen"] = ""
        with open(path, "w", newline="") as fh:
            w = csv.DictWriter(fh, fieldnames=list(rows[0]), lineterminator="\n")
            w.writeheader()
            w.writerows(rows)


def test_design_window_from_regimen_or_unknown(tmp_path, capsys):
    far = SYN / "all_datasets_ragged_logx.csv"
    study = study_copy(tmp_path)
    _strip_design(study, regimen="once daily for 12 weeks")
    res = run(tmp_path, capsys, far, out=study / "evidence_digitised.csv", **{"--series": "13B"})
    assert_refused(res, "0 to 84 days, from regimen of arm")
    study = study_copy(tmp_path)
    _strip_design(study)
    res = run(tmp_path, capsys, far, out=study / "evidence_digitised.csv", **{"--series": "13B"})
    assert res.rc == 0, res.err
    assert "nadfit: warning: study yi2022 states no duration or time points" in res.err


def test_weeks_are_checked_in_days(tmp_path, capsys):
    # 2210 "days" read as weeks is even further out; 8 weeks (56 days) is inside a 60-day trial
    p = tmp_path / "weeks.csv"
    p.write_text("0, 20\n4, 25\n8, 30\n")
    assert run(tmp_path, capsys, p, **{"--x-unit": "week"}).rc == 0
    p.write_text("0, 20\n4, 25\n12, 30\n")
    assert_refused(run(tmp_path, capsys, p, **{"--x-unit": "week"}), "time 12 week", where=f"{p}:3:column 1")


# ------------------------------------------------------------------------------------------
# options and CSV refusals
# ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("over, fragment", [
    ({"--time-origin": "2020-13-01"}, "--time-origin: time origin '2020-13-01' is not a date"),
    ({"--time-origin": "2020-01-01"}, "--time-origin given but series 'single_comma' has a numeric x axis"),
    ({"--bar-times": "Bar0:0"}, "--bar-times: 'Bar0:0' is not LABEL=TIME"),
    ({"--bar-times": "Bar0=0"}, "--bar-times given but series 'single_comma' is not a bar chart"),
    ({"--series": "nope"}, "no point series named 'nope'"),
])
def test_option_refusals(tmp_path, capsys, over, fragment):
    assert_refused(run(tmp_path, capsys, SYN / "single_comma.csv", **over), fragment)


@pytest.mark.parametrize("text, fragment", [
    ("", "file is empty"),
    ("1\t2\n3;4\n", "both tabs (row 1) and ';' (row 2)"),
    ("1, 2\n3, 4, 5, 6\n", "row has 4 columns but row 1 has 2"),
    ("0, 1\n1, abc\n", "value 'abc' is not a finite number"),
    ("0, 1\n2,\n", "x without y"),
    ("1,234.5; 2\n", "has both ',' and '.'"),
    ("5\n6\n", "one column only"),
])
def test_csv_refusals(tmp_path, capsys, text, fragment):
    p = tmp_path / "bad.csv"
    p.write_text(text)
    assert_refused(run(tmp_path, capsys, p), fragment)


def test_not_utf8_and_unknown_extension(tmp_path, capsys):
    p = tmp_path / "latin.csv"
    p.write_bytes("0; 1,5\n1; 2,5 µ\n".encode("latin-1"))
    assert_refused(run(tmp_path, capsys, p), "not UTF-8 text")
    q = tmp_path / "fig.png"
    q.write_bytes(b"\x89PNG....")
    assert_refused(run(tmp_path, capsys, q), "expected a WebPlotDigitizer project (.tar or .json)")


def test_error_bars_follow_their_own_axes(tmp_path, capsys):
    """Upper/lower series are taken from the mean's axes, so error bars on other axes never pair up."""
    doc = json.loads((SYN / "xy_several_datasets_negative_x.json").read_text())
    good = copy.deepcopy(json.loads((SYN / "wpd4_all_axis_types.json").read_text()))
    xy_axes = dict(good["axesColl"][0], name="time axes")
    mean = dict(good["datasetColl"][0], name="mean", axesName="time axes")
    up = copy.deepcopy(mean)
    up["name"] = "upper"
    for d in up["data"]:
        d["y"] -= 20
    doc["axesColl"].append(xy_axes)
    doc["datasetColl"] += [mean, up, dict(copy.deepcopy(up), name="upper", axesName="XY")]
    p = _project(tmp_path, doc)
    res = run(tmp_path, capsys, p, **{"--series": "mean", "--error": "sd"})
    assert res.rc == 0, res.err
    sds = [float(r["value"]) for r in res.rows() if r["statistic"] == "sd"]
    assert sds == pytest.approx([20 * 60 / 420] * 6, rel=1e-3)


def test_error_bars_are_matched_by_name_when_a_figure_has_several_arms(tmp_path, capsys):
    doc = json.loads((SYN / "wpd4_all_axis_types.json").read_text())
    xy = doc["datasetColl"][0]
    sets = []
    for arm, shift in (("300 mg", 10), ("600 mg", 20)):
        sets.append(dict(copy.deepcopy(xy), name=arm))
        up = dict(copy.deepcopy(xy), name=f"{arm} upper")
        for d in up["data"]:
            d["y"] -= shift
        sets.append(up)
    doc["datasetColl"] = sets
    p = _project(tmp_path, doc)
    res = run(tmp_path, capsys, p, **{"--series": "600 mg", "--error": "sd"})
    assert res.rc == 0, res.err
    assert [float(r["value"]) for r in res.rows() if r["statistic"] == "sd"] == pytest.approx([20 * 60 / 420] * 6,
                                                                                             rel=1e-3)
    doc["datasetColl"].append(dict(copy.deepcopy(sets[1]), name="600 mg upper (again)"))
    assert_refused(run(tmp_path, capsys, _project(tmp_path, doc, "two.json"), **{"--series": "600 mg", "--error": "sd"}),
                   "more than one upper error-bar series")
