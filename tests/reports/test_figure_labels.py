"""No two text labels overlap in the figures the reports draw themselves, and no legend or
annotation text lies on a curve (issue 18: dose-response labels over the curves, forest-plot
labels over each other). Measured on the matplotlib figures, with the renderer's own text
bounding boxes; the figures are the ones the reports embed (captured while rendering)."""

from __future__ import annotations

from unittest import mock

import matplotlib
import numpy as np
import pytest
from matplotlib.text import Text
from matplotlib.transforms import Bbox

from nadfit.reports import figures

#: figures drawn by nadfit itself (ArviZ's trace, energy and pair plots are not ours to lay out)
OURS = {"rank_ecdf_plot", "prior_posterior_grid", "prior_quantile_forest", "forest_plot", "psense_plot",
        "evidence_fit_plot", "dose_time_plot", "dose_response_plot", "elpd_plot", "weights_plot", "by_study_plot",
        "interval_plot", "confusion_plot", "marginal_plot", "pareto_k_plot", "loo_pit_plot"}
PAD = 0.5  # px: boxes that merely touch do not overlap


def drawn_texts(fig) -> list[tuple[Text, Bbox]]:
    """Every non-empty text the renderer actually draws, with its window extent."""
    out = []
    orig = Text.draw

    def record(self, renderer):
        orig(self, renderer)
        if self.get_visible() and self.get_text().strip():
            bb = self.get_window_extent(renderer)
            if bb.width > 0 and bb.height > 0:
                out.append((self, bb))

    with mock.patch.object(Text, "draw", record):
        fig.canvas.draw()
    return out


def _hit(a: Bbox, b: Bbox) -> bool:
    return a.x0 + PAD < b.x1 - PAD and b.x0 + PAD < a.x1 - PAD and a.y0 + PAD < b.y1 - PAD and b.y0 + PAD < a.y1 - PAD


def text_overlaps(fig, boxes=None) -> list[str]:
    boxes = drawn_texts(fig) if boxes is None else boxes
    bad = []
    for i in range(len(boxes)):
        for j in range(i + 1, len(boxes)):
            if _hit(boxes[i][1], boxes[j][1]):
                bad.append(f"{boxes[i][0].get_text()!r} overlaps {boxes[j][0].get_text()!r}")
    return bad


def _is_axis_text(t: Text) -> bool:
    """Tick labels, axis labels and titles: placed by matplotlib around the axes, not on data."""
    for ax in t.figure.axes:
        if t in (ax.title, ax._left_title, ax._right_title, ax.xaxis.label, ax.yaxis.label):
            return True
        if t in ax.get_xticklabels() or t in ax.get_yticklabels():
            return True
    return False


def curve_overlaps(fig, boxes=None) -> list[str]:
    """Legend entries and annotations that lie on a drawn line (inside the axes that clip it)."""
    bad = []
    texts = [(t, bb) for t, bb in (drawn_texts(fig) if boxes is None else boxes) if not _is_axis_text(t)]
    for ax in fig.axes:
        if not ax.get_visible():
            continue
        clip = ax.get_window_extent()
        for line in ax.get_lines():
            if not line.get_visible() or len(line.get_xdata()) < 2 or line.get_linestyle() in ("None", "", " "):
                continue
            path = line.get_transform().transform_path(line.get_path())
            for t, bb in texts:
                inter = Bbox.intersection(bb, clip)
                if inter is not None and inter.width > 1 and inter.height > 1 and path.intersects_bbox(inter, filled=False):
                    bad.append(f"{t.get_text()!r} lies on a line of {ax.get_ylabel() or ax.get_title()!r}")
    return bad


def _check(captured):
    names = {n for n, _ in captured}
    problems = []
    for name, fig in captured:
        if name in OURS:
            boxes = drawn_texts(fig)
            problems += [f"{name}: {p}" for p in text_overlaps(fig, boxes) + curve_overlaps(fig, boxes)]
    return names, problems


def test_the_checks_catch_overlaps():
    """Negative control: two labels on one spot, and an annotation on a curve."""
    with matplotlib.rc_context(figures.STYLE):
        fig, ax = matplotlib.pyplot.subplots()
        ax.plot([0, 1], [0, 1])
        ax.set_yticks([0.5, 0.51])
        ax.set_yticklabels(["EV002 yi2022", "EV003 yi2022"])
        ax.annotate("Huang 2022 serum +38 %", (0.5, 0.5))
        assert text_overlaps(fig) and curve_overlaps(fig)
        matplotlib.pyplot.close(fig)


def test_run_report_figures_have_no_overlapping_labels(synth_run):
    from nadfit.fitting.comparison.sensitivity import power_scaling
    from nadfit.fitting.inference.runs import load_run
    from nadfit.reports.render import run_context

    run = load_run(synth_run)
    with figures.capture() as captured:
        run_context(run, psense=power_scaling(run))
        names, problems = _check(captured)
    assert {"rank_ecdf_plot", "forest_plot", "evidence_fit_plot", "dose_time_plot", "dose_response_plot",
            "prior_posterior_grid", "prior_quantile_forest", "psense_plot"} <= names
    assert problems == []


def test_comparison_report_figures_have_no_overlapping_labels(synth_comparison):
    from nadfit.fitting.comparison.assemble import load_comparison, run_statuses
    from nadfit.reports.render import comparison_context

    comp = load_comparison(synth_comparison)
    with figures.capture() as captured:
        comparison_context(comp, synth_comparison, run_statuses(comp, synth_comparison))
        names, problems = _check(captured)
    assert {"elpd_plot", "marginal_plot", "pareto_k_plot", "loo_pit_plot", "by_study_plot"} <= names
    assert problems == []


@pytest.mark.parametrize("n_doses", [6, 9, 14])
def test_dose_figures_keep_labels_off_the_curves(n_doses):
    """Steep extrapolated doses (the 2000 mg/day band reached 15x) and several trial points."""
    rng = np.random.default_rng(0)
    doses = np.unique(np.concatenate([[0.0, 300.0, 600.0, 900.0], np.linspace(100, 3000, n_doses - 3)]))
    days = np.arange(91.0)
    amp = rng.lognormal(np.log(0.5), 0.6, size=(200, 1, 1))
    fold = 1 + amp * (doses[None, :, None] / 600.0) ** 1.5 * (1 - np.exp(-days[None, None, :] / 8.0))
    overlay = [{"dose": 300.0, "day": 30, "fold": 1.113, "label": "Huang 2022 serum +11.3 % (d30, EV026)"},
               {"dose": 300.0, "day": 60, "fold": 1.38, "label": "Huang 2022 serum +38 % (d60, EV028)"}]
    studied = {"quant": (300.0, 900.0), "any": (250.0, 2000.0)}
    with figures.capture() as captured:
        for fn in (figures.dose_time_plot, figures.dose_response_plot):
            args = (fold, doses, days, overlay, studied) if fn is figures.dose_time_plot else \
                (fold, doses, days, 60, overlay, studied)
            assert fn(*args).startswith("data:image/png")
        _, problems = _check(captured)
        # the y axis is set by the studied doses, not by the extrapolated band
        for name, fig in captured:
            ax = fig.axes[0]
            inside = (doses >= 300) & (doses <= 900)
            k = 60 if name == "dose_response_plot" else slice(None)
            hi_in = np.quantile(fold[:, inside, k], 0.945, axis=0).max()
            hi_all = np.quantile(fold[:, :, k], 0.945, axis=0).max()
            assert ax.get_ylim()[1] < 1.2 * hi_in < hi_all
    assert problems == []


def test_forest_plot_labels_each_element(synth_run):
    import xarray as xr

    dt = xr.open_datatree(synth_run / "posterior.nc")
    vectors = [str(v) for v in dt["posterior"].data_vars if str(v).startswith("z_")]
    with figures.capture() as captured:
        figures.forest_plot(dt, vectors)
        _, fig = captured[0]
        labels = [t.get_text() for t in fig.axes[0].get_yticklabels()]
        assert text_overlaps(fig) == []
    n = sum(dt["posterior"][v].size // (dt["posterior"].sizes["chain"] * dt["posterior"].sizes["draw"]) for v in vectors)
    assert len(labels) == n and len(set(labels)) == n and all(" · " in lab for lab in labels)
