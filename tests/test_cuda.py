"""CUDA code paths (skipped without a CUDA device)."""

import pytest
import torch
import torchvision

from bench import get_estimator, profile

from .conftest import TINY

pytestmark = [pytest.mark.cuda,
              pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")]


def test_latency_with_cuda_events():
    net = torchvision.models.shufflenet_v2_x1_0(num_classes=4)
    cost = profile(net, 224, "cuda", min_time=0.2, throughput_batch=32)
    assert cost.latency_ms > 0 and cost.throughput > 0
    assert cost.latency_device == torch.cuda.get_device_name(0)


def test_fit_and_predict_on_cuda(tiny_synthetic):
    d = tiny_synthetic
    est = get_estimator("shufflenet-v2", **{**TINY, "device": "cuda"})
    est.fit(d.images, d.label_names, d.subjects)
    assert est.device_.startswith("cuda")
    assert next(est.network_.parameters()).is_cuda
    assert est.predict(d.images[:4]).shape == (4,)


def test_amp_and_channels_last_training_on_cuda(tiny_synthetic):
    from bench.engine import engine_options

    d = tiny_synthetic
    with engine_options(amp=True, channels_last=True):
        est = get_estimator("shufflenet-v2", **{**TINY, "device": "cuda"})
        est.fit(d.images, d.label_names, d.subjects)
        proba = est.predict_proba(d.images[:8])
    assert proba.dtype.kind == "f" and abs(proba.sum(1) - 1).max() < 1e-3
    assert all(torch.isfinite(torch.tensor(h["train_loss"])) for h in est.history_)


def test_amp_latency_is_recorded_as_float16():
    net = torchvision.models.shufflenet_v2_x1_0(num_classes=4)
    cost = profile(net, 224, "cuda", min_time=0.1, throughput_batch=0, amp=True,
                   channels_last=True)
    assert cost.dtype == "float16 autocast" and cost.memory_format == "channels_last"
