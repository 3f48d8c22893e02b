"""Per-draw progress of numpyro's compiled NUTS (``FitConfig.sampler`` numpyro).

numpyro reports progress from inside its compiled sampling loop: with several chains, one per
device (``chain_method="parallel"``, ``num_chains > 1``), ``numpyro.util.fori_collect`` wraps the
loop body so that every
``progress_rate`` iterations (5 % of tuning + draws when PyMC leaves it unset) an
``io_callback`` advances a ``tqdm`` bar per chain. The bars are made by the factory
``numpyro.util.progress_bar_factory`` through the module-level name ``numpyro.util.tqdm_auto``.

:func:`count_draws` puts a small counter with the tqdm methods that factory calls
(``set_description``, ``update``, ``close``) in place of ``tqdm_auto`` for the duration of one
sampling call, so nadfit's own progress display sees the iterations done per chain while XLA
runs; nothing is printed by numpyro. The name is restored afterwards. The test
``tests/fitting/inference/test_xla_progress.py`` fails if a numpyro release stops calling the
factory this way (the counter would then stay at zero and the fit reports progress only at
the end, as before).

Limits: numpyro turns its progress off when the environment has ``CI`` or
``PYTEST_XDIST_WORKER``; with ``chain_method="vectorized"`` or a single chain numpyro's progress
is a Python loop per iteration (slower, with its own bar), so
:func:`sample_xla <nadfit.fitting.inference.fit.sample_xla>` asks for progress only with
``parallel`` and more than one chain. Divergences are known only when the chains end.
"""

from __future__ import annotations

import contextlib
import threading


class DrawCounter:
    """Iterations done per chain, updated from XLA's callback threads."""

    def __init__(self, chains: int):
        self._lock = threading.Lock()
        self._done = [0] * int(chains)
        self._started = [False] * int(chains)

    def add(self, chain: int, n: int) -> None:
        with self._lock:
            if 0 <= chain < len(self._done):
                self._done[chain] += int(n)
                self._started[chain] = True

    def snapshot(self) -> tuple[int, int]:
        """(iterations done over all chains, chains started)."""
        with self._lock:
            return sum(self._done), sum(self._started)

    def bar_class(self):
        """A class with the part of tqdm's interface that ``progress_bar_factory`` calls."""
        counter = self

        class _Bar:
            def __init__(self, iterable=None, position: int = 0, **_kwargs):
                self.chain = int(position)

            def set_description(self, *_args, **_kwargs) -> None:
                pass

            def update(self, n: int = 1) -> None:
                counter.add(self.chain, n)

            def close(self) -> None:
                pass

        return _Bar


@contextlib.contextmanager
def count_draws(chains: int):
    """Within the block, numpyro's per-chain progress bars count into the yielded
    :class:`DrawCounter` instead of printing."""
    import numpyro.util as nutil

    counter = DrawCounter(chains)
    saved = nutil.tqdm_auto
    nutil.tqdm_auto = counter.bar_class()
    try:
        yield counter
    finally:
        nutil.tqdm_auto = saved


#: JAX monitoring events whose durations add up to the time spent tracing and compiling (or
#: loading a compiled program from the persistent cache)
COMPILE_EVENTS = ("/jax/core/compile/jaxpr_trace_duration", "/jax/core/compile/jaxpr_to_mlir_module_duration",
                  "/jax/core/compile/backend_compile_duration")

_compile_total = [0.0]
_compile_lock = threading.Lock()
_listening = [False]


def _on_duration(event, duration, **_kw):
    if event in COMPILE_EVENTS:
        with _compile_lock:
            _compile_total[0] += float(duration)


def compile_seconds() -> float:
    """Seconds JAX has spent tracing and compiling in this process since the first call (the
    listener is registered once; take differences around the work to be measured)."""
    with _compile_lock:
        if not _listening[0]:
            import jax

            jax.monitoring.register_event_duration_secs_listener(_on_duration)
            _listening[0] = True
        return _compile_total[0]
