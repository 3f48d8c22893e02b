"""Production simulator (JAX): the time-scale-separated form of models.core, differentiable.

The slow states (NAMPT expression e and the whole-blood NAD+ pool b: days) are integrated with
an exponential midpoint scheme on a fixed grid of ``DT_DAYS``. Within each step the fast states
are not replaced by daily means: the dosing interval is cut into ``CELLS_PER_DOSE`` cells and

    r_i    = intake rate x absorption_profile(k_abs, k_x, doses per day)   (periodic, mean = intake)
    j_i    = precursor flux of r_i (saturable steps act on each cell, so they see dose peaks)
    y_i    = cells of j low-pass filtered at lam = k_t (C'(n) - dS/dn)  (tissue NAD+ response
             time, at the steady state of the step's regimen: ``within_day_rate``)
    m_i    = NAM level of the cell (human NAM pool: core.nam_level of its low-passed inflow;
             1 without a pool), acting on NAMPT as (e', beta') (core.nampt_at_nam)
    n_i    = NAD+ quasi-steady state at y_i and NAMPT e                   (Newton, warm start)
    nbar   = mean_i n_i,  e* = e_base mean_i n_i^gamma

(filter-then-static-nonlinearity: exact for slow and for instantaneous tissue, and for small
swings; measured against the pulsed system in tests/models and models/VERIFICATION.md). The
mean over cells is taken with the two-point Gauss rule of the cells' y values (exact for cubics
in y; two Newton solves per scenario instead of one per cell). Then

    g      = de*/de, the NAMPT-NAD+ loop gain (implicit derivative at the Newton root, <= 0.95)
    e_half = NAMPT after dt/2 of de/dt = k_e (e*(e_lin) + g (e - e_lin) - e) from e_k
             (NAMPT relaxes toward its target linearised in e: a stiff loop does not overshoot),
             linearised at e_lin = e_k where the step's inputs differ from the step before's (and
             at step 0), else at the previous step's midpoint (the same target function: one
             Newton solve per step instead of two; ``relinearisation_steps``)
    nbar_mid, e*_mid, g_mid at e_half

(NAD+ at the nodes: Newton warm-started from the previous solve, iterated until a step is below
``NEWTON_TOL`` (at least ``DAILY_MIN_STEPS``, at most ``NEWTON_MAX_STEPS``), differentiated by
the implicit-function theorem at the root: ``steady_state_newton``.)
    e_k+1  = the same linear relaxation from e_k over dt, about e_half with e*_mid and g_mid
    e_c    = that relaxation at dt/2 (the corrected midpoint); nbar_mid is taken there to first
             order, n_i exp(elasticity_i log(e_c / e_half)) (no further solve)
    b_k+1  = nbar_mid + (b_k - nbar_mid) exp(-k_b dt)
"""

from __future__ import annotations

from functools import partial

import jax

jax.config.update("jax_enable_x64", True)

import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402

from nadfit.models.core import (  # noqa: E402
    CELLS_PER_DOSE,
    absorption_profile,
    consumption_rate,
    filtered_cells,
    first_pass_flux,
    nam_level,
    nam_params,
    nampt_at_nam,
    nampt_rate,
    oral_precursor_flux,
    soft_min,
    two_point_rule,
    within_day_rate,
)

#: Newton steps of an unrolled (explicitly differentiated) solve
NEWTON_STEPS = 3
#: minimum Newton steps of the daily implicitly differentiated solves. They stop only once a step
#: is below NEWTON_TOL, so a floor adds nothing to accuracy; it costs steps after the state has
#: settled (the warm start is then already the root). A floor of 3 / 2 steps (until session 12)
#: gave the same blood course to 1e-15 in log b and gradients to 4e-12 (relative) at 30 prior
#: draws, at 1.4x the cost of the blood course (models/VERIFICATION.md, "Session 12").
DAILY_MIN_STEPS = 1


def _balance(u, j, e, beta, kappa, ell, c):
    n = jnp.exp(u)
    return jnp.log(nampt_rate(n, e, beta) + j) - jnp.log(consumption_rate(n, kappa, ell, c))


def _newton_step(u, j, e, beta, kappa, ell, c):
    """One Newton step on the balance in u = log n, clipped to +-3."""
    g, dg = jax.jvp(lambda uu: _balance(uu, j, e, beta, kappa, ell, c), (u,), (jnp.ones_like(u),))
    return jnp.clip(g / dg, -3.0, 3.0)


def _newton(u0, j, e, beta, kappa, ell, c, steps):
    u = u0
    for _ in range(steps):
        u = u - _newton_step(u, j, e, beta, kappa, ell, c)
    return u


#: convergence of the implicitly differentiated solves: |Newton step| in log n
NEWTON_TOL = 1e-10
#: at most this many Newton steps per implicitly differentiated solve (a far start: the first
#: day of a large dose, or extreme parameters such as ell near 0, where n moves by e-folds)
NEWTON_MAX_STEPS = 40


def _newton_converged(u0, j, e, beta, kappa, ell, c, steps):
    """At least ``steps`` Newton steps, then more until every step is below ``NEWTON_TOL`` (at
    most ``NEWTON_MAX_STEPS``): the implicit derivative is the derivative of the returned value
    only at a converged root."""
    def cond(state):
        k, _, delta = state
        return (k < NEWTON_MAX_STEPS) & ((k < steps) | (delta > NEWTON_TOL))

    def body(state):
        k, u, _ = state
        step = _newton_step(u, j, e, beta, kappa, ell, c)
        return k + 1, u - step, jnp.max(jnp.abs(step))

    _, u, _ = jax.lax.while_loop(cond, body, (0, u0, jnp.asarray(jnp.inf, dtype=u0.dtype)))
    return u


@partial(jax.custom_jvp, nondiff_argnums=(7,))
def _newton_implicit(u0, j, e, beta, kappa, ell, c, steps):
    return _newton_converged(u0, j, e, beta, kappa, ell, c, steps)


@_newton_implicit.defjvp
def _newton_implicit_jvp(steps, primals, tangents):
    """Implicit-function derivative at the returned root: du = -(dF/dtheta . dtheta) / (dF/du);
    the warm start u0 carries no derivative (a converged root does not depend on it)."""
    u0, *args = primals
    _, *dargs = tangents
    u = _newton_implicit(u0, *args, steps)
    _, f_args = jax.jvp(lambda *a: _balance(u, *a), tuple(args), tuple(dargs))
    f_u = jax.jvp(lambda uu: _balance(uu, *args), (u,), (jnp.ones_like(u),))[1]
    return u, -f_args / f_u


def steady_state_newton(u0, j, e, beta, kappa, ell, c=1.0, steps=None, implicit=False):
    """log NAD+ steady state for a fixed NAMPT level e (gamma enters through e), Newton in log n.

    The balance is strictly decreasing and smooth in u = log n; steps are clipped to +-3 for
    robustness from a poor start. Differentiated by unrolling ``steps`` Newton iterations
    (converged iterations reproduce the implicit-function derivative), or with ``implicit=True``
    by the implicit-function theorem at the returned root, after at least ``steps`` iterations
    and on to convergence (a cheaper reverse pass; the production path's daily solves).
    """
    steps = NEWTON_STEPS if steps is None else steps
    if implicit:  # custom_jvp: every argument an array of the root's shape
        args = jnp.broadcast_arrays(*(jnp.asarray(a, dtype=float) for a in (u0, j, e, beta, kappa, ell, c)))
        return _newton_implicit(*args, steps)
    return _newton(u0, j, e, beta, kappa, ell, c, steps)


#: upper cap of the NAMPT loop gain de*/de in ``blood_course``'s linearised step. Below 1 wherever
#: the NAMPT-NAD+ loop is monostable (core.monostability_bound); the cap keeps the step defined
#: where the smooth bound is approached
MAX_LOOP_GAIN = 0.95
#: the cap is smooth: gain -> MAX_LOOP_GAIN - softplus(k (MAX_LOOP_GAIN - gain)) / k with this k
#: (``capped_gain``). A hard minimum put a kink in the log density's gradient wherever the gain
#: reached the cap (2 of 40 posterior draws of `direct` in session 23); below the cap by 0.15
#: the smooth cap moves the gain by < 1e-4
LOOP_GAIN_SHARPNESS = 40.0


def capped_gain(gain):
    """The loop gain, smoothly capped below :data:`MAX_LOOP_GAIN` (a soft minimum)."""
    return soft_min(gain, MAX_LOOP_GAIN, 1.0 / LOOP_GAIN_SHARPNESS, jnp)


def _log_n_elasticity(u, j, e, beta, kappa, ell, c=1.0):
    """d log n / d log e at the quasi-steady state u = log n (implicit function theorem:
    -dF/d log e / dF/du, with dF/d log e = S / (S + j) for the balance F)."""
    n = jnp.exp(u)
    s = nampt_rate(n, e, beta)
    f_u = jax.jvp(lambda uu: _balance(uu, j, e, beta, kappa, ell, c), (u,), (jnp.ones_like(u),))[1]
    return -(s / (s + j)) / f_u


def flux_cells(p, nmn_rate, nr_rate, doses_per_day, cells: int = CELLS_PER_DOSE):
    """Intact precursor flux and first-pass NAM flux (``core.first_pass_flux``) in every cell of
    the dosing interval: two (..., cells) arrays for rates of shape (...) (e.g. steps x
    scenarios), and the cell width (days) as a numpy array of the rates' shape.

    ``doses_per_day`` is a numpy integer array like the rates (1 where nothing is taken;
    0 for a constant exposure, e.g. a culture medium, whose cells are all equal)."""
    doses = np.maximum(np.asarray(doses_per_day, dtype=int), 0)
    values = sorted(set(doses.ravel().tolist()))
    shapes = jnp.stack([absorption_profile(p["k_abs"], p["k_x"], k, cells, jnp) if k > 0
                        else jnp.ones(cells) for k in values])
    onehot = (doses[..., None] == np.asarray(values)).astype(float)
    shape = jnp.einsum("...v,vc->...c", onehot, shapes)  # (..., cells); no gather
    nmn, nr = nmn_rate[..., None] * shape, nr_rate[..., None] * shape
    j = oral_precursor_flux(nmn, p["pi_nmn"], p["phi"], p["k_a"], jnp) + p["pi_nr"] * nr
    f = first_pass_flux(nmn, nr, p["pi_nmn"], p["pi_nr"], nam_params(p)[2])
    return j, f, 1.0 / (np.maximum(doses, 1) * cells)


def nam_daily_mean(p, nmn_rate, nr_rate, doses_per_day):
    """Daily-mean NAM level (relative to baseline) under constant regimens (rates of shape (...)):
    exact for first-order clearance, since a periodic NAM course's mean balance is the mean inflow
    (``core.nam_level`` of the mean extra flux; 1 without a NAM pool)."""
    j, f, _ = flux_cells(p, nmn_rate, nr_rate, doses_per_day)
    return nam_level(jnp.mean(j + f, axis=-1), nam_params(p)[1])


def input_classes(*arrays) -> np.ndarray:
    """Integer label per (step, scenario) of numpy input arrays of one shape: equal labels where
    every array has equal values (the steps whose within-day profile is the same)."""
    shape = np.shape(arrays[0])
    cols = [np.broadcast_to(np.asarray(a, dtype=float), shape).ravel() for a in arrays]
    _, inverse = np.unique(np.stack(cols, axis=-1), axis=0, return_inverse=True)
    return inverse.reshape(shape)


def _concrete(x):
    """numpy value of ``x``, or None when it is traced (its value is only known at run time)."""
    try:
        return np.asarray(x)
    except jax.errors.TracerArrayConversionError:
        return None


#: sharpness of ``soft_clamp`` in units of the clamp's range: inside the range by a tenth of
#: it, a value moves by at most log(1 + e^-5) / 50 = 1.34e-4 of the range
CLAMP_SHARPNESS = 50.0


def soft_clamp(x, lo, hi):
    """x kept inside [lo, hi] by two soft (softplus) bounds scaled to the range: smooth, and
    equal to x to 1.34e-4 of the range wherever x is inside it by a tenth of the range. An empty
    range (every cell equal, e.g. no intake) returns lo."""
    span = hi - lo
    wide = span > 1e-30
    span = jnp.where(wide, span, 1.0)  # no 0/0 in the unused branch's derivative
    s = 1.0 / CLAMP_SHARPNESS
    t = -soft_min(-(x - lo) / span, 0.0, s, jnp)  # soft max(t, 0)
    t = soft_min(t, 1.0, s, jnp)
    return jnp.where(wide, lo + span * t, lo)


def within_day_nodes(p, nmn_rate, nr_rate, doses_per_day, e_base=1.0):
    """The within-day profile of a step, for 1-d arrays of intake rates and doses per day: the
    two-point rule (nodes, weights: last axis 2) of the filtered flux cells, and at each node
    NAMPT's capacity factor and feedback strength at the node's NAM level (``core.nampt_at_nam``:
    e' / e and beta'). The NAM level of a node is the cells' NAM level regressed on their flux
    (least squares over the cells): exact when first pass and intact flux are proportional (NR,
    the via-NR route, or no NAM pool), a linear approximation for the saturable direct route.
    The regressed first-pass inflow is kept inside the cells' own range (``soft_clamp``): where
    the direct route saturates (small k_a) the intact flux hardly varies while the first pass
    follows the dose, the slope is steep, and the line reached a negative NAM level at the lower
    node (a non-finite log density: every divergent transition of `direct` with the pool that
    was replayed in session 23 ended there). The clamp is soft, so even the proportional case is
    exact only to its softness where a node lies within a tenth of the range of an edge (at a
    twentieth: 0.16 % of the cells' inflow range; NAM itself moves by that over d)."""
    j_all, f_all, h_all = flux_cells(p, nmn_rate, nr_rate, doses_per_day)
    j_mean = jnp.mean(j_all, axis=-1)
    u_eq = steady_state_newton(jnp.log1p(j_mean), j_mean, e_base, p["beta"], p["kappa"], p["ell"], steps=2)
    lam = within_day_rate(p, jnp.exp(u_eq), e_base)
    h = jnp.asarray(h_all)
    y, yf = filtered_cells(j_all, lam, h, jnp), filtered_cells(f_all, lam, h, jnp)
    nodes, weights = two_point_rule(y, jnp)
    dy = y - jnp.mean(y, axis=-1, keepdims=True)
    var = jnp.mean(dy * dy, axis=-1, keepdims=True)
    cov = jnp.mean(dy * yf, axis=-1, keepdims=True)
    slope = jnp.where(var > 1e-30, cov / jnp.where(var > 1e-30, var, 1.0), 0.0)
    f_nodes = jnp.mean(yf, axis=-1, keepdims=True) + slope * (nodes - jnp.mean(y, axis=-1, keepdims=True))
    f_nodes = soft_clamp(f_nodes, jnp.min(yf, axis=-1, keepdims=True), jnp.max(yf, axis=-1, keepdims=True))
    sigma, d_nam, _ = nam_params(p)
    scale, beta = nampt_at_nam(1.0, p["beta"], nam_level(nodes + f_nodes, d_nam), sigma)
    return nodes, weights, scale, beta


def relinearisation_steps(classes) -> np.ndarray:
    """The steps of ``blood_course`` at which NAMPT's start-of-step linearisation is computed
    anew: step 0 and every step at which some scenario's inputs (class) differ from the step
    before. Elsewhere the previous step's midpoint linearisation is used (same inputs)."""
    c = np.asarray(classes)
    out = np.ones(c.shape[0], dtype=bool)
    out[1:] = np.any(c[1:] != c[:-1], axis=tuple(range(1, c.ndim)))
    return out


def blood_course(p, nmn_rate, nr_rate, dt, e_base=1.0, doses_per_day=None, classes=None, relinearise=None):
    """Integrate (e, b) over the grid for several scenarios at once.

    nmn_rate, nr_rate: arrays (steps, scenarios) of oral intake in g/day held over each step;
    doses_per_day: numpy ints of the same shape (default: once daily).
    p: dict with beta, kappa, ell, gamma, k_e, k_b, k_t, k_abs, k_x, pi_nmn, pi_nr, phi, k_a.
    classes: optional numpy ints (steps, scenarios), equal where the inputs (both rates and the
    doses) are equal (``input_classes``); computed here when the rates are not traced. The
    within-day profile is computed once per class, not per step (it does not depend on the
    state), so its cost scales with the number of distinct regimens, not with steps x scenarios.
    dt: the step length (days), one number or a numpy array of one length per step (a grid of
    unequal steps, ``step_lengths``).
    relinearise: optional numpy bools (steps,), True where NAMPT's start-of-step linearisation is
    computed anew (must be True at step 0); default ``relinearisation_steps(classes)``. All True
    is the scheme before session 24 (two Newton solves per step).
    Returns b of shape (steps + 1, scenarios) (b[0] = 1, the baseline) and e likewise.
    """
    shape = np.shape(nmn_rate)
    if doses_per_day is None:
        doses_per_day = np.ones(shape, dtype=int)
    doses = np.broadcast_to(np.asarray(doses_per_day, dtype=int), shape)
    if classes is None:
        nmn_c, nr_c = _concrete(nmn_rate), _concrete(nr_rate)
        classes = (np.arange(np.prod(shape)).reshape(shape) if nmn_c is None or nr_c is None
                   else input_classes(nmn_c, nr_c, doses))
    if relinearise is None:
        relinearise = relinearisation_steps(classes)
    relinearise = np.asarray(relinearise, dtype=bool)
    if relinearise.shape != shape[:1] or not relinearise[0]:
        raise ValueError("relinearise: one bool per step, True at step 0")
    _, first, inverse = np.unique(np.asarray(classes).ravel(), return_index=True, return_inverse=True)
    per_class = within_day_nodes(p, jnp.ravel(nmn_rate)[first], jnp.ravel(nr_rate)[first],
                                 doses.ravel()[first], e_base)
    inverse = inverse.reshape(shape)
    nodes, weights, scales, betas = (x[inverse] for x in per_class)
    n_scen = shape[1]
    dts = jnp.asarray(np.broadcast_to(np.asarray(dt, dtype=float), shape[:1]))
    args = (p["kappa"], p["ell"])

    def target(u, e, y, w, scale, beta):
        """NAMPT's target e* = e_base mean n^gamma at NAMPT level e, and its slope de*/de (the
        loop gain: gamma times the within-day mean elasticity d log n / d log e, weighted by
        n^gamma), from the quasi-steady states u at e."""
        u = steady_state_newton(u, y, e[:, None] * scale, beta, *args, steps=DAILY_MIN_STEPS, implicit=True)
        ng = e_base * w * jnp.exp(p["gamma"] * u)
        el = _log_n_elasticity(u, y, e[:, None] * scale, beta, *args)
        slope = p["gamma"] * jnp.sum(ng * el, axis=-1) / e
        return u, jnp.sum(ng, axis=-1), capped_gain(slope), el

    def relax(e0, e_lin, e_star, slope, t):
        """e at time t of de/dt = k_e (e* + slope (e - e_lin) - e) from e0 (exact)."""
        fixed = e_lin + (e_star - e_lin) / (1.0 - slope)
        return fixed + (e0 - fixed) * jnp.exp(-p["k_e"] * (1.0 - slope) * t)

    def step(carry, inputs):
        u, e, b, lin = carry
        y, w, scale, beta, dt_k, fresh = inputs

        def linearise_here(_):  # NAMPT's target linearised at e_k (a new regimen, or step 0)
            u_k, e_star, slope, _ = target(u, e, y, w, scale, beta)
            return u_k, (e, e_star, slope)

        def keep_previous(_):  # the previous step's midpoint linearisation, same inputs
            return u, lin

        u, (e_lin, e_star, slope) = jax.lax.cond(fresh, linearise_here, keep_previous, None)
        e_half = relax(e, e_lin, e_star, slope, dt_k / 2.0)
        u_mid, e_star_mid, slope_mid, el_mid = target(u, e_half, y, w, scale, beta)
        e_new = relax(e, e_half, e_star_mid, slope_mid, dt_k)
        # NAD+ at the midpoint of the corrected NAMPT course (first order in the elasticity; the
        # predicted e_half can be off by O(dt) where NAMPT relaxes within the step)
        e_hc = relax(e, e_half, e_star_mid, slope_mid, dt_k / 2.0)
        n_mid = jnp.sum(w * jnp.exp(u_mid + el_mid * jnp.log(e_hc / e_half)[:, None]), axis=-1)
        b_new = n_mid + (b - n_mid) * jnp.exp(-p["k_b"] * dt_k)
        return (u_mid, e_new, b_new, (e_half, e_star_mid, slope_mid)), (e_new, b_new)

    ones = jnp.ones(n_scen)
    init = (jnp.zeros((n_scen, 2)), ones * e_base, ones, (ones * e_base, ones * e_base, ones * 0.0))
    _, (es, bs) = jax.lax.scan(step, init, (nodes, weights, scales, betas, dts, jnp.asarray(relinearise)))
    b = jnp.concatenate([jnp.ones((1, n_scen)), bs], axis=0)
    e = jnp.concatenate([jnp.full((1, n_scen), e_base), es], axis=0)
    return b, e


def uniform_nodes(dt, t_end) -> np.ndarray:
    """Node times 0, dt, 2 dt, ..., t_end (days) of a grid of equal steps."""
    steps = int(round(t_end / dt))
    return np.arange(steps + 1) * float(dt)


def step_lengths(nodes) -> np.ndarray:
    """Step lengths (days) of a grid given by its node times: ``blood_course``'s ``dt``."""
    return np.diff(np.asarray(nodes, dtype=float))


def _step_mids(nodes):
    nodes = np.asarray(nodes, dtype=float)
    return (nodes[:-1] + nodes[1:]) / 2.0


def rate_grid(regimens, dt, t_end, nodes=None):
    """(steps, scenarios) arrays of NMN and NR intake (g/day) for a list of Regimens, on the grid
    of equal steps ``dt`` up to ``t_end`` or, if given, on the grid with node times ``nodes``
    (each step must lie inside one segment of every regimen: ``Regimen.change_days``)."""
    mids = _step_mids(uniform_nodes(dt, t_end) if nodes is None else nodes)
    nmn = np.zeros((len(mids), len(regimens)))
    nr = np.zeros((len(mids), len(regimens)))
    for s, reg in enumerate(regimens):
        rates = np.array([reg.mg_per_day_at(t) for t in mids]) / 1000.0
        if reg.compound == "NMN":
            nmn[:, s] = rates
        elif reg.compound == "NR":
            nr[:, s] = rates
    return nmn, nr


def doses_grid(regimens, dt, t_end, nodes=None):
    """(steps, scenarios) integer array of doses per day (1 where nothing is taken); grid as
    in ``rate_grid``."""
    mids = _step_mids(uniform_nodes(dt, t_end) if nodes is None else nodes)
    out = np.ones((len(mids), len(regimens)), dtype=int)
    for s, reg in enumerate(regimens):
        out[:, s] = [reg.doses_per_day_at(t) for t in mids]
    return out
