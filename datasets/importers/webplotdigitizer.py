"""Turn WebPlotDigitizer (WPD) exports into evidence rows with grade ``digitised``.

Inputs (what WPD 3.x and 4.x actually write)
-------------------------------------------
* Project ``.tar`` (``File > Save Project``): an uncompressed tar holding ``<name>/info.json``,
  ``<name>/wpd.json`` and the image(s). Only ``wpd.json`` is read, in memory (nothing is
  extracted to disk; size and member-count limits apply).
* Project JSON (WPD 4: ``version``, ``axesColl``, ``datasetColl``; WPD 3: one ``{"wpd": {...}}``
  object with ``axesType``, ``calibration`` and ``dataSeries``). Pixels are converted here with
  WPD's own calibration algebra, not taken from the stored ``value``:

  - ``XYAxes``: the 2x2 affine map fitted to four calibration points (log10 space on log axes,
    WPD's ``noRotation`` snapping honoured). Calibration values written as dates
    (``2020/01/11``, ``2020/09/01 11:00``) make a date axis, values like ``10:25`` a time-of-day
    axis; both need ``--time-origin`` to become study time.
  - ``BarAxes``: one value per bar, projected on the line through the two calibration points;
    each bar keeps its label (``Bar0``... unless renamed in WPD).
  - Polar, ternary, map, image and circular-chart-recorder axes do not give a time and a value;
    a dataset on them is refused (with a message naming the axes and the dataset) only when it
    is the one selected, so it never blocks datasets on other axes.
* CSV exports, already in data units: the data-table export of one dataset (no header; column
  separator ``,`` ``, `` ``;`` ``; `` or tab; decimal point or, with ``;``/tab, decimal comma;
  date columns as WPD formats them) and "Export all datasets" (``wpd_datasets.csv``: row 1
  dataset names, row 2 axes labels such as ``X,Y`` or ``Label,Y``). A file without header rows
  and more than two columns is read as several x,y pairs, one series each.

Series whose name contains ``upper``/``lower`` (or ends with ``+``/``-``) are error-bar ends;
all others are point series (means). WPD point groups (``groupNames``) become one series per
group, named ``"<dataset> (<group>)"``. Each error value is the half-width ``(upper - lower) / 2``
when both ends exist, otherwise ``|end - mean|``, matched to the mean with the nearest x.

Every refusal is a :class:`UserError` (one line ``file:row:field: message``, exit code 2) and
nothing is written.
"""

from __future__ import annotations

import csv
import itertools
import json
import math
import os
import re
import statistics
import tarfile
import tempfile
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

from nadfit.datasets.errors import UserError
from nadfit.datasets.schema import (
    COMPOUNDS,
    DOSE_UNITS,
    EVIDENCE_COLUMNS,
    MATRICES,
    ROUTES,
    TIME_UNITS,
    UNITS,
    Problem,
    split_multi,
)

MAX_TEXT_BYTES = 50 * 1024 * 1024        # a project JSON or CSV export
MAX_INFO_BYTES = 1024 * 1024             # info.json inside a project tar
MAX_TAR_MEMBERS = 10_000
MS_PER_DAY = 86_400_000.0
# a data point further than this many calibration spans from the calibration points means the
# calibration is wrong (real figures put their tick marks on the plotted range)
MAX_SPANS_OUTSIDE = 100.0
# X1->X2 and Y1->Y2 closer than this angle (degrees): the axes were calibrated along one line
MIN_AXES_ANGLE_DEG = 20.0
# width of a column of replicate points, as a fraction of the x range (see _clusters)
SHARED_X_FRACTION = 0.01
# times up to this factor beyond the study's last design day are accepted (visit windows)
DESIGN_MARGIN = 1.10
REPLICATE_MODES = ("mean-sd", "mean-se", "points")


@dataclass
class Series:
    """One digitised dataset (or one point group of it).

    ``points`` are data coordinates sorted by x. ``x_kind`` says what x is: ``number`` (data
    units), ``date`` (ms since 1970-01-01 UTC), ``time`` (ms since midnight) or ``label`` (bar
    charts: x is the bar's index and ``labels`` holds the bar labels). ``where`` gives each
    point's (row, field) in the input, for messages. ``refusal`` is set when the dataset cannot be
    imported; it is raised only if the dataset is selected.
    """

    name: str
    points: list[tuple[float, float]]
    axes: str = ""
    x_kind: str = "number"
    labels: list[str] | None = None
    where: list[tuple[int | None, str | None]] = field(default_factory=list)
    file: str = ""
    group_of: str | None = None
    refusal: UserError | None = None
    x_text: list[str] | None = None   # how x was written (dates), for notes
    y_field: str | None = None         # CSV: the y column's name (``where`` names the x column)

    def at(self, i: int) -> tuple[int | None, str | None]:
        return self.where[i] if i < len(self.where) else (None, None)


def _sorted_series(s: Series) -> Series:
    if s.x_kind == "label":
        return s
    order = sorted(range(len(s.points)), key=lambda i: s.points[i])
    return replace(s, points=[s.points[i] for i in order],
                   where=[s.where[i] for i in order] if s.where else [],
                   x_text=[s.x_text[i] for i in order] if s.x_text else None)


# ------------------------------------------------------------------------------------------
# numbers and WPD dates
# ------------------------------------------------------------------------------------------

_NUM_RE = re.compile(r"^[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?$")
_DATE_RE = re.compile(r"^(\d{4})[/-](\d{1,2})(?:[/-](\d{1,2}))?"
                      r"(?:[ T](\d{1,2})(?::(\d{1,2})(?::(\d{1,2}(?:\.\d+)?))?)?)?$")
_TIME_RE = re.compile(r"^(\d{1,2}):(\d{1,2})(?::(\d{1,2}(?:\.\d+)?))?$")
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def parse_wpd_date(text: str) -> tuple[str, float] | None:
    """WPD's date/time notation -> (``"date"``, ms since 1970 UTC) or (``"time"``, ms since midnight).

    WPD (``dateConversion.js``) writes dates as ``yyyy/mm/dd`` with optional ``hh``, ``hh:ii``,
    ``hh:ii:ss`` and times of day as ``hh:ii[:ss]``; ``yyyy-mm-dd`` is accepted as well.
    """
    s = str(text).strip()
    m = _DATE_RE.fullmatch(s)
    if m:
        y, mo, d, hh, mi, ss = m.groups()
        try:
            dt = datetime(int(y), int(mo), int(d or 1), tzinfo=UTC)
        except ValueError:
            return None
        h, mn, sec = int(hh or 0), int(mi or 0), float(ss or 0)
        if h > 23 or mn > 59 or sec >= 60:
            return None
        ms = (dt - _EPOCH) / timedelta(milliseconds=1) + ((h * 60 + mn) * 60 + sec) * 1000.0
        return "date", ms
    m = _TIME_RE.fullmatch(s)
    if m:
        h, mn, sec = int(m.group(1)), int(m.group(2)), float(m.group(3) or 0)
        if h > 23 or mn > 59 or sec >= 60:
            return None
        return "time", ((h * 60 + mn) * 60 + sec) * 1000.0
    return None


def format_ms(kind: str, ms: float) -> str:
    if kind == "time":
        sec = round(ms / 1000.0)
        return f"{sec // 3600:02d}:{sec % 3600 // 60:02d}:{sec % 60:02d}"
    dt = _EPOCH + timedelta(milliseconds=ms)
    return dt.strftime("%Y-%m-%d %H:%M") if (dt.hour or dt.minute) else dt.strftime("%Y-%m-%d")


def parse_time_origin(text: str) -> tuple[str, float]:
    """``--time-origin``: ``YYYY-MM-DD[ HH:MM[:SS]]`` (date axes) or ``HH:MM[:SS]`` (time-of-day axes)."""
    got = parse_wpd_date(text)
    if got is None:
        raise UserError(f"time origin {text!r} is not a date YYYY-MM-DD (optionally with HH:MM) "
                        f"or a time of day HH:MM", field="--time-origin")
    return got


def _strict_float(v) -> float | None:
    if isinstance(v, bool) or v is None:
        return None
    if isinstance(v, (int, float)):
        f = float(v)
    else:
        s = str(v).strip()
        if not _NUM_RE.fullmatch(s):
            return None
        f = float(s)
    return f if math.isfinite(f) else None


def _num(v, what: str, file: str, fieldname: str | None = None) -> float:
    f = _strict_float(v)
    if f is None:
        raise UserError(f"{what} {v!r} is not a finite number", file=file, field=fieldname)
    return f


# ------------------------------------------------------------------------------------------
# WPD calibrations
# ------------------------------------------------------------------------------------------


def _cal_value(v, what: str, file: str, fieldname: str) -> tuple[str, float]:
    """A calibration value: ("number", v) or a WPD date/time ("date"|"time", ms)."""
    f = _strict_float(v)
    if f is not None:
        return "number", f
    if isinstance(v, str):
        d = parse_wpd_date(v)
        if d is not None:
            return d
    raise UserError(f"{what} {v!r} is neither a number nor a WebPlotDigitizer date (yyyy/mm/dd) "
                    f"or time of day (hh:mm)", file=file, field=fieldname)


def _log10_axis(lo: float, hi: float, axis: str, file: str, fieldname: str) -> tuple[float, float, bool]:
    if lo < 0 and hi < 0:                         # WPD: a log axis of negative values
        return math.log10(-lo), math.log10(-hi), True
    if lo <= 0 or hi <= 0:
        raise UserError(f"log {axis} axis needs calibration values of one sign, not zero "
                        f"({lo:g}, {hi:g})", file=file, field=fieldname)
    return math.log10(lo), math.log10(hi), False


class XYCalibration:
    """WPD's XYAxes pixel -> data map (same algebra as ``wpd.XYAxes.processCalibration``)."""

    def __init__(self, points: list[dict], is_log_x: bool, is_log_y: bool, file: str = "<json>",
                 no_rotation: bool = False, path: str = "calibrationPoints", axes_name: str = "XY"):
        if not isinstance(points, list) or len(points) < 4 or not all(isinstance(p, dict) for p in points[:4]):
            n = len(points) if isinstance(points, list) else 0
            raise UserError(f"XY axes {axes_name!r} need 4 calibration points, found {n}", file=file, field=path)
        p = points[:4]
        px = [_num(p[i].get("px"), "pixel px", file, f"{path}[{i}].px") for i in range(4)]
        py = [_num(p[i].get("py"), "pixel py", file, f"{path}[{i}].py") for i in range(4)]
        kx1, xmin = _cal_value(p[0].get("dx"), "x calibration value", file, f"{path}[0].dx")
        kx2, xmax = _cal_value(p[1].get("dx"), "x calibration value", file, f"{path}[1].dx")
        ky1, ymin = _cal_value(p[2].get("dy"), "y calibration value", file, f"{path}[2].dy")
        ky2, ymax = _cal_value(p[3].get("dy"), "y calibration value", file, f"{path}[3].dy")
        if kx1 != kx2:
            raise UserError(f"x calibration values of axes {axes_name!r} mix a {kx1} and a {kx2} "
                            f"({p[0].get('dx')!r}, {p[1].get('dx')!r})", file=file, field=f"{path}[1].dx")
        if ky1 != "number" or ky2 != "number":
            raise UserError(f"axes {axes_name!r} have a date/time y axis ({p[2].get('dy')!r}, "
                            f"{p[3].get('dy')!r}); a measured value cannot be a date", file=file,
                            field=f"{path}[2].dy")
        self.x_kind = kx1
        self.x_cal_text = (str(p[0].get("dx")).strip(), str(p[1].get("dx")).strip())
        self.y_cal_text = (str(p[2].get("dy")).strip(), str(p[3].get("dy")).strip())
        self.log_x, self.log_y = bool(is_log_x), bool(is_log_y)
        if self.log_x and self.x_kind != "number":
            raise UserError(f"axes {axes_name!r}: a log scale on a date/time axis is not supported",
                            file=file, field=f"{path}[0].dx")
        self.neg_x = self.neg_y = False
        if self.log_x:
            xmin, xmax, self.neg_x = _log10_axis(xmin, xmax, "x", file, f"{path}[0].dx")
        if self.log_y:
            ymin, ymax, self.neg_y = _log10_axis(ymin, ymax, "y", file, f"{path}[2].dy")
        x1, x2, x3, x4 = px
        y1, y2, y3, y4 = py
        if xmin == xmax or ymin == ymax:
            raise UserError(f"degenerate calibration of axes {axes_name!r}: the two "
                            f"{'x' if xmin == xmax else 'y'} calibration values are equal",
                            file=file, field=path)
        # X1->X2 and Y1->Y2 nearly parallel: the y points were not placed up the y axis (or v.v.)
        ux, uy = (x2 - x1, y2 - y1), (x4 - x3, y4 - y3)
        lx, ly = math.hypot(*ux), math.hypot(*uy)
        if lx == 0 or ly == 0:
            raise UserError(f"degenerate calibration of axes {axes_name!r}: the two "
                            f"{'X' if lx == 0 else 'Y'} calibration points are the same pixel",
                            file=file, field=path)
        angle = math.degrees(math.asin(min(1.0, abs(ux[0] * uy[1] - ux[1] * uy[0]) / (lx * ly))))
        if angle < MIN_AXES_ANGLE_DEG:
            raise UserError(f"mis-calibrated axes {axes_name!r}: the X1->X2 and Y1->Y2 calibration "
                            f"points lie along nearly the same line ({angle:.1f} degrees apart), so the "
                            f"{'Y' if abs(uy[0]) > abs(uy[1]) else 'X'} points were not placed along their "
                            f"axis; re-calibrate the axes in WebPlotDigitizer", file=file, field=path)
        # dat_mat = [[xmin-xmax, 0], [0, ymin-ymax]], pix_mat = [[x1-x2, x3-x4], [y1-y2, y3-y4]]
        a, b, c, d = x1 - x2, x3 - x4, y1 - y2, y3 - y4
        det = a * d - b * c
        if abs(det) < 1e-12:
            raise UserError(f"degenerate calibration of axes {axes_name!r} (calibration points on one line)",
                            file=file, field=path)
        inv = (d / det, -b / det, -c / det, a / det)
        dx, dy = xmin - xmax, ymin - ymax
        am = [dx * inv[0], dx * inv[1], dy * inv[2], dy * inv[3]]
        if no_rotation:  # WPD snaps the map to 0 or +/-90 degrees
            if abs(am[0] * am[3]) > abs(am[1] * am[2]):
                if x2 == x1 or y4 == y3:
                    raise UserError(f"degenerate calibration of axes {axes_name!r}", file=file, field=path)
                am = [(xmax - xmin) / (x2 - x1), 0.0, 0.0, (ymax - ymin) / (y4 - y3)]
            else:
                if y2 == y1 or x4 == x3:
                    raise UserError(f"degenerate calibration of axes {axes_name!r}", file=file, field=path)
                am = [0.0, (xmax - xmin) / (y2 - y1), (ymax - ymin) / (x4 - x3), 0.0]
        self.a = tuple(am)
        self.c = (xmin - am[0] * x1 - am[1] * y1, ymin - am[2] * x3 - am[3] * y3)
        self.t_range = ((xmin, xmax), (ymin, ymax))      # in transformed (log10) units

    def pixel_to_transformed(self, px: float, py: float) -> tuple[float, float]:
        return (self.a[0] * px + self.a[1] * py + self.c[0], self.a[2] * px + self.a[3] * py + self.c[1])

    def finish(self, xf: float, yf: float) -> tuple[float, float]:
        if self.log_x:
            xf = -(10 ** xf) if self.neg_x else 10 ** xf
        if self.log_y:
            yf = -(10 ** yf) if self.neg_y else 10 ** yf
        return xf, yf

    def pixel_to_data(self, px: float, py: float) -> tuple[float, float]:
        return self.finish(*self.pixel_to_transformed(px, py))


class BarCalibration:
    """WPD's BarAxes: the value is the projection on the line through the two calibration points."""

    def __init__(self, points: list[dict], is_log: bool, is_rotated: bool, file: str, path: str, axes_name: str):
        if not isinstance(points, list) or len(points) < 2 or not all(isinstance(p, dict) for p in points[:2]):
            raise UserError(f"bar axes {axes_name!r} need 2 calibration points", file=file, field=path)
        x1 = _num(points[0].get("px"), "pixel px", file, f"{path}[0].px")
        y1 = _num(points[0].get("py"), "pixel py", file, f"{path}[0].py")
        x2 = _num(points[1].get("px"), "pixel px", file, f"{path}[1].px")
        y2 = _num(points[1].get("py"), "pixel py", file, f"{path}[1].py")
        p1 = _num(points[0].get("dy"), "bar calibration value", file, f"{path}[0].dy")
        p2 = _num(points[1].get("dy"), "bar calibration value", file, f"{path}[1].dy")
        self.log = bool(is_log)
        if self.log:
            if p1 <= 0 or p2 <= 0:
                raise UserError(f"log bar axes {axes_name!r} need positive calibration values",
                                file=file, field=f"{path}[0].dy")
            p1, p2 = math.log10(p1), math.log10(p2)
        if p1 == p2:
            raise UserError(f"degenerate calibration of bar axes {axes_name!r}: equal values",
                            file=file, field=path)
        if not is_rotated:  # WPD: the value axis is exactly horizontal (within 30 deg) or vertical
            ang = math.degrees(math.atan2(-(y2 - y1), x2 - x1)) % 360
            if min(ang, abs(ang - 180), 360 - ang) < 30:
                y2 = y1
            else:
                x2 = x1
        if x1 == x2 and y1 == y2:
            raise UserError(f"degenerate calibration of bar axes {axes_name!r}: both points are the same pixel",
                            file=file, field=path)
        self.p = (x1, y1, x2, y2, p1, p2)
        self.t_range = (p1, p2)

    def pixel_to_transformed(self, px: float, py: float) -> float:
        x1, y1, x2, y2, p1, p2 = self.p
        c = ((py - y1) * (y2 - y1) + (x2 - x1) * (px - x1)) / ((y2 - y1) ** 2 + (x2 - x1) ** 2)
        return (p2 - p1) * c + p1

    def finish(self, v: float) -> float:
        return 10 ** v if self.log else v


_REFUSED_AXES = {
    "PolarAxes": "polar axes give a radius and an angle, not a time and a value",
    "TernaryAxes": "ternary axes give three fractions, not a time and a value",
    "MapAxes": "map axes give distances on a map, not a time and a value",
    "ImageAxes": "image axes give pixel positions, not data values",
    "CircularChartRecorderAxes": "circular chart recorder axes are not supported",
}


def _outside_spans(v: float, lo: float, hi: float) -> float:
    span = abs(hi - lo)
    a, b = min(lo, hi), max(lo, hi)
    if v < a:
        return (a - v) / span
    if v > b:
        return (v - b) / span
    return 0.0


# ------------------------------------------------------------------------------------------
# project JSON (WPD 4 and WPD 3)
# ------------------------------------------------------------------------------------------


@dataclass
class _Axes:
    name: str
    type: str
    raw: dict
    path: str            # JSON path of the axes object
    cal_path: str        # JSON path of its calibration point list
    cal: object = None   # XYCalibration | BarCalibration | UserError (refusal) once built


def _version_major(v) -> int | None:
    if isinstance(v, list) and v and isinstance(v[0], int) and not isinstance(v[0], bool):
        return v[0]
    return None


def _project_parts(doc, file: str) -> tuple[list[_Axes], list[tuple[dict, str]], str]:
    """Normalise a WPD 4 or WPD 3 project to (axes, [(dataset, json path)], format name)."""
    if isinstance(doc, dict) and "wpd" in doc and "axesColl" not in doc:
        w = doc["wpd"]
        major = _version_major(w.get("version")) if isinstance(w, dict) else None
        if not isinstance(w, dict) or major != 3:
            raise UserError(f"not a readable WebPlotDigitizer 3 project: 'wpd.version' is "
                            f"{w.get('version') if isinstance(w, dict) else None!r}, expected [3, x]",
                            file=file, field="wpd.version")
        atype = w.get("axesType")
        if not isinstance(atype, str):
            raise UserError("WebPlotDigitizer 3 project without 'axesType'", file=file, field="wpd.axesType")
        params = w.get("axesParameters") if isinstance(w.get("axesParameters"), dict) else {}
        raw = dict(params, type=atype, name=atype.removesuffix("Axes") or atype,
                   calibrationPoints=w.get("calibration") or [])
        axes = [_Axes(raw["name"], atype, raw, "wpd", "wpd.calibration")]
        series = w.get("dataSeries") or []
        if not isinstance(series, list):
            raise UserError("malformed WebPlotDigitizer 3 project: 'dataSeries' is not a list",
                            file=file, field="wpd.dataSeries")
        dsets = []
        for j, ds in enumerate(series):
            if not isinstance(ds, dict):
                raise UserError("malformed data series", file=file, field=f"wpd.dataSeries[{j}]")
            dsets.append((dict(ds, axesName=raw["name"]), f"wpd.dataSeries[{j}]"))
        return axes, dsets, "WebPlotDigitizer 3 project"
    if not isinstance(doc, dict) or "axesColl" not in doc or "datasetColl" not in doc:
        raise UserError("not a WebPlotDigitizer project: needs 'axesColl' and 'datasetColl' (WPD 4) "
                        "or 'wpd' (WPD 3)", file=file)
    major = _version_major(doc.get("version"))
    if doc.get("version") is not None and major != 4:
        raise UserError(f"WebPlotDigitizer project version {doc.get('version')!r} is not supported "
                        f"(expected 4.x or a WPD 3 project)", file=file, field="version")
    if not isinstance(doc["axesColl"], list) or not isinstance(doc["datasetColl"], list):
        raise UserError("malformed project: 'axesColl' and 'datasetColl' must be lists", file=file)
    axes = []
    for i, ax in enumerate(doc["axesColl"]):
        if not isinstance(ax, dict):
            raise UserError("malformed axesColl entry", file=file, field=f"axesColl[{i}]")
        axes.append(_Axes(str(ax.get("name", f"Axes {i}")), str(ax.get("type", "XYAxes")), ax,
                          f"axesColl[{i}]", f"axesColl[{i}].calibrationPoints"))
    dsets = []
    for j, ds in enumerate(doc["datasetColl"]):
        if not isinstance(ds, dict):
            raise UserError("malformed datasetColl entry", file=file, field=f"datasetColl[{j}]")
        dsets.append((ds, f"datasetColl[{j}]"))
    return axes, dsets, "WebPlotDigitizer project"


def _calibrate(ax: _Axes, file: str):
    if ax.cal is not None:
        return ax.cal
    try:
        if ax.type == "XYAxes":
            ax.cal = XYCalibration(ax.raw.get("calibrationPoints") or [], ax.raw.get("isLogX", False),
                                   ax.raw.get("isLogY", False), file, bool(ax.raw.get("noRotation", False)),
                                   ax.cal_path, ax.name)
        elif ax.type == "BarAxes":
            ax.cal = BarCalibration(ax.raw.get("calibrationPoints") or [], ax.raw.get("isLog", False),
                                    bool(ax.raw.get("isRotated", False)), file, ax.cal_path, ax.name)
        elif ax.type in _REFUSED_AXES:
            ax.cal = UserError(f"{_REFUSED_AXES[ax.type]}", file=file, field=ax.path)
        else:
            ax.cal = UserError(f"unknown axes type {ax.type!r}", file=file, field=ax.path)
    except UserError as err:
        ax.cal = err
    return ax.cal


def _refuse(series: Series, err: UserError, prefix: str) -> Series:
    series.refusal = UserError(f"{prefix}: {err.message}", file=err.file, row=err.row, field=err.field)
    return series


def _bar_label(d: dict, keys, k: int) -> str:
    md = d.get("metadata")
    lab = None
    if isinstance(md, list) and md:
        lab = md[0]
    elif isinstance(md, dict):
        lab = md.get("label", md.get("Label"))
    return " ".join(str(lab).split()) if lab is not None else f"Bar{k}"   # one line in messages


def _dataset_series(ds: dict, dpath: str, axes: list[_Axes], file: str) -> list[Series]:
    name = str(ds.get("name", dpath))
    axname = ds.get("axesName")
    ax = None
    if axname is None and len(axes) == 1:
        ax = axes[0]
    else:
        ax = next((a for a in axes if a.name == axname), None)
    data = ds.get("data") or []
    base = Series(name, [], axes=str(axname or ""), file=file)
    if not isinstance(data, list):
        return [_refuse(base, UserError("'data' is not a list", file=file, field=f"{dpath}.data"),
                        f"dataset {name!r}")]
    if not data:
        return []
    if ax is None:
        why = (f"is on axes {axname!r}, which the project does not define" if axname
               else "has no axes (it was never attached to calibrated axes in WebPlotDigitizer)")
        return [_refuse(base, UserError(why, file=file, field=f"{dpath}.axesName"), f"dataset {name!r}")]
    base.axes = ax.name
    cal = _calibrate(ax, file)
    if isinstance(cal, UserError):
        return [_refuse(base, cal, f"dataset {name!r} is on {ax.type} {ax.name!r}")]
    # point groups (WPD 4.3+): one series per group
    gnames = ds.get("groupNames") if isinstance(ds.get("groupNames"), list) else None
    groups: dict[int, list[int]] = {}
    for k, d in enumerate(data):
        g = d.get("group") if isinstance(d, dict) and gnames else None
        groups.setdefault(g if isinstance(g, int) and not isinstance(g, bool) and g >= 0 else -1, []).append(k)
    out = []
    for g, idx in sorted(groups.items()):
        if gnames is None or (g == -1 and len(groups) == 1):
            gname, gof = name, None
        elif g == -1:
            gname, gof = f"{name} (ungrouped)", name
        else:
            label = str(gnames[g]) if g < len(gnames) and gnames[g] else ""
            gname = f"{name} ({label})" if label else name if g == 0 else f"{name} (group {g})"
            gof = name
        s = Series(gname, [], axes=ax.name, file=file, group_of=gof)
        out.append(_points_from_pixels(s, ds, idx, data, dpath, ax, cal, file))
    return out


def _points_from_pixels(s: Series, ds: dict, idx: list[int], data: list, dpath: str, ax: _Axes, cal,
                        file: str) -> Series:
    what = f"dataset {s.name!r} on {ax.type} {ax.name!r}"
    pix, where, labels = [], [], []
    for k in idx:
        d = data[k]
        fp = f"{dpath}.data[{k}]"
        if not isinstance(d, dict):
            return _refuse(s, UserError("point is malformed", file=file, field=fp), what)
        md = d.get("metadata")
        if isinstance(md, dict) and md.get("overrides"):
            return _refuse(s, UserError("point has a value typed in by hand (WPD 'override'); "
                                        "remove the override or digitise the point", file=file, field=fp), what)
        try:
            px = _num(d.get("x"), "pixel x", file, f"{fp}.x")
            py = _num(d.get("y"), "pixel y", file, f"{fp}.y")
        except UserError as err:
            return _refuse(s, err, what)
        pix.append((px, py))
        where.append((None, fp))
        labels.append(_bar_label(d, ds.get("metadataKeys"), k))
    s.where = where
    if isinstance(cal, BarCalibration):
        lo, hi = cal.t_range
        vals = []
        for (px, py), (_, fp) in zip(pix, where):
            t = cal.pixel_to_transformed(px, py)
            out = _outside_spans(t, lo, hi)
            if out > MAX_SPANS_OUTSIDE:
                return _refuse(s, UserError(f"mis-calibrated bar axes: the point lies {out:.0f} calibration "
                                            f"spans outside the calibrated values", file=file, field=fp), what)
            vals.append(cal.finish(t))
        s.x_kind, s.labels = "label", labels
        s.points = [(float(i), v) for i, v in enumerate(vals)]
        if len(set(labels)) != len(labels):
            dup = next(lab for lab in labels if labels.count(lab) > 1)
            return _refuse(s, UserError(f"two bars are labelled {dup!r}", file=file, field=dpath), what)
        return s
    (xlo, xhi), (ylo, yhi) = cal.t_range
    tpts = [cal.pixel_to_transformed(px, py) for px, py in pix]
    for (xf, yf), (_, fp) in zip(tpts, where):
        for v, lo, hi, axis, txt in ((xf, xlo, xhi, "x", cal.x_cal_text), (yf, ylo, yhi, "y", cal.y_cal_text)):
            out = _outside_spans(v, lo, hi)
            if out > MAX_SPANS_OUTSIDE:
                logn = " (log10 scale)" if (cal.log_x if axis == "x" else cal.log_y) else ""
                return _refuse(s, UserError(
                    f"mis-calibrated axes: the point maps to {axis} = {v:.4g}{logn}, {out:.0f} calibration "
                    f"spans outside the calibrated range {txt[0]} ... {txt[1]}; re-calibrate the axes in "
                    f"WebPlotDigitizer", file=file, field=fp), what)
    try:
        pts = [cal.finish(xf, yf) for xf, yf in tpts]
    except OverflowError:
        return _refuse(s, UserError("mis-calibrated axes: a point maps beyond the floating-point range on a log "
                                    "axis; re-calibrate the axes in WebPlotDigitizer", file=file, field=dpath), what)
    if len(pts) > 1 and len({x for x, _ in pts}) == 1 and len({round(px, 6) for px, _ in pix}) > 1:
        return _refuse(s, UserError(f"mis-calibrated axes: all {len(pts)} points map to the same "
                                    f"x = {pts[0][0]:.6g} although they lie at different pixels; re-calibrate "
                                    f"the axes in WebPlotDigitizer", file=file, field=dpath), what)
    s.points = pts
    s.x_kind = cal.x_kind
    if cal.x_kind != "number":
        s.x_text = [format_ms(cal.x_kind, x) for x, _ in pts]
    return _sorted_series(s)


def read_wpd_project(doc, file: str) -> list[Series]:
    axes, dsets, _ = _project_parts(doc, file)
    out: list[Series] = []
    for ds, dpath in dsets:
        for s in _dataset_series(ds, dpath, axes, file):
            if s.points or s.refusal is not None:
                out.append(s)
    if not out:
        raise UserError("the project has no digitised points", file=file)
    return out


def _read_limited(path: str) -> bytes:
    try:
        size = os.path.getsize(path)
        if size > MAX_TEXT_BYTES:
            raise UserError(f"file is {size / 1e6:.0f} MB; WebPlotDigitizer exports larger than "
                            f"{MAX_TEXT_BYTES // 2**20} MiB are not read", file=path)
        return Path(path).read_bytes()
    except OSError as exc:
        raise UserError(f"cannot read file: {exc.__class__.__name__}", file=path) from exc


def _json_doc(raw: bytes, file: str):
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise UserError("cannot read file: not UTF-8 text", file=file) from exc
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise UserError(f"malformed JSON: {exc.msg}", file=file, row=exc.lineno) from exc
    except RecursionError as exc:
        raise UserError("malformed JSON: nested too deeply", file=file) from exc


def read_wpd_json(path: str) -> list[Series]:
    return read_wpd_project(_json_doc(_read_limited(path), path), path)


def read_wpd_tar(path: str) -> list[Series]:
    """A WPD ``Save Project`` tar: read ``<name>/wpd.json`` in memory (never extracted to disk)."""
    try:
        with tarfile.open(path, mode="r:") as tar:
            members = []
            for m in tar:
                members.append(m)
                if len(members) > MAX_TAR_MEMBERS:
                    raise UserError(f"more than {MAX_TAR_MEMBERS} members; not a WebPlotDigitizer project",
                                    file=path)
            target = None
            infos = [m for m in members if m.isfile() and (m.name == "info.json" or m.name.endswith("/info.json"))]
            if len(infos) == 1 and infos[0].size <= MAX_INFO_BYTES:
                try:
                    info = json.loads(tar.extractfile(infos[0]).read().decode("utf-8-sig"))
                except (ValueError, UnicodeDecodeError):
                    info = {}
                jname = info.get("json", "wpd.json") if isinstance(info, dict) else "wpd.json"
                want = (infos[0].name.rsplit("/", 1)[0] + "/" if "/" in infos[0].name else "") + str(jname)
                target = next((m for m in members if m.name == want), None)
            if target is None:
                cands = [m for m in members if m.name == "wpd.json" or m.name.endswith("/wpd.json")]
                if not cands:
                    raise UserError("no wpd.json in the archive (not a WebPlotDigitizer project .tar)", file=path)
                if len(cands) > 1:
                    raise UserError(f"several wpd.json members ({', '.join(m.name for m in cands)}); "
                                    f"save one project per .tar", file=path)
                target = cands[0]
            label = f"{path}[{target.name}]"
            if not target.isfile():
                raise UserError("wpd.json is not a regular file in the archive (link or device)", file=label)
            if target.size > MAX_TEXT_BYTES:
                raise UserError(f"wpd.json is {target.size / 1e6:.0f} MB; larger than "
                                f"{MAX_TEXT_BYTES // 2**20} MiB is not read", file=label)
            raw = tar.extractfile(target).read(MAX_TEXT_BYTES + 1)
    except tarfile.ReadError as exc:
        raise UserError("not an uncompressed tar archive (WebPlotDigitizer's Save Project writes a "
                        f"plain .tar): {exc}", file=path) from exc
    except (OSError, EOFError, tarfile.TarError) as exc:
        raise UserError(f"cannot read archive: {exc.__class__.__name__}", file=path) from exc
    return read_wpd_project(_json_doc(raw, label), label)


# ------------------------------------------------------------------------------------------
# CSV exports
# ------------------------------------------------------------------------------------------

_COMMA_DEC_RE = re.compile(r"^[+-]?(?:\d+,\d*|,\d+)(?:[eE][+-]?\d+)?$")
_POINT_DEC_RE = re.compile(r"^[+-]?(?:\d+\.\d*|\.\d+)(?:[eE][+-]?\d+)?$")
# axes labels in row 2 of WPD's "Export all datasets" CSV (getAxesLabels of each axes type)
_AXES_LABELS = {
    ("x", "y"): "xy", ("label", "y"): "bar", ("r", "θ"): "PolarAxes", ("a", "b", "c"): "TernaryAxes",
    ("time", "magnitude"): "CircularChartRecorderAxes",
}
_KNOWN_LABELS = {lab for key in _AXES_LABELS for lab in key}


def _detect_dialect(lines: list[tuple[int, str]], file: str) -> tuple[str, str]:
    """(column separator, decimal mark) of a WPD CSV export; ambiguous files are refused."""
    tab = next((n for n, s in lines if "\t" in s), None)
    semi = next((n for n, s in lines if ";" in s), None)
    if tab is not None and semi is not None:
        raise UserError(f"both tabs (row {tab}) and ';' (row {semi}) occur, so the column separator is "
                        f"ambiguous; export again with one separator", file=file, row=max(tab, semi))
    sep = "\t" if tab is not None else ";" if semi is not None else ","
    if sep == ",":
        # a ',' separator leaves no room for decimal commas: refuse files that look like they have them
        spaced = next((n for n, s in lines if re.search(r",\s", s)), None)
        tight = next((n for n, s in lines if re.search(r"\d,\d", s)), None)
        if spaced is not None and tight is not None:
            raise UserError(f"commas followed by a space (row {spaced}) and commas between digits (row {tight}): "
                            f"decimal commas mixed with ', ' separators? the file is ambiguous; export again with "
                            f"';' or tab as column separator", file=file, row=max(spaced, tight))
        cells = [(n, c.strip()) for n, s in lines for c in s.split(",")]
        for n, c in cells:
            if re.fullmatch(r"[+-]?0\d+", c):
                raise UserError(f"cell {c!r} looks like the fraction of a decimal-comma number split by ',' "
                                f"as column separator; the file is ambiguous: export again with ';' or tab "
                                f"as column separator", file=file, row=n)
        ints = [(n, c) for n, c in cells if re.fullmatch(r"[+-]?\d+", c)]
        if ints and not any("." in c for _, c in cells if _NUM_RE.fullmatch(c)):
            long = next(((n, c) for n, c in ints if len(c.lstrip("+-")) >= 6), None)
            if long is not None:
                raise UserError(f"every number is a whole number and some, like {long[1]!r}, have 6 or more digits, "
                                f"as the halves of decimal-comma numbers split at ',' would; the file is ambiguous: "
                                f"export again with ';' or tab as column separator", file=file, row=long[0])
        return sep, "."
    comma = point = None
    for n, s in lines:
        for c in s.split(sep):
            c = c.strip()
            if "," in c and "." in c and re.fullmatch(r"[+-]?[\d.,]+", c):
                raise UserError(f"value {c!r} has both ',' and '.' (thousands separators?); export the "
                                f"numbers without grouping", file=file, row=n)
            if comma is None and _COMMA_DEC_RE.fullmatch(c):
                comma = n
            elif point is None and _POINT_DEC_RE.fullmatch(c):
                point = n
    if comma is not None and point is not None:
        raise UserError(f"mixed decimal marks: ',' in row {comma} and '.' in row {point}; the file is "
                        f"ambiguous", file=file, row=max(comma, point))
    return sep, ("," if comma is not None else ".")


def _classify(cell: str, dec: str) -> tuple[str, object]:
    c = cell.strip()
    if c == "":
        return "empty", None
    t = c.replace(",", ".") if dec == "," else c
    if _NUM_RE.fullmatch(t):
        v = float(t)
        return ("num", v) if math.isfinite(v) else ("text", c)
    d = parse_wpd_date(c)
    if d is not None:
        return d
    return "text", c


def _pair_series(name: str, rows: list[tuple[int, list]], cx: int, cy: int, file: str,
                 kind_hint: str | None = None, colnames: tuple[str, str] | None = None) -> Series:
    """One x,y (or label,value) series from columns cx, cy of classified rows."""
    fx, fy = colnames or (f"column {cx + 1}", f"column {cy + 1}")
    s = Series(name, [], file=file, y_field=fy)
    what = f"series {name!r}"
    xs, ys, where = [], [], []
    for line, cells in rows:
        kx, vx = cells[cx] if cx < len(cells) else ("empty", None)
        ky, vy = cells[cy] if cy < len(cells) else ("empty", None)
        if kx == "empty" and ky == "empty":
            continue
        if (kx == "empty") != (ky == "empty"):
            return _refuse(s, UserError("x without y (or y without x)", file=file, row=line,
                                        field=fx if kx == "empty" else fy), what)
        if ky != "num":
            return _refuse(s, UserError(f"value {vy!r} is not a finite number", file=file, row=line, field=fy), what)
        xs.append((line, kx, vx))
        ys.append(vy)
        where.append((line, fx))
    if not xs:
        return s
    kinds = {k for _, k, _ in xs}
    if kind_hint == "bar" or kinds == {"text"}:
        labels = [str(v) if k == "text" else _csv_text(k, v) for _, k, v in xs]
        if len(set(labels)) != len(labels):
            dup = next(lab for lab in labels if labels.count(lab) > 1)
            line = [ln for (ln, _, _), lab in zip(xs, labels) if lab == dup][1]
            return _refuse(s, UserError(f"two bars are labelled {dup!r}", file=file, row=line, field=fx), what)
        s.x_kind, s.labels = "label", labels
        s.points = [(float(i), y) for i, y in enumerate(ys)]
        s.where = where
        return s
    if len(kinds) > 1:
        first = xs[0][1]
        line, k, v = next(t for t in xs if t[1] != first)
        return _refuse(s, UserError(f"x column mixes {first} values and {k} values ({v!r} here)",
                                    file=file, row=line, field=fx), what)
    kind = kinds.pop()
    if kind == "text":
        line, _, v = xs[0]
        return _refuse(s, UserError(f"x value {v!r} is not a number or a date", file=file, row=line, field=fx), what)
    s.x_kind = "number" if kind == "num" else kind
    s.points = [(float(v), y) for (_, _, v), y in zip(xs, ys)]
    s.where = where
    if s.x_kind != "number":
        s.x_text = [format_ms(s.x_kind, x) for x, _ in s.points]
    return _sorted_series(s)


def _csv_text(kind: str, v) -> str:
    return format_ms(kind, v) if kind in ("date", "time") else f"{v:g}" if kind == "num" else str(v)


def parse_wpd_csv(text: str, file: str, stem: str) -> list[Series]:
    lines = [(n, s) for n, s in enumerate(text.splitlines(), start=1) if s.strip()]
    if not lines:
        raise UserError("malformed CSV: file is empty", file=file)
    sep, dec = _detect_dialect(lines, file)
    rows: list[tuple[int, list[str]]] = []
    for n, s in lines:
        try:
            cells = next(csv.reader([s], delimiter=sep, skipinitialspace=True))
        except csv.Error as exc:
            raise UserError(f"malformed CSV: {exc}", file=file, row=n) from exc
        rows.append((n, [c.strip() for c in cells]))
    crow = [(n, [_classify(c, dec) for c in cells]) for n, cells in rows]

    # "Export all datasets": row 1 names, row 2 axes labels
    if len(rows) >= 2:
        r1, r2 = rows[0][1], rows[1][1]
        labs = [c.lower() for c in r2 if c]
        if r1 and r1[0] and labs and all(c.lower() in _KNOWN_LABELS or c == "" for c in r2) \
                and all(k != "num" for k, _ in crow[0][1]):
            return _all_datasets(rows, crow, file)

    header = None
    body = crow
    first_kinds = {k for k, _ in crow[0][1]}
    if len(crow) >= 2 and "text" in first_kinds and not first_kinds & {"num", "date", "time"}:
        header, body = rows[0][1], crow[1:]
    counts: dict[int, int] = {}
    for line, cells in body:
        counts.setdefault(len(cells), line)
    if len(counts) > 1:
        (na, la), (nb, lb) = sorted(counts.items(), key=lambda kv: kv[1])[:2]
        raise UserError(f"row has {nb} columns but row {la} has {na} (separator "
                        f"{'tab' if sep == chr(9) else repr(sep)}, decimal mark {dec!r}); the file is "
                        f"ambiguous or damaged, so nothing is guessed", file=file, row=lb)
    width = 0
    for _, cells in body:
        used = len(cells)
        while used > 0 and cells[used - 1][0] == "empty":
            used -= 1
        width = max(width, used)
    if width < 2:
        raise UserError(f"one column only (separator {'tab' if sep == chr(9) else repr(sep)}); expected x,y pairs",
                        file=file, row=body[0][0])
    if width % 2:
        raise UserError(f"{width} columns cannot be split into x,y pairs (WebPlotDigitizer writes two "
                        f"columns per dataset); no column is dropped silently", file=file, row=body[0][0])
    out = []
    for j in range(width // 2):
        if width == 2:
            name = stem
        else:
            hdr = header[2 * j + 1] if header and 2 * j + 1 < len(header) else ""
            name = hdr or f"{stem} [columns {2 * j + 1}-{2 * j + 2}]"
        cn = None
        if header and 2 * j + 1 < len(header) and header[2 * j] and header[2 * j + 1]:
            cn = (header[2 * j], header[2 * j + 1])
        s = _pair_series(name, body, 2 * j, 2 * j + 1, file, colnames=cn)
        if s.points or s.refusal is not None:
            out.append(s)
    names = [s.name for s in out]
    if len(set(names)) != len(names):
        for k, s in enumerate(out):
            s.name = f"{stem} [columns {2 * k + 1}-{2 * k + 2}]"
    if not out:
        raise UserError("the export has no points", file=file)
    return out


def _all_datasets(rows, crow, file: str) -> list[Series]:
    r1, r2 = rows[0][1], rows[1][1]
    starts = [i for i, c in enumerate(r1) if c]
    if not starts or starts[0] != 0:
        raise UserError("unrecognised WPD CSV layout: row 1 must start with a dataset name", file=file, row=rows[0][0])
    body = crow[2:]
    out = []
    for k, st in enumerate(starts):
        end = starts[k + 1] if k + 1 < len(starts) else max(len(r2), st + 1)
        labs = [c for c in r2[st:end]]
        while labs and labs[-1] == "":
            labs.pop()
        name = r1[st]
        kind = _AXES_LABELS.get(tuple(c.lower() for c in labs))
        s = Series(name, [], file=file)
        if kind in ("xy", "bar"):
            s = _pair_series(name, body, st, st + 1, file, kind_hint=kind,
                             colnames=(f"{name} {labs[0]}", f"{name} {labs[1]}"))
        elif kind is not None:
            s = _refuse(s, UserError(_REFUSED_AXES[kind], file=file, row=rows[1][0],
                                     field=f"column {st + 1}"),
                        f"dataset {name!r} has {kind} columns {', '.join(labs)}")
        else:
            s = _refuse(s, UserError(f"unknown axes labels {labs!r}", file=file, row=rows[1][0],
                                     field=f"column {st + 1}"), f"dataset {name!r}")
        if s.points or s.refusal is not None:
            out.append(s)
    if not out:
        raise UserError("the export has no points", file=file)
    return out


def read_wpd_csv(path: str) -> list[Series]:
    raw = _read_limited(path)
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise UserError("cannot read file: not UTF-8 text", file=path) from exc
    return parse_wpd_csv(text, path, Path(path).stem)


def read_wpd(path: str) -> list[Series]:
    if not os.path.isfile(path):
        raise UserError("no such file", file=path)
    low = path.lower()
    if low.endswith(".tar") or (not low.endswith((".json", ".csv", ".tsv", ".txt")) and _is_tar(path)):
        return read_wpd_tar(path)
    if low.endswith(".json"):
        return read_wpd_json(path)
    if low.endswith((".csv", ".tsv", ".txt")):
        return read_wpd_csv(path)
    raise UserError("expected a WebPlotDigitizer project (.tar or .json) or a CSV export (.csv, .tsv, .txt)",
                    file=path)


def _is_tar(path: str) -> bool:
    try:
        with open(path, "rb") as fh:
            head = fh.read(265)
        return head[257:262] == b"ustar"
    except OSError:
        return False


# ------------------------------------------------------------------------------------------
# selection and study time
# ------------------------------------------------------------------------------------------


def _kind(name: str) -> str:
    n = name.strip().lower()
    if "upper" in n or n.endswith("+"):
        return "upper"
    if "lower" in n or n.endswith("-"):
        return "lower"
    return "point"


def _describe(s: Series) -> str:
    return repr(s.name) + (" (cannot be imported)" if s.refusal is not None else "")


def select_series(series: list[Series], series_name: str | None, input_name: str
                  ) -> tuple[Series, Series | None, Series | None]:
    """(mean series, upper end, lower end); refusals of the selected series are raised here."""
    pts = [s for s in series if _kind(s.name) == "point"]
    if series_name is not None:
        pts = [s for s in pts if s.name == series_name]
        if not pts:
            raise UserError(f"no point series named {series_name!r}; found "
                            f"{', '.join(_describe(s) for s in series)}", file=input_name, field="--series")
        if len(pts) > 1:
            raise UserError(f"{len(pts)} datasets are named {series_name!r}; rename them in WebPlotDigitizer",
                            file=input_name, field="--series")
    if len(pts) != 1:
        raise UserError(f"expected exactly one point (mean) series, found {len(pts)}: "
                        f"{', '.join(_describe(s) for s in pts)}; choose one with --series", file=input_name)
    mean = pts[0]
    if mean.refusal is not None:
        raise mean.refusal
    if not mean.points:
        raise UserError(f"series {mean.name!r} has no points", file=input_name)
    if mean.group_of is not None:
        peers = [s for s in series if s.group_of == mean.group_of]
    else:
        peers = [s for s in series if s.axes == mean.axes and s.group_of is None]
    ends = {}
    for kind in ("upper", "lower"):
        cand = [s for s in peers if _kind(s.name) == kind]
        named = [s for s in cand if mean.name.strip().lower() in s.name.lower()]
        if len(cand) > 1 and len(named) == 1:   # "600 mg upper" belongs to "600 mg"
            cand = named
        if len(cand) > 1:
            raise UserError(f"more than one {kind} error-bar series ({', '.join(repr(s.name) for s in cand)}) "
                            f"for {mean.name!r}", file=input_name)
        if cand and cand[0].refusal is not None:
            raise cand[0].refusal
        ends[kind] = cand[0] if cand else None
    return mean, ends["upper"], ends["lower"]


def parse_bar_times(text: str) -> dict[str, float]:
    out = {}
    for tok in split_multi(text):
        if "=" not in tok:
            raise UserError(f"{tok!r} is not LABEL=TIME", field="--bar-times")
        lab, val = (t.strip() for t in tok.rsplit("=", 1))
        v = _strict_float(val)
        if v is None:
            raise UserError(f"time {val!r} for bar {lab!r} is not a number", field="--bar-times")
        if lab in out:
            raise UserError(f"bar {lab!r} is given twice", field="--bar-times")
        out[lab] = v
    if not out:
        raise UserError("no LABEL=TIME pairs given", field="--bar-times")
    return out


def to_study_time(s: Series, x_unit: str, time_origin: tuple[str, float] | None,
                  bar_times: dict[str, float] | None, check_unused: bool = True) -> Series:
    """x in ``x_unit`` of study time: date/time axes from ``time_origin``, bars from their labels."""
    from nadfit.datasets.units import convert

    if s.x_kind == "number":
        return s
    if s.x_kind in ("date", "time"):
        where = f"series {s.name!r}" + (f" on axes {s.axes!r}" if s.axes else "")
        rng = f"{s.x_text[0]} ... {s.x_text[-1]}" if s.x_text else ""
        if time_origin is None:
            want = "YYYY-MM-DD (the study's day 0)" if s.x_kind == "date" else "HH:MM (the study's time 0)"
            raise UserError(f"{where} has a {'date' if s.x_kind == 'date' else 'time-of-day'} x axis ({rng}) "
                            f"that cannot be mapped to study time; give --time-origin {want}",
                            file=s.file, field=s.at(0)[1])
        okind, oms = time_origin
        if okind != s.x_kind:
            raise UserError(f"{where} has a {'date' if s.x_kind == 'date' else 'time-of-day'} x axis ({rng}) "
                            f"but --time-origin is a {'date' if okind == 'date' else 'time of day'}",
                            field="--time-origin")
        pts = [(convert((x - oms) / MS_PER_DAY, "day", x_unit), y) for x, y in s.points]
        return replace(s, points=pts, x_kind="number")
    # bars: numeric labels are times; otherwise --bar-times maps labels to times
    labels = s.labels or []
    if bar_times is None:
        nums = [_strict_float(lab) for lab in labels]
        if not all(v is not None for v in nums):
            shown = ", ".join(labels[:4]) + (", ..." if len(labels) > 4 else "")
            raise UserError(f"series {s.name!r} is a bar chart (bars {shown}); give the time of each bar "
                            f"with --bar-times \"{labels[0]}=0;...\" or rename the bars to their times in "
                            f"WebPlotDigitizer", file=s.file, field=s.at(0)[1])
        times = dict(zip(labels, nums))
    else:
        times = bar_times
        if check_unused and set(bar_times) - set(labels):
            raise UserError(f"--bar-times names bars that series {s.name!r} does not have: "
                            f"{', '.join(sorted(set(bar_times) - set(labels)))}", field="--bar-times")
    pts = []
    for i, (lab, (_, y)) in enumerate(zip(labels, s.points)):
        if lab not in times:
            raise UserError(f"bar {lab!r} of series {s.name!r} has no time in --bar-times "
                            f"(given: {', '.join(times)})", file=s.file, row=s.at(i)[0], field=s.at(i)[1])
        pts.append((times[lab], y))
    order = sorted(range(len(pts)), key=lambda i: pts[i])
    return replace(s, points=[pts[i] for i in order], where=[s.where[i] for i in order] if s.where else [],
                   x_kind="number", x_text=[f"bar {labels[i]}" for i in order])


# ------------------------------------------------------------------------------------------
# rows
# ------------------------------------------------------------------------------------------


def _sig(v: float) -> str:
    return f"{v:.6g}"


def _slug(s: str) -> str:
    return re.sub(r"[^A-Za-z0-9]+", "", s) or "fig"


def _clusters(xs: list[float], nominal: list[float] | None, span: float) -> tuple[list[list[int]], str | None]:
    """Group points that share x, and say how they share it (None: no two points share x).

    * ``nominal``: points snapped to the same ``--x-nominal`` time;
    * ``equal``: the same x (to 1e-9 of the x range: the same pixel column, the same date, a
      repeated row);
    * ``near``: a columnar scatter: at least half of the points (and at least three) lie in columns
      narrower than :data:`SHARED_X_FRACTION` of the x range, and the columns are separated by more
      than three column widths (a densely digitised curve has no such gaps, so it is not taken for
      replicates). Jittered replicates are found reliably with ``--x-nominal``.
    """
    if nominal:
        by: dict[float, list[int]] = {}
        for i, x in enumerate(xs):
            by.setdefault(min(nominal, key=lambda v: abs(v - x)), []).append(i)
        groups = [by[k] for k in sorted(by)]
        return groups, ("nominal" if any(len(g) > 1 for g in groups) else None)
    order = sorted(range(len(xs)), key=lambda i: xs[i])
    same = 1e-9 * max(span, 1e-300)
    groups: list[list[int]] = []
    for i in order:
        if groups and xs[i] - xs[groups[-1][0]] <= same:
            groups[-1].append(i)
        else:
            groups.append([i])
    if any(len(g) > 1 for g in groups):
        return groups, "equal"
    eps = SHARED_X_FRACTION * span
    near: list[list[int]] = []
    for i in order:
        if near and xs[i] - xs[near[-1][0]] <= eps:
            near[-1].append(i)
        else:
            near.append([i])
    in_cols = sum(len(g) for g in near if len(g) > 1)
    gaps = [xs[b[0]] - xs[a[-1]] for a, b in itertools.pairwise(near)]
    if eps > 0 and in_cols >= max(3, len(xs) / 2) and all(g > 3 * eps for g in gaps):
        return near, "near"
    return groups, None


@dataclass
class RowSource:
    """Where an output row came from (input row/field of its first point), for plausibility messages."""

    row: int | None
    field: str | None
    series: str
    y_field: str | None = None


def build_rows(series: list[Series] | None = None, *, input_name: str, study: str, figure: str, x_unit: str,
               y_unit: str, analyte: str, matrix: str, compound: str, dose: str, dose_unit: str,
               group: str, n: str = "", route: str = "", regimen: str = "",
               error: str | None = None, source_url: str, series_name: str | None = None,
               x_nominal: list[float] | None = None, replicates: str | None = None,
               selected: tuple[Series, Series | None, Series | None] | None = None,
               sources: list[RowSource] | None = None) -> list[dict]:
    """Evidence rows from the selected mean series (and error-bar ends), x already in study time."""
    if selected is None:
        selected = select_series(series or [], series_name, input_name)
    mean, upper, lower = selected
    if (upper or lower) and error is None:
        raise UserError("error-bar series found; say what they are with --error sd|se", file=input_name)
    if error is not None and not (upper or lower):
        raise UserError(f"--error {error} given but no error-bar series (names with 'upper'/'lower')",
                        file=input_name)
    xs = [x for x, _ in mean.points]
    span = (max(xs) - min(xs)) if len(xs) > 1 else max(1.0, abs(xs[0]))
    tol = 0.02 * span if span > 0 else 1e-9

    snapped = list(xs)
    if x_nominal:
        for i, x in enumerate(xs):
            near = min(x_nominal, key=lambda v: abs(v - x))
            if abs(near - x) > tol:
                r, f = mean.at(i)
                raise UserError(f"digitised x {_sig(x)} is not within {_sig(tol)} of any nominal "
                                f"time {x_nominal}", file=mean.file or input_name, row=r, field=f)
            snapped[i] = near
    clusters, how_shared = _clusters(xs, x_nominal, span)
    shared = [c for c in clusters if len(c) > 1]
    if shared and replicates is None:
        c = shared[0]
        r, f = mean.at(c[0])
        how = {"nominal": "snap to the same --x-nominal time as another point",
               "equal": "have the same x as another point",
               "near": f"stand in columns (within {SHARED_X_FRACTION:.0%} of the x range) with other points"
               }[how_shared]
        raise UserError(f"{sum(len(c) for c in shared)} points of series {mean.name!r} {how}, first at "
                        f"x = {_sig(xs[c[0]])}: a replicate scatter, not one mean per time; say what to import "
                        f"with --replicates mean-sd|mean-se|points", file=mean.file or input_name, row=r, field=f)
    if replicates is not None:
        if replicates not in REPLICATE_MODES:
            raise UserError(f"--replicates must be one of {', '.join(REPLICATE_MODES)}, not {replicates!r}",
                            field="--replicates")
        if not shared:
            raise UserError(f"--replicates {replicates} given but no two points of series {mean.name!r} "
                            f"share an x", file=input_name, field="--replicates")
        if upper or lower:
            raise UserError("a replicate scatter with error-bar series: import the points or the "
                            "error bars, not both", file=input_name, field="--replicates")
        if n:
            raise UserError("--n cannot be combined with --replicates (n is the number of digitised points "
                            "at each time)", field="--n")

    def partner(s: Series | None, x: float) -> float | None:
        if s is None:
            return None
        best = min(s.points, key=lambda p: abs(p[0] - x))
        return best[1] if abs(best[0] - x) <= tol else None

    rows: list[dict] = []
    srcs: list[RowSource] = []
    fig_slug = _slug(figure)
    locator = f"{figure} (digitised with WebPlotDigitizer)"
    fname = os.path.basename(input_name)
    k = 0

    def add(i_first: int, t: float, note_x: str, **cells):
        nonlocal k
        if t < 0:
            r, f = mean.at(i_first)
            raise UserError(f"digitised time {_sig(t)} {x_unit} of series {mean.name!r} is negative; "
                            f"re-calibrate or give --x-nominal", file=mean.file or input_name, row=r, field=f)
        base = {c: "" for c in EVIDENCE_COLUMNS}
        base.update({
            "study_id": study, "group": group, "n": n, "compound": compound, "dose": dose,
            "dose_unit": dose_unit, "route": route, "regimen": regimen, "time": _sig(t),
            "time_unit": x_unit, "matrix": matrix, "analyte": analyte, "unit": y_unit,
            "grade": "digitised", "source_url": source_url, "locator": locator,
        })
        k += 1
        base.update(cells)
        base["evidence_id"] = f"DG_{study}_{fig_slug}_{k:03d}"
        base["note"] = f"{base['note']}; {note_x}" if base.get("note") else note_x
        rows.append(base)
        r, f = mean.at(i_first)
        srcs.append(RowSource(r, f, mean.name, mean.y_field))

    def note_x(i: int) -> str:
        shown = mean.x_text[i] if mean.x_text else None
        return f"digitised x = {shown} ({_sig(xs[i])} {x_unit})" if shown else f"digitised x = {_sig(xs[i])} {x_unit}"

    if replicates in ("mean-sd", "mean-se"):
        for c in clusters:
            if len(c) < 2:
                r, f = mean.at(c[0])
                raise UserError(f"only one point at x = {_sig(xs[c[0]])}; --replicates {replicates} needs at "
                                f"least two per time (or use --replicates points)",
                                file=mean.file or input_name, row=r, field=f)
            ys = [mean.points[i][1] for i in c]
            t = snapped[c[0]] if x_nominal else statistics.fmean(xs[i] for i in c)
            sd = statistics.stdev(ys)
            disp = sd if replicates == "mean-sd" else sd / math.sqrt(len(ys))
            stat = replicates.split("-")[1]
            nx = (f"{len(c)} replicate points at digitised x = {_sig(min(xs[i] for i in c))}..."
                  f"{_sig(max(xs[i] for i in c))} {x_unit}")
            add(c[0], t, nx, statistic="mean", value=_sig(statistics.fmean(ys)), n=str(len(c)),
                note=f"digitised from {fname}, series {mean.name!r}; mean of the points")
            add(c[0], t, nx, statistic=stat, value=_sig(disp), n=str(len(c)),
                note=f"digitised from {fname}, series {mean.name!r}; sample SD of the points (n-1)"
                     + ("" if stat == "sd" else " / sqrt(n)"))
        return _attach(rows, srcs, sources)
    if replicates == "points":
        for c in clusters:
            for i in c:
                add(i, snapped[i], note_x(i), statistic="mean", value=_sig(mean.points[i][1]), n="1",
                    note=f"digitised from {fname}, series {mean.name!r}; one individual value "
                         f"(replicate point {c.index(i) + 1} of {len(c)} at this time)")
        return _attach(rows, srcs, sources)

    for i, (x, y) in enumerate(mean.points):
        t = snapped[i]
        add(i, t, note_x(i), statistic="mean", value=_sig(y),
            note=f"digitised from {fname}, series {mean.name!r}")
        if error is not None:
            up = partner(upper, x)
            lo = partner(lower, x)
            if up is None and lo is None:
                r, f = mean.at(i)
                raise UserError(f"no error-bar end near x = {_sig(x)} for the mean point",
                                file=mean.file or input_name, row=r, field=f)
            if up is not None and lo is not None:
                half = (up - lo) / 2.0
                how = "half the distance between the upper and lower bar ends"
            else:
                half = abs((up if up is not None else lo) - y)
                how = "distance from the mean to the " + ("upper" if up is not None else "lower") + " bar end"
            if half < 0:
                r, f = mean.at(i)
                raise UserError(f"upper error-bar end below lower end at x = {_sig(x)}",
                                file=mean.file or input_name, row=r, field=f)
            add(i, t, note_x(i), statistic=error, value=_sig(half), note=f"digitised from {fname}; {how}")
    return _attach(rows, srcs, sources)


def _attach(rows, srcs, sources):
    if sources is not None:
        sources.extend(srcs)
    return rows


# ------------------------------------------------------------------------------------------
# plausibility against the study's design
# ------------------------------------------------------------------------------------------

_REGIMEN_RE = re.compile(r"\bfor (?:up to )?(\d+(?:\.\d+)?)(?: or (\d+(?:\.\d+)?))? (day|week|month)s?\b")


def design_end_days(meta, study_rows: list[tuple[str, int, dict]]) -> tuple[float, str] | None:
    """The last day of the study's design and where it comes from, or None when nothing states it.

    Read from the study's evidence rows (``duration_days``, and ``time`` in days) and from the arms'
    regimens in study.yaml (``... for 60 days``, ``for 12 weeks``).
    """
    from nadfit.datasets.units import to_days
    from nadfit.datasets.validate import parse_float

    best: tuple[float, str] | None = None

    def take(v: float, why: str):
        nonlocal best
        if v is not None and math.isfinite(v) and v > 0 and (best is None or v > best[0]):
            best = (v, why)

    for path, line, r in study_rows:
        take(parse_float(r.get("duration_days", "")), f"duration_days at {os.path.basename(path)}:{line}")
        t = parse_float(r.get("time", ""))
        if t is not None and r.get("time_unit") in TIME_UNITS:
            take(to_days(t, r["time_unit"]), f"time at {os.path.basename(path)}:{line}")
    for arm in (meta.arms if meta is not None else []):
        for m in _REGIMEN_RE.finditer(arm.regimen or ""):
            v = max(float(m.group(1)), float(m.group(2) or 0))
            take(to_days(v, m.group(3)), f"regimen of arm {arm.name!r} in study.yaml")
    return best


def check_design(rows: list[dict], sources: list[RowSource], end: tuple[float, str] | None, *, study: str,
                 input_name: str, x_unit: str, allow: bool) -> list[str]:
    """Refuse (or, with ``allow``, return warnings for) rows later than the study's design."""
    from nadfit.datasets.units import to_days

    if end is None:
        return [(f"study {study} states no duration or time points, so digitised times were not checked "
                 f"against its design")]
    last, why = end
    bad = []
    seen = set()
    for r, src in zip(rows, sources, strict=True):
        t_days = to_days(float(r["time"]), r["time_unit"])
        if t_days > last * DESIGN_MARGIN and r["time"] not in seen:
            seen.add(r["time"])
            bad.append((r, src, t_days))
    if not bad:
        return []
    r, src, t_days = bad[0]
    span = f"0 to {last:g} days, from {why}"
    if not allow:
        more = f" (and {len(bad) - 1} later time{'s' if len(bad) > 2 else ''})" if len(bad) > 1 else ""
        raise UserError(f"time {r['time']} {x_unit} of series {src.series!r}{more} is outside the design of "
                        f"study {study}, {span}; check --x-unit and the x calibration, or pass "
                        f"--allow-outside-design", file=input_name, row=src.row, field=src.field)
    for r2, _, _ in bad:
        for row in rows:
            if row["time"] == r2["time"]:
                row["note"] += f"; outside the study design ({span}); imported with --allow-outside-design"
    where = ", ".join(f"{b[0]['time']} {x_unit}" for b in bad[:5]) + (" ..." if len(bad) > 5 else "")
    return [(f"{input_name}: {len(bad)} time(s) outside the design of study {study} ({span}): {where}; "
             f"imported because of --allow-outside-design")]


# ------------------------------------------------------------------------------------------
# writing
# ------------------------------------------------------------------------------------------


def write_rows_atomic(rows: list[dict], out: str) -> None:
    """Write evidence rows to ``out`` via a temp file in the same folder and ``os.replace``."""
    folder = os.path.dirname(os.path.abspath(out))
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=".csv", dir=folder)
    try:
        with os.fdopen(fd, "w", newline="", encoding="utf-8") as fh:
            w = csv.DictWriter(fh, fieldnames=list(EVIDENCE_COLUMNS), lineterminator="\n")
            w.writeheader()
            w.writerows(rows)
        os.replace(tmp, out)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def import_digitised(input_path: str, *, study: str, figure: str, x_unit: str, y_unit: str,
                     analyte: str, matrix: str, compound: str, dose: str, dose_unit: str,
                     out: str, group: str | None = None, n: str = "", route: str = "",
                     error: str | None = None, source_url: str | None = None,
                     series_name: str | None = None, x_nominal: str | None = None,
                     force: bool = False, time_origin: str | None = None, bar_times: str | None = None,
                     replicates: str | None = None, allow_outside_design: bool = False,
                     warnings: list[str] | None = None) -> list[dict]:
    """Convert, check against the study folder of ``out``, then write atomically.

    Nothing is written when any check fails (a :class:`UserError` is raised instead). Warnings
    (times outside the design imported with ``allow_outside_design``, unchecked designs) are
    appended to ``warnings``.
    """
    from nadfit.datasets.validate import (
        check_cross_rows,
        check_row,
        parse_float,
        read_evidence_csv,
        read_study_yaml,
    )

    if x_unit not in TIME_UNITS:
        raise UserError(f"unknown time unit {x_unit!r}; use one of {sorted(TIME_UNITS)}", field="--x-unit")
    if y_unit not in UNITS:
        raise UserError(f"unknown unit {y_unit!r}; use one of {sorted(UNITS)}", field="--y-unit")
    for tok in split_multi(matrix):
        if tok not in MATRICES:
            raise UserError(f"unknown matrix {tok!r}", field="--matrix")
    for tok in split_multi(compound):
        if tok not in COMPOUNDS:
            raise UserError(f"unknown compound {tok!r}", field="--compound")
    if dose_unit and dose_unit not in DOSE_UNITS:
        raise UserError(f"unknown dose unit {dose_unit!r}", field="--dose-unit")
    if route and route not in ROUTES:
        raise UserError(f"unknown route {route!r}", field="--route")
    if error is not None and error not in ("sd", "se"):
        raise UserError(f"--error must be sd or se, not {error!r}", field="--error")
    if replicates is not None and replicates not in REPLICATE_MODES:
        raise UserError(f"--replicates must be one of {', '.join(REPLICATE_MODES)}, not {replicates!r}",
                        field="--replicates")
    origin = parse_time_origin(time_origin) if time_origin is not None else None
    bars = parse_bar_times(bar_times) if bar_times is not None else None
    if not re.fullmatch(r"evidence.*\.csv", os.path.basename(out)):
        raise UserError("output file name must match evidence*.csv so that loaders pick it up",
                        field="--out")
    if os.path.isdir(out):
        raise UserError(f"{out} is a folder; give the evidence*.csv file to write", field="--out")
    if os.path.lexists(out) and not force:
        raise UserError(f"{out} exists; pass --force to replace it", field="--out")
    nominal = None
    if x_nominal:
        nominal = []
        for tok in split_multi(x_nominal):
            v = parse_float(tok)
            if v is None:
                raise UserError(f"nominal time {tok!r} is not a number", field="--x-nominal")
            nominal.append(v)
    folder = os.path.dirname(out) or "."
    ypath = os.path.join(folder, "study.yaml")
    if not os.path.isfile(ypath):
        raise UserError(f"unknown study {study!r}: no study.yaml in {folder}", field="--out")
    problems: list[Problem] = []
    meta = read_study_yaml(ypath, problems, os.path.basename(os.path.abspath(folder)))
    if problems or meta is None:
        p = problems[0]
        raise UserError(p.message, file=p.file, row=p.row, field=p.field)
    if meta.study_id != study:
        raise UserError(f"--study {study!r} differs from {ypath} study_id {meta.study_id!r}",
                        field="--study")
    arms = {a.name: a for a in meta.arms}
    if group is None:
        group = f"{compound} {dose} {dose_unit}".strip()
    if group not in arms:
        raise UserError(f"group {group!r} is not an arm in {ypath} (inconsistent arms); "
                        f"arms: {sorted(arms)}", field="--group")
    regimen = arms[group].regimen or ""
    if n:
        v = parse_float(n)
        if v is None or v < 1 or v != int(v):
            raise UserError(f"n {n!r} must be a positive integer (n < 1 or not a number)", field="--n")

    series = read_wpd(input_path)
    mean, upper, lower = select_series(series, series_name, input_name=input_path)
    uses_origin = any(s is not None and s.x_kind in ("date", "time") for s in (mean, upper, lower))
    uses_bars = any(s is not None and s.x_kind == "label" for s in (mean, upper, lower))
    if origin is not None and not uses_origin:
        raise UserError(f"--time-origin given but series {mean.name!r} has a numeric x axis, not dates or "
                        f"times of day", field="--time-origin")
    if bars is not None and not uses_bars:
        raise UserError(f"--bar-times given but series {mean.name!r} is not a bar chart", field="--bar-times")
    mean, upper, lower = (to_study_time(s, x_unit, origin, bars, check_unused=s is mean) if s is not None else None
                          for s in (mean, upper, lower))
    sources: list[RowSource] = []
    rows = build_rows(input_name=input_path, study=study, figure=figure, x_unit=x_unit,
                      y_unit=y_unit, analyte=analyte, matrix=matrix, compound=compound, dose=dose,
                      dose_unit=dose_unit, group=group, n=n, route=route, regimen=regimen,
                      error=error, source_url=source_url or meta.url, x_nominal=nominal,
                      replicates=replicates, selected=(mean, upper, lower), sources=sources)
    # the study's other evidence files: duplicate ids, cross-row checks, design window
    study_rows = []
    existing_ids = {}
    for f in sorted(os.listdir(folder)):
        fp = os.path.join(folder, f)
        if re.fullmatch(r"evidence.*\.csv", f) and os.path.abspath(fp) != os.path.abspath(out):
            pf = read_evidence_csv(fp, problems)
            for line, r in (pf.rows if pf else []):
                existing_ids[r["evidence_id"]] = (fp, line)
                study_rows.append((fp, line, r))
    notes = check_design(rows, sources, design_end_days(meta, study_rows), study=study,
                         input_name=mean.file or input_path, x_unit=x_unit, allow=allow_outside_design)
    for i, r in enumerate(rows, start=2):
        check_row(out, i, r, study, set(arms), problems)
        if r["evidence_id"] in existing_ids:
            fp, line = existing_ids[r["evidence_id"]]
            problems.append(Problem(out, i, "evidence_id",
                                    f"duplicate evidence_id {r['evidence_id']!r} (first at {fp}:{line})"))
        study_rows.append((out, i, r))
    check_cross_rows(study_rows, meta, problems)
    if problems:
        p = problems[0]
        if p.file == out and p.row is not None and 2 <= p.row < 2 + len(rows):
            # a new row: name the input point it comes from (the output file is not written)
            src = sources[p.row - 2]
            where = src.y_field if p.field == "value" and src.y_field else src.field
            raise UserError(f"{p.message} (column {p.field!r} of the evidence row made from this point of "
                            f"series {src.series!r})", file=mean.file or input_path, row=src.row, field=where)
        raise UserError(p.message, file=p.file, row=p.row, field=p.field)
    write_rows_atomic(rows, out)
    if warnings is not None:
        warnings.extend(notes)
    return rows
