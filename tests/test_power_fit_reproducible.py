"""The shipped power shapes are what their documented command fits.

`pools/catalog/power.yaml` says its H100 / B200 shape comes from `python -m
wrpsim.calibrate.power` on ML.ENERGY's fit split and the A100's from the Splitwise profile. A
change to the latency model moves the utilisations the fit sees, so the shape can drift from
what the command prints (it did, unnoticed, when the B200's GEMMs were held to its sustained
rate). The A100 half runs everywhere (the profile is shipped); the ML.ENERGY half needs its
data (not shipped: `../shared/data/measured/mlenergy`) and is skipped without it.
"""

from __future__ import annotations

import re

import pytest

from wrpsim.calibrate import power as cpower
from wrpsim.paths import catalog_root
from wrpsim.pool.catalog import get_gpu
from wrpsim.pool.kernels.power import POWER_FIELDS, load_power
from wrpsim.validate.__main__ import mlenergy_root

SHIPPED = load_power(catalog_root() / "pools" / "catalog" / "power.yaml")


def _printed_shapes(out: str) -> dict[str, dict[str, float]]:
    """{gpu: {field: value}} from `calibrate.power`'s YAML-like output."""
    shapes: dict[str, dict[str, float]] = {}
    gpu = None
    for line in out.splitlines():
        m = re.match(r"^([\w.-]+):$", line)
        if m:
            gpu = m.group(1)
            shapes[gpu] = {}
            continue
        m = re.match(r"^  (\w+): ([0-9.]+)$", line)
        if m and gpu is not None:
            shapes[gpu][m.group(1)] = float(m.group(2))
    return shapes


def _assert_matches(gpu: str, printed: dict[str, float]) -> None:
    for k in POWER_FIELDS:
        assert printed[k] == pytest.approx(SHIPPED[gpu][k], abs=5e-4), (
            f"{gpu}.{k}: power.yaml has {SHIPPED[gpu][k]}, the fit gives {printed[k]}: refit "
            "(python -m wrpsim.calibrate.power) and update power.yaml and docs/validation.md")


def test_a100_shape_is_the_splitwise_fit():
    g = get_gpu("a100-80gb")
    shape, err = cpower.fit_shared([(g.idle_w, g.tdp_w, p) for p in cpower.splitwise_points()])
    _assert_matches("a100-80gb", shape)
    assert err["n"] == 30


@pytest.mark.slow  # (15–35 s by machine: it replays the 73 fit-split runs twice)
@pytest.mark.skipif(mlenergy_root(None) is None,
                    reason="ML.ENERGY data not here (../shared/data/measured/mlenergy)")
def test_h100_b200_shape_is_the_mlenergy_fit(capsys):
    assert cpower.main([]) == 0
    shapes = _printed_shapes(capsys.readouterr().out)
    for gpu in ("h100-80gb", "b200-180gb", "a100-80gb"):
        _assert_matches(gpu, shapes[gpu])


@pytest.mark.parametrize("given", ["0", "[]", "{}", "false"])
def test_an_mlenergy_dir_that_is_no_path_is_one_error_line(given, capsys):
    """As in validate and calibrate: 0, [] or {} was taken as null (the default folder)."""
    assert cpower.main([f"mlenergy_dir={given}"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("wrpsim: error: mlenergy_dir must be a folder path, got ") \
        and err.count("\n") == 1, err


def test_a_folder_without_the_leaderboard_is_one_line_said_as_this_commands(tmp_path, capsys):
    assert cpower.main([f"mlenergy_dir={tmp_path}"]) == 2
    err = capsys.readouterr().err.strip()
    assert err == f"wrpsim: error: calibrate.power: mlenergy_dir: {tmp_path} has no llm_configs.csv"
