"""Cost metadata is checked against fvcore, the way torchvision tests its model metadata."""

import pytest
import torch
import torchvision

from bench import profile
from bench.profiling import count_mflops, count_params


@pytest.mark.parametrize("arch, params_m, mflops", [
    ("shufflenet_v2_x1_0", 1.26, 147.79),
    ("resnet50", 23.52, 4109.47),
])
def test_fvcore_reproduces_the_papers_counts(arch, params_m, mflops):
    net = getattr(torchvision.models, arch)(num_classes=4)
    assert round(count_params(net), 2) == params_m
    assert round(count_mflops(net, 224)[0], 2) == pytest.approx(mflops, abs=0.01)


def test_profile_measures_latency_and_keeps_uncounted_ops():
    net = torchvision.models.shufflenet_v2_x1_0(num_classes=4)
    cost = profile(net, 64, "cpu", min_time=0.05, throughput_batch=4)
    assert cost.latency_ms > 0 and cost.latency_iqr_ms >= 0 and cost.throughput > 0
    assert cost.latency_device.startswith("cpu (") and cost.threads == torch.get_num_threads()
    assert "aten::max_pool2d" in cost.unsupported_ops
    assert cost.input_size == 64 and cost.torch_version == torch.__version__


def test_profile_leaves_the_model_untouched():
    net = torchvision.models.shufflenet_v2_x1_0(num_classes=4).train()
    before = {k: v.clone() for k, v in net.state_dict().items()}
    profile(net, 32, "cpu", min_time=0.01, throughput_batch=0)
    assert net.training
    for k, v in net.state_dict().items():
        torch.testing.assert_close(v, before[k])
