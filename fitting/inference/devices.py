"""Host CPU devices for the XLA samplers: one device per chain, so that chains run in parallel.

JAX sees one CPU device by default. The XLA NUTS sampler (``FitConfig.sampler`` numpyro, through
``pm.sample(..., nuts={"chain_method": "parallel"})``) place one chain on each
device (``jax.pmap``); each device runs its chain on its own thread with no Python per gradient.
The device count must be fixed before JAX creates its CPU backend (the first JAX operation, not
the import), so the command-line entry calls :func:`configure_host_devices` before any command
runs. This module does not import JAX itself.

A user's own choice wins: ``--xla_force_host_platform_device_count`` in ``XLA_FLAGS`` or
``JAX_NUM_CPU_DEVICES`` in the environment are left as they are.

PyMC 6 rewrites ``XLA_FLAGS`` when ``pymc.sampling.jax`` is imported: it puts
``--xla_force_host_platform_device_count=100`` first and keeps the other flags. The flag added
here goes last, where XLA's parser lets it win (checked by the tests).
"""

from __future__ import annotations

import os
import re
import sys

FLAG = "--xla_force_host_platform_device_count"
#: at least this many host devices: the default number of chains (4) runs one chain per device
#: even on a 2-core machine (the operating system shares the cores among the device threads)
MIN_DEVICES = 4


def wanted_devices(cpu_count: int | None = None) -> int:
    """Host devices to create: one per core, and at least :data:`MIN_DEVICES`."""
    cpus = cpu_count if cpu_count is not None else (os.cpu_count() or 1)
    return max(int(cpus), MIN_DEVICES)


def user_device_count(environ) -> int | None:
    """The device count the user set (``JAX_NUM_CPU_DEVICES`` or the XLA flag), else None."""
    v = environ.get("JAX_NUM_CPU_DEVICES", "").strip()
    if v:
        try:
            return int(v)
        except ValueError:
            return None
    m = re.search(re.escape(FLAG) + r"=(\d+)", environ.get("XLA_FLAGS", ""))
    return int(m.group(1)) if m else None


def with_device_flag(xla_flags: str, n: int) -> str:
    """``XLA_FLAGS`` with the host-device flag added (other flags kept, in order)."""
    return f"{xla_flags} {FLAG}={int(n)}".strip()


def configure_host_devices(n: int | None = None, environ=None) -> int | None:
    """Ask for ``n`` host CPU devices (default :func:`wanted_devices`) before JAX starts.

    Returns the device count that will be in force, or None when it can no longer be changed
    (JAX's backend already runs in this process, as in a test session: the samplers then put
    the chains that do not find a device of their own on one device, vectorised). A count the
    user set in the environment is returned unchanged.
    """
    env = os.environ if environ is None else environ
    user = user_device_count(env)
    if user is not None:
        return user
    n = wanted_devices() if n is None else int(n)
    if "jax" not in sys.modules:  # JAX reads XLA_FLAGS when it creates its CPU backend
        env["XLA_FLAGS"] = with_device_flag(env.get("XLA_FLAGS", ""), n)
        return n
    from jax._src import xla_bridge  # imported already: no cost

    if xla_bridge.backends_are_initialized():
        return None
    import jax

    jax.config.update("jax_num_cpu_devices", n)
    return n
