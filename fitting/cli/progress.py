"""How the commands talk: verbosity, and the rendering of the library's fit-progress events.

The library (``inference.fit.run_fit``, ``comparison.pipeline.run_all``) only calls callbacks;
this module turns them into a Rich progress bar on a terminal (chains, draws done / total,
divergences so far, ETA) or one plain line per phase when stderr is a file or a pipe.
"""

from __future__ import annotations

from rich.console import Console

from nadfit.fitting.cli.options import QUIET_HELP, VERBOSE_HELP  # noqa: F401 (the help texts live there)

_PHASE_LINES = {"compile": "compiling the model", "tune": "sampling (tuning)", "draw": "sampling (draws)",
                "sample": "compiling the sampler (XLA) and starting the chains",
                "post": "predictive draws and diagnostics"}


def _retry_line(event: dict) -> str:
    n = event["divergences"]
    return (f"{n} divergent transition{'s' if n != 1 else ''} at target_accept {event['target_accept']}; "
            f"sampling again at {event['retry_target_accept']}")


def _extend_line(event: dict) -> str:
    return (f"after {event['draws_kept']} draws per chain: {event['reason']}; "
            f"{event['more']} more draws per chain")


def _redraw_line(event: dict) -> str:
    n = event["divergences"]
    return (f"{n} divergent transition{'s' if n != 1 else ''} after the warm-up; those draws are "
            f"discarded and {event['draws']} drawn again per chain with the step size x {event['factor']}")


def check_verbosity(quiet: bool, verbose: bool) -> None:
    if quiet and verbose:
        from nadfit.datasets.errors import UserError

        raise UserError("--quiet and --verbose cannot be used together", field="verbosity")
    if verbose:
        from nadfit.fitting.cli import show_all_warnings

        show_all_warnings()


def _counts(event: dict) -> str:
    """``done/total iterations`` and, when known, the divergences so far (numpyro counts them
    only when its chains end)."""
    div = event.get("divergences")
    return f"{event['done']}/{event['total']} iterations" + (f", {div} divergences" if div is not None else "")


def _fmt_s(seconds) -> str:
    if seconds is None:
        return "?"
    seconds = int(round(seconds))
    return f"{seconds // 60}:{seconds % 60:02d}"


class FitProgress:
    """A fit-progress renderer: ``FitProgress(console).callback(label)`` is an ``on_progress``."""

    def __init__(self, console: Console, quiet: bool = False, verbose: bool = False):
        self.console, self.quiet, self.verbose = console, quiet, verbose
        self.live = console.is_terminal and not quiet
        self._open: list = []

    def close(self) -> None:
        """Stop any bar still drawn (a fit that raised): call in ``finally``."""
        for p in self._open:
            p.stop()
        self._open.clear()

    def log(self, *args, **kwargs) -> None:
        """A ``log`` callback for the pipeline: nothing when quiet."""
        if not self.quiet:
            self.console.print(*args, **kwargs)

    def callback(self, label: str):
        if self.quiet:
            return lambda event: None
        return self._live(label) if self.live else self._lines(label)

    def _lines(self, label: str):
        """One line per phase, and one per quarter of the iterations (with the ETA)."""
        state = {"phase": None, "event": None, "quarter": 0}

        def on_progress(event: dict) -> None:
            phase = event.get("phase")
            if phase != state["phase"]:
                last = state["event"]
                if last is not None and last.get("total"):
                    self.console.print(f"  {label}: {_counts(last)}, {_fmt_s(last['elapsed_s'])} elapsed")
                    state["event"] = None
                if phase == "retry":  # after the first attempt's totals; the second counts afresh
                    self.console.print(f"  {label}: {_retry_line(event)}")
                    state["quarter"] = 0
                if phase == "extend":  # the same chains continue: the total grows
                    self.console.print(f"  {label}: {_extend_line(event)}")
                    state["quarter"] = 0
                if phase == "redraw":
                    self.console.print(f"  {label}: {_redraw_line(event)}")
                    state["quarter"] = 0
                if phase in _PHASE_LINES:
                    chains = f", {event['chains']} chains" if event.get("chains") else ""
                    self.console.print(f"  {label}: {_PHASE_LINES[phase]}{chains}")
                state["phase"] = phase
            if event.get("total"):
                state["event"] = event
                quarter = 4 * event["done"] // event["total"]
                if 0 < quarter < 4 and quarter > state["quarter"]:
                    state["quarter"] = quarter
                    self.console.print(f"  {label}: {_counts(event)}, ETA {_fmt_s(event.get('eta_s'))}")

        return on_progress

    def _live(self, label: str):
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        progress = Progress(TextColumn("  {task.description}"), BarColumn(), MofNCompleteColumn(),
                            TextColumn("{task.fields[extra]}"), TimeElapsedColumn(), console=self.console,
                            transient=False)
        state = {"task": None}

        def on_progress(event: dict) -> None:
            phase = event.get("phase")
            if phase == "compile":
                if progress not in self._open:  # a retried fit compiles again: same display
                    progress.start()
                    self._open.append(progress)
                state["task"] = progress.add_task(f"{label}: compiling", total=None, extra="")
                return
            task = state["task"]
            if task is None:
                return
            if phase in ("tune", "draw"):
                eta = f"ETA {_fmt_s(event['eta_s'])}" if event.get("eta_s") is not None else "ETA ?"
                div = (f"{event['divergences']} divergences, " if event.get("divergences") is not None
                       else "")
                progress.update(task, description=f"{label}: {'tuning' if phase == 'tune' else 'sampling'}",
                                completed=event["done"], total=event["total"],
                                extra=f"{event['chains_started']}/{event['chains']} chains, {div}{eta}")
            elif phase == "sample":
                progress.update(task, description=f"{label}: compiling the sampler (XLA)",
                                extra=f"{event['chains']} chains")
            elif phase == "post":
                progress.update(task, description=f"{label}: predictive draws and diagnostics")
            elif phase == "retry":
                progress.update(task, description=f"{label}: {_retry_line(event)}")
            elif phase == "extend":
                progress.update(task, description=f"{label}: {_extend_line(event)}")
            elif phase == "redraw":
                progress.update(task, description=f"{label}: {_redraw_line(event)}")
            elif phase == "done":
                progress.update(task, description=f"{label}: done")
                progress.stop()
                if progress in self._open:
                    self._open.remove(progress)
                state["task"] = None

        return on_progress


class StepProgress:
    """Progress of a command made of a few long steps (``nadfit report``), on stderr: on a terminal
    a spinner with the time spent on each step; otherwise one line per step with the time so far;
    a closing line; nothing when quiet.

    ``StepProgress(console, "report").log`` is the library's ``log`` callback (one message per step);
    call ``done(message)`` at the end and ``close()`` in ``finally``."""

    def __init__(self, console: Console, label: str, quiet: bool = False):
        import time

        self.console, self.label, self.quiet = console, label, quiet
        self.live = console.is_terminal and not quiet
        self._t0 = time.monotonic()
        self._progress = None
        self._task = None

    def elapsed(self) -> float:
        import time

        return time.monotonic() - self._t0

    def _finish_task(self) -> None:
        if self._task is not None:
            self._progress.update(self._task, total=1, completed=1)
            self._task = None

    def log(self, message: str) -> None:
        if self.quiet:
            return
        if not self.live:
            self.console.print(f"  {self.label}: {message} ({_fmt_s(self.elapsed())} elapsed)", highlight=False)
            return
        if self._progress is None:
            from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

            self._progress = Progress(SpinnerColumn(finished_text="✓"), TextColumn("{task.description}"),
                                      TimeElapsedColumn(), console=self.console, transient=False)
            self._progress.start()
        self._finish_task()
        self._task = self._progress.add_task(f"{self.label}: {message}", total=None)

    def close(self) -> None:
        """Stop the spinner (also after an error)."""
        if self._progress is not None:
            self._finish_task()
            self._progress.stop()
            self._progress = None

    def done(self, message: str) -> None:
        self.close()
        if not self.quiet:
            self.console.print(f"  {self.label}: {message} in {_fmt_s(self.elapsed())}", highlight=False)


def render_with_steps(label: str, what: str, render, quiet: bool = False) -> None:
    """Run ``render(log) -> path`` of a report command under a :class:`StepProgress` on stderr,
    then print ``<what> written: <path> (<size> MB)`` on stdout."""
    steps = StepProgress(Console(stderr=True), label, quiet=quiet)
    try:
        path = render(steps.log)
    finally:
        steps.close()
    steps.done("written")
    print(f"{what} written: {path} ({path.stat().st_size / 1e6:.2f} MB)")

