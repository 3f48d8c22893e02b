"""Write the synthetic WebPlotDigitizer files in ``tests/datasets/wpd/synthetic/``.

Run ``python tests/datasets/wpd/make_synthetic.py`` after changing this script; a test checks
that the committed files equal what it writes. Each file reproduces the structure of one kind of
real WPD output (see ``README.md`` next to this script) with invented figures, so no third-party
data is copied. Pixel coordinates come from a known data -> pixel map, so tests can compare the
imported values with the values the figure was drawn from.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

OUT = Path(__file__).resolve().parent / "synthetic"

# the time course drawn in the synthetic figures (days, nmol/L, SD)
T = [0.0, 7.0, 14.0, 28.0, 42.0, 60.0]
Y = [20.0, 26.5, 31.0, 38.2, 41.0, 43.5]
SD = [3.0, 3.5, 4.2, 5.0, 5.1, 6.0]


class Fig:
    """A plot box (pixels) with linear or log10 axes, optionally rotated (a skewed scan)."""

    def __init__(self, x0, x1, y0, y1, *, log_x=False, log_y=False, rot_deg=0.0,
                 box=(80.0, 460.0, 560.0, 40.0)):
        self.x0, self.x1, self.y0, self.y1 = x0, x1, y0, y1
        self.log_x, self.log_y = log_x, log_y
        self.rot = math.radians(rot_deg)
        self.left, self.bottom, self.right, self.top = box

    def _t(self, v, lo, hi, log):
        f = math.log10 if log else (lambda z: z)
        return (f(v) - f(lo)) / (f(hi) - f(lo))

    def px(self, x, y):
        u = self.left + self._t(x, self.x0, self.x1, self.log_x) * (self.right - self.left)
        v = self.bottom + self._t(y, self.y0, self.y1, self.log_y) * (self.top - self.bottom)
        du, dv = u - self.left, v - self.bottom
        c, s = math.cos(self.rot), math.sin(self.rot)
        return round(self.left + du * c - dv * s, 4), round(self.bottom + du * s + dv * c, 4)

    def calibration(self, fmt=str, yfill="0", xfill="0"):
        """WPD's four XY calibration points: X1, X2 on the x axis, Y1, Y2 on the y axis."""
        pts = []
        for x, y, dx, dy in ((self.x0, self.y0, fmt(self.x0), yfill), (self.x1, self.y0, fmt(self.x1), yfill),
                             (self.x0, self.y0, xfill, fmt(self.y0)), (self.x0, self.y1, xfill, fmt(self.y1))):
            px, py = self.px(x, y)
            pts.append({"px": px, "py": py, "dx": dx, "dy": dy, "dz": None})
        return pts

    def data(self, xs, ys):
        return [{"x": p[0], "y": p[1], "value": [x, y]} for x, y in zip(xs, ys) for p in [self.px(x, y)]]


def g(v):
    return f"{v:g}"


def xy_axes(name, fig, *, version42=True, **kw):
    ax = {"name": name, "type": "XYAxes", "isLogX": fig.log_x, "isLogY": fig.log_y}
    if version42:
        ax["noRotation"] = kw.pop("noRotation", False)
    ax["calibrationPoints"] = fig.calibration(**kw)
    return ax


def dataset(name, axes, data, *, color=True, **extra):
    ds = {"name": name, "axesName": axes}
    if color:
        ds["colorRGB"] = [200, 0, 0, 255]
    ds.update({"metadataKeys": [], "data": data, "autoDetectionData": None})
    ds.update(extra)
    return ds


def files() -> dict[str, str]:
    out: dict[str, str] = {}

    def js(name, obj):
        out[name] = json.dumps(obj, separators=(",", ":"))

    # like #1: WPD 4.2, one linear XY axes, several datasets, x is not time (negative values)
    f1 = Fig(-40, 50, 400, 2000)
    temps = [-35, -20, -5, 10, 25, 40, 50]
    js("xy_several_datasets_negative_x.json", {
        "version": [4, 2], "axesColl": [xy_axes("XY", f1)],
        "datasetColl": [dataset(f"{alt}ft", "XY", f1.data(temps, [1800 - 9 * t - alt / 20 for t in temps]))
                        for alt in (6000, 4000, 2000, 0)],
        "measurementColl": []})

    # like #2: WPD 4.0 (no noRotation, no colorRGB), auto-detected points with per-point metadata
    # ("area", "moment"), filler dy on the X points and dx on the Y points, two points in one column
    f2 = Fig(0, 50, 0, 40)
    xs2 = [1.5, 1.5, 4.4, 8.9, 12.7, 17.2, 30.3, 34.2, 45.0]
    ys2 = [3.1, 14.1, 6.2, 10.4, 14.3, 17.6, 7.3, 2.7, 27.9]
    data2 = f2.data(xs2, ys2)
    for k, d in enumerate(data2):
        d["metadata"] = [12 + k, 0.5 * k]
    js("xy_v40_autodetect_metadata.json", {
        "version": [4, 0], "axesColl": [xy_axes("XY", f2, version42=False, yfill="7", xfill="3")],
        "datasetColl": [dataset("Default Dataset", "XY", data2, color=False, metadataKeys=["area", "moment"],
                                autoDetectionData={"fgColor": [0, 0, 255], "bgColor": [255, 255, 255],
                                                   "mask": [], "colorDetectionMode": "fg", "colorDistance": 120,
                                                   "algorithm": {"algoType": "BlobExtractorAlgo", "minDia": 0,
                                                                 "maxDia": 5000},
                                                   "name": 0, "imageWidth": 640, "imageHeight": 480})],
        "measurementColl": []})

    # like #3: log x axes whose two Y points were clicked along the top edge, not up the y axis
    cal3 = [{"px": 70.5, "py": 440.2, "dx": ".01", "dy": "-1", "dz": None},
            {"px": 560.3, "py": 443.9, "dx": "1e7", "dy": "-1", "dz": None},
            {"px": 561.0, "py": 38.7, "dx": ".01", "dy": "-1", "dz": None},
            {"px": 72.4, "py": 35.1, "dx": "1e7", "dy": "3.5", "dz": None}]
    data3 = [{"x": 140.0 + 11 * k, "y": 70.0 + 15 * k + (k % 3), "value": [0, 300 + 90 * k]} for k in range(8)]
    js("logx_miscalibrated.json", {
        "version": [4, 2],
        "axesColl": [{"name": "XY", "type": "XYAxes", "isLogX": True, "isLogY": False, "noRotation": False,
                      "calibrationPoints": cal3}],
        "datasetColl": [dataset("Default Dataset", "XY", data3)], "measurementColl": []})

    # like #4: calibration points X1 and Y1 on the same pixel (shared origin), values written ".5"
    f4 = Fig(0, 0.5, 0, 0.2)
    cal4 = f4.calibration(fmt=lambda v: "0" if v == 0 else f"{v:g}".lstrip("0"))
    xs4 = [0.02, 0.1, 0.2, 0.3, 0.4, 0.48]
    js("xy_shared_origin_2datasets.json", {
        "version": [4, 2],
        "axesColl": [{"name": "XY", "type": "XYAxes", "isLogX": False, "isLogY": False, "noRotation": False,
                      "calibrationPoints": cal4}],
        "datasetColl": [dataset("Dataset 0", "XY", f4.data(xs4, [0.11 + 0.1 * x for x in xs4])),
                        dataset("Dataset 1", "XY", f4.data(xs4, [0.08 + 0.08 * x for x in xs4]))],
        "measurementColl": []})

    # like #5: WPD 4.0 project with every axes type, one dataset each, an empty map dataset, measurements
    f5 = Fig(0, 60, 0, 60)
    bar_cal = [{"px": 80.0, "py": 460.0, "dx": 0, "dy": "0", "dz": None},
               {"px": 80.0, "py": 60.0, "dx": 0, "dy": "50", "dz": None}]
    bars = [{"x": 150.0 + 100 * k, "y": 460.0 - 8 * v, "metadata": [f"Bar{k}"], "value": [v]}
            for k, v in enumerate([20.0, 31.0, 43.5])]
    js("wpd4_all_axis_types.json", {
        "version": [4, 0],
        "axesColl": [
            xy_axes("xy axes", f5, version42=False),
            {"name": "Bar", "type": "BarAxes", "isLog": False, "calibrationPoints": bar_cal},
            {"name": "Polar", "type": "PolarAxes", "isDegrees": True, "isClockwise": False, "isLog": False,
             "calibrationPoints": [{"px": 300, "py": 300, "dx": 0, "dy": 0, "dz": None},
                                   {"px": 500, "py": 300, "dx": 10, "dy": 0, "dz": None},
                                   {"px": 300, "py": 100, "dx": 10, "dy": 90, "dz": None}]},
            {"name": "Ternary", "type": "TernaryAxes", "isRange100": False,
             "calibrationPoints": [{"px": 100, "py": 400, "dx": 0, "dy": 0, "dz": None},
                                   {"px": 500, "py": 400, "dx": 0, "dy": 0, "dz": None},
                                   {"px": 300, "py": 54, "dx": 0, "dy": 0, "dz": None}]},
            {"name": "Map", "type": "MapAxes", "scaleLength": 1, "unitString": "m",
             "calibrationPoints": [{"px": 100, "py": 400, "dx": 0, "dy": 0, "dz": None},
                                   {"px": 200, "py": 400, "dx": 0, "dy": 0, "dz": None}]},
            {"name": "Image", "type": "ImageAxes"}],
        "datasetColl": [
            {"name": "xy data", "axesName": "xy axes", "metadataKeys": [], "data": f5.data(T, Y)},
            {"name": "bar data", "axesName": "Bar", "metadataKeys": ["Label"], "data": bars},
            {"name": "polar data", "axesName": "Polar", "metadataKeys": [],
             "data": [{"x": 400, "y": 250, "value": [5.6, 26.6]}]},
            {"name": "ternary data", "axesName": "Ternary", "metadataKeys": [],
             "data": [{"x": 300, "y": 300, "value": [0.3, 0.3, 0.4]}]},
            {"name": "map data", "axesName": "Map", "metadataKeys": [], "data": []},
            {"name": "image data", "axesName": "Image", "metadataKeys": [],
             "data": [{"x": 120.5, "y": 210.5, "value": [120.5, 210.5]}]}],
        "measurementColl": [{"type": "Distance", "name": "Distance", "axesName": "Map",
                             "data": [[100, 60, 500, 60]]},
                            {"type": "Angle", "name": "Angle", "data": [[300, 300, 400, 300, 300, 200]]}]})

    # like #6 and #7: the WPD 3.x project format ({"wpd": {...}}), one XY and one bar chart
    f6 = Fig(0, 60, 0, 50)
    js("wpd3_xy.json", {"wpd": {
        "version": [3, 8], "axesType": "XYAxes", "axesParameters": {"isLogX": False, "isLogY": False},
        "calibration": f6.calibration(),
        "dataSeries": [{"name": "blue", "data": f6.data(T, Y), "metadataKeys": []},
                       {"name": "red", "data": f6.data(T, [y * 0.8 for y in Y]), "metadataKeys": []}],
        "distanceMeasurementData": [[80, 460, 560, 460]], "angleMeasurementData": None}})
    bar3 = [{"x": 150.0 + 100 * k, "y": 460.0 - 8 * v, "metadata": [f"Bar{k}"], "value": [v]}
            for k, v in enumerate([20.0, 26.5, 31.0, 38.2, 43.5])]
    js("wpd3_bar.json", {"wpd": {
        "version": [3, 8], "axesType": "BarAxes", "axesParameters": {"isLog": False},
        "calibration": bar_cal, "dataSeries": [{"name": "Default Dataset", "data": bar3, "metadataKeys": ["Label"]}],
        "distanceMeasurementData": None, "angleMeasurementData": None}})

    # point groups (WPD 4.3+): one dataset, tuples of (mean, upper, lower)
    f7 = Fig(0, 60, 0, 60)
    data7 = []
    for tup, (t, y, s) in enumerate(zip(T, Y, SD)):
        for grp, v in enumerate((y, y + s, y - s)):
            p = f7.px(t, v)
            data7.append({"x": p[0], "y": p[1], "tuple": tup, "group": grp, "value": [t, v]})
    js("xy_point_groups.json", {
        "version": [4, 2], "axesColl": [xy_axes("XY", f7)],
        "datasetColl": [dataset("NMN 300", "XY", data7, groupNames=["Mean", "Upper", "Lower"])],
        "measurementColl": []})

    # log-log axes, rotated 0.4 degrees, with noRotation (WPD snaps the map to the axes)
    f8 = Fig(1, 100, 1, 1000, log_x=True, log_y=True, rot_deg=0.4)
    tl = [1.0, 2.0, 7.0, 14.0, 28.0, 56.0]
    js("xy_loglog_norotation.json", {
        "version": [4, 2], "axesColl": [xy_axes("XY", f8, noRotation=True)],
        "datasetColl": [dataset("mean", "XY", f8.data(tl, [5.0 * t ** 0.8 for t in tl]))], "measurementColl": []})

    # CSV exports -------------------------------------------------------------------------------
    def rows(sep, dec=".", ys=Y, xs=T, end="\n"):
        def num(v):
            return repr(float(v)).replace(".", dec) if dec != "." else repr(float(v))
        return end.join(f"{num(x)}{sep}{num(y)}" for x, y in zip(xs, ys)) + end

    # like #11: "Export all datasets", the last row ragged and repeating the last point of Dataset 1
    lines = ["Default Dataset,,Dataset 1,,Dataset 2,", "X,Y,X,Y,X,Y"]
    for t, y in zip(T, Y):
        lines.append(f"{t + 0.1!r},{y!r},{t + 0.15!r},{y * 1.1!r},{t + 0.05!r},{y * 0.9!r}")
    lines.append(f",,{T[-1] + 0.15!r},{Y[-1] * 1.1!r},,")
    out["all_datasets_3.csv"] = "\n".join(lines) + "\n"

    # like #12: all-datasets export, four datasets of unequal length, x from a log axis (2 ... 2200)
    xl = [2.1, 3.4, 8.5, 13.6, 86.3, 137.3, 548.9, 1389.5, 2210.7]
    cols = {"7B": xl, "70B": xl, "13B": xl[2:6], "34B v2": xl[:3]}
    lines = [",".join(f"{k}," for k in cols).rstrip(",") + ",", ",".join("X,Y" for _ in cols)]
    for i in range(len(xl)):
        cells = []
        for k, v in cols.items():
            cells += [repr(v[i]), repr(round(6 - math.log10(v[i]) * (1.2 if k == "7B" else 1.3), 6))] \
                if i < len(v) else ["", ""]
        lines.append(",".join(cells))
    out["all_datasets_ragged_logx.csv"] = "\n".join(lines) + "\n"

    # like #13, #14, #15: single-dataset data-table exports in three WPD dialects
    out["single_comma_space.csv"] = rows(", ")
    out["single_semicolon.csv"] = rows(";")
    out["single_semicolon_decimal_comma.csv"] = rows("; ", ",", end="\n")[:-1]   # no final newline
    # like #16: a date x axis as WPD formats it (yyyy/mm/dd), header added by hand, two points a day
    days = ["2021/03/01", "2021/03/08", "2021/03/15", "2021/03/29", "2021/04/12", "2021/04/30"]
    lines = ["DAY, LEVEL"]
    for d, y, s in zip(days, Y, SD):
        lines += [f"{d}, {y - s!r}", f"{d}, {y + s!r}"]
    out["single_date_x_header.csv"] = "\n".join(lines) + "\n"
    # like #17: an all-datasets export whose two header rows were deleted: 3 x,y pairs, no names
    lines = [f"{t!r},{y!r},{t + 0.2!r},{y * 1.2!r},{t + 0.3!r},{y * 0.7!r}" for t, y in zip(T, Y)]
    out["no_header_6col.csv"] = "\n".join(lines) + "\n"

    # more dialects and axes
    out["single_comma.csv"] = rows(",")
    out["single_semicolon_space.csv"] = rows("; ")
    out["single_tab.tsv"] = rows("\t")
    out["single_tab_decimal_comma.txt"] = rows("\t", ",")
    out["single_bar_labels.csv"] = "".join(f"Bar{k}, {y!r}\n" for k, y in enumerate(Y[:3]))
    out["single_time_of_day.csv"] = "".join(f"{h}, {y!r}\n" for h, y in zip(
        ["08:00", "08:30", "09:00", "10:00", "12:00", "16:00"], Y))
    out["all_datasets_xy_bar_polar.csv"] = (
        "mean,,bars,,polar,\nX,Y,Label,Y,r,θ\n"
        + "".join(f"{t!r},{y!r},{f'Bar{k}' if k < 3 else ''},{Y[k] if k < 3 else ''},{k + 1},{30 * k}\n"
                  for k, (t, y) in enumerate(zip(T, Y))))
    # refused: ambiguous or lossy layouts
    # decimal commas written with ',' as column separator (WPD does not, a user can): never guessed
    out["ambiguous_decimal_comma_comma_sep.csv"] = "".join(
        f"{t + 0.3365973072215422!r},{y + 0.1300160513643647!r}\n".replace(".", ",") for t, y in zip(T, Y))
    out["ambiguous_decimal_comma_comma_space.csv"] = "".join(
        f"{t + 0.5:g}, {y + 0.25:g}\n".replace(".", ",") for t, y in zip(T, Y))
    out["ambiguous_mixed_decimal.csv"] = "0,5;20,1\n7.5;26.5\n14;31\n"
    out["odd_three_columns.csv"] = "".join(f"{t!r},{y!r},{s!r}\n" for t, y, s in zip(T, Y, SD))
    return out


def main() -> None:
    OUT.mkdir(exist_ok=True)
    for name, text in files().items():
        (OUT / name).write_text(text, encoding="utf-8", newline="")


if __name__ == "__main__":
    main()
