"""Static figures for the nadfit reports (matplotlib Agg; ArviZ 1.x ``arviz_plots`` where it fits).

Every function returns a ``data:image/png;base64,...`` URI (or ``None`` when the figure cannot
be drawn from the data present) so that templates embed the images inline. Intervals are 89 %
equal-tailed (ETI) everywhere, with 50 % ETI as the inner band, matching ``summary.json``'s ``ci``.
"""

from __future__ import annotations

import base64
import contextlib
import io
import math
import warnings

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.patches import Patch  # noqa: E402

from nadfit.reports.conventions import CI_QUANTILES  # noqa: E402

Q50 = (0.25, 0.75)
DPI = 80
PRIOR_COLOR = "#9aa5b1"
POST_COLOR = "#2b6cb0"
OBS_COLOR = "#c53030"
HYP_COLORS = ("#2b6cb0", "#dd6b20", "#2f855a", "#805ad5", "#b83280")

STYLE = {
    "font.size": 9, "axes.titlesize": 9, "axes.labelsize": 9, "xtick.labelsize": 8,
    "ytick.labelsize": 8, "legend.fontsize": 8, "figure.facecolor": "white",
    "axes.facecolor": "white", "savefig.facecolor": "white", "axes.spines.top": False,
    "axes.spines.right": False, "svg.hashsalt": "nadfit",
}


_captured: list | None = None
_drawing: list[str] = []


@contextlib.contextmanager
def capture():
    """Keep the figures drawn inside the block open, for tests that measure them (text
    bounding boxes): yields a list of ``(function name, Figure)``; closed when the block ends."""
    global _captured
    prev, _captured = _captured, []
    try:
        yield _captured
    finally:
        for _, f in _captured:
            plt.close(f)
        _captured = prev


def _legend_below(fig, handles, height_in: float, ncol: int, fontsize=None) -> None:
    """Lay the axes out above a strip of ``height_in`` inches and put the legend in that strip
    (a legend outside the axes never covers a curve or a label)."""
    fig.tight_layout(rect=(0, height_in / fig.get_figheight(), 1, 1))
    fig.legend(handles=handles, loc="lower center", bbox_to_anchor=(0.5, 0), ncol=ncol, frameon=False,
               **({"fontsize": fontsize} if fontsize else {}))

def to_data_uri(fig, dpi: int = DPI) -> str:
    """PNG bytes of ``fig`` as a data URI (no timestamps/software metadata: deterministic)."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi, bbox_inches="tight", metadata={"Software": None})
    if _captured is not None:
        _captured.append((_drawing[-1] if _drawing else "?", fig))
    else:
        plt.close(fig)
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def _pc_figure(pc):
    return pc.viz["figure"].item()


def _safe(fn):
    """A figure that fails to draw must not take the report down: it becomes ``None``."""

    def wrapper(*args, **kwargs):
        _drawing.append(fn.__name__)
        try:
            with plt.rc_context(STYLE), warnings.catch_warnings():
                warnings.simplefilter("ignore")
                return fn(*args, **kwargs)
        except Exception as exc:  # noqa: BLE001 — reported as "figure not drawn" in the page
            if _captured is None:
                plt.close("all")
            return FigureError(f"{fn.__name__}: {exc.__class__.__name__}: {exc}")
        finally:
            _drawing.pop()

    wrapper.__name__ = fn.__name__
    wrapper.__doc__ = fn.__doc__
    return wrapper


class FigureError(str):
    """The reason a figure could not be drawn (rendered as a note instead of an image)."""


def _flat(da) -> np.ndarray:
    return np.asarray(da.values, dtype=float).reshape(-1)


# --------------------------------------------------------------------------------------------
# diagnostics
# --------------------------------------------------------------------------------------------

CHAIN_COLORS = ("#2b6cb0", "#dd6b20", "#2f855a", "#805ad5", "#b83280", "#718096", "#d69e2e", "#319795")


@_safe
def rank_ecdf_plot(tests: list[dict]):
    """Fractional-rank ECDF minus uniform, one line per chain, with the simultaneous envelope.

    ``tests``: results of ``reports.diagnostics.rank_uniformity`` with ``name`` added. A line
    leaving the grey envelope is exactly a failed test (p ≤ α, title in red); points outside are
    marked. Thinning factors (draws kept per chain) are in the titles."""
    n = len(tests)
    ncol = 5
    nrow = math.ceil(n / ncol)
    fig, axes = plt.subplots(nrow, ncol, figsize=(12, 1.55 * nrow + 0.6), squeeze=False, sharex=True)
    for ax in axes.flat[n:]:
        ax.set_visible(False)
    n_chains = 0
    for ax, t in zip(axes.flat, tests):
        x, d = t["x"], np.asarray(t["ecdf_diff"])
        n_chains = max(n_chains, d.shape[0])
        ax.fill_between(x, t["lower"], t["upper"], color=PRIOR_COLOR, alpha=0.35, lw=0)
        for c, row in enumerate(d):
            ax.plot(x, row, color=CHAIN_COLORS[c % len(CHAIN_COLORS)], lw=0.9)
            out = (row < t["lower"] - 1e-12) | (row > t["upper"] + 1e-12)
            if out.any():
                ax.plot(x[out], row[out], "o", color=OBS_COLOR, ms=2.5)
        lim = 1.15 * max(np.abs(t["lower"]).max(), np.abs(t["upper"]).max(), np.abs(d).max(), 1e-3)
        ax.set_ylim(-lim, lim)
        ax.set_xlim(0, 1)
        ax.axhline(0, color="#888", lw=0.5)
        ax.set_xticks([0, 0.5, 1])
        ax.tick_params(labelsize=7)
        p = t["p"]
        ptxt = "p < 0.001" if p < 0.001 else f"p = {p:.3f}"
        thin = f", thinned ×{t['thin']}" if t.get("thin", 1) > 1 else ""
        ax.set_title(f"{t['name']}\n{ptxt}{thin}", fontsize=8,
                     color=OBS_COLOR if not t["passed"] else "black", fontweight="bold" if not t["passed"] else None)
    handles = [plt.Line2D([], [], color=CHAIN_COLORS[c % len(CHAIN_COLORS)], lw=1.2, label=f"chain {c}")
               for c in range(n_chains)]
    handles.append(Patch(color=PRIOR_COLOR, alpha=0.35,
                                                label=f"simultaneous {100 * (1 - tests[0]['alpha']):g} % envelope"))
    for ax in axes[:, 0]:
        ax.set_ylabel("ECDF − uniform", fontsize=7)
    for ax in axes.flat[max(n - ncol, 0):n]:
        ax.set_xlabel("fractional rank", fontsize=7)
        ax.tick_params(labelbottom=True)
    _legend_below(fig, handles, 0.5, ncol=len(handles), fontsize=8)
    return to_data_uri(fig)


@_safe
def energy_plot(dt):
    """Marginal energy vs energy transition distributions with BFMI (arviz_plots.plot_energy)."""
    import arviz_plots as azp

    pc = azp.plot_energy(dt, backend="matplotlib", figure_kwargs={"figsize": (6, 3)})
    return to_data_uri(_pc_figure(pc))


@_safe
def trace_plot(dt, var_names: list[str]):
    """Compact trace + marginal for a few parameters (arviz_plots.plot_trace_dist)."""
    import arviz_plots as azp

    pc = azp.plot_trace_dist(dt, var_names=var_names, backend="matplotlib",
                             figure_kwargs={"figsize": (11, 1.6 * len(var_names))})
    return to_data_uri(_pc_figure(pc), dpi=64)


# --------------------------------------------------------------------------------------------
# parameters
# --------------------------------------------------------------------------------------------

def _kde(x: np.ndarray, grid: np.ndarray) -> np.ndarray:
    from scipy.stats import gaussian_kde

    x = x[np.isfinite(x)]
    if x.size < 5 or np.std(x) == 0:
        return np.zeros_like(grid)
    return gaussian_kde(x)(grid)


@_safe
def prior_posterior_grid(params: list[dict]):
    """One small panel per scalar parameter: prior density (analytic, grey) vs posterior (blue).

    ``params``: dicts with name, post (1-d draws), prior_draws (1-d or None), dist (scipy frozen
    or None), log (bool: show on a log axis), contraction (float or None).
    """
    n = len(params)
    ncol = 5
    nrow = math.ceil(n / ncol)
    fig, axes = plt.subplots(nrow, ncol, figsize=(12, 2.0 * nrow), squeeze=False)
    for ax in axes.flat[n:]:
        ax.set_visible(False)
    for ax, p in zip(axes.flat, params):
        post = p["post"][np.isfinite(p["post"])]
        tr = np.log if p["log"] else (lambda v: v)
        pts = [tr(post)]
        if p["dist"] is not None:
            lo, hi = p["dist"].ppf([0.005, 0.995])
            pts.append(tr(np.array([lo, hi])))
        elif p["prior_draws"] is not None:
            pts.append(tr(p["prior_draws"]))
        allv = np.concatenate([np.asarray(v, float).ravel() for v in pts])
        allv = allv[np.isfinite(allv)]
        lo, hi = np.quantile(allv, [0.0, 1.0])
        if hi <= lo:
            hi = lo + 1.0
        grid = np.linspace(lo, hi, 300)
        if p["dist"] is not None:
            x = np.exp(grid) if p["log"] else grid
            dens = p["dist"].pdf(x) * (x if p["log"] else 1.0)  # density of log(x) when log axis
            ax.fill_between(grid, dens, color=PRIOR_COLOR, alpha=0.45, lw=0, label="prior")
        elif p["prior_draws"] is not None:
            ax.fill_between(grid, _kde(tr(p["prior_draws"]), grid), color=PRIOR_COLOR, alpha=0.45, lw=0,
                            label="prior")
        ax.plot(grid, _kde(tr(post), grid), color=POST_COLOR, lw=1.6, label="posterior")
        q = np.quantile(tr(post), CI_QUANTILES)
        ax.axvspan(q[0], q[1], color=POST_COLOR, alpha=0.08, lw=0)
        title = ("log " if p["log"] else "") + p["name"]
        if p.get("contraction") is not None:
            title += f"  (c={p['contraction']:.2f})"
        ax.set_title(title, color=OBS_COLOR if p.get("uninformed") else "black")
        ax.set_yticks([])
    axes.flat[0].legend(loc="upper right", frameon=False)
    fig.tight_layout()
    return to_data_uri(fig, dpi=64)


@_safe
def prior_quantile_forest(rows: list[dict]):
    """Posterior 50/89 % ETI of every scalar parameter on the prior's quantile scale.

    The x axis is the prior CDF F(theta): the prior itself spans [0, 1] with its 89 % interval at
    [0.055, 0.945]; a short bar means the evidence narrowed the parameter, a shifted bar that it
    moved it. ``rows``: dicts name, post (draws), dist (scipy frozen).
    """
    rows = [r for r in rows if r["dist"] is not None]
    fig, ax = plt.subplots(figsize=(7.5, 0.26 * len(rows) + 1.0))
    for i, r in enumerate(rows):
        u = r["dist"].cdf(r["post"])
        lo89, hi89 = np.quantile(u, CI_QUANTILES)
        lo50, hi50 = np.quantile(u, Q50)
        y = len(rows) - 1 - i
        ax.plot([lo89, hi89], [y, y], color=POST_COLOR, lw=1.2)
        ax.plot([lo50, hi50], [y, y], color=POST_COLOR, lw=3.5)
        ax.plot([np.median(u)], [y], "o", color="white", mec=POST_COLOR, ms=4)
    ax.axvspan(*CI_QUANTILES, color=PRIOR_COLOR, alpha=0.18, lw=0, label="prior 89 % ETI")
    ax.set_yticks(range(len(rows)))
    ax.set_yticklabels([r["name"] for r in rows][::-1])
    ax.set_xlim(0, 1)
    ax.set_xlabel("prior CDF of the posterior draws (0..1; prior 89 % ETI shaded)")
    ax.legend(loc="lower right", frameon=False)
    fig.tight_layout()
    return to_data_uri(fig)


@_safe
def forest_plot(dt, var_names: list[str]):
    """Posterior median, 50 % and 89 % ETI of every element of the standard-normal latent
    vectors z_* (study/system effects on a shared N(0, 1) scale), one labelled row each
    ("z_het · yi2022"), vectors separated by a gap; the prior's 89 % interval is shaded."""
    post = dt["posterior"]
    rows = []
    for v in var_names:
        da = post[v]
        dims = [d for d in da.dims if d not in ("chain", "draw")]
        x = np.asarray(da.values, dtype=float).reshape(-1, *[da.sizes[d] for d in dims])
        labels = [str(lab) for lab in da[dims[0]].values] if dims else [""]
        x = x.reshape(x.shape[0], -1)
        for j, lab in enumerate(labels):
            rows.append({"label": f"{v} · {lab}" if lab else v, "draws": x[:, j], "group": v})
    n = len(rows) + len(var_names) - 1
    fig, ax = plt.subplots(figsize=(7.5, 0.27 * n + 1.1))
    from scipy.stats import norm

    ax.axvspan(*norm.ppf(CI_QUANTILES), color=PRIOR_COLOR, alpha=0.18, lw=0, label="prior N(0, 1) 89 % interval")
    ax.axvline(0, color="#888", lw=0.6)
    y, ticks, labels, prev = n - 1, [], [], None
    for r in rows:
        if prev is not None and r["group"] != prev:
            y -= 1
        prev = r["group"]
        d = r["draws"][np.isfinite(r["draws"])]
        lo89, hi89 = np.quantile(d, CI_QUANTILES)
        lo50, hi50 = np.quantile(d, Q50)
        ax.plot([lo89, hi89], [y, y], color=POST_COLOR, lw=1.2)
        ax.plot([lo50, hi50], [y, y], color=POST_COLOR, lw=3.5)
        ax.plot([np.median(d)], [y], "o", color="white", mec=POST_COLOR, ms=4)
        ticks.append(y)
        labels.append(r["label"])
        y -= 1
    ax.set_yticks(ticks)
    ax.set_yticklabels(labels)
    ax.set_ylim(-0.7, n - 0.3)
    ax.set_xlabel("standard-normal latent effect: median, 50 % and 89 % ETI")
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)
    fig.tight_layout()
    return to_data_uri(fig)


@_safe
def pair_plot(dt, var_names: list[str]):
    """arviz_plots.plot_pair for a few key parameters (divergent draws marked when present)."""
    import arviz_plots as azp

    k = len(var_names)
    pc = azp.plot_pair(dt, var_names=var_names, backend="matplotlib", marginal=True,
                       figure_kwargs={"figsize": (1.9 * k, 1.9 * k)})
    return to_data_uri(_pc_figure(pc), dpi=64)


@_safe
def psense_plot(rows: list[dict]):
    """Bar chart of the power-scaling sensitivity (prior and likelihood) per parameter."""
    fig, ax = plt.subplots(figsize=(7.5, 0.26 * len(rows) + 1.0))
    y = np.arange(len(rows))[::-1]
    ax.barh(y + 0.2, [r["prior"] for r in rows], height=0.38, color=PRIOR_COLOR, label="prior")
    ax.barh(y - 0.2, [r["likelihood"] for r in rows], height=0.38, color=POST_COLOR, label="likelihood")
    ax.axvline(0.05, color=OBS_COLOR, lw=0.8, ls="--", label="threshold 0.05")
    ax.set_yticks(y)
    ax.set_yticklabels([r["name"] for r in rows])
    ax.set_xlabel("power-scaling sensitivity (cumulative Jensen-Shannon distance)")
    ax.legend(loc="lower right", frameon=False)
    fig.tight_layout()
    return to_data_uri(fig)


# --------------------------------------------------------------------------------------------
# fit to evidence
# --------------------------------------------------------------------------------------------

@_safe
def evidence_fit_plot(rows: list[dict]):
    """Left: reported % change vs posterior predictive 50/89 % ETI; right: P(finding reproduced).

    ``rows``: dicts label, kind ("value"|"finding"), observed, q (5 quantiles 5.5/25/50/75/94.5)
    or p (mean probability).
    """
    vals = [r for r in rows if r["kind"] == "value"]
    finds = [r for r in rows if r["kind"] == "finding"]
    heights = [max(len(vals), 1), max(len(finds), 1)]
    fig, axes = plt.subplots(1, 2, figsize=(12, 0.24 * max(heights) + 1.4),
                             gridspec_kw={"width_ratios": [1, 1]})
    ax = axes[0]
    for i, r in enumerate(vals):
        y = len(vals) - 1 - i
        q = r["q"]
        ax.plot([q[0], q[4]], [y, y], color=POST_COLOR, lw=1.2)
        ax.plot([q[1], q[3]], [y, y], color=POST_COLOR, lw=3.5)
        ax.plot([r["observed"]], [y], "D", color=OBS_COLOR, ms=4)
    ax.set_yticks(range(len(vals)))
    ax.set_yticklabels([r["label"] for r in vals][::-1])
    ax.axvline(0, color="#888", lw=0.6)
    ax.set_xlabel("% change: reported (red) vs replicated 50/89 % ETI (blue)")
    ax.set_title("numeric rows")
    if not vals:
        ax.text(0.5, 0.5, "no numeric % change rows", ha="center", va="center", transform=ax.transAxes)
    ax = axes[1]
    for i, r in enumerate(finds):
        y = len(finds) - 1 - i
        color = OBS_COLOR if r["p"] < 0.5 else POST_COLOR
        ax.barh([y], [r["p"]], color=color, height=0.6)
    ax.set_yticks(range(len(finds)))
    ax.set_yticklabels([r["label"] for r in finds][::-1])
    ax.set_xlim(0, 1)
    ax.axvline(0.5, color="#888", lw=0.6, ls="--")
    ax.set_xlabel("posterior mean probability the reported finding is reproduced")
    ax.set_title("qualitative / bound rows")
    if not finds:
        ax.text(0.5, 0.5, "no qualitative rows", ha="center", va="center", transform=ax.transAxes)
    fig.tight_layout()
    return to_data_uri(fig)


# --------------------------------------------------------------------------------------------
# dose-response
# --------------------------------------------------------------------------------------------

def _studied(studied: dict | None, dose: float) -> bool:
    """Is ``dose`` inside the range with quantitative evidence (no range known: yes)?"""
    rng = (studied or {}).get("quant")
    return rng is None or rng[0] - 1e-9 <= dose <= rng[1] + 1e-9


def _dose_ylim(lo89: np.ndarray, hi89: np.ndarray, med: np.ndarray, inside: np.ndarray, points: list[float]):
    """y range from the data: the 89 % bands of the studied doses and the observed points (all
    medians when no dose is studied); extrapolated doses never set the scale — what leaves the
    axes is marked and listed in the table."""
    hi = ([float(np.nanmax(hi89[inside]))] if inside.any() else [float(np.nanmax(med))]) + list(points)
    lo = ([float(np.nanmin(lo89[inside]))] if inside.any() else [float(np.nanmin(med))]) + [1.0] + list(points)
    top, bottom = max(hi), min(lo)
    pad = 0.06 * (top - bottom or 1.0)
    return bottom - pad, top + pad


@_safe
def dose_time_plot(fold: np.ndarray, doses: np.ndarray, days: np.ndarray, overlay: list[dict],
                   studied: dict | None = None):
    """Fold change vs day for each dose: median line with 50 % and 89 % ETI bands for doses in
    the studied range; doses outside it (extrapolation) as dashed medians without bands.

    ``fold``: (sample, dose, day). ``overlay``: dicts day, fold, label (trial points, in the
    legend). ``studied``: ``{"quant": (lo, hi)}`` mg/day with quantitative evidence. The legend
    sits outside the axes so that no label covers a curve."""
    cmap = plt.get_cmap("viridis")
    fig, ax = plt.subplots(figsize=(9.5, 4.4))
    nz = [i for i, d in enumerate(doses) if d > 0]
    lo89 = np.quantile(fold, CI_QUANTILES[0], axis=0)
    hi89 = np.quantile(fold, CI_QUANTILES[1], axis=0)
    med = np.median(fold, axis=0)
    inside = np.array([_studied(studied, doses[i]) for i in range(len(doses))])
    pts = [o["fold"] for o in overlay]
    y0, y1 = _dose_ylim(lo89[nz], hi89[nz], med[nz], inside[nz], pts)
    for k, i in enumerate(nz):
        c = cmap(k / max(len(nz) - 1, 1))
        if inside[i]:
            ax.fill_between(days, lo89[i], hi89[i], color=c, alpha=0.10, lw=0)
            ax.fill_between(days, *np.quantile(fold[:, i, :], Q50, axis=0), color=c, alpha=0.22, lw=0)
            ax.plot(days, med[i], color=c, lw=1.6, label=f"{doses[i]:g} mg/day")
        else:
            label = f"{doses[i]:g} mg/day (extrapolation)"
            if med[i].max() > y1:
                j = int(np.argmax(med[i] > y1))
                label += f"; above the axis from day {days[j]:g}, {med[i][-1]:.2g}× at day {days[-1]:g}"
                ax.plot([days[j]], [y1], "^", color=c, ms=6, clip_on=False)
            ax.plot(days, med[i], color=c, lw=1.4, ls="--", label=label)
    for j, o in enumerate(overlay):
        ax.plot([o["day"]], [o["fold"]], "D^v<>"[j % 5], color=OBS_COLOR, ms=6, zorder=5, ls="",
                label=o["label"])
    ax.set_ylim(y0, y1)
    ax.axhline(1, color="#888", lw=0.6)
    ax.set_xlim(days.min(), days.max())
    ax.set_xlabel("day of daily oral NMN")
    ax.set_ylabel("whole-blood NAD+ fold change vs baseline")
    ax.legend(frameon=False, loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=7.5)
    fig.tight_layout()
    return to_data_uri(fig)


@_safe
def dose_response_plot(fold: np.ndarray, doses: np.ndarray, days: np.ndarray, day: int, overlay: list[dict],
                       studied: dict | None = None):
    """Fold change at ``day`` vs dose with 50/89 % bands (+ trial points at that day).

    The dose range with quantitative evidence is shaded (and the range with direction-only
    evidence lighter); outside it the median is dashed with hollow markers (extrapolation) and
    the bands are clipped at the data-driven y range (a ▲ marks a band that continues above)."""
    k = int(np.argmin(np.abs(days - day)))
    f = fold[:, :, k]
    lo89, hi89 = np.quantile(f, CI_QUANTILES, axis=0)
    lo50, hi50 = np.quantile(f, Q50, axis=0)
    med = np.median(f, axis=0)
    inside = np.array([_studied(studied, d) for d in doses])
    fig, ax = plt.subplots(figsize=(9.5, 4.4))
    q = (studied or {}).get("quant")
    anyr = (studied or {}).get("any")
    if q:
        ax.axvspan(q[0], q[1], color="#ecc94b", alpha=0.28, lw=0,
                   label=f"studied, magnitude reported: {q[0]:g}–{q[1]:g} mg/day")
    if anyr and (q is None or tuple(anyr) != tuple(q)):
        ax.axvspan(anyr[0], anyr[1], ymin=0, ymax=0.035, color="#b7791f", alpha=0.55, lw=0,
                   label=f"studied, direction only included: {anyr[0]:g}–{anyr[1]:g} mg/day")
    ax.fill_between(doses, lo89, hi89, color=POST_COLOR, alpha=0.15, lw=0, label="89 % ETI")
    ax.fill_between(doses, lo50, hi50, color=POST_COLOR, alpha=0.3, lw=0, label="50 % ETI")
    labelled = set()
    for a in range(len(doses) - 1):  # solid inside the studied range, dashed where it extrapolates
        solid = bool(inside[a] and inside[a + 1])
        lab = ("median" if solid else "median, extrapolated")
        ax.plot(doses[[a, a + 1]], med[[a, a + 1]], "-" if solid else "--", color=POST_COLOR, lw=1.5,
                label=None if lab in labelled else lab)
        labelled.add(lab)
    ax.plot(doses[inside], med[inside], "o", color=POST_COLOR, ms=4)
    if (~inside).any():
        ax.plot(doses[~inside], med[~inside], "o", mfc="white", mec=POST_COLOR, ms=5, ls="",
                label="dose outside the studied range")
    pts = [o["fold"] for o in overlay if abs(o["day"] - days[k]) < 0.5]
    y0, y1 = _dose_ylim(lo89, hi89, med, inside, pts)
    over = (hi89 > y1) & (med <= y1)
    if over.any():
        ax.plot(doses[over], np.full(over.sum(), y1), "^", color=POST_COLOR, ms=6, clip_on=False, ls="",
                label="89 % band continues above (table)")
    med_over = med > y1
    if med_over.any():
        ax.plot(doses[med_over], np.full(med_over.sum(), y1), "^", mfc="white", mec=POST_COLOR, mew=1.4, ms=7,
                clip_on=False, ls="", label="median above the axis (table)")
    for j, o in enumerate(o for o in overlay if abs(o["day"] - days[k]) < 0.5):
        ax.plot([o["dose"]], [o["fold"]], "D", color=OBS_COLOR, ms=6, ls="", label=o["label"], zorder=5)
    ax.set_ylim(y0, y1)
    ax.set_xlim(0, doses.max() * 1.02)
    ax.axhline(1, color="#888", lw=0.6)
    ax.set_xlabel("oral NMN dose (mg/day)")
    ax.set_ylabel(f"whole-blood NAD+ fold change at day {days[k]:g}")
    ax.legend(frameon=False, loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=7.5)
    fig.tight_layout()
    return to_data_uri(fig)


# --------------------------------------------------------------------------------------------
# comparison
# --------------------------------------------------------------------------------------------

def _hcolor(hyps, h):
    return HYP_COLORS[list(hyps).index(h) % len(HYP_COLORS)]


@_safe
def elpd_plot(loo: dict):
    """ELPD (LOO) per hypothesis with +-1 SE and +-2 SE error bars."""
    hyps = sorted(loo, key=lambda h: -loo[h]["elpd"])
    fig, ax = plt.subplots(figsize=(6, 0.5 * len(hyps) + 1.2))
    for i, h in enumerate(hyps):
        y = len(hyps) - 1 - i
        e, se = loo[h]["elpd"], loo[h]["se"]
        ax.plot([e - 2 * se, e + 2 * se], [y, y], color=_hcolor(hyps, h), lw=1)
        ax.plot([e - se, e + se], [y, y], color=_hcolor(hyps, h), lw=3.5)
        ax.plot([e], [y], "o", color="white", mec=_hcolor(hyps, h), ms=6)
    ax.set_yticks(range(len(hyps)))
    ax.set_yticklabels(hyps[::-1])
    ax.set_xlabel("ELPD (PSIS-LOO), ±1 SE thick, ±2 SE thin; higher is better")
    fig.tight_layout()
    return to_data_uri(fig)


@_safe
def weights_plot(weights: dict):
    hyps = list(weights)
    fig, ax = plt.subplots(figsize=(6, 0.45 * len(hyps) + 1.0))
    y = np.arange(len(hyps))[::-1]
    ax.barh(y, [weights[h] for h in hyps], color=[_hcolor(hyps, h) for h in hyps])
    for yy, h in zip(y, hyps):
        ax.text(weights[h] + 0.01, yy, f"{weights[h]:.2f}", va="center", fontsize=8)
    ax.set_yticks(y)
    ax.set_yticklabels(hyps)
    ax.set_xlim(0, 1.1)
    ax.set_xlabel("stacking weight")
    fig.tight_layout()
    return to_data_uri(fig)


@_safe
def by_study_plot(by_study: list[dict], hyps: list[str], reference: str):
    """Per study: ELPD of each hypothesis minus the reference (best-ranked) hypothesis."""
    others = [h for h in hyps if h != reference]
    studies = [r["study_id"] for r in by_study]
    fig, ax = plt.subplots(figsize=(8, 0.32 * len(studies) * max(len(others), 1) + 1.4))
    n = max(len(others), 1)
    h_bar = 0.8 / n
    y0 = np.arange(len(studies))[::-1]
    for j, h in enumerate(others):
        diffs = [r["elpd"].get(h, np.nan) - r["elpd"].get(reference, np.nan) for r in by_study]
        ax.barh(y0 + (j - (n - 1) / 2) * h_bar, diffs, height=h_bar, color=_hcolor(hyps, h),
                label=f"{h} − {reference}")
    ax.axvline(0, color="#555", lw=0.8)
    ax.set_yticks(y0)
    ax.set_yticklabels(studies)
    ax.set_xlabel("ELPD difference per study (negative: the study favours the reference)")
    ax.legend(frameon=False, loc="lower right")
    fig.tight_layout()
    return to_data_uri(fig)


@_safe
def interval_plot(items: list[dict], xlabel: str, ref: float | None = None):
    """Generic point ± error plot: items are dicts label, mid, lo, hi."""
    fig, ax = plt.subplots(figsize=(6.5, 0.4 * len(items) + 1.2))
    for i, it in enumerate(items):
        y = len(items) - 1 - i
        ax.plot([it["lo"], it["hi"]], [y, y], color=POST_COLOR, lw=2.5)
        ax.plot([it["mid"]], [y], "o", color="white", mec=POST_COLOR, ms=5)
    if ref is not None:
        ax.axvline(ref, color="#555", lw=0.8)
    ax.set_yticks(range(len(items)))
    ax.set_yticklabels([it["label"] for it in items][::-1])
    ax.set_xlabel(xlabel)
    fig.tight_layout()
    return to_data_uri(fig)


ESTIMATOR_STYLE = {"smc": ("o", "#2b6cb0", "SMC"), "bridge": ("s", "#dd6b20", "bridge sampling")}


def _estimator_rows(ax, items: list[dict], ref: float | None = None):
    """items: label, smc (mid, se) or None, bridge (mid, se) or None, flag (bool: label in red).
    Both estimators side by side (offset rows), ± 2 Monte-Carlo SE."""
    n = len(items)
    for i, it in enumerate(items):
        y = n - 1 - i
        for off, key in ((0.16, "smc"), (-0.16, "bridge")):
            est = it.get(key)
            if est is None:
                continue
            marker, color, _ = ESTIMATOR_STYLE[key]
            mid, se = est
            ax.plot([mid - 2 * se, mid + 2 * se], [y + off, y + off], color=color, lw=2.2)
            ax.plot([mid], [y + off], marker, color="white", mec=color, mew=1.5, ms=6)
    if ref is not None:
        ax.axvline(ref, color="#555", lw=0.8)
    ax.set_yticks(range(n))
    ax.set_yticklabels([it["label"] for it in items][::-1])
    for tick, it in zip(ax.get_yticklabels(), items[::-1]):
        if it.get("flag"):
            tick.set_color(OBS_COLOR)
            tick.set_fontweight("bold")
    ax.set_ylim(-0.6, n - 0.4)


@_safe
def marginal_plot(ml_items: list[dict], bf_items: list[dict]):
    """Left: log marginal likelihood per hypothesis; right: log Bayes factor per pair; SMC and
    bridge-sampling estimates side by side with ± 2 Monte-Carlo SE (pairs whose estimators
    disagree labelled in red)."""
    panels = [p for p in ((ml_items, "log marginal likelihood", None), (bf_items, "log Bayes factor (H1 : H2)", 0.0))
              if p[0]]
    rows = max(len(p[0]) for p in panels)
    fig, axes = plt.subplots(1, len(panels), figsize=(5.6 * len(panels), 0.62 * rows + 1.6), squeeze=False)
    for ax, (items, xlabel, ref) in zip(axes[0], panels):
        _estimator_rows(ax, items, ref)
        ax.set_xlabel(xlabel + ", ± 2 MC SE")
    used = {k for items, _, _ in panels for it in items for k in ("smc", "bridge") if it.get(k) is not None}
    handles = [plt.Line2D([], [], marker=ESTIMATOR_STYLE[k][0], color=ESTIMATOR_STYLE[k][1], mfc="white", lw=2,
                          label=ESTIMATOR_STYLE[k][2]) for k in ("smc", "bridge") if k in used]
    _legend_below(fig, handles, 0.45, ncol=len(handles))
    return to_data_uri(fig)


@_safe
def pareto_k_plot(rows: list[dict], hyps: list[str], k_bad: float):
    """Pareto k of every evidence row per hypothesis (rows on the y axis). Rows whose
    log-likelihood is constant are exact (hollow marker at 0, no k); rows whose k could not be
    estimated are drawn at the right edge with a cross.

    ``rows``: dicts label, k {h: float | None}, status {h: ok|high_k|exact|not_estimable|...}."""
    n = len(rows)
    fig, ax = plt.subplots(figsize=(8, 0.2 * n + 1.5))
    ks = [r["k"].get(h) for r in rows for h in hyps if r["k"].get(h) is not None]
    right = max([k_bad + 0.3] + [k + 0.15 for k in ks])
    nh = max(len(hyps), 1)
    for j, h in enumerate(hyps):
        c = _hcolor(hyps, h)
        off = (j - (nh - 1) / 2) * 0.22
        for i, r in enumerate(rows):
            y = n - 1 - i + off
            st, k = r["status"].get(h), r["k"].get(h)
            if st == "exact":
                ax.plot([0], [y], "o", mfc="none", mec=c, ms=4)
            elif st == "not_estimable":
                ax.plot([right], [y], "x", color=c, ms=5, mew=1.5)
            elif k is not None:
                ax.plot([k], [y], "o", color=c, ms=4)
    ax.axvline(k_bad, color=OBS_COLOR, lw=0.9, ls="--")
    ax.set_xlim(min([-0.3] + [k - 0.1 for k in ks]), right + 0.2)
    ax.set_yticks(range(n))
    ax.set_yticklabels([r["label"] for r in rows][::-1], fontsize=7)
    ax.set_ylim(-0.7, n - 0.3)
    ax.set_xlabel(f"Pareto k (PSIS-LOO); right of the dashed line (k > {k_bad:g}) the row's estimate is unreliable")
    handles = [plt.Line2D([], [], marker="o", ls="", color=_hcolor(hyps, h), label=h) for h in hyps]
    handles += [plt.Line2D([], [], marker="o", ls="", mfc="none", mec="#555", label="exact (constant log-likelihood)"),
                plt.Line2D([], [], marker="x", ls="", color="#555", mew=1.5, label="k not estimable (right edge)")]
    _legend_below(fig, handles, 0.75, ncol=3)
    return to_data_uri(fig)


@_safe
def loo_pit_plot(pits: dict[str, dict]):
    """LOO-PIT ECDF minus uniform per hypothesis with the simultaneous envelope; the PIT values
    themselves as ticks along the bottom. ``pits``: {h: reports.diagnostics.pit_uniformity}."""
    hyps = list(pits)
    fig, axes = plt.subplots(1, len(hyps), figsize=(3.9 * len(hyps), 3.1), squeeze=False, sharey=True)
    lim = max(max(np.abs(t["lower"]).max(), np.abs(t["upper"]).max(), np.abs(t["ecdf_diff"]).max()) for t in pits.values())
    lim = 1.12 * lim
    for ax, h in zip(axes[0], hyps):
        t = pits[h]
        ax.fill_between(t["x"], t["lower"], t["upper"], color=PRIOR_COLOR, alpha=0.35, lw=0, step="post")
        ax.step(t["x"], t["ecdf_diff"], where="post", color=_hcolor(hyps, h), lw=1.4)
        ax.plot(t["values"], np.full(len(t["values"]), -lim * 0.93), "|", color="#333", ms=9, mew=1.2)
        ax.axhline(0, color="#888", lw=0.5)
        ax.set_xlim(0, 1)
        ax.set_ylim(-lim, lim)
        ax.set_xlabel("LOO-PIT")
        ptxt = "p < 0.001" if t["p"] < 0.001 else f"p = {t['p']:.2f}"
        ax.set_title(f"{h}: {t['n']} rows, {ptxt}", color=OBS_COLOR if not t["passed"] else "black")
    axes[0][0].set_ylabel("ECDF − uniform")
    alpha = next(iter(pits.values()))["alpha"]
    handles = [Patch(color=PRIOR_COLOR, alpha=0.35, label=f"simultaneous {100 * (1 - alpha):g} % envelope"),
               plt.Line2D([], [], marker="|", ls="", color="#333", ms=9, label="PIT of each numeric row")]
    _legend_below(fig, handles, 0.4, ncol=2)
    return to_data_uri(fig)


@_safe
def confusion_plot(labels: list[str], matrix: list[list[float]], xlabel: str, ylabel: str):
    m = np.asarray(matrix, dtype=float)
    fig, ax = plt.subplots(figsize=(1.1 * len(labels) + 2.2, 1.0 * len(labels) + 1.6))
    ax.imshow(m, cmap="Blues", vmin=0)
    for i in range(m.shape[0]):
        for j in range(m.shape[1]):
            ax.text(j, i, f"{m[i, j]:g}", ha="center", va="center",
                    color="white" if m[i, j] > 0.6 * np.nanmax(m) else "black")
    ax.set_xticks(range(m.shape[1]))
    ax.set_xticklabels(labels[: m.shape[1]])
    ax.set_yticks(range(m.shape[0]))
    ax.set_yticklabels(labels[: m.shape[0]])
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    fig.tight_layout()
    return to_data_uri(fig)
