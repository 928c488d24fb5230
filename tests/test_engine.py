"""Engine options: scoped like scikit-learn's config_context, recorded, and harmless on the CPU."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch

from bench import get_estimator
from bench.engine import engine_options, get_engine_options, is_channels_last, predict_logits

from .conftest import TINY


def test_engine_options_are_scoped_and_restored():
    before = get_engine_options()
    with engine_options(channels_last=True, compile=True) as inside:
        assert inside.channels_last and inside.compile and get_engine_options() is inside
    assert get_engine_options() == before
    with pytest.raises(TypeError):
        with engine_options(no_such_option=True):
            pass


def test_channels_last_inference_gives_the_same_logits(tiny_synthetic):
    d = tiny_synthetic
    est = get_estimator("shufflenet-v2", **TINY).fit(d.images, d.label_names, d.subjects)
    plain = predict_logits(est.network_, d.images[:16], image_size=32, device=torch.device("cpu"))
    with engine_options(channels_last=True):
        nhwc = predict_logits(est.network_, d.images[:16], image_size=32,
                              device=torch.device("cpu"))
    np.testing.assert_allclose(plain.numpy(), nhwc.numpy(), rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("forced", [None, True, False])
def test_memory_format_is_the_methods_unless_forced(tiny_synthetic, forced):
    d = tiny_synthetic
    with engine_options(channels_last=forced):
        nets = {name: get_estimator(name, **TINY).fit(d.images, d.label_names, d.subjects)
                .network_ for name in ("shufflenet-v2", "emo")}
    for name, net in nets.items():
        expected = get_estimator(name).channels_last if forced is None else forced
        stem = next(p for p in net.parameters() if p.ndim == 4 and p.shape[-1] > 1)
        assert is_channels_last(net) == expected
        assert stem.is_contiguous(memory_format=torch.channels_last) == expected
        assert stem.is_contiguous() != expected


def test_training_with_channels_last_and_amp_on_the_cpu(tiny_synthetic):
    d = tiny_synthetic
    with engine_options(channels_last=True, amp=True):  # amp is a no-op without CUDA
        est = get_estimator("shufflenet-v2", **TINY).fit(d.images, d.label_names, d.subjects)
    assert est.predict(d.images[:4]).shape == (4,)


def test_compile_failure_falls_back_with_a_warning(tiny_synthetic, monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError("no compiler")

    monkeypatch.setattr(torch, "compile", broken)
    d = tiny_synthetic
    with engine_options(compile=True), warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        est = get_estimator("shufflenet-v2", **TINY).fit(d.images, d.label_names, d.subjects)
    assert any("training uncompiled" in str(w.message) for w in caught)
    assert len(est.history_) == TINY["epochs"]


def test_records_carry_the_engine_options():
    from bench import evaluate

    def record():
        return evaluate("shufflenet-v2", "synthetic", 4, seeds=[0], preset="smoke",
                        latency=False, dataset_options=dict(n_subjects=5, frames=4))[0]

    with engine_options(channels_last=False):  # forced: the record says what was used
        assert record()["engine"] == {"channels_last": False, "amp": True, "compile": False}
    assert record()["engine"]["channels_last"] is True  # the method's own choice


def test_conform_images_converts_colour_and_size_as_the_network_input_does():
    from bench.transforms import conform_images, grey_or_rgb, to_input

    rng = np.random.default_rng(0)
    rgba = rng.integers(0, 256, (3, 20, 30, 4), dtype=np.uint8)
    assert grey_or_rgb(rgba).shape == (3, 20, 30, 3)
    assert grey_or_rgb(rgba[..., :1]).shape == (3, 20, 30)
    flat = np.full((2, 20, 30), 77, np.uint8)
    np.testing.assert_array_equal(conform_images(flat, (10, 12, 3)), np.full((2, 10, 12, 3), 77))
    grey = conform_images(np.repeat(flat[..., None], 3, axis=-1), (20, 30))
    np.testing.assert_array_equal(grey, flat)
    small = conform_images(rgba, (10, 15, 3))
    expected = to_input(rgba, torch.device("cpu"), 10)  # square; compare a square resize
    square = conform_images(rgba, (10, 10, 3))
    np.testing.assert_allclose(square.transpose(0, 3, 1, 2) / 255, expected.numpy(), atol=1 / 255)
    assert small.shape == (3, 10, 15, 3)
