"""The NAD+ salvage core: equations written once, for numpy and for jax.numpy.

Everything is dimensionless relative to the unperturbed steady state of a cell/tissue system:

* ``n`` — NAD+ relative to its baseline (n = 1 at baseline);
* ``e`` — NAMPT abundance (expression) relative to the healthy baseline;
* ``j`` — extra NAD+ synthesis flux from an exogenous precursor (NMN or NR after uptake),
  in units of the baseline NAD+ synthesis flux.

Rates (in units of the baseline flux)::

    NAMPT salvage      S(n, e, m) = e m (1 + beta) / (1 - sigma + beta n + sigma m)
                       (competitive inhibition of NAMPT by NAD+ against its substrate NAM, with
                        m = NAM relative to baseline, sigma = [NAM]0 / (Km_NAM + [NAM]0) the
                        baseline substrate saturation and beta = free NAD+ / Ki_NAD at baseline
                        NAM, so S(1, 1, 1) = 1; at m = 1 it is e (1 + beta) / (1 + beta n) for
                        every sigma)
    NAM pool           Cl(m)   = d_nam * m      (NNMT methylation and renal loss; first order:
                        Km_NNMT 400 uM, KP093, lies far above NAM levels)
                       at the fast steady state of (n, m) every NAD+ consumed returns as NAM,
                       so Cl(m) = d_nam + first-pass NAM + intact precursor flux:
                       m = 1 + (f + j) / d_nam, independent of NAMPT, NAD+ and the consumers
    consumption        C(n)    = c * [(1 - ell) * n (1 + kappa) / (n + kappa) + ell * n]
                       (sirtuins/PARPs/CD38 lumped as Michaelis-Menten with Km = kappa * NAD0,
                        plus a non-saturable fraction ell; C(1) = c)
    NAMPT expression   e_ss    = e_base * n ** gamma
                       (gamma of free sign: NAMPT may rise (>0) or fall (<0) with NAD+;
                        e_base < 1 for injury/stress, > 1 for forced expression)

Dynamic form (time in days)::

    dn/dt = k_t * (S(n, e, m) + j - C(n))
    dm/dt = k_m * (C(n) + d_nam + f - S(n, e, m) - d_nam * m)   # NAM (human in vivo only)
    de/dt = k_e * (e_base * n ** gamma - e)
    db/dt = k_b * (n - b)                 # slow blood (whole-blood) NAD+ pool

with ``f`` the first-pass NAM flux of an oral precursor (converted in gut and liver before
it reaches tissues) and ``j`` its intact share's flux into NAD+ synthesis. Systems without a NAM
pool (rodent tissues, cell cultures) keep m = 1.

The full "brute-force" system adds oral absorption: a gut amount A (g) per compound absorbed at
k_abs, an extracellular exposure X eliminated at k_x; the delivered precursor flux is
``pi * k_x * X`` (so its daily average equals ``pi * dose_g_per_day`` by mass balance), split into
the direct (SLC12A8, saturable with constant K_A) and the via-NR routes by the share ``phi``;
the first-pass NAM flux is ``fp_odds * pi * k_x * X`` per compound (``fp_odds`` = f_fp / (1 - f_fp),
f_fp the share of the absorbed precursor converted to NAM before use).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

# --------------------------------------------------------------------------------------------
# rate laws (xp = numpy or jax.numpy)
# --------------------------------------------------------------------------------------------


def nampt_rate(n, e, beta, m=1.0, sigma=0.0):
    """NAMPT salvage flux relative to baseline: e m (1 + beta) / (1 - sigma + beta n + sigma m)
    (at baseline NAM, m = 1: e (1 + beta) / (1 + beta n))."""
    return e * m * (1.0 + beta) / (1.0 - sigma + beta * n + sigma * m)


def nampt_at_nam(e, beta, m, sigma):
    """(e', beta') with nampt_rate(n, e', beta') == nampt_rate(n, e, beta, m, sigma) for every n:
    a NAM level m acts on NAMPT as a weaker NAD+ feedback, beta' = beta / (1 - sigma + sigma m),
    and a scaled capacity e' = e m (1 + beta) / (1 - sigma + sigma m + beta). The NAD+ solvers
    keep the two-parameter law."""
    s = 1.0 - sigma + sigma * m
    return e * m * (1.0 + beta) / (s + beta), beta / s


def first_pass_flux(nmn_rate, nr_rate, pi_nmn, pi_nr, fp_odds):
    """NAM flux (units of baseline salvage flux) from oral NMN/NR converted in gut and liver:
    ``fp_odds`` = f_fp / (1 - f_fp) times the intact share's low-dose flux pi * rate (linear:
    no saturable step before first-pass hydrolysis)."""
    return fp_odds * (pi_nmn * nmn_rate + pi_nr * nr_rate)


def nam_level(extra_flux, d_nam):
    """NAM relative to baseline at the fast steady state of (NAD+, NAM): first-order clearance
    d_nam * m balances the baseline inflow d_nam plus every extra NAM flux (first pass and the
    intact precursor, which returns as NAM once its NAD+ is consumed)."""
    return 1.0 + extra_flux / d_nam


#: NAM in the full (pulsed) reference system only (the production path holds NAD+ and NAM at their
#: fast joint steady state): plasma NAM terminal half-life 4.3 h (KP107, Menon 2007), read as the
#: slowest relaxation of the (NAD+, NAM) pair, the decay a plasma NAM time course shows
T_NAM_HOURS = 4.3
#: fastest NAM exchange rate (per day) the reference uses where no rate gives that half-life
MAX_K_M = 500.0


def _slow_nam_mode(k_m, p, n0, e0) -> float:
    """Slowest relaxation rate (per day) of (NAD+, NAM) at the baseline steady state (n0, e0),
    NAMPT held."""
    sigma, d_nam, _ = nam_params(p)
    beta = p["beta"]
    relax = tissue_relaxation_rate(n0, e0, beta, p["kappa"], p["ell"], p["c"])  # dC/dn - dS/dn at m = 1
    s_m = e0 * (1.0 + beta) * (1.0 - sigma + beta * n0) / (1.0 + beta * n0) ** 2  # dS/dm at m = 1
    jac = np.array([[-p["k_t"] * relax, p["k_t"] * s_m],
                    [k_m * relax, -k_m * (s_m + d_nam)]])
    return float(np.min(-np.linalg.eigvals(jac).real))


def reference_nam_rate(p) -> float:
    """NAM exchange rate k_m of the pulsed reference: the one whose slowest (NAD+, NAM) relaxation
    has the half-life ``T_NAM_HOURS``; ``MAX_K_M`` where none reaches it (slow tissue NAD+ turnover
    or small NAM clearance bound the joint pool's relaxation: the reference then relaxes more
    slowly than the production path assumes, and the tests show by how much)."""
    from scipy.optimize import brentq

    target = 24.0 * math.log(2.0) / T_NAM_HOURS
    n0, e0 = baseline_state(p)[[4, 5]]  # solved once, not per root-finding step
    if _slow_nam_mode(MAX_K_M, p, n0, e0) <= target:
        return MAX_K_M
    return math.exp(brentq(lambda x: _slow_nam_mode(math.exp(x), p, n0, e0) - target, math.log(1e-3),
                           math.log(MAX_K_M), xtol=1e-10))


def consumption_rate(n, kappa, ell, c=1.0):
    """NAD+ consumption relative to baseline (Michaelis-Menten part + non-saturable part)."""
    return c * ((1.0 - ell) * n * (1.0 + kappa) / (n + kappa) + ell * n)


def oral_precursor_flux(rate_g_per_day, pi, phi, k_a, xp=np):
    """Precursor flux reaching NAD+ synthesis for an oral input rate (g/day).

    ``phi`` is the share of use through the direct (SLC12A8) route at low dose; that route
    saturates with half-saturation ``k_a`` (g/day); the via-NR route (CD73 -> ENT -> NRK1) is
    first-order (CD73 Km for NMN is 880 uM, far above expected extracellular levels).
    With ``k_a = inf`` (or phi = 0) the flux is linear in dose.
    """
    rate = xp.maximum(rate_g_per_day, 0.0)
    return pi * rate * (phi / (1.0 + rate / k_a) + (1.0 - phi))


#: NAMPT-NAD+ loop monostability (homeostasis). With NAMPT following NAD+ as e = e_base n^gamma,
#: the balance F(u) = log(S(n, e) + j) - log C(n), u = log n, is strictly decreasing in u -- one
#: steady state, for every input j >= 0, e_base and c -- if gamma < g(n) for every n, where
#:     g(n) = beta n / (1 + beta n) + n C'(n) / C(n)
#: (d log S/du = gamma - beta n/(1 + beta n); j only damps it). g -> 1 as n -> 0 and -> 2 as
#: n -> inf, but with weak inhibition (small beta), saturated consumption (small kappa) and a small
#: linear part (ell) it dips far below 1 at depleted NAD+: |gamma| < 0.9 alone does not keep the
#: loop monostable. There a positive NAMPT feedback makes the steady state jump between
#: branches as parameters move (a cliff in the likelihood, where every divergent NUTS
#: transition of the session-6 fits ended). The model uses ``monostable_gamma`` (a smooth
#: minimum of gamma and the bound less a margin), equal to gamma to < 1e-6 wherever gamma is
#: 0.15 below the bound: at every posterior draw of the shipped fits.
MONOSTABLE_LOG_N = np.linspace(-8.0, 8.0, 97)
MONOSTABLE_MARGIN = 0.02
MONOSTABLE_SOFTNESS = 0.01


def monostability_bound(beta, kappa, ell, xp=np):
    """Smooth minimum (soft-min, temperature ``MONOSTABLE_SOFTNESS``) of g(n) over the grid
    ``MONOSTABLE_LOG_N``: a lower bound of min_n g(n) up to the grid's resolution."""
    n = xp.exp(xp.asarray(MONOSTABLE_LOG_N))
    b, k, el = (xp.asarray(x)[..., None] for x in (beta, kappa, ell))
    g = b * n / (1.0 + b * n) + ((1.0 - el) * (1.0 + k) * k / (n + k) ** 2 + el) / (
        (1.0 - el) * (1.0 + k) / (n + k) + el)
    m = xp.min(g, axis=-1, keepdims=True)
    t = MONOSTABLE_SOFTNESS
    return (m - t * xp.log(xp.sum(xp.exp(-(g - m) / t), axis=-1, keepdims=True)))[..., 0]


def soft_min(x, cap, softness, xp=np):
    """Smooth min(x, cap): cap - softness log(1 + exp((cap - x) / softness)); below the cap by
    d it differs from x by softness log(1 + exp(-d / softness))."""
    return cap - softness * xp.logaddexp(0.0, (cap - x) / softness)


def monostable_gamma(gamma, beta, kappa, ell, xp=np):
    """The NAMPT response exponent the model uses: smooth min(gamma, bound - margin)."""
    cap = monostability_bound(beta, kappa, ell, xp) - MONOSTABLE_MARGIN
    return soft_min(gamma, cap, MONOSTABLE_SOFTNESS, xp)


def tissue_relaxation_rate(n, e, beta, kappa, ell, c=1.0):
    """-d(S - C)/dn: the rate (per unit k_t) at which tissue NAD+ relaxes to its quasi-steady
    state after a small flux change (positive for every admissible parameter set)."""
    ds = -e * (1.0 + beta) * beta / (1.0 + beta * n) ** 2
    dc = c * ((1.0 - ell) * (1.0 + kappa) * kappa / (n + kappa) ** 2 + ell)
    return dc - ds


# --------------------------------------------------------------------------------------------
# within-day profile of oral delivery (the production path's quadrature over a dosing interval)
# --------------------------------------------------------------------------------------------

#: cells per dosing interval of the within-day quadrature (verified in tests/models)
CELLS_PER_DOSE = 12


def absorption_profile(k_abs, k_x, doses_per_day: int, cells: int = CELLS_PER_DOSE, xp=np):
    """Delivered precursor rate (k_x X) averaged over each of ``cells`` equal cells of one dosing
    interval, in units of the daily-mean intake rate (so the cells average to exactly 1).

    The periodic steady state of the full system's gut -> extracellular chain (``full_rhs``)
    for a dose every tau = 1/doses_per_day days: with a(t) = exp(-k t) / (1 - exp(-k tau)),
    k_x X(t) = D k_abs k_x (a_abs(t) - a_x(t)) / (k_x - k_abs), integrated over each cell in
    closed form. k_x = k_abs is a removable singularity: k_x is moved by 1e-7 relative there.
    """
    tau = 1.0 / doses_per_day
    h = tau / cells
    k_x = xp.where(xp.abs(k_x - k_abs) < 1e-7 * k_abs, k_abs * (1.0 + 1e-7), k_x)
    t0 = np.arange(cells) * h

    def cell_integrals(k):  # integral of exp(-k t) / (1 - exp(-k tau)) over each cell
        return xp.exp(-k * t0) * (-xp.expm1(-k * h)) / (k * -xp.expm1(-k * tau))

    delivered = tau * k_abs * k_x * (cell_integrals(k_abs) - cell_integrals(k_x)) / (k_x - k_abs)
    return delivered / h  # mean rate in each cell; the dose tau is one interval's intake at rate 1


def filtered_cells(j_cells, lam, h, xp=np):
    """Cell averages of the periodic solution y of dy/dt = lam (j - y) for a piecewise-constant
    input ``j_cells`` (last axis: cells of width h): the first-order low-pass through which tissue
    NAD+ sees the within-day flux (lam = k_t * tissue_relaxation_rate).

    ``lam`` and ``h`` broadcast against ``j_cells[..., 0]``.
    """
    m = j_cells.shape[-1]
    lam = xp.asarray(lam)[..., None]
    h = xp.asarray(h)[..., None]
    x = lam * h
    # y_{i+1} = a y_i + (1 - a) j_i (a = exp(-x)); the periodic solution at the cell starts is a
    # circulant map of the cells: y_i = (1 - a) / (1 - a^m) sum_l a^((i - 1 - l) mod m) j_l
    # (one exponential of an (m, m) matrix and one matrix-vector product: cheap in reverse mode)
    lags = (np.arange(m)[:, None] - 1 - np.arange(m)[None, :]) % m
    gain = -xp.expm1(-x) / -xp.expm1(-x * m)
    circ = xp.exp(-x[..., None] * lags) * gain[..., None]
    y_start = xp.einsum("...il,...l->...i", circ, j_cells)
    # cell average of y: j + (y_start - j) (1 - a) / x
    return j_cells + (y_start - j_cells) * (-xp.expm1(-x)) / x


def two_point_rule(y, xp=np):
    """Two-point Gauss rule of the equal-weight distribution of ``y`` (last axis): nodes and
    weights (last axis 2) exact for every cubic, i.e. matching the cells' mean, variance and
    third moment. Nodes lie inside [min y, max y]. A constant ``y`` gives two equal nodes."""
    mu = xp.mean(y, axis=-1)
    d = y - mu[..., None]
    var = xp.mean(d * d, axis=-1)
    sd = xp.sqrt(var + 1e-24)
    skew = xp.mean(d * d * d, axis=-1) / sd ** 3
    root = xp.sqrt(skew * skew + 4.0)
    hi, lo = 0.5 * (skew + root), 0.5 * (skew - root)
    w_hi = -lo / root
    nodes = xp.stack([mu + sd * hi, mu + sd * lo], axis=-1)
    weights = xp.stack([w_hi, 1.0 - w_hi], axis=-1)
    return nodes, weights


# --------------------------------------------------------------------------------------------
# steady state: solve S(n, e_base n^gamma) + j = C(n) for n > 0
# --------------------------------------------------------------------------------------------


def _log_balance(u, j, e_base, beta, kappa, ell, gamma, c, xp):
    """log(production) - log(consumption) at n = exp(u); strictly decreasing in u for |gamma| < 1."""
    n = xp.exp(u)
    e = e_base * xp.exp(gamma * u)
    return xp.log(nampt_rate(n, e, beta) + j) - xp.log(consumption_rate(n, kappa, ell, c))


LOG_N_BRACKET = (-20.0, 20.0)
BISECTION_STEPS = 64


def steady_state_numpy(j, e_base, beta, kappa, ell, gamma, c=1.0):
    """Reference steady state with scipy's brentq (numpy floats)."""
    from scipy.optimize import brentq

    f = lambda u: _log_balance(u, j, e_base, beta, kappa, ell, gamma, c, np)  # noqa: E731
    lo, hi = LOG_N_BRACKET
    return math.exp(brentq(f, lo, hi, xtol=1e-14, rtol=1e-14, maxiter=500))


def steady_state_jax(j, e_base, beta, kappa, ell, gamma, c=1.0):
    """Differentiable steady state (jax): bisection on log n, then one Newton step.

    The bisection runs on stop-gradient values; the final Newton step from the converged root
    carries the implicit-function-theorem derivative du/dtheta = -dF/dtheta / dF/du exactly.
    Broadcasts over array arguments.
    """
    import jax
    import jax.numpy as jnp

    args = (j, e_base, beta, kappa, ell, gamma, c)
    shape = jnp.broadcast_shapes(*(jnp.shape(a) for a in args))
    sg = [jnp.broadcast_to(jax.lax.stop_gradient(jnp.asarray(a, dtype=float)), shape) for a in args]

    def body(_, bounds):
        lo, hi = bounds
        mid = 0.5 * (lo + hi)
        positive = _log_balance(mid, *sg, jnp) > 0.0
        return jnp.where(positive, mid, lo), jnp.where(positive, hi, mid)

    lo0 = jnp.full(shape, LOG_N_BRACKET[0])
    hi0 = jnp.full(shape, LOG_N_BRACKET[1])
    lo, hi = jax.lax.fori_loop(0, BISECTION_STEPS, body, (lo0, hi0))
    u0 = jax.lax.stop_gradient(0.5 * (lo + hi))

    f = lambda u: _log_balance(u, j, e_base, beta, kappa, ell, gamma, c, jnp)  # noqa: E731
    val, dfdu = jax.jvp(f, (u0,), (jnp.ones_like(u0),))
    u = u0 - val / dfdu
    return jnp.exp(u)


# --------------------------------------------------------------------------------------------
# dosing regimens
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Segment:
    """A stretch of days [start, end) with a constant daily dose (mg/day) split into K doses."""

    start: float
    end: float
    mg_per_day: float
    doses_per_day: int = 1


@dataclass(frozen=True)
class Regimen:
    compound: str  # "NMN" | "NR" | "none"
    segments: tuple[Segment, ...]

    def mg_per_day_at(self, t: float) -> float:
        for s in self.segments:
            if s.start <= t < s.end:
                return s.mg_per_day
        return 0.0

    def doses_per_day_at(self, t: float) -> int:
        for s in self.segments:
            if s.start <= t < s.end:
                return max(int(s.doses_per_day), 1)
        return 1

    def change_days(self) -> tuple[float, ...]:
        """Days where the intake or the doses per day may change (segment starts and ends)."""
        return tuple(sorted({t for s in self.segments for t in (float(s.start), float(s.end))}))

    def dose_events(self) -> list[tuple[float, float]]:
        """(time in days, dose in g) for every single administration."""
        out = []
        for s in self.segments:
            k = max(int(s.doses_per_day), 1)
            for day in range(int(math.floor(s.start)), int(math.ceil(s.end))):
                for i in range(k):
                    t = day + i / k
                    if s.start <= t < s.end and s.mg_per_day > 0:
                        out.append((t, s.mg_per_day / 1000.0 / k))
        return out


def daily_regimen(compound: str, mg_per_day: float, days: float, doses_per_day: int = 1) -> Regimen:
    return Regimen(compound, (Segment(0.0, float(days), float(mg_per_day), int(doses_per_day)),))


# --------------------------------------------------------------------------------------------
# full (brute-force) right-hand side and the time-scale-separated production path
# --------------------------------------------------------------------------------------------

FULL_STATES = ("gut_nmn_g", "ext_nmn", "gut_nr_g", "ext_nr", "nad_tissue", "nampt", "nad_blood", "nam")


def nam_params(p) -> tuple:
    """(sigma_nam, d_nam, fp_odds) of a parameter mapping; without them, no NAM pool (m = 1)."""
    return p.get("sigma_nam", 0.0), p.get("d_nam", math.inf), p.get("fp_odds", 0.0)


def full_rhs(t, y, p, xp=np):
    """Right-hand side of the full pulsed-dosing system (doses enter as jumps of the gut states).

    ``p`` is a mapping with beta, kappa, ell, gamma, e_base, c, k_t, k_e, k_b, k_abs, k_x,
    pi_nmn, pi_nr, phi, k_a (g/day), and optionally the NAM pool's sigma_nam, d_nam, fp_odds
    (``nam_params``) with its exchange rate k_m (``simulate_full`` sets it:
    ``reference_nam_rate``). Time in days.
    """
    a_nmn, x_nmn, a_nr, x_nr, n, e, b, m = (y[i] for i in range(8))
    flux_nmn = p["k_x"] * x_nmn  # g/day of NMN leaving the extracellular pool into cells/NAM
    flux_nr = p["k_x"] * x_nr
    j = oral_precursor_flux(flux_nmn, p["pi_nmn"], p["phi"], p["k_a"], xp) + p["pi_nr"] * flux_nr
    sigma, d_nam, fp_odds = nam_params(p)
    salvage = nampt_rate(n, e, p["beta"], m, sigma)
    consumed = consumption_rate(n, p["kappa"], p["ell"], p["c"])
    dn = p["k_t"] * (salvage + j - consumed)
    de = p["k_e"] * (p["e_base"] * xp.maximum(n, 1e-12) ** p["gamma"] - e)
    db = p["k_b"] * (n - b)
    if math.isinf(d_nam):
        dm = 0.0 * m
    else:
        k_m = p["k_m"]
        f = first_pass_flux(flux_nmn, flux_nr, p["pi_nmn"], p["pi_nr"], fp_odds)
        dm = k_m * (consumed + d_nam + f - salvage - d_nam * m)
    return xp.stack([
        -p["k_abs"] * a_nmn,
        p["k_abs"] * a_nmn - p["k_x"] * x_nmn,
        -p["k_abs"] * a_nr,
        p["k_abs"] * a_nr - p["k_x"] * x_nr,
        dn, de, db, dm,
    ])


def baseline_state(p) -> np.ndarray:
    """Unperturbed steady state of the full system (pre-equilibration), computed, not hand-set."""
    n0 = steady_state_numpy(0.0, p["e_base"], p["beta"], p["kappa"], p["ell"], p["gamma"], p["c"])
    e0 = p["e_base"] * n0 ** p["gamma"]
    return np.array([0.0, 0.0, 0.0, 0.0, n0, e0, n0, 1.0])


def simulate_full(p, regimen: Regimen, t_end: float, t_eval, method="LSODA", rtol=1e-9, atol=1e-12):
    """Brute-force solve of the full system with every dose as a jump (scipy solve_ivp).

    Returns an array (len(FULL_STATES), len(t_eval)).
    """
    from scipy.integrate import solve_ivp

    y = baseline_state(p)
    if not math.isinf(nam_params(p)[1]) and "k_m" not in p:
        p = {**p, "k_m": reference_nam_rate(p)}
    gut = 0 if regimen.compound == "NMN" else 2
    events = [ev for ev in regimen.dose_events() if ev[0] < t_end]
    t_eval = np.asarray(t_eval, dtype=float)
    out = np.full((len(FULL_STATES), len(t_eval)), np.nan)
    out[:, t_eval <= 0.0] = y[:, None]
    bounds = [0.0] + [t for t, _ in events] + [float(t_end)]
    doses = [0.0] + [d for _, d in events]
    fun = lambda t, yy: full_rhs(t, yy, p, np)  # noqa: E731
    for k in range(len(bounds) - 1):
        t0, t1 = bounds[k], bounds[k + 1]
        y = y.copy()
        y[gut] += doses[k]
        if t1 <= t0:
            continue
        sol = solve_ivp(fun, (t0, t1), y, method=method, rtol=rtol, atol=atol, dense_output=True)
        if not sol.success:
            raise RuntimeError(f"solve_ivp failed on [{t0}, {t1}]: {sol.message}")
        mask = (t_eval > t0) & (t_eval <= t1)
        if mask.any():
            out[:, mask] = sol.sol(t_eval[mask])
        y = sol.y[:, -1]
    return out


def _intake_cells(p, compound: str, mg_per_day: float, doses_per_day: int, xp=np):
    """(NMN, NR) intake rate (g/day) in each cell of a dosing interval."""
    rate = mg_per_day / 1000.0 * absorption_profile(p["k_abs"], p["k_x"], doses_per_day, CELLS_PER_DOSE, xp)
    return (rate if compound == "NMN" else 0.0 * rate), (rate if compound == "NR" else 0.0 * rate)


def oral_flux_cells(p, compound: str, mg_per_day: float, doses_per_day: int = 1, xp=np):
    """Precursor flux in each cell of a dosing interval (numpy reference of the production path)."""
    nmn, nr = _intake_cells(p, compound, mg_per_day, doses_per_day, xp)
    return oral_precursor_flux(nmn, p["pi_nmn"], p["phi"], p["k_a"], xp) + p["pi_nr"] * nr


def first_pass_cells(p, compound: str, mg_per_day: float, doses_per_day: int = 1, xp=np):
    """First-pass NAM flux in each cell of a dosing interval (numpy reference)."""
    nmn, nr = _intake_cells(p, compound, mg_per_day, doses_per_day, xp)
    return first_pass_flux(nmn, nr, p["pi_nmn"], p["pi_nr"], nam_params(p)[2])


def within_day_rate(p, n_eq, e=1.0):
    """Filter rate lam of ``filtered_cells`` for a dosing interval: k_t times the relaxation rate
    at ``n_eq``, the NAD+ steady state for the interval's mean flux at NAMPT e (the regimen's
    own steady state rather than the current state, so the within-day profile of every step is
    known before the slow states are integrated; the filter shapes only the second-order,
    within-day part of the response)."""
    return p["k_t"] * tissue_relaxation_rate(n_eq, e, p["beta"], p["kappa"], p["ell"], p.get("c", 1.0))


def within_day_mean(p, j_cells, h, e, f_cells=None):
    """(mean NAD+, mean NAD+^gamma) over a dosing interval at NAMPT level e (numpy reference,
    one brentq solve per cell): tissue NAD+ at quasi-steady state for the low-passed flux cells
    ``j_cells`` and, with a NAM pool, the NAM level of each cell from the low-passed first-pass
    cells ``f_cells`` (``nam_level``)."""
    j_cells = np.asarray(j_cells, dtype=float)
    f_cells = np.zeros_like(j_cells) if f_cells is None else np.asarray(f_cells, dtype=float)
    sigma, d_nam, _ = nam_params(p)
    e0 = p["e_base"]
    n_eq = steady_state_numpy(float(j_cells.mean()), e0, p["beta"], p["kappa"], p["ell"], 0.0, p["c"])
    lam = within_day_rate(p, n_eq, e0)
    y, yf = filtered_cells(j_cells, lam, h), filtered_cells(f_cells, lam, h)
    m = nam_level(y + yf, d_nam)
    ns = np.array([steady_state_numpy(float(v), *nampt_at_nam(e, p["beta"], float(mi), sigma), p["kappa"],
                                      p["ell"], 0.0, p["c"]) for v, mi in zip(y, m)])
    return float(ns.mean()), float(np.mean(ns ** p["gamma"]))


def slow_rhs(t, y, p, j_cells, h, f_cells=None):
    """Time-scale-separated system (reference for the production integrator): y = (NAMPT e,
    blood pool b); tissue NAD+ enters through its within-day mean (``within_day_mean``) for the
    flux cells ``j_cells`` (first-pass NAM cells ``f_cells``) of width ``h`` days."""
    e, b = y[0], y[1]
    nbar, ng = within_day_mean(p, j_cells, h, e, f_cells)
    return np.array([p["k_e"] * (p["e_base"] * ng - e), p["k_b"] * (nbar - b)])
