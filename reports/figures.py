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
from matplotlib.patches import Patch  # noqa: E402
import numpy as np  # noqa: E402

from nadfit.reports.conventions import CI_PROB, CI_QUANTILES  # noqa: E402

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


@contextlib.contextmanager
def capture():
    """Keep the figures drawn inside the block open (a list of ``Figure``), for tests that
    measure them (text bounding boxes); they are closed when the block ends."""
    global _captured
    prev, _captured = _captured, []
    try:
        yield _captured
    finally:
        for f in _captured:
            plt.close(f)
        _captured = prev


def to_data_uri(fig, dpi: int = DPI) -> str:
    """PNG bytes of ``fig`` as a data URI (no timestamps/software metadata: deterministic)."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi, bbox_inches="tight", metadata={"Software": None})
    if _captured is not None:
        _captured.append(fig)
    else:
        plt.close(fig)
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def _pc_figure(pc):
    return pc.viz["figure"].item()


def _safe(fn):
    """A figure that fails to draw must not take the report down: it becomes ``None``."""

    def wrapper(*args, **kwargs):
        try:
            with plt.rc_context(STYLE), warnings.catch_warnings():
                warnings.simplefilter("ignore")
                return fn(*args, **kwargs)
        except Exception as exc:  # noqa: BLE001 — reported as "figure not drawn" in the page
            plt.close("all")
            return FigureError(f"{fn.__name__}: {exc.__class__.__name__}: {exc}")

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
    bottom = 0.5 / fig.get_figheight()
    fig.tight_layout(rect=(0, bottom, 1, 1))
    fig.legend(handles=handles, loc="lower center", bbox_to_anchor=(0.5, 0), ncol=len(handles), frameon=False,
               fontsize=8)
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
    """arviz_plots.plot_forest of the standard-normal latent vectors (shared N(0, 1) scale)."""
    import arviz_plots as azp

    n = sum(int(np.prod([dt["posterior"][v].sizes[d] for d in dt["posterior"][v].dims
                         if d not in ("chain", "draw")])) for v in var_names)
    pc = azp.plot_forest(dt, var_names=var_names, combined=True, ci_kind="eti", ci_probs=(0.5, CI_PROB),
                         backend="matplotlib", figure_kwargs={"figsize": (9, 0.32 * n + 1.2)})
    return to_data_uri(_pc_figure(pc))


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

@_safe
def dose_time_plot(fold: np.ndarray, doses: np.ndarray, days: np.ndarray, overlay: list[dict]):
    """Fold change vs day for each dose: median line, 50 % and 89 % ETI bands.

    ``fold``: (sample, dose, day). ``overlay``: dicts day, fold, label (trial points).
    """
    cmap = plt.get_cmap("viridis")
    fig, ax = plt.subplots(figsize=(8, 4.2))
    nz = [i for i, d in enumerate(doses) if d > 0]
    for k, i in enumerate(nz):
        c = cmap(k / max(len(nz) - 1, 1))
        f = fold[:, i, :]
        ax.fill_between(days, *np.quantile(f, CI_QUANTILES, axis=0), color=c, alpha=0.10, lw=0)
        ax.fill_between(days, *np.quantile(f, Q50, axis=0), color=c, alpha=0.22, lw=0)
        ax.plot(days, np.median(f, axis=0), color=c, lw=1.5, label=f"{doses[i]:g} mg/day")
    for o in overlay:
        ax.plot([o["day"]], [o["fold"]], "D", color=OBS_COLOR, ms=6, zorder=5)
        ax.annotate(o["label"], (o["day"], o["fold"]), textcoords="offset points", xytext=(5, 4),
                    fontsize=7, color=OBS_COLOR)
    ax.axhline(1, color="#888", lw=0.6)
    ax.set_xlabel("day of daily oral NMN")
    ax.set_ylabel("whole-blood NAD+ fold change vs baseline")
    ax.legend(ncol=2, frameon=False, loc="upper left")
    fig.tight_layout()
    return to_data_uri(fig)


@_safe
def dose_response_plot(fold: np.ndarray, doses: np.ndarray, days: np.ndarray, day: int, overlay: list[dict]):
    """Fold change at ``day`` vs dose with 50/89 % bands (+ trial points at that day)."""
    k = int(np.argmin(np.abs(days - day)))
    f = fold[:, :, k]
    fig, ax = plt.subplots(figsize=(6, 4.2))
    ax.fill_between(doses, *np.quantile(f, CI_QUANTILES, axis=0), color=POST_COLOR, alpha=0.15, lw=0, label="89 % ETI")
    ax.fill_between(doses, *np.quantile(f, Q50, axis=0), color=POST_COLOR, alpha=0.3, lw=0, label="50 % ETI")
    ax.plot(doses, np.median(f, axis=0), "o-", color=POST_COLOR, ms=3, lw=1.5, label="median")
    for o in overlay:
        if abs(o["day"] - days[k]) < 0.5:
            ax.plot([o["dose"]], [o["fold"]], "D", color=OBS_COLOR, ms=6, label=o["label"])
    ax.axhline(1, color="#888", lw=0.6)
    ax.set_xlabel("oral NMN dose (mg/day)")
    ax.set_ylabel(f"whole-blood NAD+ fold change at day {days[k]:g}")
    ax.legend(frameon=False, loc="upper left")
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
