"""Which human trials could tell the uptake hypotheses apart (issue #15 item 1).

For a few candidate placebo-controlled trials of oral NMN and NR (:data:`DESIGNS`), each fitted
hypothesis predicts what the trial would report, and the comparison asks how strongly the
trial's result would be expected to favour the true hypothesis over another one: a
preposterior analysis of model discrimination (the expected log Bayes factor of the new trial
alone, i.e. the Kullback-Leibler divergence between the two hypotheses' predictive
distributions of the trial's result; Lindley 1956, Box & Hill 1967).

What a simulated trial reports: for each active arm i, the log ratio of its arm-mean
whole-blood NAD+ to placebo at day :data:`DAY` (the quantity of the model's
``log_ratio_vs_placebo`` rows),

    y_i = h * log b_i(theta) + a_i + s_i - s_0

* ``log b_i`` — the arm's whole-blood fold change of the model (``EvidenceModel.blood_regimens``);
* ``h = exp(sigma_het z)`` — the new trial's study effect (one z per trial, shared by its arms);
* ``a_i ~ N(0, sigma_arm^2)`` — the extra arm-level deviation;
* ``s_i, s_0 ~ N(0, sigma_person^2 / n)`` — the sampling error of the arm's and the placebo arm's
  means with ``n`` people per arm (the placebo arm's error is shared by every contrast).

Assumptions, stated: the noise parameters are the fitted posterior's own. ``sigma_person`` is the
between-person SD of the log *change* from baseline, so the planned trial is analysed as change
from baseline. ``sigma_arm`` was fitted on published arms of many protocols and is kept as
irreducible arm-level noise of the new trial (it is what stops a larger trial from helping
much). The model scores a published row with its *reported* SD; a planned trial has none, so
``sigma_person/sqrt(n)`` stands in for it.

Given theta and z, y ~ N(h mu, a I + c 11^T) with a = sigma_arm^2 + sigma_person^2/n and
c = sigma_person^2/n. The study effect is integrated out per draw by adaptive Gauss-Hermite
quadrature (:func:`trial_logpdf`), so a hypothesis's predictive of y is a mixture over its
posterior draws of exact (up to quadrature) densities, not a kernel density estimate: within
0.02 nats of a fine-grid integral wherever the log density exceeds -30 (test). (Plain
Gauss-Hermite nodes in z needed 32-64 nodes and still scored some trials 200 nats off: the
integrand is narrow when a trial is precise; a Gaussian stand-in for h, the first version,
moved some expected log BFs by up to 0.4 nats.)

The expected log Bayes factor of hypothesis A against B when A is true,
E_{y ~ p_A}[log p_A(y) - log p_B(y)], is a Monte Carlo mean over :data:`N_TRIALS` trials
simulated from A and scored under every hypothesis: an estimate of the divergence between the
two hypotheses' draw mixtures. ``mcse`` is the Monte Carlo SE over the simulated trials only.
The finite draws add their own error (a mixture of S draws is not the posterior predictive; the
divergence of mixtures is biased high for small S): ``halves`` repeats the estimate with the
even and with the odd half of every hypothesis's draws, so their spread shows how well the
draws resolve the number. ``p_favours_true`` is the share of trials with log BF > 0. Each
design is assessed at the arm sizes :data:`ARM_SIZES`.

Reading (Kass & Raftery 1995: 2 log BF of 2-6 is "positive", 6-10 "strong" evidence): an
expected log BF >= 1 nat in both directions of a pair makes the design *positive* for that pair,
>= 3 *strong*. Designs whose arms every hypothesis predicts alike (the NR-only trial: NR takes
the same route under every hypothesis) are the control: their expected log BF near 0 says the
machinery does not invent a separation.

The numbers are conditional on the model: a trial that the model's structure cannot tell apart
(blood NAD+ alone, one compound) may still be decided by other measurements (plasma NMN and NR
time courses, CD73 inhibition), which the model does not predict; the report lists them.
"""

from __future__ import annotations

import functools
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
N_TRIALS = 1000
#: expected log BF (nats) from which a design gives positive / strong evidence for a pair
#: (Kass & Raftery 1995: 2 log BF of 2 and 6)
POSITIVE_NATS = 1.0
STRONG_NATS = 3.0
#: adaptive Gauss-Hermite quadrature of the study effect: nodes, Newton steps to its mode, and
#: a floor of the integrand's curvature there (a flat integrand gets at most 1/sqrt(0.05) = 4.5 SD)
AGHQ_NODES = 12
AGHQ_NEWTON_STEPS = 8
AGHQ_MIN_CURVATURE = 0.05
#: simulated trials scored at once (bounds the (trials, draws) density matrices' memory)
TRIAL_BLOCK = 2000
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
           "route), as in the shipped trials? Up to 2000 mg/day, the highest daily dose of the shipped "
           "human trials.",
           (Arm("NMN", 250), Arm("NMN", 500), Arm("NMN", 1000), Arm("NMN", 2000))),
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


def trial_logpdf(y: np.ndarray, mu: np.ndarray, sigma_het: np.ndarray, a: np.ndarray, c: np.ndarray) -> np.ndarray:
    """log p(y_i | draw j) for every trial result y_i (M, k) and draw j, with the study effect
    h = exp(sigma_het z), z ~ N(0, 1), integrated out:

        p(y | j) = integral N(y; h mu_j, a_j I + c_j 11^T) phi(z) dz

    mu (S, k), sigma_het, a, c (S,): returns (M, S). Given h the density is Gaussian; with
    Sigma^-1 = (I - c/(a + k c) 11^T) / a (Sherman-Morrison) its exponent is
    -1/2 (y'Sigma^-1 y - 2 h B + h^2 A), A = mu'Sigma^-1 mu, B = mu'Sigma^-1 y, so the integral over
    z is one-dimensional. It is computed by adaptive Gauss-Hermite quadrature (Liu & Pierce 1994):
    :data:`AGHQ_NODES` probabilists' Gauss-Hermite nodes placed at the mode z* of the integrand
    (:data:`AGHQ_NEWTON_STEPS` damped Newton steps) and scaled by its curvature there, so a
    narrow integrand (a precise trial) is resolved as well as a wide one. One jitted JAX program
    per shape; the (M, S, k) differences are never formed (matrix products only)."""
    return np.asarray(_programs()[0](*(np.asarray(x, dtype=float) for x in (y, mu, sigma_het, a, c))))


def mixture_logpdf(y: np.ndarray, mu: np.ndarray, sigma_het: np.ndarray, a: np.ndarray, c: np.ndarray) -> np.ndarray:
    """log of the equal-weight mixture over the draws of :func:`trial_logpdf`: (M,)."""
    return np.asarray(_programs()[1](*(np.asarray(x, dtype=float) for x in (y, mu, sigma_het, a, c))))


@functools.cache
def _programs():
    """The jitted (trial_logpdf, mixture_logpdf) programs (compiled once per shape)."""
    import jax

    jax.config.update("jax_enable_x64", True)  # as the model (models.averaged): log densities in float64
    import jax.numpy as jnp

    u, w = np.polynomial.hermite_e.hermegauss(AGHQ_NODES)  # weight exp(-u^2/2), sum sqrt(2 pi)
    log_wu = np.log(w) + 0.5 * u ** 2
    half_log_2pi = 0.5 * math.log(2 * math.pi)

    @jax.jit
    def f(y, mu, sig, a, c):
        k = mu.shape[1]
        sig = sig[None, :]
        shrink = c / (a + k * c)
        ysum, musum = y.sum(1)[:, None], mu.sum(1)[None, :]
        A = (((mu ** 2).sum(1) - shrink * mu.sum(1) ** 2) / a)[None, :]  # (1, S)
        B = ((y @ mu.T) - shrink * ysum * musum) / a  # (M, S)
        yy = ((y ** 2).sum(1)[:, None] - shrink * ysum ** 2) / a  # (M, S)
        const = -(k * half_log_2pi + 0.5 * (k * jnp.log(a) + jnp.log1p(k * c / a)))[None, :] - 0.5 * yy

        def log_f(z):  # log of the integrand less const
            h = jnp.exp(sig * z)
            return -0.5 * (A * h ** 2 - 2.0 * B * h) - 0.5 * z ** 2 - half_log_2pi

        def derivatives(z):
            h = jnp.exp(sig * z)
            ah = A * h
            return -(ah - B) * sig * h - z, -sig ** 2 * h * (2.0 * ah - B) - 1.0

        # the mode: start at the z whose h matches y best (B/A, floored), then damped Newton
        # steps (the curvature floored at the prior's, steps at 1)
        z = jnp.clip(jnp.log(jnp.maximum(B / jnp.maximum(A, 1e-300), 1e-3)) / jnp.maximum(sig, 1e-12), -6.0, 6.0)
        for _ in range(AGHQ_NEWTON_STEPS):
            d1, d2 = derivatives(z)
            z = z + jnp.clip(d1 / jnp.maximum(-d2, 1.0), -1.0, 1.0)
        scale = 1.0 / jnp.sqrt(jnp.maximum(-derivatives(z)[1], AGHQ_MIN_CURVATURE))
        vals = jnp.stack([log_f(z + scale * ui) + lw for ui, lw in zip(u, log_wu)], axis=-1)
        return const + jnp.log(scale) + jax.scipy.special.logsumexp(vals, axis=-1)

    @jax.jit
    def mixture(y, mu, sig, a, c):
        return jax.scipy.special.logsumexp(f(y, mu, sig, a, c), axis=1) - jnp.log(mu.shape[0])

    return f, mixture


@dataclass
class Predictive:
    """One hypothesis's posterior for one design: arm log effects (S, k) and noise draws (S,).
    Its predictive of a new trial's result is the equal-weight mixture over the draws of
    p(y | draw), the study effect integrated out (:func:`trial_logpdf`)."""
    log_effect: np.ndarray
    sigma_het: np.ndarray
    sigma_arm: np.ndarray
    sigma_person: np.ndarray

    def subset(self, which: int) -> Predictive:
        """The even (``which`` = 0) or odd (1) half of the draws."""
        sl = slice(which, None, 2)
        return Predictive(self.log_effect[sl], self.sigma_het[sl], self.sigma_arm[sl], self.sigma_person[sl])

    def noise(self, n: int) -> tuple[np.ndarray, np.ndarray]:
        """(a, c) per draw: Sigma = a I + c 11^T of the arms' log ratios to placebo given h."""
        c = np.asarray(self.sigma_person, dtype=float) ** 2 / n
        return np.asarray(self.sigma_arm, dtype=float) ** 2 + c, c

    def mixture_logpdf(self, y: np.ndarray, n: int) -> np.ndarray:
        """log of this hypothesis's predictive density of each trial result y (M, k): (M,)."""
        return mixture_logpdf(y, self.log_effect, self.sigma_het, *self.noise(n))

    def simulate(self, n: int, trials: int, rng) -> tuple[np.ndarray, np.ndarray]:
        """``trials`` results y (trials, k) of a new trial with ``n`` people per arm, and the
        draw each came from."""
        a, c = self.noise(n)
        s = rng.integers(0, len(a), trials)
        k = self.log_effect.shape[1]
        h = np.exp(self.sigma_het[s] * rng.standard_normal(trials))  # the trial's study effect
        arm = rng.standard_normal((trials, k)) * np.sqrt(a[s])[:, None]  # a_i + s_i
        placebo = rng.standard_normal(trials) * np.sqrt(c[s])  # s_0, shared by the contrasts
        return h[:, None] * self.log_effect[s] + arm - placebo[:, None], s


def _mixture_logpdf(p: Predictive, y: np.ndarray, n: int) -> np.ndarray:
    """log of ``p``'s predictive density (equal-weight mixture over its draws) at each trial
    result y (M, k), in blocks of :data:`TRIAL_BLOCK` trials: (M,)."""
    return np.concatenate([p.mixture_logpdf(y[i:i + TRIAL_BLOCK], n) for i in range(0, len(y), TRIAL_BLOCK)])


def _log_bfs(true: str, predictives: dict[str, Predictive], n: int, trials: int, rng) -> dict[str, np.ndarray]:
    """Per other hypothesis, the log Bayes factors of ``trials`` trials simulated from ``true``."""
    y, _ = predictives[true].simulate(n, trials, rng)
    own = _mixture_logpdf(predictives[true], y, n)
    return {alt: own - _mixture_logpdf(p, y, n) for alt, p in predictives.items() if alt != true}


def expected_log_bf(true: str, predictives: dict[str, Predictive], n: int = ARM_SIZES[0], trials: int = N_TRIALS,
                    seed=0) -> dict[str, dict]:
    """Expected log Bayes factor (nats) of a new trial for hypothesis ``true`` against each other
    hypothesis of ``predictives`` when ``true`` holds (one set of simulated trials, scored under
    every hypothesis): ``mean``, its Monte Carlo SE over the trials (``mcse``), the share of
    trials that favour ``true`` and ``halves``, the same estimate from the even and from the odd
    half of every hypothesis's draws (how well the draws resolve it; half as many trials each).
    ``seed``: an int or a sequence of ints (``numpy.random.SeedSequence`` entropy)."""
    ss = np.random.SeedSequence(seed)
    rng, *half_rngs = (np.random.default_rng(x) for x in ss.spawn(3))
    full = _log_bfs(true, predictives, n, trials, rng)
    halves = [_log_bfs(true, {h: p.subset(i) for h, p in predictives.items()}, n, max(trials // 2, 2), half_rngs[i])
              for i in (0, 1)]
    return {alt: {"mean": float(lbf.mean()), "mcse": float(lbf.std(ddof=1) / math.sqrt(trials)),
                  "p_favours_true": float(np.mean(lbf > 0)), "halves": [float(h[alt].mean()) for h in halves],
                  "trials": int(trials)}
            for alt, lbf in full.items()}


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
    if not np.all(np.isfinite(logb)):
        from nadfit.datasets.errors import UserError

        bad = [a.label for j, a in enumerate(arms) if not np.all(np.isfinite(logb[:, j]))]
        raise UserError(f"the model gives no finite blood NAD+ for {', '.join(bad)} at some posterior draws",
                        file=str(run.dir))
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
            lbf = {t: expected_log_bf(t, pred, n, trials, seed=(seed, di, n, ti)) for ti, t in enumerate(hyps)}
            by_size.append({"arm_size": int(n), "expected_log_bf": lbf, "pairs": told_apart(lbf)})
        out.append({"key": d.key, "title": d.title, "question": d.question, "control": d.control,
                    "arms": arms, "by_arm_size": by_size})
    return {"day": day, "arm_sizes": [int(n) for n in arm_sizes], "trials": trials, "matrix": "whole_blood",
            "positive_nats": POSITIVE_NATS, "strong_nats": STRONG_NATS,
            "other_evidence": list(OTHER_EVIDENCE), "designs": out}


def told_apart(lbf: dict) -> list[dict]:
    """Per pair of hypotheses, the weaker of the two directions' expected log BF: a design tells a
    pair apart only if it is expected to favour whichever of the two is true. ``verdict``:
    strong / positive / not informative (:data:`STRONG_NATS`, :data:`POSITIVE_NATS`)."""
    hyps = list(lbf)
    out = []
    for i, t in enumerate(hyps):
        for b in hyps[i + 1:]:
            w = min(lbf[t][b]["mean"], lbf[b][t]["mean"])
            verdict = ("strong" if w >= STRONG_NATS else "positive" if w >= POSITIVE_NATS
                       else "not informative")
            out.append({"hypotheses": [t, b], "weaker_expected_log_bf": w, "verdict": verdict})
    return out


def human_designs(runs: dict, designs=DESIGNS, arm_sizes=ARM_SIZES, trials: int = N_TRIALS,
                  max_draws: int = MAX_DRAWS, seed: int = 0, day: int = DAY, log=None) -> dict:
    """The ``designs`` section of comparison.json for loaded runs ({hypothesis: run})."""
    preds = {}
    for h, r in runs.items():
        if log is not None:
            log(f"trial designs: predictions of {h}")
        preds[h] = run_predictives(r, designs, max_draws, day)
    return compare_designs(preds, designs, arm_sizes, trials, seed, day)


#: most arms of one planned trial (each adds a column to one course; the densities are in k dims)
MAX_ARMS = 8
#: most people per arm and simulated trials a user may ask for
MAX_ARM_SIZE = 100_000
MAX_ARM_SIZES = 4
MAX_TRIALS = 20_000


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
    sizes = tuple(dict.fromkeys(arm_sizes))  # a size given twice is assessed once
    if not sizes or any(isinstance(n, bool) or not isinstance(n, int) or not 2 <= n <= MAX_ARM_SIZE for n in sizes):
        raise UserError(f"--per-arm must be whole numbers in [2, {MAX_ARM_SIZE}], got {list(arm_sizes)!r}",
                        field="per-arm")
    if len(sizes) > MAX_ARM_SIZES:
        raise UserError(f"give at most {MAX_ARM_SIZES} --per-arm values, got {len(sizes)}", field="per-arm")
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
    return human_designs(runs, (design,), arm_sizes, trials, max_draws, seed, day)
