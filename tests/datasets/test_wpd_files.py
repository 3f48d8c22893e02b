"""Every kind of real WebPlotDigitizer file imports, or is refused with one line that says why.

Real files (MIT, tests/datasets/wpd/) and synthetic stand-ins for real files that cannot be
redistributed (tests/datasets/wpd/synthetic/, see its README for the sources), imported with the
CLI into a copy of the yi2022 study (a 60-day trial).
"""

from __future__ import annotations

import io
import json
import math
import sys
import tarfile
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
from wpd_cli import SYN, WPD, assert_refused, run

sys.path.insert(0, str(WPD))
import make_synthetic

from nadfit.datasets.importers.webplotdigitizer import read_wpd

BASIC = WPD / "wpdjl_basictypes_wpd.json"
DATETIME = WPD / "wpdjl_dateandtime_wpd.json"
DEFAULT_TAR = WPD / "wpdjl_default.tar"


def _flat(points):
    return [v for p in points for v in p]


def _times_values(res):
    rows = [r for r in res.rows() if r["statistic"] == "mean"]
    return [float(r["time"]) for r in rows], [float(r["value"]) for r in rows]


def test_synthetic_files_are_generated(tmp_path):
    """The committed synthetic files are exactly what make_synthetic.py writes."""
    want = make_synthetic.files()
    have = {p.name for p in SYN.iterdir()}
    assert have == set(want)
    for name, text in want.items():
        assert (SYN / name).read_bytes() == text.encode("utf-8"), name


# ------------------------------------------------------------------------------------------
# real files (WebPlotDigitizer.jl test data, MIT)
# ------------------------------------------------------------------------------------------


def test_real_date_axis_needs_origin_then_imports(tmp_path, capsys):
    res = run(tmp_path, capsys, BASIC, **{"--series": "Dataset 4"})
    line = assert_refused(res, "has a date x axis", where=f"{BASIC}:datasetColl[4]")
    assert "'XY Date'" in line and "--time-origin YYYY-MM-DD" in line
    res = run(tmp_path, capsys, BASIC, **{"--series": "Dataset 4", "--time-origin": "2020-01-01"})
    assert res.rc == 0, res.err
    t, y = _times_values(res)
    # runtests.jl of WebPlotDigitizer.jl: dates 2020-01-01, -01-03, -02-01, -02-13; y 7, 2, 3, 1
    assert t == pytest.approx([0, 2, 31, 43], abs=0.1)
    assert y == pytest.approx([7, 2, 3, 1], abs=0.1)
    assert "digitised x = 2020-01-03" in res.rows()[1]["note"]


def test_real_log_axis_outside_design_then_allowed(tmp_path, capsys):
    res = run(tmp_path, capsys, BASIC, **{"--series": "Dataset 3"})
    line = assert_refused(res, "outside the design of study yi2022", where=f"{BASIC}:datasetColl[3].data[")
    assert "time 100 day" in line and "--allow-outside-design" in line
    res = run(tmp_path, capsys, BASIC, **{"--series": "Dataset 3", "--allow-outside-design": True})
    assert res.rc == 0, res.err
    assert res.err.startswith("nadfit: warning: ") and "2 time(s) outside the design" in res.err
    t, y = _times_values(res)
    assert t == pytest.approx([1, 10, 100, 1000], rel=0.01)
    assert y == pytest.approx([7, 2, 3, 1], abs=0.1)
    assert "imported with --allow-outside-design" in res.rows()[3]["note"]


def test_real_bar_axis(tmp_path, capsys):
    res = run(tmp_path, capsys, BASIC, **{"--series": "Dataset 1"})
    assert_refused(res, "is a bar chart (bars Bar0, Bar1, Bar2, Bar3); give the time of each bar with --bar-times")
    res = run(tmp_path, capsys, BASIC, **{"--series": "Dataset 1", "--bar-times": "Bar0=0;Bar1=7;Bar2=30;Bar3=60"})
    assert res.rc == 0, res.err
    t, y = _times_values(res)
    assert t == [0, 7, 30, 60]
    assert y == pytest.approx([10, 2, 5, 11], abs=0.1)


def test_real_polar_and_negative_and_listing(tmp_path, capsys):
    line = assert_refused(run(tmp_path, capsys, BASIC, **{"--series": "Dataset 2"}), "polar axes give a radius")
    assert "'Dataset 2' is on PolarAxes 'Polar'" in line
    # the first XY point lies a hair left of x = 0
    assert_refused(run(tmp_path, capsys, BASIC, **{"--series": "Dataset 0"}), "is negative")
    line = assert_refused(run(tmp_path, capsys, BASIC), "choose one with --series")
    assert "'Dataset 2' (cannot be imported)" in line and "'Dataset 4'" in line


def test_real_time_of_day_and_datetime(tmp_path, capsys):
    res = run(tmp_path, capsys, DATETIME, **{"--series": "D1", "--y-unit": "%"})
    line = assert_refused(res, "has a time-of-day x axis")
    assert "--time-origin HH:MM" in line
    res = run(tmp_path, capsys, DATETIME, **{"--series": "D1", "--time-origin": "10:00", "--x-unit": "h",
                                             "--y-unit": "%"})
    assert res.rc == 0, res.err
    t, y = _times_values(res)
    # runtests.jl: 10:01:03, 10:02:03, 11:03:04, 13:10:03 (within 10 s below) and y 1, 10, -3, 3
    assert t == pytest.approx([1.05 / 60, 2.05 / 60, 1 + 3.07 / 60, 3 + 10.05 / 60], abs=25 / 3600)
    assert y == pytest.approx([1, 10, -3, 3], abs=0.1)
    res = run(tmp_path, capsys, DATETIME, **{"--series": "D2", "--time-origin": "2020-09-01 10:00",
                                             "--x-unit": "min", "--y-unit": "%"})
    assert res.rc == 0, res.err
    t, y = _times_values(res)
    assert t == pytest.approx([1.05, 2.05, 63.07, 190.05], abs=0.5)
    assert y == pytest.approx([-1, 6, 3, -10], abs=0.1)
    res = run(tmp_path, capsys, DATETIME, **{"--series": "D2", "--time-origin": "10:00", "--y-unit": "%"})
    assert_refused(res, "has a date x axis (2020-09-01 10:01 ... 2020-09-01 13:09) but --time-origin is a time of day")


def test_real_project_tar(tmp_path, capsys):
    res = run(tmp_path, capsys, DEFAULT_TAR, **{"--series": "Dataset 1"})
    assert res.rc == 0, res.err
    assert len(res.rows()) == 103
    # WPD's own stored values are reproduced from the pixels
    with tarfile.open(DEFAULT_TAR) as tf:
        doc = json.load(tf.extractfile("wpd_project/wpd.json"))
    series = {s.name: s for s in read_wpd(str(DEFAULT_TAR))}
    for ds in doc["datasetColl"]:
        got = sorted(series[ds["name"]].points)
        want = sorted(tuple(p["value"]) for p in ds["data"])
        assert _flat(got) == pytest.approx(_flat(want), rel=1e-12, abs=1e-12)
    res = run(tmp_path, capsys, DEFAULT_TAR, **{"--series": "Dataset 2"})
    assert_refused(res, "negative value -0.0288946 where a non-negative quantity is expected",
                   where=f"{DEFAULT_TAR}[wpd_project/wpd.json]:datasetColl[1].data[4]")
    assert_refused(run(tmp_path, capsys, WPD / "wpdjl_no_wpd.tar"), "no wpd.json in the archive")


@pytest.mark.parametrize("member", [BASIC, DATETIME])
def test_real_members_read_the_same_inside_a_tar(tmp_path, member):
    tar = tmp_path / "project.tar"
    with tarfile.open(tar, "w", format=tarfile.USTAR_FORMAT) as tf:
        for name, data in (("proj/info.json", b'{"version":[4,0],"json":"wpd.json","images":["image.png"]}'),
                           ("proj/wpd.json", member.read_bytes()), ("proj/image.png", b"\x89PNG")):
            ti = tarfile.TarInfo(name)
            ti.size = len(data)
            tf.addfile(ti, io.BytesIO(data))
    a = [(s.name, s.points, s.refusal is None) for s in read_wpd(str(member))]
    b = [(s.name, s.points, s.refusal is None) for s in read_wpd(str(tar))]
    assert a == b


def test_real_values_equal_wpd_stored_values():
    """Pixels -> data with WPD's algebra gives WPD's own stored ``value`` (dates in ms, bars)."""
    for f in (BASIC, DATETIME):
        doc = json.loads(f.read_text())
        series = {s.name: s for s in read_wpd(str(f))}
        for ds in doc["datasetColl"]:
            s = series[ds["name"]]
            if s.refusal is not None:
                assert ds["axesName"] == "Polar"
                continue
            if s.x_kind == "label":
                assert [y for _, y in s.points] == pytest.approx([p["value"][0] for p in ds["data"]], rel=1e-12)
                continue
            want = sorted(tuple(p["value"]) for p in ds["data"])
            if s.x_kind == "time":   # WPD adds the day it ran on; the import keeps the time of day
                want = sorted((x % 86_400_000, y) for x, y in want)
            assert _flat(sorted(s.points)) == pytest.approx(_flat(want), rel=1e-12, abs=1e-3)   # ms


# ------------------------------------------------------------------------------------------
# synthetic stand-ins for the real files that cannot be redistributed, and other dialects/axes
# ------------------------------------------------------------------------------------------

# file, options, expected rows (int) or (message fragment, "file:row:field" suffix or None)
CASES = {
    # like #1: 8 datasets, x is temperature
    "several_datasets": ("xy_several_datasets_negative_x.json", {}, ("choose one with --series", None)),
    "several_datasets_negative_x": ("xy_several_datasets_negative_x.json", {"--series": "0ft"},
                                    ("digitised time -35 day of series '0ft' is negative", "datasetColl[3].data[0]")),
    # like #2: points sharing x -> the statistic must be said
    "autodetect_shared_x": ("xy_v40_autodetect_metadata.json", {},
                            ("2 points of series 'Default Dataset' have the same x", "datasetColl[0].data[")),
    "autodetect_points": ("xy_v40_autodetect_metadata.json", {"--replicates": "points"}, 9),
    # like #3
    "log_miscalibrated": ("logx_miscalibrated.json", {},
                          (("mis-calibrated axes 'XY': the X1->X2 and Y1->Y2 calibration points lie along "
                            "nearly the same line"), "axesColl[0].calibrationPoints")),
    # like #4
    "shared_origin": ("xy_shared_origin_2datasets.json", {"--series": "Dataset 1"}, 6),
    # like #5
    "all_axes_xy": ("wpd4_all_axis_types.json", {"--series": "xy data"}, 6),
    "all_axes_bar": ("wpd4_all_axis_types.json", {"--series": "bar data", "--bar-times": "Bar0=0;Bar1=14;Bar2=60"}, 3),
    "all_axes_polar": ("wpd4_all_axis_types.json", {"--series": "polar data"},
                       ("dataset 'polar data' is on PolarAxes 'Polar': polar axes give", "axesColl[2]")),
    "all_axes_ternary": ("wpd4_all_axis_types.json", {"--series": "ternary data"},
                         ("is on TernaryAxes 'Ternary': ternary axes give three fractions", "axesColl[3]")),
    "all_axes_image": ("wpd4_all_axis_types.json", {"--series": "image data"},
                       ("is on ImageAxes 'Image': image axes give pixel positions", "axesColl[5]")),
    "all_axes_listing": ("wpd4_all_axis_types.json", {},
                         ("'polar data' (cannot be imported), 'ternary data' (cannot be imported)", None)),
    # like #6, #7
    "wpd3_xy": ("wpd3_xy.json", {"--series": "blue"}, 6),
    "wpd3_bar": ("wpd3_bar.json", {"--bar-times": "Bar0=0;Bar1=7;Bar2=14;Bar3=28;Bar4=60"}, 5),
    # like #11: the ragged last row repeats a point of "Dataset 1"
    "all_datasets_repeat": ("all_datasets_3.csv", {"--series": "Dataset 1"},
                            ("have the same x as another point", "8:Dataset 1 X")),
    "all_datasets_ok": ("all_datasets_3.csv", {"--series": "Dataset 2"}, 6),
    # like #12: times up to 2210 days in a 60-day trial
    "ragged_logx_outside": ("all_datasets_ragged_logx.csv", {"--series": "13B"},
                            (("time 86.3 day of series '13B' (and 1 later time) is outside the design of "
                              "study yi2022, 0 to 60 days"), "5:13B X")),
    "ragged_logx_allowed": ("all_datasets_ragged_logx.csv", {"--series": "34B v2"}, 3),
    # like #13, #14, #15
    "comma_space": ("single_comma_space.csv", {}, 6),
    "semicolon": ("single_semicolon.csv", {}, 6),
    "semicolon_decimal_comma": ("single_semicolon_decimal_comma.csv", {}, 6),
    # like #16
    "date_csv_no_origin": ("single_date_x_header.csv", {},
                           ("has a date x axis (2021-03-01 ... 2021-04-30) that cannot be mapped to study time",
                            "DAY")),
    "date_csv_replicates": ("single_date_x_header.csv", {"--time-origin": "2021-03-01"},
                            ("12 points of series 'single_date_x_header' have the same x", "2:DAY")),
    "date_csv_mean_sd": ("single_date_x_header.csv", {"--time-origin": "2021-03-01", "--replicates": "mean-sd"}, 12),
    # like #17: no column is dropped
    "six_columns": ("no_header_6col.csv", {},
                    (("found 3: 'no_header_6col [columns 1-2]', 'no_header_6col [columns 3-4]', "
                      "'no_header_6col [columns 5-6]'"), None)),
    "six_columns_pair": ("no_header_6col.csv", {"--series": "no_header_6col [columns 5-6]"}, 6),
    # other dialects and axes
    "comma": ("single_comma.csv", {}, 6),
    "semicolon_space": ("single_semicolon_space.csv", {}, 6),
    "tab": ("single_tab.tsv", {}, 6),
    "tab_decimal_comma": ("single_tab_decimal_comma.txt", {}, 6),
    "bar_csv": ("single_bar_labels.csv", {"--bar-times": "Bar0=0;Bar1=7;Bar2=14"}, 3),
    "bar_csv_unmapped": ("single_bar_labels.csv", {"--bar-times": "Bar0=0;Bar1=7"},
                         ("bar 'Bar2' of series 'single_bar_labels' has no time in --bar-times", "3:column 1")),
    "time_of_day_csv": ("single_time_of_day.csv", {"--time-origin": "08:00", "--x-unit": "h"}, 6),
    "all_datasets_polar": ("all_datasets_xy_bar_polar.csv", {"--series": "polar"},
                           ("dataset 'polar' has PolarAxes columns r, θ: polar axes give", "2:column 5")),
    "all_datasets_bar": ("all_datasets_xy_bar_polar.csv", {"--series": "bars", "--bar-times": "Bar0=0;Bar1=7;Bar2=14"},
                         3),
    "all_datasets_xy": ("all_datasets_xy_bar_polar.csv", {"--series": "mean"}, 6),
    "point_groups": ("xy_point_groups.json", {"--error": "sd"}, 12),
    "loglog_norotation": ("xy_loglog_norotation.json", {}, 6),
    "ambiguous_comma_sep": ("ambiguous_decimal_comma_comma_sep.csv", {},
                            ("every number is a whole number", "1")),
    "ambiguous_comma_space": ("ambiguous_decimal_comma_comma_space.csv", {},
                              ("decimal commas mixed with ', ' separators", "1")),
    "ambiguous_mixed": ("ambiguous_mixed_decimal.csv", {}, ("mixed decimal marks: ',' in row 1 and '.' in row 2", "2")),
    "odd_columns": ("odd_three_columns.csv", {}, ("3 columns cannot be split into x,y pairs", "1")),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_kind(case, tmp_path, capsys):
    name, opts, expect = CASES[case]
    opts = dict(opts)
    if case == "ragged_logx_allowed":
        opts["--allow-outside-design"] = True
    res = run(tmp_path, capsys, SYN / name, **opts)
    if isinstance(expect, int):
        assert res.rc == 0, res.err
        assert len(res.rows()) == expect
        assert res.out.strip().endswith(f"wrote {expect} rows to {res.path}")
    else:
        fragment, where = expect
        assert_refused(res, fragment, where=f"{SYN / name}:{where}" if where else f"{SYN / name}")


def test_every_synthetic_file_has_a_case():
    used = {v[0] for v in CASES.values()}
    assert used == {p.name for p in SYN.iterdir()}


@pytest.mark.parametrize("name", ["single_comma.csv", "single_comma_space.csv", "single_semicolon.csv",
                                  "single_semicolon_space.csv", "single_semicolon_decimal_comma.csv",
                                  "single_tab.tsv", "single_tab_decimal_comma.txt"])
def test_dialects_read_the_same_values(name):
    (s,) = read_wpd(str(SYN / name))
    assert s.points == list(zip(make_synthetic.T, make_synthetic.Y))


def test_projects_reproduce_the_drawn_values():
    for name, series in (("wpd3_xy.json", "blue"), ("wpd4_all_axis_types.json", "xy data")):
        s = next(x for x in read_wpd(str(SYN / name)) if x.name == series)
        assert [p[0] for p in s.points] == pytest.approx(make_synthetic.T, abs=1e-3)
        assert [p[1] for p in s.points] == pytest.approx(make_synthetic.Y, abs=1e-3)
    bars = next(x for x in read_wpd(str(SYN / "wpd3_bar.json")))
    assert bars.labels == [f"Bar{k}" for k in range(5)]
    assert [p[1] for p in bars.points] == pytest.approx([20.0, 26.5, 31.0, 38.2, 43.5])
    groups = {s.name: s for s in read_wpd(str(SYN / "xy_point_groups.json"))}
    assert set(groups) == {"NMN 300 (Mean)", "NMN 300 (Upper)", "NMN 300 (Lower)"}
    assert [p[1] for p in groups["NMN 300 (Upper)"].points] == pytest.approx(
        [y + s for y, s in zip(make_synthetic.Y, make_synthetic.SD)], abs=1e-3)


def test_no_rotation_snaps_like_wpd():
    """noRotation: WPD ignores the 0.4-degree skew, x = f(px) only, y = f(py) only (log10 space)."""
    doc = json.loads((SYN / "xy_loglog_norotation.json").read_text())
    cal = doc["axesColl"][0]["calibrationPoints"]
    (s,) = read_wpd(str(SYN / "xy_loglog_norotation.json"))
    want = []
    for p in doc["datasetColl"][0]["data"]:
        lx = (p["x"] - cal[0]["px"]) / (cal[1]["px"] - cal[0]["px"]) * 2          # log10(100/1)
        ly = (p["y"] - cal[2]["py"]) / (cal[3]["py"] - cal[2]["py"]) * 3          # log10(1000/1)
        want.append((10 ** lx, 10 ** ly))
    assert _flat(s.points) == pytest.approx(_flat(sorted(want)), rel=1e-9)
    # and the skew is visible: values differ a little from the drawn ones
    assert not math.isclose(s.points[-1][1], 5.0 * 56 ** 0.8, rel_tol=1e-4)
