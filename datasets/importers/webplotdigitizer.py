"""Turn WebPlotDigitizer (WPD) exports into evidence rows with grade ``digitised``.

Inputs
------
* WPD project JSON (``File > Save Project``'s ``wpd.json``, or the bare JSON): ``axesColl`` holds
  XY axes with four ``calibrationPoints`` (``px``, ``py`` pixels; ``dx`` on the two x-axis points,
  ``dy`` on the two y-axis points) and ``isLogX``/``isLogY``; ``datasetColl`` holds named datasets
  whose ``data`` entries carry pixel coordinates ``x``, ``y``. Pixels are converted here with
  WPD's own XY calibration (a 2x2 affine map fitted to the four points, in log10 space on log
  axes), not taken from the stored ``value``.
* WPD CSV export, already in data coordinates: a single dataset (``x,y`` rows, optional
  ``x,y`` header) or "all datasets" (row 1 dataset names every second column, row 2 ``X,Y``).

Series whose name contains ``upper``/``lower`` (or ends with ``+``/``-``) are error-bar ends;
all others are point series (means). Each error value is the half-width ``(upper - lower) / 2``
when both ends exist, otherwise ``|end - mean|``, matched to the mean with the nearest x.
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
import re
import tempfile
from dataclasses import dataclass
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


@dataclass
class Series:
    name: str
    points: list[tuple[float, float]]   # data coordinates


# ------------------------------------------------------------------------------------------
# WPD calibration
# ------------------------------------------------------------------------------------------


def _num(v, what: str, file: str) -> float:
    try:
        f = float(str(v).strip())
    except (TypeError, ValueError):
        raise UserError(f"{what} {v!r} is not a number", file=file) from None
    if not math.isfinite(f):
        raise UserError(f"{what} {v!r} is not finite", file=file)
    return f


class XYCalibration:
    """WPD's XYAxes pixel -> data map (same algebra as wpd.XYAxes.processCalibration)."""

    def __init__(self, points: list[dict], is_log_x: bool, is_log_y: bool, file: str = "<json>"):
        if len(points) < 4:
            raise UserError(f"XY axes need 4 calibration points, found {len(points)}", file=file)
        p = points[:4]
        x1, y1 = _num(p[0].get("px"), "px", file), _num(p[0].get("py"), "py", file)
        x2, y2 = _num(p[1].get("px"), "px", file), _num(p[1].get("py"), "py", file)
        x3, y3 = _num(p[2].get("px"), "px", file), _num(p[2].get("py"), "py", file)
        x4, y4 = _num(p[3].get("px"), "px", file), _num(p[3].get("py"), "py", file)
        xmin, xmax = _num(p[0].get("dx"), "dx", file), _num(p[1].get("dx"), "dx", file)
        ymin, ymax = _num(p[2].get("dy"), "dy", file), _num(p[3].get("dy"), "dy", file)
        self.log_x, self.log_y = bool(is_log_x), bool(is_log_y)
        if self.log_x:
            if xmin <= 0 or xmax <= 0:
                raise UserError("log x axis needs positive calibration values", file=file)
            xmin, xmax = math.log10(xmin), math.log10(xmax)
        if self.log_y:
            if ymin <= 0 or ymax <= 0:
                raise UserError("log y axis needs positive calibration values", file=file)
            ymin, ymax = math.log10(ymin), math.log10(ymax)
        # dat_mat = [[xmin-xmax, 0], [0, ymin-ymax]], pix_mat = [[x1-x2, x3-x4], [y1-y2, y3-y4]]
        a, b, c, d = x1 - x2, x3 - x4, y1 - y2, y3 - y4
        det = a * d - b * c
        if abs(det) < 1e-12 or xmin == xmax or ymin == ymax:
            raise UserError("degenerate axis calibration (points coincide or values equal)", file=file)
        inv = (d / det, -b / det, -c / det, a / det)
        dx, dy = xmin - xmax, ymin - ymax
        self.a = (dx * inv[0], dx * inv[1], dy * inv[2], dy * inv[3])
        self.c = (xmin - self.a[0] * x1 - self.a[1] * y1, ymin - self.a[2] * x3 - self.a[3] * y3)

    def pixel_to_data(self, px: float, py: float) -> tuple[float, float]:
        xf = self.a[0] * px + self.a[1] * py + self.c[0]
        yf = self.a[2] * px + self.a[3] * py + self.c[1]
        return (10 ** xf if self.log_x else xf, 10 ** yf if self.log_y else yf)


def read_wpd_json(path: str) -> list[Series]:
    try:
        doc = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise UserError(f"cannot read file: {exc.__class__.__name__}", file=path) from exc
    except json.JSONDecodeError as exc:
        raise UserError(f"malformed JSON: {exc.msg}", file=path, row=exc.lineno) from exc
    if isinstance(doc, dict) and isinstance(doc.get("wpd"), dict):
        doc = doc["wpd"]
    if not isinstance(doc, dict) or "axesColl" not in doc or "datasetColl" not in doc:
        raise UserError("not a WebPlotDigitizer project: needs 'axesColl' and 'datasetColl'", file=path)
    axes = {}
    for ax in doc["axesColl"] or []:
        if not isinstance(ax, dict):
            raise UserError("malformed axesColl entry", file=path)
        if ax.get("type", "XYAxes") != "XYAxes":
            continue
        axes[ax.get("name", "XY")] = XYCalibration(ax.get("calibrationPoints") or [],
                                                    ax.get("isLogX", False), ax.get("isLogY", False), path)
    if not axes:
        raise UserError("no calibrated XY axes in the project (only XY axes are supported)", file=path)
    out = []
    for ds in doc["datasetColl"] or []:
        if not isinstance(ds, dict):
            raise UserError("malformed datasetColl entry", file=path)
        name = str(ds.get("name", "Default Dataset"))
        axname = ds.get("axesName")
        cal = axes.get(axname) if axname is not None else next(iter(axes.values()))
        if cal is None:
            raise UserError(f"dataset {name!r} uses axes {axname!r}, which are not XY axes", file=path)
        pts = []
        for i, d in enumerate(ds.get("data") or []):
            if not isinstance(d, dict):
                raise UserError(f"dataset {name!r} point {i} is malformed", file=path)
            px = _num(d.get("x"), f"dataset {name!r} point {i} x", path)
            py = _num(d.get("y"), f"dataset {name!r} point {i} y", path)
            pts.append(cal.pixel_to_data(px, py))
        if pts:
            out.append(Series(name, sorted(pts)))
    if not out:
        raise UserError("the project has no digitised points", file=path)
    return out


def read_wpd_csv(path: str) -> list[Series]:
    try:
        text = Path(path).read_text(encoding="utf-8-sig")
        rows = [r for r in csv.reader(io.StringIO(text)) if any(c.strip() for c in r)]
    except (OSError, UnicodeDecodeError) as exc:
        raise UserError(f"cannot read file: {exc.__class__.__name__}", file=path) from exc
    except csv.Error as exc:
        raise UserError(f"malformed CSV: {exc}", file=path) from exc
    if not rows:
        raise UserError("malformed CSV: file is empty", file=path)

    def isnum(s):
        try:
            float(s)
            return True
        except ValueError:
            return False

    def numrow(r, line):
        vals = []
        for c in r:
            c = c.strip()
            if c == "":
                vals.append(None)
            elif isnum(c) and math.isfinite(float(c)):
                vals.append(float(c))
            else:
                raise UserError(f"value {c!r} is not a finite number", file=path, row=line)
        return vals

    stem = Path(path).stem
    if all(isnum(c.strip()) for c in rows[0] if c.strip()):
        names, body, first = [stem], rows, 1
    elif len(rows) > 1 and all(c.strip().upper() in ("X", "Y", "") for c in rows[1]):
        names = [rows[0][i].strip() or f"series{i // 2 + 1}" for i in range(0, len(rows[0]), 2)]
        body, first = rows[2:], 3
    elif [c.strip().lower() for c in rows[0]][:2] == ["x", "y"]:
        names, body, first = [stem], rows[1:], 2
    else:
        raise UserError("unrecognised WPD CSV layout (expected x,y rows or the all-datasets export)",
                        file=path, row=1)
    series = [Series(n, []) for n in names]
    for k, r in enumerate(body):
        vals = numrow(r, first + k)
        for j, s in enumerate(series):
            pair = vals[2 * j: 2 * j + 2]
            if len(pair) == 2 and pair[0] is not None and pair[1] is not None:
                s.points.append((pair[0], pair[1]))
            elif len(pair) == 2 and (pair[0] is None) != (pair[1] is None):
                raise UserError(f"series {s.name!r} has an x without y (or y without x)",
                                file=path, row=first + k)
    series = [Series(s.name, sorted(s.points)) for s in series if s.points]
    if not series:
        raise UserError("the export has no points", file=path)
    return series


def read_wpd(path: str) -> list[Series]:
    if not os.path.isfile(path):
        raise UserError("no such file", file=path)
    if path.lower().endswith(".json"):
        return read_wpd_json(path)
    if path.lower().endswith(".csv"):
        return read_wpd_csv(path)
    raise UserError("expected a WebPlotDigitizer project .json or a .csv export", file=path)


# ------------------------------------------------------------------------------------------
# rows
# ------------------------------------------------------------------------------------------


def _kind(name: str) -> str:
    n = name.strip().lower()
    if "upper" in n or n.endswith("+"):
        return "upper"
    if "lower" in n or n.endswith("-"):
        return "lower"
    return "point"


def _sig(v: float) -> str:
    return f"{v:.6g}"


def _slug(s: str) -> str:
    return re.sub(r"[^A-Za-z0-9]+", "", s) or "fig"


def build_rows(series: list[Series], *, input_name: str, study: str, figure: str, x_unit: str,
               y_unit: str, analyte: str, matrix: str, compound: str, dose: str, dose_unit: str,
               group: str, n: str = "", route: str = "", regimen: str = "",
               error: str | None = None, source_url: str, series_name: str | None = None,
               x_nominal: list[float] | None = None) -> list[dict]:
    pts = [s for s in series if _kind(s.name) == "point"]
    if series_name is not None:
        pts = [s for s in pts if s.name == series_name]
        if not pts:
            raise UserError(f"no point series named {series_name!r}; found "
                            f"{[s.name for s in series]}", file=input_name)
    if len(pts) != 1:
        raise UserError(f"expected exactly one point (mean) series, found {[s.name for s in pts]}; "
                        f"choose one with --series", file=input_name)
    mean = pts[0]
    upper = [s for s in series if _kind(s.name) == "upper"]
    lower = [s for s in series if _kind(s.name) == "lower"]
    if (upper or lower) and error is None:
        raise UserError("error-bar series found; say what they are with --error sd|se", file=input_name)
    if error is not None and not (upper or lower):
        raise UserError(f"--error {error} given but no error-bar series (names with 'upper'/'lower')",
                        file=input_name)
    if len(upper) > 1 or len(lower) > 1:
        raise UserError("more than one upper or lower error-bar series", file=input_name)
    xs = [x for x, _ in mean.points]
    span = (max(xs) - min(xs)) if len(xs) > 1 else max(1.0, abs(xs[0]))
    tol = 0.02 * span if span > 0 else 1e-9

    def partner(s: Series | None, x: float) -> float | None:
        if s is None:
            return None
        best = min(s.points, key=lambda p: abs(p[0] - x))
        return best[1] if abs(best[0] - x) <= tol else None

    rows = []
    fig_slug = _slug(figure)
    locator = f"{figure} (digitised with WebPlotDigitizer)"
    k = 0
    for x, y in mean.points:
        t = x
        note_x = f"digitised x = {_sig(x)} {x_unit}"
        if x_nominal:
            near = min(x_nominal, key=lambda v: abs(v - x))
            if abs(near - x) > tol:
                raise UserError(f"digitised x {_sig(x)} is not within {_sig(tol)} of any nominal "
                                f"time {x_nominal}", file=input_name)
            t = near
        if t < 0:
            raise UserError(f"digitised time {_sig(t)} {x_unit} is negative; re-calibrate or give "
                            f"--x-nominal", file=input_name)
        base = {c: "" for c in EVIDENCE_COLUMNS}
        base.update({
            "study_id": study, "group": group, "n": n, "compound": compound, "dose": dose,
            "dose_unit": dose_unit, "route": route, "regimen": regimen, "time": _sig(t),
            "time_unit": x_unit, "matrix": matrix, "analyte": analyte, "unit": y_unit,
            "grade": "digitised", "source_url": source_url, "locator": locator,
        })
        k += 1
        r = dict(base, evidence_id=f"DG_{study}_{fig_slug}_{k:03d}", statistic="mean",
                 value=_sig(y),
                 note=f"digitised from {os.path.basename(input_name)}, series {mean.name!r}; {note_x}")
        rows.append(r)
        if error is not None:
            up = partner(upper[0] if upper else None, x)
            lo = partner(lower[0] if lower else None, x)
            if up is None and lo is None:
                raise UserError(f"no error-bar end near x = {_sig(x)} for the mean point",
                                file=input_name)
            if up is not None and lo is not None:
                half = (up - lo) / 2.0
                how = "half the distance between the upper and lower bar ends"
            else:
                half = abs((up if up is not None else lo) - y)
                how = "distance from the mean to the " + ("upper" if up is not None else "lower") + " bar end"
            if half < 0:
                raise UserError(f"upper error-bar end below lower end at x = {_sig(x)}", file=input_name)
            k += 1
            rows.append(dict(base, evidence_id=f"DG_{study}_{fig_slug}_{k:03d}", statistic=error,
                             value=_sig(half),
                             note=f"digitised from {os.path.basename(input_name)}; {how}; {note_x}"))
    return rows


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
                     series_name: str | None = None, x_nominal: str | None = None) -> list[dict]:
    """Convert, check against the study folder of ``out``, then write atomically.

    Nothing is written when any check fails (a :class:`UserError` is raised instead).
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
    if not re.fullmatch(r"evidence.*\.csv", os.path.basename(out)):
        raise UserError("output file name must match evidence*.csv so that loaders pick it up",
                        field="--out")
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
    rows = build_rows(series, input_name=input_path, study=study, figure=figure, x_unit=x_unit,
                      y_unit=y_unit, analyte=analyte, matrix=matrix, compound=compound, dose=dose,
                      dose_unit=dose_unit, group=group, n=n, route=route, regimen=regimen,
                      error=error, source_url=source_url or meta.url, series_name=series_name,
                      x_nominal=nominal)
    # check the new rows together with the study's other evidence files
    study_rows = []
    existing_ids = {}
    for f in sorted(os.listdir(folder)):
        fp = os.path.join(folder, f)
        if re.fullmatch(r"evidence.*\.csv", f) and os.path.abspath(fp) != os.path.abspath(out):
            pf = read_evidence_csv(fp, problems)
            for line, r in (pf.rows if pf else []):
                existing_ids[r["evidence_id"]] = (fp, line)
                study_rows.append((fp, line, r))
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
        raise UserError(p.message, file=p.file, row=p.row, field=p.field)
    write_rows_atomic(rows, out)
    return rows
