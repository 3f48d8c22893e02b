"""The persistent XLA compilation cache switch used by the CLI (fitting.cli.enable_compile_cache)."""

from __future__ import annotations

import jax
import pytest

from nadfit.fitting.cli import enable_compile_cache


@pytest.fixture
def restore_cache_config():
    before = jax.config.jax_compilation_cache_dir
    yield
    jax.config.update("jax_compilation_cache_dir", before)


def test_off_disables(monkeypatch, restore_cache_config):
    monkeypatch.setenv("NADFIT_JAX_CACHE", "off")
    assert enable_compile_cache() is None


def test_explicit_folder_is_created_and_used(monkeypatch, tmp_path, restore_cache_config):
    where = tmp_path / "a" / "cache"
    monkeypatch.setenv("NADFIT_JAX_CACHE", str(where))
    assert enable_compile_cache() == str(where)
    assert where.is_dir()
    assert jax.config.jax_compilation_cache_dir == str(where)


def test_default_under_xdg_cache_home(monkeypatch, tmp_path, restore_cache_config):
    monkeypatch.delenv("NADFIT_JAX_CACHE", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert enable_compile_cache() == str(tmp_path / "nadfit" / "jax")


def test_unusable_folder_means_no_cache_not_an_error(monkeypatch, tmp_path, restore_cache_config):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    monkeypatch.setenv("NADFIT_JAX_CACHE", str(blocker / "cache"))
    assert enable_compile_cache() is None


def test_commands_without_jax_do_not_import_it(tmp_path):
    """Before JAX is imported the folder is handed over through JAX's environment variables."""
    import subprocess
    import sys

    code = ("import sys; from nadfit.fitting.cli import enable_compile_cache; enable_compile_cache(); "
            "assert 'jax' not in sys.modules; import jax; print(jax.config.jax_compilation_cache_dir)")
    env = {"PATH": "/usr/bin:/bin", "NADFIT_JAX_CACHE": str(tmp_path / "c"), "HOME": str(tmp_path)}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env,
                         cwd=str(tmp_path), check=True)
    assert out.stdout.strip() == str(tmp_path / "c")
