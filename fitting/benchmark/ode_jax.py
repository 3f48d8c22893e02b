"""Differentiable ODE solves with diffrax, usable from JAX code and from PyMC models.

The right-hand side is written once against an array namespace ``xp`` with signature
``rhs(t, y, theta, xp) -> dy/dt`` (``xp`` is ``jax.numpy`` here, ``numpy`` for scipy checks and
``pytensor.tensor`` for ``pm.ode.DifferentialEquation``), and returns ``xp.stack([...])``.

Two layers:

* :func:`make_jax_solver` -> a pure, jit-able JAX function ``solve(y0, theta) -> (ys, ok)``
  (``ys`` has shape ``(len(ts), n_states)``; ``ok`` is 1.0 when diffrax reported success and 0.0
  otherwise). Solver failure never raises (diffrax ``throw=False``): failed solves return a finite
  placeholder (``fill``) so gradients stay finite, and ``ok`` tells the caller to reject the point.
  Use it directly inside numpyro models.
* :func:`ode_solve_pt` -> the same solve as PyTensor variables via ``pytensor.wrap_jax`` (VJP from
  JAX), for PyMC models sampled with nutpie's JAX backend (or numpyro). Add
  :func:`failure_logp` (0 or -inf) to the model with ``pm.Potential`` so failed solves are rejected.

JAX 64-bit mode is enabled on import: ODE solves at rtol ~1e-8 need float64. ``EQX_ON_ERROR``
defaults to ``nan`` here (unless set by the user): with an implicit solver the Newton iteration's
linear solve can meet a singular Jacobian at extreme parameter values, and Equinox would then
raise a runtime error out of the compiled sampler; as NaN the solve is reported as failed
(``ok`` = 0) and the sampler rejects the point. It must be set before Equinox is imported.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from typing import Any

os.environ.setdefault("EQX_ON_ERROR", "nan")

import jax  # noqa: E402

jax.config.update("jax_enable_x64", True)

import diffrax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402

RHS = Callable[[Any, Any, Any, Any], Any]

_SOLVERS = {
    "tsit5": diffrax.Tsit5,
    "dopri5": diffrax.Dopri5,
    "dopri8": diffrax.Dopri8,
    "kvaerno3": diffrax.Kvaerno3,
    "kvaerno5": diffrax.Kvaerno5,
}

__all__ = ["make_jax_solver", "ode_solve_pt", "failure_logp", "solve_numpy"]


def make_jax_solver(
    rhs: RHS,
    ts: Sequence[float] | np.ndarray,
    *,
    t0: float = 0.0,
    solver: str = "tsit5",
    rtol: float = 1e-8,
    atol: float = 1e-10,
    dt0: float | None = None,
    max_steps: int = 100_000,
    fill: float = 1.0,
) -> Callable[[Any, Any], tuple[jax.Array, jax.Array]]:
    """Return jitted ``solve(y0, theta) -> (ys[len(ts), n_states], ok)`` for ``rhs``.

    ``solver`` is one of tsit5, dopri5, dopri8 (explicit) or kvaerno3, kvaerno5 (implicit,
    stiff-capable); an adaptive PID step-size controller with ``rtol``/``atol`` is used. ``ts``
    must be sorted and >= ``t0``. Reverse-mode gradients go through diffrax's
    ``RecursiveCheckpointAdjoint`` (discretise-then-optimise).
    """
    key = solver.lower()
    if key not in _SOLVERS:
        raise ValueError(f"unknown solver {solver!r}; choose one of {sorted(_SOLVERS)}")
    ts_np = np.asarray(ts, dtype=np.float64)
    if ts_np.ndim != 1 or ts_np.size == 0:
        raise ValueError("ts must be a non-empty 1-D sequence of times")
    if np.any(np.diff(ts_np) < 0) or ts_np[0] < t0:
        raise ValueError("ts must be sorted and not before t0")
    ts_j = jnp.asarray(ts_np)
    t1 = float(ts_np[-1])
    term = diffrax.ODETerm(lambda t, y, args: rhs(t, y, args, jnp))
    stepper = _SOLVERS[key]()
    controller = diffrax.PIDController(rtol=rtol, atol=atol)
    saveat = diffrax.SaveAt(ts=ts_j)
    first_dt = dt0 if dt0 is not None else (t1 - t0) * 1e-3 if t1 > t0 else None

    @jax.jit
    def solve(y0, theta):
        y0 = jnp.asarray(y0, dtype=jnp.float64)
        theta = jax.tree_util.tree_map(lambda a: jnp.asarray(a, dtype=jnp.float64), theta)
        sol = diffrax.diffeqsolve(
            term,
            stepper,
            t0=t0,
            t1=t1,
            dt0=first_dt,
            y0=y0,
            args=theta,
            saveat=saveat,
            stepsize_controller=controller,
            max_steps=max_steps,
            throw=False,
        )
        ys = sol.ys
        ok = (sol.result == diffrax.RESULTS.successful) & jnp.all(jnp.isfinite(ys))
        ys = jnp.where(ok, ys, jnp.full_like(ys, fill))
        return ys, jax.lax.stop_gradient(ok.astype(jnp.float64))

    return solve


def ode_solve_pt(
    rhs: RHS,
    ts: Sequence[float] | np.ndarray,
    y0,
    theta,
    **solver_kwargs,
):
    """Solve ``rhs`` at ``ts`` inside a PyTensor graph; returns ``(ys, ok)`` PyTensor variables.

    ``y0`` and ``theta`` are PyTensor vectors (or anything ``pt.as_tensor`` accepts) with
    fully known shapes (use ``pt.specify_shape`` / ``pt.stack`` of scalars). Gradients come from
    JAX's VJP through ``pytensor.wrap_jax``; compile the model with the JAX backend (nutpie
    ``backend="jax", gradient_backend="jax"`` or ``nuts_sampler="numpyro"``).
    """
    import pytensor
    import pytensor.tensor as pt

    solve = make_jax_solver(rhs, ts, **solver_kwargs)
    wrapped = pytensor.wrap_jax(solve)
    y0_t = pt.as_tensor(y0, dtype="float64")
    theta_t = pt.as_tensor(theta, dtype="float64")
    ys, ok = wrapped(y0_t, theta_t)
    return ys, ok


def failure_logp(ok):
    """0 where the solve succeeded, -inf where it failed (for ``pm.Potential``)."""
    import pytensor.tensor as pt

    return pt.switch(pt.gt(ok, 0.5), np.float64(0.0), np.float64(-np.inf))


def solve_numpy(
    rhs: RHS,
    ts: Sequence[float] | np.ndarray,
    y0,
    theta,
    *,
    t0: float = 0.0,
    method: str = "LSODA",
    rtol: float = 1e-10,
    atol: float = 1e-12,
) -> np.ndarray:
    """Reference solve with scipy ``solve_ivp`` (numpy RHS); returns ``ys[len(ts), n_states]``."""
    from scipy.integrate import solve_ivp

    ts_np = np.asarray(ts, dtype=np.float64)
    theta_np = np.asarray(theta, dtype=np.float64)
    sol = solve_ivp(
        lambda t, y: np.asarray(rhs(t, y, theta_np, np), dtype=np.float64),
        (t0, float(ts_np[-1])),
        np.asarray(y0, dtype=np.float64),
        method=method,
        t_eval=ts_np,
        rtol=rtol,
        atol=atol,
    )
    if not sol.success:
        raise RuntimeError(f"solve_ivp failed: {sol.message}")
    return sol.y.T
