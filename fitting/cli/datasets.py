"""``nadfit datasets ...``: list, show, gaps, validate and import-digitised.

Human output uses rich tables; ``--json`` output has the stable shapes documented in
``datasets/README.md``. User mistakes raise :class:`UserError` (one line, exit code 2).
"""

from __future__ import annotations

import json
import sys
from typing import Optional

import typer

from nadfit.datasets.errors import UserError
from nadfit.fitting.cli.options import JSON_HELP

app = typer.Typer(help="Evidence datasets: list, inspect, validate, import digitised figures.",
                  no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False)


def _print_json(obj) -> None:
    print(json.dumps(obj, indent=2, ensure_ascii=False, sort_keys=False))


def _console():
    from rich.console import Console

    return Console(file=sys.stdout, width=160)


def _evidence_by_study():
    from nadfit.datasets import load_evidence

    df = load_evidence()
    return df, {sid: g for sid, g in df.groupby("study_id", sort=True)}


@app.command("list")
def list_cmd(as_json: bool = typer.Option(False, "--json", help=JSON_HELP)) -> None:
    """List the shipped studies with their row counts."""
    from nadfit.datasets import load_gaps, load_studies

    studies = load_studies()
    _, by_study = _evidence_by_study()
    gaps = load_gaps()
    out = []
    for sid in sorted(studies):
        meta = studies[sid]
        g = by_study.get(sid)
        n_rows = 0 if g is None else len(g)
        n_num = 0 if g is None else int(g["value"].notna().sum())
        out.append({
            "study_id": sid, "citation": meta.citation, "species": meta.species,
            "system": meta.system, "n_rows": n_rows, "n_numeric": n_num,
            "gaps": sorted(gaps.loc[gaps["study_id"] == sid, "gap_id"].tolist()),
        })
    if as_json:
        _print_json({"studies": out})
        return
    from rich.table import Table

    t = Table(title=f"{len(out)} studies")
    for col in ("study_id", "species", "rows", "numeric", "gaps", "citation"):
        t.add_column(col)
    for s in out:
        t.add_row(s["study_id"], s["species"], str(s["n_rows"]), str(s["n_numeric"]),
                  ",".join(s["gaps"]), s["citation"])
    _console().print(t)


def _row_json(r) -> dict:
    from nadfit.datasets.schema import EVIDENCE_COLUMNS

    d = {}
    for c in EVIDENCE_COLUMNS:
        v = r[c]
        if c == "n":
            d[c] = None if v is None or v is __import__("pandas").NA else int(v)
        elif c in ("value", "doses_per_day", "duration_days", "time"):
            d[c] = None if v != v else float(v)  # NaN -> null
        else:
            d[c] = str(v)
    d["n_text"] = str(r["n_text"])
    d["time_days"] = None if r["time_days"] != r["time_days"] else float(r["time_days"])
    return d


@app.command("show")
def show_cmd(study: str = typer.Argument(..., help="study_id"),
             as_json: bool = typer.Option(False, "--json", help=JSON_HELP)) -> None:
    """Show one study's metadata, evidence rows and recorded gaps."""
    from nadfit.datasets import load_gaps, load_study

    meta = load_study(study)
    _, by_study = _evidence_by_study()
    g = by_study.get(study)
    rows = [] if g is None else [_row_json(r) for _, r in g.iterrows()]
    gaps = load_gaps()
    gl = gaps[gaps["study_id"] == study].to_dict(orient="records")
    if as_json:
        _print_json({"study": meta.model_dump(), "evidence": rows, "gaps": gl})
        return
    from rich.table import Table

    con = _console()
    con.print(f"[bold]{meta.study_id}[/bold]  {meta.citation}")
    con.print(f"url: {meta.url}   doi: {meta.doi}   pmcid: {meta.pmcid}")
    con.print(f"species: {meta.species}   system: {'; '.join(meta.system)}   assay: {meta.assay}")
    at = Table(title="arms")
    for col in ("name", "n", "compound", "dose", "dose_unit", "regimen"):
        at.add_column(col)
    for a in meta.arms:
        at.add_row(a.name, "" if a.n is None else str(a.n), a.compound or "", a.dose or "",
                   a.dose_unit or "", a.regimen or "")
    con.print(at)
    et = Table(title=f"{len(rows)} evidence rows")
    for col in ("evidence_id", "group", "time", "matrix", "analyte", "statistic", "value", "unit",
                "locator"):
        et.add_column(col)
    for r in rows:
        val = r["value_text"] if r["value"] is None else f"{r['value']:g}"
        tm = "" if r["time"] is None else f"{r['time']:g} {r['time_unit']}"
        et.add_row(r["evidence_id"], r["group"], tm, r["matrix"], r["analyte"], r["statistic"],
                   val, r["unit"], r["locator"])
    con.print(et)
    for gp in gl:
        con.print(f"gap {gp['gap_id']} [{gp['priority']}]: {gp['what']} ({gp['where']})")


@app.command("gaps")
def gaps_cmd(as_json: bool = typer.Option(False, "--json", help=JSON_HELP),
             priority: Optional[str] = typer.Option(None, "--priority", help="A, B or C")) -> None:
    """Results known to exist only in unreadable figures/tables."""
    from nadfit.datasets import load_gaps

    gaps = load_gaps()
    if priority is not None:
        if priority not in ("A", "B", "C"):
            raise UserError(f"priority must be A, B or C, not {priority!r}", field="--priority")
        gaps = gaps[gaps["priority"] == priority]
    recs = gaps.to_dict(orient="records")
    if as_json:
        _print_json({"gaps": recs})
        return
    from rich.table import Table

    t = Table(title=f"{len(recs)} gaps")
    for col in ("gap_id", "priority", "study_id", "study", "where", "what"):
        t.add_column(col)
    for r in recs:
        t.add_row(r["gap_id"], r["priority"], r["study_id"], r["study"], r["where"], r["what"])
    _console().print(t)


@app.command("validate")
def validate_cmd(paths: list[str] = typer.Argument(..., help="study folders, evidence CSVs, "
                                                                 "study.yaml files or a datasets root"),
                 as_json: bool = typer.Option(False, "--json", help=f"{JSON_HELP}: "
                                              '{"valid", "files", "problems": [{"file", "row", "field", "message"}]}'),
                 ) -> None:
    """Validate study folders/files; exit 2 with one 'file:row:field: message' line per problem."""
    from nadfit.datasets.validate import count_files, validate_paths

    problems = validate_paths(paths)
    if as_json:
        _print_json({"valid": not problems, "files": count_files(paths),
                     "problems": [{"file": p.file, "row": p.row, "field": p.field, "message": p.message}
                                  for p in problems]})
        if problems:
            raise typer.Exit(2)
        return
    if problems:
        for p in problems:
            print(str(p), file=sys.stderr)
        raise UserError(f"{len(problems)} problem{'s' if len(problems) != 1 else ''} found")
    print(f"{count_files(paths)} files valid")


@app.command("import-digitised")
def import_digitised_cmd(
    input_path: str = typer.Argument(..., help="WebPlotDigitizer project (.tar from Save Project, or its "
                                               "wpd.json; WPD 3 or 4) or CSV export (.csv/.tsv/.txt)"),
    study: str = typer.Option(..., "--study", help="study_id of the study folder that --out is in"),
    figure: str = typer.Option(..., "--figure", help='e.g. "Fig 2B"'),
    x_unit: str = typer.Option(..., "--x-unit", help="time unit of the x axis (min, h, day, week, month)"),
    y_unit: str = typer.Option(..., "--y-unit", help="unit of the y values, e.g. nmol/L"),
    analyte: str = typer.Option(..., "--analyte", help="what was measured"),
    matrix: str = typer.Option(..., "--matrix", help="sample matrix, e.g. blood_unspecified"),
    compound: str = typer.Option(..., "--compound", help="compound given, e.g. NMN"),
    dose: str = typer.Option(..., "--dose", help="dose of the arm, in --dose-unit"),
    out: str = typer.Option(..., "--out", help="datasets/studies/<study>/evidence_digitised*.csv"),
    dose_unit: str = typer.Option("mg/day", "--dose-unit", help="unit of --dose, e.g. mg/day or mg/kg/day"),
    group: Optional[str] = typer.Option(None, "--group", help="arm name in study.yaml "
                                        "(default: '<compound> <dose> <dose-unit>')"),
    n: str = typer.Option("", "--n", help="per-group n (needed for sd/se unless the arm has n)"),
    route: str = typer.Option("", "--route", help="route of administration, e.g. oral"),
    error: Optional[str] = typer.Option(None, "--error", help="sd or se: meaning of the error bars"),
    source_url: Optional[str] = typer.Option(None, "--source-url", help="default: the study's url"),
    series: Optional[str] = typer.Option(None, "--series", help="name of the point series (dataset) to import"),
    x_nominal: Optional[str] = typer.Option(None, "--x-nominal",
                                            help="';'-separated nominal times to snap x to"),
    time_origin: Optional[str] = typer.Option(
        None, "--time-origin", help="study time 0 for date axes (YYYY-MM-DD[ HH:MM]) or time-of-day axes (HH:MM)"),
    bar_times: Optional[str] = typer.Option(
        None, "--bar-times", help="time of each bar of a bar chart, e.g. 'Bar0=0;Bar1=30;Bar2=60'"),
    replicates: Optional[str] = typer.Option(
        None, "--replicates", help="replicate scatter (points sharing x): mean-sd or mean-se (one mean and "
                                   "SD/SE row per time, n = points) or points (one n = 1 row per point)"),
    allow_outside_design: bool = typer.Option(
        False, "--allow-outside-design", help="import times beyond the study's design with a warning "
                                              "instead of refusing them"),
    force: bool = typer.Option(False, "--force", help="replace --out if it exists"),
) -> None:
    """Convert a WebPlotDigitizer project or export into grade-'digitised' evidence rows (atomic write)."""
    from nadfit.datasets.importers.webplotdigitizer import import_digitised

    warnings: list[str] = []
    rows = import_digitised(input_path, study=study, figure=figure, x_unit=x_unit, y_unit=y_unit,
                            analyte=analyte, matrix=matrix, compound=compound, dose=dose,
                            dose_unit=dose_unit, out=out, group=group, n=n, route=route,
                            error=error, source_url=source_url, series_name=series,
                            x_nominal=x_nominal, force=force, time_origin=time_origin,
                            bar_times=bar_times, replicates=replicates,
                            allow_outside_design=allow_outside_design, warnings=warnings)
    for w in warnings:
        print(f"nadfit: warning: {w}", file=sys.stderr)
    print(f"wrote {len(rows)} rows to {out}")
