"""The ``nadfit`` command line (Typer).

Every command is registered explicitly below; each command module only parses options, calls the
library and prints. User mistakes become one line on stderr and exit code 2.
"""

from __future__ import annotations

import os
import sys

import typer

from nadfit.datasets.errors import UserError

app = typer.Typer(
    name="nadfit",
    help="Bayesian fitting of the NAD+ salvage pathway to published NMN/NR evidence.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


_registered = False


def _register() -> None:
    """Register every command once (``main`` may run many times in one process, as in the tests;
    registering again would add every command again and slow each call down)."""
    global _registered
    if _registered:
        return
    from nadfit.fitting.cli import calibration, compare, datasets, fit, model, report, sweep

    app.add_typer(datasets.app, name="datasets")
    for module in (model, fit, compare, report, calibration, sweep):
        module.register(app)
    # ``nadfit --help`` lists the commands in a newcomer's order (main job first); others at the end
    rank = {name: i for i, name in enumerate(COMMAND_ORDER)}
    app.registered_commands.sort(key=lambda c: rank.get(c.name, len(rank)))
    _registered = True


#: order of the commands in ``nadfit --help`` (the ``datasets`` group is listed after them)
COMMAND_ORDER = ("run-all", "fit", "compare", "report", "report-compare", "predict", "plan-trial", "simulate",
                 "sbc", "recovery", "compare-calibration", "sweep", "bench")


def _is_click_error(exc: BaseException) -> bool:
    classes = []
    try:
        import click

        classes.append(click.exceptions.ClickException)
    except ImportError:  # pragma: no cover
        pass
    try:
        from typer._click import exceptions as vendored  # typer >= 0.2x ships its own click

        classes.append(vendored.ClickException)
    except ImportError:
        pass
    return bool(classes) and isinstance(exc, tuple(classes))


def _one_line(text: str) -> str:
    return " ".join(str(text).split())


def _help_hint(exc) -> str:
    ctx = getattr(exc, "ctx", None)
    return f" (try '{ctx.command_path} --help')" if ctx is not None else ""


def enable_compile_cache() -> str | None:
    """Keep compiled XLA programs between runs (JAX's persistent compilation cache).

    Each fit compiles its log density, gradient and deterministics (6-12 s per hypothesis on
    2 cores); a repeated ``nadfit`` command loads them instead. Folder: ``$NADFIT_JAX_CACHE``
    (``off`` disables it), else ``$XDG_CACHE_HOME/nadfit/jax`` or ``~/.cache/nadfit/jax``.
    Returns the folder used, or None.
    """
    import os
    from pathlib import Path

    where = os.environ.get("NADFIT_JAX_CACHE", "")
    if where.lower() == "off":
        return None
    if not where:
        where = str(Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "nadfit" / "jax")
    try:
        Path(where).mkdir(parents=True, exist_ok=True)
    except OSError:
        return None  # a read-only home: run without the cache
    if "jax" in sys.modules:
        import jax

        jax.config.update("jax_compilation_cache_dir", where)
        jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.5)
    else:  # JAX reads these at import: commands that never import JAX do not pay for it
        os.environ["JAX_COMPILATION_CACHE_DIR"] = where
        os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "0.5")
    return where


#: Third-party warnings that the ``nadfit`` commands hide, and why. This is the only place where
#: the CLI filters warnings; causes that were ours are fixed where they arise (single-row LOO and
#: Pareto-k advice in ``comparison.assemble.psis_loo``). The filters apply only while a command runs (the test
#: suite and the Python API still see every warning); ``--verbose`` shows them all.
#: Entries: (category, module regex, message regex, reason).
UNDERSTOOD_WARNINGS: tuple[tuple[type[Warning], str, str, str], ...] = (
    (UserWarning, r"(nadfit|pymc)(\..*)?$", r"The effect of Potentials on other parameters is ignored during prior predictive sampling",
     "the evidence likelihood is a pm.Potential; the run's 'prior' group is meant to be draws from "
     "the prior alone, so ignoring the Potential there is the intent"),
    (UserWarning, r"(nadfit|pymc)(\..*)?$", r"The effect of Potentials on other parameters is ignored during posterior predictive sampling",
     "nadfit draws replicated evidence itself (fit._posterior_predictive), from posterior draws that "
     "already include the Potential"),
    (UserWarning, r"pytensor\.link\.numba(\..*)?$", r"Numba will use object mode to run (JAXOp|truncated_normal_rv)",
     "PyTensor's Numba backend runs nadfit's JAX likelihood op (pytensor.wrap_jax) and the truncated-normal "
     "sampler through Python; SMC's prior draws (comparison.marginal._flat_jax_parts, pm.draw) hit the "
     "latter: correct, only a Python call per draw"),
)


#: Library loggers whose INFO lines (e.g. PyMC's "Sampling: [beta, c_age, ...]" at every prior
#: draw) are hidden while a command runs; their warnings and errors still show. ``--verbose``
#: shows INFO again. (Sub-loggers: importing PyMC sets the level of the "pymc" logger itself.)
QUIET_LOGGERS = ("pymc.sampling", "pymc.smc", "pymc.stats", "pytensor")


#: XLA's native (C++) log: lines at ERROR level and below that are not errors of the command --
#: "Very slow compile? If you want to file a bug, run with envvar XLA_FLAGS=--xla_dump_to=..."
#: from ``slow_operation_alarm.cc`` when compiling the whole NUTS sampler takes long (it always
#: does: the within-day likelihood is inlined into every leapfrog step) -- are hidden while a
#: command runs, by TSL's ``TF_CPP_MIN_LOG_LEVEL`` (read when jaxlib loads). XLA's real failures
#: still reach the user as Python exceptions. ``--verbose`` or a ``TF_CPP_MIN_LOG_LEVEL`` of the
#: user's own leaves the native log as it is.
NATIVE_LOG_LEVEL = "3"


def native_log_level(argv, environ) -> str | None:
    """The ``TF_CPP_MIN_LOG_LEVEL`` to set before JAX loads, or None to leave it alone."""
    from nadfit.fitting.cli.options import VERBOSE_FLAGS

    if "TF_CPP_MIN_LOG_LEVEL" in environ or any(_asks_verbose(a, VERBOSE_FLAGS) for a in argv):
        return None
    return NATIVE_LOG_LEVEL


def _asks_verbose(arg: str, flags) -> bool:
    """``--verbose``, ``-v``, or combined one-letter switches holding ``v`` (``-qv``: click
    accepts short boolean flags together)."""
    short = next(f for f in flags if not f.startswith("--"))[1:]
    return arg in flags or (arg.startswith("-") and not arg.startswith("--") and arg[1:].isalpha()
                            and short in arg[1:])


def apply_warning_policy() -> None:
    """Install :data:`UNDERSTOOD_WARNINGS` as 'ignore' filters (call inside ``warnings.catch_warnings``)."""
    import warnings

    for category, module, message, _why in UNDERSTOOD_WARNINGS:
        warnings.filterwarnings("ignore", message=message, category=category, module=module)


def show_all_warnings() -> None:
    """``--verbose``: show every warning once, the understood ones too (for the rest of the command)."""
    import warnings

    warnings.simplefilter("default")
    import logging

    for name in QUIET_LOGGERS:
        logging.getLogger(name).setLevel(logging.INFO)


def main(argv: list[str] | None = None) -> int:
    """Entry point: run the CLI; user mistakes become one line on stderr and exit code 2."""
    import warnings

    from nadfit.fitting.inference.devices import configure_host_devices

    configure_host_devices()  # before anything starts JAX: one host device per chain
    _register()
    from nadfit.fitting.cli.options import rewrite_deprecated

    argv, notes = rewrite_deprecated(sys.argv[1:] if argv is None else argv)
    level = native_log_level(argv, os.environ)
    set_level = level is not None and "jax" not in sys.modules
    if set_level:
        os.environ["TF_CPP_MIN_LOG_LEVEL"] = level
    for note in notes:
        print(f"nadfit: note: {note}", file=sys.stderr)
    enable_compile_cache()
    import logging

    loggers = {name: logging.getLogger(name) for name in QUIET_LOGGERS}
    levels = {name: lg.level for name, lg in loggers.items()}
    with warnings.catch_warnings():
        apply_warning_policy()
        for lg in loggers.values():
            lg.setLevel(logging.WARNING)
        try:
            rc = _main(argv)
        finally:
            for name, lg in loggers.items():
                lg.setLevel(levels[name])
            if set_level:  # the process's environment as it was (in-process callers, subprocesses)
                os.environ.pop("TF_CPP_MIN_LOG_LEVEL", None)
    _exit_if_sampler_still_runs(rc)
    return rc


def _exit_if_sampler_still_runs(rc: int) -> None:
    """After an interrupt the compiled XLA sampler may still run on its daemon thread (XLA cannot
    be cancelled); letting the interpreter tear down under it crashes the process (SIGSEGV).
    The outputs are already cleaned up at this point, so leave at once with the exit code."""
    import threading

    fit = sys.modules.get("nadfit.fitting.inference.fit")  # not loaded: no sampler ever ran
    if fit is not None and any(t.name == fit.SAMPLER_THREAD and t.is_alive() for t in threading.enumerate()):
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(rc)


def _main(argv: list[str] | None) -> int:
    try:
        rc = app(args=argv, standalone_mode=False, prog_name="nadfit")
    except UserError as err:
        print(f"nadfit: error: {err}", file=sys.stderr)
        return err.exit_code
    except typer.Exit as ex:
        return ex.exit_code
    except typer.Abort:
        print("nadfit: aborted", file=sys.stderr)
        return 130
    except KeyboardInterrupt:
        print("nadfit: interrupted; no partial results were kept", file=sys.stderr)
        return 130
    except Exception as exc:  # click usage errors (click itself or the copy vendored by typer)
        if _is_click_error(exc):
            print(f"nadfit: error: {_one_line(exc.format_message())}{_help_hint(exc)}", file=sys.stderr)
            return exc.exit_code
        raise
    if rc == 130:  # typer turns KeyboardInterrupt (Ctrl-C, or SIGTERM inside a run) into exit code 130
        print("nadfit: interrupted; no partial results were kept", file=sys.stderr)
    return rc if isinstance(rc, int) else 0


if __name__ == "__main__":
    sys.exit(main())
