"""The public contract check (:mod:`bench.testing`): every registered method passes it, a method
written outside the suite passes it and runs through ``bench run`` once installed as a plug-in,
and a method that breaks a rule is caught by name."""

from __future__ import annotations

import os
import subprocess
import sys
from numbers import Integral
from pathlib import Path

import pytest
from sklearn.utils._param_validation import Interval
from sklearn.utils.validation import check_is_fitted
from torch import nn

from bench import EmotionClassifier, list_methods
from bench.testing import (
    check_calibration,
    check_estimator,
    check_fit_predict,
    check_parameters,
    parametrize_with_checks,
)

from .conftest import REPO


@parametrize_with_checks(list_methods())
def test_registered_methods_keep_the_contract(estimator, check):
    check(estimator)


class TinyNet(EmotionClassifier):
    """A method as a newcomer writes it: one file, its own parameter, a four-layer network."""

    _parameter_constraints = {**EmotionClassifier._parameter_constraints,
                              "width": [Interval(Integral, 1, None, closed="left")]}

    def __init__(self, *, width=8, image_size=32, **base):
        super().__init__(image_size=image_size, **base)
        self.width = width

    def build_network(self, n_classes):
        return nn.Sequential(nn.Conv2d(3, self.width, 3, stride=2, padding=1), nn.ReLU(),
                             nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                             nn.Linear(self.width, n_classes))


def test_a_method_written_elsewhere_passes_the_check():
    check_estimator(TinyNet(epochs=1, batch_size=16, optimizer="adamw", lr=1e-2))


class StoresMore(TinyNet):
    def __init__(self, *, width=8, **base):
        super().__init__(width=width, **base)
        self.network_size = width * 2  # not a parameter: clone would lose it


class Unchecked(TinyNet):
    def __init__(self, *, depth=2, **base):
        super().__init__(**base)
        self.depth = depth  # no constraint: a wrong value would fail only inside training


class IgnoresCalibration(TinyNet):
    calibration = "neutral"

    def calibrate(self, X, groups, y=None):
        check_is_fitted(self)
        return self  # declared, then ignored


class PredictsIndices(TinyNet):
    def predict(self, X, groups=None):
        return self.predict_proba(X, groups).argmax(1)  # indices, not labels from classes_


@pytest.mark.parametrize("estimator, check, message", [
    (StoresMore(), check_parameters, "extra \\['network_size'\\]"),
    (Unchecked(), check_parameters, "without a constraint .*'depth'"),
    (IgnoresCalibration(epochs=1), check_calibration, "did not change its predictions"),
    (PredictsIndices(epochs=1), check_fit_predict, "largest column"),
])
def test_a_broken_rule_is_named(estimator, check, message):
    with pytest.raises(AssertionError, match=message):
        check(estimator)
    with pytest.raises(AssertionError, match=check.__name__):
        check_estimator(estimator)


PLUGIN = '''
"""A throwaway plug-in: registers the tests' TinyNet as ``tiny-net``."""
from bench import register
from tests.test_contract import TinyNet

register("tiny-net", TinyNet, display_name="Tiny net", description="a four-layer test network",
         presets={"smoke": {"lr": 1e-2}})
'''


def _install_plugin(site: Path) -> None:
    """What ``pip install`` of a package with a ``bench.methods`` entry point leaves on the path:
    the module and its ``.dist-info`` (metadata and entry points)."""
    (site / "tiny_plugin.py").write_text(PLUGIN)
    info = site / "tiny_plugin-0.1.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: tiny-plugin\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text("[bench.methods]\ntiny = tiny_plugin\n")
    (info / "RECORD").write_text("")


def test_an_installed_plugin_method_runs_through_bench_run(tmp_path):
    site = tmp_path / "site"
    site.mkdir()
    _install_plugin(site)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(site), str(REPO)])}
    out = tmp_path / "out"
    run = subprocess.run([sys.executable, "-m", "bench", "run", "--methods", "tiny-net", "--preset", "smoke",
                          "--out", str(out), "--quiet", "--jobs", "1"],
                         capture_output=True, text=True, env=env, cwd=tmp_path, timeout=300)
    assert run.returncode == 0, run.stderr
    assert "| tiny-net" in (out / "synthetic-4.md").read_text()
    assert (out / "runs" / "synthetic-4-tiny-net-seed0.json").is_file()

