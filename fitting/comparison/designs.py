"""Which human trials could tell the uptake hypotheses apart (issue #15 item 1).

For a few candidate placebo-controlled trials of oral NMN and NR (:data:`DESIGNS`), each fitted
hypothesis predicts what the trial would report, and the comparison asks how strongly the
trial's result would be expected to favour the true hypothesis over another one: a
preposterior analysis of model discrimination (the expected log Bayes factor of the new trial
alone, i.e. the Kullback-Leibler divergence between the two hypotheses' predictive
distributions of the trial's result; Lindley 1956, Box & Hill 1967).

What a simulated trial reports, as the model scores such rows (``log_ratio_vs_placebo``): for
each active arm i, the log ratio of its arm-mean whole-blood NAD+ to placebo at day
:data:`DAY`,

    y_i = h * log b_i(theta) + a_i + s_i - s_0

* ``log b_i`` — the arm's whole-blood fold change of the model (``EvidenceModel.blood_regimens``);
* ``h = exp(sigma_het z)`` — the new trial's study effect (one z per trial, shared by its arms);
* ``a_i ~ N(0, sigma_arm^2)`` — the extra arm-level deviation;
* ``s_i, s_0 ~ N(0, sigma_person^2 / n)`` — the sampling error of the arm's and the placebo arm's
  means with ``n`` people per arm (the placebo arm's error is shared by every contrast).

So, given theta and z, y ~ N(h mu, a I + c 11^T) with a = sigma_arm^2 + sigma_person^2/n and
c = sigma_person^2/n: every noise parameter is the fitted posterior's own. The study effect is
carried by its mean and variance (y | theta Gaussian, :class:`Predictive`), so a hypothesis's
predictive of y is a mixture of Gaussians, one per posterior draw, evaluated exactly
(Woodbury form, :func:`gaussian_logpdf`), not by a kernel density estimate.

The expected log Bayes factor of hypothesis A against B when A is true,
E_{y ~ p_A}[log p_A(y) - log p_B(y)], is a Monte Carlo mean over :data:`N_TRIALS` trials
simulated from A and scored under every hypothesis. It is bracketed by two estimates that agree
once the draws resolve the predictive: ``upper`` scores a trial with all of A's draws (the exact
divergence between the two draw mixtures), ``lower`` without the draw that made it (finite
draws under-cover A's predictive there). Its Monte Carlo SE is the SD of the trials' log Bayes
factors over sqrt(N_TRIALS); ``p_favours_true`` is the share of trials with log BF > 0. Each
design is assessed at the arm sizes :data:`ARM_SIZES`.

Reading (Kass & Raftery 1995, on the log scale: 2 log BF of 2, 6, 10 are positive, strong and
very strong evidence): an expected log BF >= 1 nat makes the design informative for that pair,
>= 3 decisive. Designs whose arms every hypothesis predicts alike (the NR-only trial: NR takes
the same route under every hypothesis) are the control: their expected log BF near 0 says the
machinery does not invent a separation.

The numbers are conditional on the model: a trial that the model's structure cannot tell apart
(blood NAD+ alone, one compound) may still be decided by other measurements (plasma NMN and NR
time courses, CD73 inhibition), which the model does not predict; the report lists them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

#: the day of continuous dosing at which every design reads blood NAD+ (the addendum's 30-day
#: trial's last visit)
DAY = 30
#: people per arm of the hypothetical trials (placebo included): tens per arm, like the shipped
#: human trials, and ten times more (the arm-level SD sigma_arm then dominates the noise)
ARM_SIZES = (30, 300)
#: posterior draws per hypothesis (evenly thinned)
MAX_DRAWS = 600
#: simulated trials per hypothesis
N_TRIALS = 2000
#: expected log BF (nats) from which a design is informative / decisive for a pair
INFORMATIVE_NATS = 1.0
DECISIVE_NATS = 3.0
#: what blood NAD+ in this model cannot show, but would decide between the routes in humans
OTHER_EVIDENCE = (
    "plasma NMN and NR time courses after one oral NMN dose (CD73 dephosphorylation makes NR "
    "appear after NMN; intact uptake does not need it)",
    "the same NMN trial with a CD73 inhibitor, or in carriers of CD73 (NT5E) loss-of-function "
    "variants",
    "NMN labelled on its phosphate group: intact uptake carries the label into blood-cell NMN "
    "and NAD+, dephosphorylation to NR outside the cell removes it",
)


@dataclass(frozen=True)
class Arm:
    compound: str  # NMN | NR
    mg_per_day: float
    doses_per_day: int = 1

    @property
    def label(self) -> str:
        if self.doses_per_day == 1:
            return f"{self.compound} {self.mg_per_day:g} mg/day"
        per = self.mg_per_day / self.doses_per_day
        return f"{self.compound} {self.doses_per_day} x {per:g} mg/day"

    @property
    def key(self) -> tuple:
        return (self.compound, float(self.mg_per_day), int(self.doses_per_day))


@dataclass(frozen=True)
class Design:
    key: str
    title: str
    question: str
    arms: tuple[Arm, ...]  # active arms; every design also has a placebo arm
    control: bool = False


DESIGNS = (
    Design("nmn_dose_ranging", "NMN dose-ranging",
           "Does blood NAD+ rise less than proportionally with the NMN dose (a saturable intact-NMN "
           "route), as in the shipped trials?",
           (Arm("NMN", 250), Arm("NMN", 500), Arm("NMN", 1000))),
    Design("nmn_vs_nr", "NMN and NR head to head, two doses each",
           "Does NMN's dose-response flatten relative to NR's in the same trial? Under via-nr both "
           "reach cells through ENT and NRK1 and differ only in potency; a saturable direct route "
           "flattens NMN alone.",
           (Arm("NMN", 250), Arm("NMN", 1000), Arm("NR", 250), Arm("NR", 1000))),
    Design("nmn_split_dose", "NMN once vs twice daily",
           "Does splitting the same daily NMN dose raise the effect? A saturable route loses less "
           "of two smaller peaks; a first-order route does not care.",
           (Arm("NMN", 1000, 1), Arm("NMN", 1000, 2))),
    Design("nr_dose_ranging", "NR dose-ranging (control)",
           "NR enters through ENT and NRK1 under every hypothesis: the hypotheses should predict it "
           "alike, so this design should not separate them.",
           (Arm("NR", 250), Arm("NR", 500), Arm("NR", 1000)), control=True),
)


def all_arms(designs=DESIGNS) -> list[Arm]:
    """The distinct arms of ``designs``, in first-seen order (one simulation for all)."""
    out: dict[tuple, Arm] = {}
    for d in designs:
        for a in d.arms:
            out.setdefault(a.key, a)
    return list(out.values())


def arm_log_effects(model, th: dict, arms: list[Arm], day: int = DAY) -> np.ndarray:
    """log b of every arm at ``day`` for every draw of ``th`` ({name: (S,) or (S, k)}): (S, arms).
    One JAX program per model: all arms are columns of one course."""
    import jax
    import jax.numpy as jnp

    spec = [(a.compound, a.mg_per_day, a.doses_per_day) for a in arms]

    def one(t):
        b, _ = model.blood_regimens(t, spec, day)
        return jnp.log(jnp.maximum(b[day], 1e-12))

    return np.asarray(jax.jit(jax.vmap(one))({k: jnp.asarray(v) for k, v in th.items()}))


def _noise(sigma_arm, sigma_person, n: int) -> tuple[np.ndarray, np.ndarray]:
    c = np.asarray(sigma_person, dtype=float) ** 2 / n
    return np.asarray(sigma_arm, dtype=float) ** 2 + c, c


def gaussian_logpdf(y: np.ndarray, m: np.ndarray, a: np.ndarray, c: np.ndarray, v: np.ndarray) -> np.ndarray:
    """log N(y_i; m_j, Sigma_j) for every row i of ``y`` (M, k) and j of ``m`` (C, k), with

        Sigma_j = a_j I + c_j 11^T + v_j m_j m_j^T

    (the shared placebo arm's error and the study effect, which scales the whole mean), a
    rank-2 update of a_j I: Sigma = a I + U D U^T with U = [1, m_j], D = diag(c, v). Woodbury:
    Sigma^-1 = (I - U D (a I_2 + G D)^-1 U^T) / a with G = U^T U, and
    det Sigma = a^(k-2) det(a I_2 + G D). Returns (M, C); the (M, C, k) differences are never
    formed (matrix products only)."""
    y = np.atleast_2d(np.asarray(y, dtype=float))
    m = np.atleast_2d(np.asarray(m, dtype=float))
    k = m.shape[1]
    a, c, v = (np.asarray(x, dtype=float) for x in (a, c, v))
    s1 = m.sum(1)
    mm = (m ** 2).sum(1)
    # A2 = a I2 + G D with G = [[k, s1], [s1, mm]]: per component 2 x 2
    a11, a12, a21, a22 = a + k * c, s1 * v, s1 * c, a + mm * v
    det2 = a11 * a22 - a12 * a21
    # B = D A2^-1
    b11, b12 = c * a22 / det2, -c * a12 / det2
    b21, b22 = -v * a21 / det2, v * a11 / det2
    ym = y @ m.T  # (M, C)
    r_r = (y ** 2).sum(1)[:, None] - 2.0 * ym + mm[None, :]  # |y - m|^2
    w1 = y.sum(1)[:, None] - s1[None, :]  # 1^T (y - m)
    w2 = ym - mm[None, :]  # m^T (y - m)
    wbw = b11 * w1 ** 2 + (b12 + b21) * w1 * w2 + b22 * w2 ** 2
    logdet = (k - 2) * np.log(a) + np.log(det2)
    return -0.5 * ((np.maximum(r_r - wbw, 0.0)) / a + logdet + k * math.log(2 * math.pi))


def logsumexp(x: np.ndarray, axis: int) -> np.ndarray:
    """log sum exp along ``axis`` (plain numpy: scipy's array-API version costs 2x here)."""
    mx = np.max(x, axis=axis, keepdims=True)
    mx = np.where(np.isfinite(mx), mx, 0.0)
    return np.log(np.sum(np.exp(x - mx), axis=axis)) + np.squeeze(mx, axis=axis)


@dataclass
class Predictive:
    """One hypothesis's posterior for one design: arm log effects (S, k) and noise draws (S,).

    Given draw s, a new trial's result is taken as Gaussian: the study effect h = exp(sigma_het z)
    enters through its mean and variance (E h = exp(sigma^2/2), Var h = (exp(sigma^2) - 1)
    exp(sigma^2)), so y | s ~ N(E[h] mu_s, a I + c 11^T + Var[h] mu_s mu_s^T): the predictive of a
    hypothesis is a mixture of S Gaussians, simulated from and scored exactly."""
    log_effect: np.ndarray
    sigma_het: np.ndarray
    sigma_arm: np.ndarray
    sigma_person: np.ndarray

    def moments(self, n: int):
        """(component means (S, k), a, c, v) of the trial result given each draw."""
        s2 = np.asarray(self.sigma_het, dtype=float) ** 2
        eh = np.exp(s2 / 2.0)
        var_h = np.expm1(s2) * np.exp(s2)
        a, c = _noise(self.sigma_arm, self.sigma_person, n)
        return eh[:, None] * self.log_effect, a, c, var_h / eh ** 2

    def component_logpdf(self, y: np.ndarray, n: int) -> np.ndarray:
        """log of draw s's predictive density of each trial result y (M, k): (M, S)."""
        return gaussian_logpdf(y, *self.moments(n))

    def simulate(self, n: int, trials: int, rng) -> tuple[np.ndarray, np.ndarray]:
        """``trials`` results y (trials, k) of a new trial with ``n`` people per arm, and the
        draw each came from."""
        m, a, c, v = self.moments(n)
        s = rng.integers(0, len(m), trials)
        k = m.shape[1]
        arm = rng.standard_normal((trials, k)) * np.sqrt(a[s])[:, None]  # a_i + s_i
        placebo = rng.standard_normal(trials) * np.sqrt(c[s])  # s_0, shared by the contrasts
        study = rng.standard_normal(trials) * np.sqrt(v[s])  # the study effect's spread
        return m[s] * (1.0 + study[:, None]) + arm - placebo[:, None], s


def expected_log_bf(true: str, predictives: dict[str, Predictive], n: int = ARM_SIZES[0], trials: int = N_TRIALS,
                    seed: int = 0) -> dict[str, dict]:
    """Expected log Bayes factor (nats) of a new trial for hypothesis ``true`` against each other
    hypothesis of ``predictives`` when ``true`` holds (one set of simulated trials, scored under
    every hypothesis), bracketed: ``lower`` scores each trial without the draw that made it
    (finite draws then under-cover the true predictive: biased low), ``upper`` with it (biased
    high); both converge to the same value as the draws grow. ``mean`` is their midpoint."""
    rng = np.random.default_rng(seed)
    y, s = predictives[true].simulate(n, trials, rng)
    lp_own = predictives[true].component_logpdf(y, n)  # (M, S)
    S = lp_own.shape[1]
    own_upper = logsumexp(lp_own, axis=1) - math.log(S)
    lp_own[np.arange(trials), s] = -np.inf
    own_lower = logsumexp(lp_own, axis=1) - math.log(S - 1)

    def se(x):
        return float(np.std(x, ddof=1) / math.sqrt(trials))

    out = {}
    for alt, p in predictives.items():
        if alt == true:
            continue
        lp_alt = logsumexp(p.component_logpdf(y, n), axis=1) - math.log(p.log_effect.shape[0])
        lower, upper = own_lower - lp_alt, own_upper - lp_alt
        out[alt] = {"lower": float(lower.mean()), "upper": float(upper.mean()),
                    "mean": float(0.5 * (lower.mean() + upper.mean())), "mcse": max(se(lower), se(upper)),
                    "p_favours_true": float(np.mean(lower + upper > 0)), "trials": int(trials)}
    return out


def _fold_quantiles(x: np.ndarray) -> dict:
    q = np.exp(np.quantile(x, (0.05, 0.5, 0.95)))
    return {"q05": float(q[0]), "median": float(q[1]), "q95": float(q[2])}


def run_predictives(run, designs=DESIGNS, max_draws: int = MAX_DRAWS, day: int = DAY) -> dict[str, Predictive]:
    """Each design's :class:`Predictive` for one fitted run (its model and thinned draws)."""
    from nadfit.fitting.inference.predict import posterior_theta

    model = run.model()
    th, _ = posterior_theta(run.dt, model, max_draws)
    arms = all_arms(designs)
    col = {a.key: i for i, a in enumerate(arms)}
    logb = arm_log_effects(model, th, arms, day)
    noise = {k: np.asarray(th[k], dtype=float) for k in ("sigma_het", "sigma_arm", "sigma_person")}
    return {d.key: Predictive(logb[:, [col[a.key] for a in d.arms]], **noise) for d in designs}


def compare_designs(predictives: dict[str, dict[str, Predictive]], designs=DESIGNS, arm_sizes=ARM_SIZES,
                    trials: int = N_TRIALS, seed: int = 0, day: int = DAY) -> dict:
    """The ``designs`` section of comparison.json from each hypothesis's predictives
    ({hypothesis: {design key: Predictive}})."""
    hyps = list(predictives)
    out = []
    for di, d in enumerate(designs):
        pred = {h: predictives[h][d.key] for h in hyps}
        arms = [{"label": a.label, "compound": a.compound, "mg_per_day": a.mg_per_day,
                 "doses_per_day": a.doses_per_day,
                 "fold_change_mean_effect": {h: _fold_quantiles(pred[h].log_effect[:, i]) for h in hyps}}
                for i, a in enumerate(d.arms)]
        by_size = []
        for n in arm_sizes:
            lbf = {t: expected_log_bf(t, pred, n, trials, seed=seed + 1000 * di + 10 * n + ti)
                   for ti, t in enumerate(hyps)}
            by_size.append({"arm_size": int(n), "expected_log_bf": lbf, "pairs": told_apart(lbf)})
        out.append({"key": d.key, "title": d.title, "question": d.question, "control": d.control,
                    "arms": arms, "by_arm_size": by_size})
    return {"day": day, "arm_sizes": [int(n) for n in arm_sizes], "trials": trials, "matrix": "whole_blood",
            "informative_nats": INFORMATIVE_NATS, "decisive_nats": DECISIVE_NATS,
            "other_evidence": list(OTHER_EVIDENCE), "designs": out}


def told_apart(lbf: dict) -> list[dict]:
    """Per pair of hypotheses, the weaker of the two directions' expected log BF: a design tells a
    pair apart only if it is expected to favour whichever of the two is true. ``verdict``:
    decisive / informative / not informative (:data:`DECISIVE_NATS`, :data:`INFORMATIVE_NATS`)."""
    hyps = list(lbf)
    out = []
    for i, t in enumerate(hyps):
        for b in hyps[i + 1:]:
            w = min(lbf[t][b]["mean"], lbf[b][t]["mean"])
            verdict = ("decisive" if w >= DECISIVE_NATS else "informative" if w >= INFORMATIVE_NATS
                       else "not informative")
            out.append({"hypotheses": [t, b], "weaker_expected_log_bf": w, "verdict": verdict})
    return out


def human_designs(runs: dict, designs=DESIGNS, arm_sizes=ARM_SIZES, trials: int = N_TRIALS,
                  max_draws: int = MAX_DRAWS, seed: int = 0, log=None) -> dict:
    """The ``designs`` section of comparison.json for loaded runs ({hypothesis: run})."""
    preds = {}
    for h, r in runs.items():
        if log is not None:
            log(f"trial designs: predictions of {h}")
        preds[h] = run_predictives(r, designs, max_draws)
    return compare_designs(preds, designs, arm_sizes, trials, seed)


#: most arms of one planned trial (each adds a column to one course; the densities are in k dims)
MAX_ARMS = 8
#: most people per arm and simulated trials a user may ask for
MAX_ARM_SIZE = 100_000
MAX_TRIALS = 50_000


def parse_arm(text: str) -> Arm:
    """``COMPOUND:MG_PER_DAY[:DOSES_PER_DAY]`` (e.g. ``NMN:500``, ``NR:1000:2``) as an Arm; one-line
    UserError naming ``--arm`` otherwise."""
    from nadfit.datasets.errors import UserError
    from nadfit.fitting.inference.regimen import validate_regimen

    parts = str(text).strip().split(":")
    if len(parts) not in (2, 3):
        raise UserError(f"--arm must be COMPOUND:MG_PER_DAY[:DOSES_PER_DAY] (e.g. NMN:500 or NR:1000:2), got {text!r}",
                        field="arm")
    k = 1
    if len(parts) == 3:
        try:
            k = int(parts[2])
        except ValueError:
            raise UserError(f"--arm {text!r}: doses per day must be a whole number, got {parts[2]!r}",
                            field="arm") from None
    try:
        compound, mg, k, _ = validate_regimen(parts[0], parts[1], k, DAY)
    except UserError as exc:  # the message names --compound/--dose/--doses-per-day: say it for --arm
        msg = exc.message
        for opt, word in (("--doses-per-day", "doses per day"), ("--compound", "compound"), ("--dose", "dose")):
            msg = msg.replace(opt, word)
        raise UserError(f"--arm {text!r}: {msg}", field="arm") from None
    return Arm(compound, mg, k)


def check_plan(arms: list[Arm], day, arm_sizes, trials) -> tuple[int, tuple[int, ...], int]:
    """The options of ``nadfit plan-trial`` (before any run is loaded): (day, arm sizes, trials)."""
    from nadfit.datasets.errors import UserError
    from nadfit.fitting.inference.regimen import MAX_DAYS

    if not 1 <= len(arms) <= MAX_ARMS:
        raise UserError(f"give 1 to {MAX_ARMS} --arm options (the placebo arm is always added), got {len(arms)}",
                        field="arm")
    if len({a.key for a in arms}) != len(arms):
        raise UserError("two --arm options give the same regimen", field="arm")
    if isinstance(day, bool) or not isinstance(day, int) or not 1 <= day <= MAX_DAYS:
        raise UserError(f"--days must be a whole number in [1, {MAX_DAYS}], got {day!r}", field="days")
    sizes = tuple(arm_sizes)
    if not sizes or any(isinstance(n, bool) or not isinstance(n, int) or not 2 <= n <= MAX_ARM_SIZE for n in sizes):
        raise UserError(f"--per-arm must be whole numbers in [2, {MAX_ARM_SIZE}], got {list(sizes)!r}", field="per-arm")
    if isinstance(trials, bool) or not isinstance(trials, int) or not 100 <= trials <= MAX_TRIALS:
        raise UserError(f"--trials must be a whole number in [100, {MAX_TRIALS}], got {trials!r}", field="trials")
    return day, sizes, trials


def plan_trial(run_dirs, arms: list[Arm], day: int = DAY, arm_sizes=ARM_SIZES, trials: int = N_TRIALS,
               max_draws: int = MAX_DRAWS, seed: int = 0, allow_failed: bool = False) -> dict:
    """``nadfit plan-trial``: the analysis of :func:`compare_designs` for one user-given trial
    (``arms`` besides placebo, read at ``day``) from fitted runs of two or more hypotheses.
    Returns the ``designs`` dict with one design, key ``planned``."""
    from nadfit.datasets.errors import UserError
    from nadfit.fitting.comparison.assemble import load_runs

    day, arm_sizes, trials = check_plan(arms, day, arm_sizes, trials)
    if len(run_dirs) < 2:
        raise UserError("give the run folders of at least two hypotheses (e.g. runs/main/fits/*)", field="runs")
    runs = load_runs([Path(d) for d in run_dirs], allow_failed=allow_failed)
    design = Design("planned", "planned trial", "the trial given on the command line", tuple(arms))
    preds = {h: run_predictives(r, (design,), max_draws, day) for h, r in runs.items()}
    return compare_designs(preds, (design,), arm_sizes, trials, seed, day)
