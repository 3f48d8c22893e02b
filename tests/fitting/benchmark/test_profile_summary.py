"""nadfit.fitting.benchmark.profile_summary charges py-spy samples to run-all phases."""

from __future__ import annotations

import pytest

from nadfit.fitting.benchmark.profile_summary import main, summarise

RAW = """\
<module> (nadfit:6);main (fitting/cli.py:92);run_all_command (fitting/cmd_compare.py:250);run_compare (x:1);smc_log_ml (fitting/marginal.py:140);sample_smc (pymc:1) 40
<module> (nadfit:6);main (fitting/cli.py:92);run_all_command (fitting/cmd_compare.py:250);run_compare (x:1);bridge_log_ml (fitting/marginal.py:95) 10
<module> (nadfit:6);main (fitting/cli.py:92);run_all_command (fitting/cmd_compare.py:240);run_fit (fitting/fit.py:300);to_netcdf (xarray:1) 5
logp (nutpie/compile_pymc.py:483);ArrayImpl.__float__ (jax:1) 300
not a profile line
"""


def test_phases_and_idle_remainder(tmp_path):
    raw = tmp_path / "p.raw"
    raw.write_text(RAW)
    rows = dict(summarise(raw, rate_hz=10.0, wall_s=20.0))
    assert rows["SMC marginal likelihood"] == pytest.approx(4.0)
    assert rows["bridge sampling"] == pytest.approx(1.0)
    assert rows["fit bookkeeping (curves, netCDF, summary)"] == pytest.approx(0.5)
    assert rows["NUTS sampling + start-up (main thread idle or outside run-all)"] == pytest.approx(14.5)
    assert rows["(sampler threads, CPU-seconds, for reference)"] == pytest.approx(30.0)


def test_markdown_table(tmp_path, capsys):
    raw = tmp_path / "p.raw"
    raw.write_text(RAW)
    main([str(raw), "--wall", "20"])
    out = capsys.readouterr().out.splitlines()
    assert out[0] == "| phase | seconds | share |"
    assert "| SMC marginal likelihood | 4 | 20 % |" in out
