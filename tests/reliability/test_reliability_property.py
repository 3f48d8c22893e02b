"""Property-based checks (bounded): config files and run-folder files either load or raise
UserError — never any other exception."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from reliability_helpers import make_run, write_posterior

from nadfit.datasets.errors import UserError

FIELDS = ("hypothesis", "evidence", "exclude", "draws", "tune", "chains", "seed", "target_accept",
          "widen_priors", "accept_failed_gates", "prior_draws", "observation")
OBS = ("tau", "eps", "no_change_band", "approx_factor", "cv_softness", "nope")
SETTINGS = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])

scalars = st.one_of(
    st.integers(-5, 3000), st.integers(-(2**64), 2**64), st.floats(allow_nan=True, allow_infinity=True),
    st.booleans(), st.text(max_size=12), st.sampled_from(["direct", "via-nr", "mixed", "yi2022", "EV001"]),
)
values = st.recursive(scalars, lambda inner: st.one_of(st.lists(inner, max_size=3),
                                                        st.dictionaries(st.sampled_from(OBS), inner, max_size=3)),
                      max_leaves=6)
keys = st.one_of(st.sampled_from(FIELDS), st.sampled_from(FIELDS), st.text(min_size=1, max_size=10))
configs = st.dictionaries(keys, values, max_size=6)


def _toml_value(v) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        return "nan" if math.isnan(v) else ("inf" if v > 0 else "-inf") if math.isinf(v) else repr(v)
    if isinstance(v, str):
        return json.dumps(v)  # a JSON string is a valid TOML basic string
    if isinstance(v, list):
        return "[" + ", ".join(_toml_value(x) for x in v) + "]"
    if isinstance(v, dict):
        return "{" + ", ".join(f"{json.dumps(str(k))} = {_toml_value(x)}" for k, x in v.items()) + "}"
    raise TypeError(type(v))


def to_toml(d: dict) -> str:
    return "".join(f"{json.dumps(str(k))} = {_toml_value(v)}\n" for k, v in d.items())


def _check(path: Path, data: dict):
    from nadfit.fitting.inference.config import FitConfig, config_from_file

    try:
        cfg = config_from_file(path)
    except UserError as err:
        assert "\n" not in str(err) and str(err).startswith(str(path))
        return
    assert isinstance(cfg, FitConfig)
    cfg.validate()
    for k, v in data.items():
        assert getattr(cfg, k) == v or (isinstance(v, float) and math.isnan(v))


@SETTINGS
@given(configs)
def test_random_toml_configs(tmp_path, data):
    # TOML is written with our own minimal writer; integers beyond 64 bits are not TOML
    if any(isinstance(v, int) and not isinstance(v, bool) and abs(v) >= 2**63 for v in data.values()):
        data = {k: (0 if isinstance(v, int) and not isinstance(v, bool) and abs(v) >= 2**63 else v)
                for k, v in data.items()}
    p = tmp_path / "c.toml"
    try:
        text = to_toml(data)
    except TypeError:
        return
    p.write_text(text)
    _check(p, data)


@SETTINGS
@given(configs)
def test_random_yaml_configs(tmp_path, data):
    p = tmp_path / "c.yaml"
    p.write_text(yaml.safe_dump(data))
    _check(p, data)


@SETTINGS
@given(st.binary(max_size=300) | st.text(max_size=200).map(str.encode))
def test_random_config_bytes(tmp_path, blob):
    from nadfit.fitting.inference.config import FitConfig, config_from_file

    for name in ("c.toml", "c.yaml"):
        p = tmp_path / name
        p.write_bytes(blob)
        try:
            assert isinstance(config_from_file(p), FitConfig)
        except UserError:
            pass


@pytest.fixture(scope="module")
def good_run(tmp_path_factory):
    return make_run(tmp_path_factory.mktemp("prop") / "run")


@SETTINGS
@given(st.binary(max_size=400) | st.text(max_size=200).map(str.encode)
       | st.dictionaries(st.text(max_size=5), st.integers() | st.text(max_size=5), max_size=4).map(
           lambda d: json.dumps(d).encode()))
def test_garbage_summary_json(tmp_path, blob):
    from nadfit.fitting.inference.runs import load_summary

    run = make_run(tmp_path / "run") if not (tmp_path / "run").exists() else tmp_path / "run"
    (run / "summary.json").write_bytes(blob)
    with pytest.raises(UserError):
        load_summary(run)


@SETTINGS
@given(st.binary(max_size=600))
def test_garbage_posterior_nc(tmp_path, blob):
    from nadfit.fitting.inference.runs import load_posterior

    run = make_run(tmp_path / "run") if not (tmp_path / "run").exists() else tmp_path / "run"
    (run / "posterior.nc").write_bytes(blob)
    with pytest.raises(UserError):
        load_posterior(run)


@pytest.fixture(scope="module")
def nc_bytes(tmp_path_factory):
    p = tmp_path_factory.mktemp("nc") / "posterior.nc"
    write_posterior(p, "direct")
    return p.read_bytes()


@SETTINGS
@given(st.floats(0.0, 0.999), st.booleans())
def test_truncated_or_flipped_posterior_nc(tmp_path, nc_bytes, frac, flip):
    from nadfit.fitting.inference.runs import load_posterior

    run = make_run(tmp_path / "run") if not (tmp_path / "run").exists() else tmp_path / "run"
    data = bytearray(nc_bytes[: int(len(nc_bytes) * frac)])
    if flip and data:
        data[: min(64, len(data))] = bytes(b ^ 0xFF for b in data[:64])  # destroy the signature
    (run / "posterior.nc").write_bytes(bytes(data))
    with pytest.raises(UserError):
        load_posterior(run)
