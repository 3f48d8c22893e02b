"""Host CPU devices for the XLA samplers (fitting.inference.devices): the XLA_FLAGS logic."""

from __future__ import annotations

import subprocess
import sys

from nadfit.fitting.inference.devices import (
    FLAG,
    MIN_DEVICES,
    configure_host_devices,
    user_device_count,
    wanted_devices,
    with_device_flag,
)


def test_one_device_per_core_and_at_least_one_per_default_chain():
    assert wanted_devices(1) == MIN_DEVICES
    assert wanted_devices(2) == MIN_DEVICES
    assert wanted_devices(16) == 16


def test_flag_is_appended_to_other_flags():
    assert with_device_flag("", 4) == f"{FLAG}=4"
    assert with_device_flag("--xla_cpu_use_thunk_runtime=false", 3) == f"--xla_cpu_use_thunk_runtime=false {FLAG}=3"


def test_a_user_setting_wins_and_is_left_unchanged():
    env = {"XLA_FLAGS": f"--foo=1 {FLAG}=7"}
    assert user_device_count(env) == 7
    assert configure_host_devices(3, environ=env) == 7
    assert env["XLA_FLAGS"] == f"--foo=1 {FLAG}=7"
    env = {"JAX_NUM_CPU_DEVICES": "5"}
    assert configure_host_devices(3, environ=env) == 5 and "XLA_FLAGS" not in env
    assert user_device_count({"XLA_FLAGS": "--foo=1"}) is None


def test_in_a_process_where_jax_runs_already_nothing_changes():
    import jax

    jax.devices()  # the backend exists (as in this test session)
    env = {"XLA_FLAGS": "--foo=1"}
    assert configure_host_devices(3, environ=env) is None
    assert env["XLA_FLAGS"] == "--foo=1"


def test_before_jax_starts_the_devices_are_created(tmp_path):
    code = ("import os, sys; from nadfit.fitting.inference.devices import configure_host_devices; "
            "n = configure_host_devices(3); assert 'jax' not in sys.modules; flags = os.environ['XLA_FLAGS']; "
            "import pymc.sampling.jax; "  # PyMC puts its own device count (100) first in XLA_FLAGS
            "import jax; print(n, jax.local_device_count(), flags)")
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "XLA_FLAGS": "--xla_dump_hlo_pass_re=none",
           "JAX_PLATFORMS": "cpu"}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env,
                         cwd=str(tmp_path), check=True)
    n, count, flags = out.stdout.split(maxsplit=2)
    assert (int(n), int(count)) == (3, 3)
    assert flags.strip() == f"--xla_dump_hlo_pass_re=none {FLAG}=3"


def test_jax_imported_but_not_started_uses_jax_config(tmp_path):
    code = ("import jax; from nadfit.fitting.inference.devices import configure_host_devices; "
            "n = configure_host_devices(3); print(n, jax.local_device_count())")
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "JAX_PLATFORMS": "cpu"}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env,
                         cwd=str(tmp_path), check=True)
    assert out.stdout.split() == ["3", "3"]
