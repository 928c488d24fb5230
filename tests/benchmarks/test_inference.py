"""pytest-benchmark suite: batch-1 inference of every registered method, and data generation.

Ordinary ``pytest`` runs each once (``--benchmark-disable``); ``pytest tests/benchmarks
--benchmark-only --benchmark-enable`` times them.
"""

import pytest
import torch

from bench import get_estimator, list_methods, method_info
from bench.data import load_dataset


@pytest.mark.parametrize("name", list_methods())
def test_inference_batch1(benchmark, name):
    info = method_info(name)
    network = get_estimator(name).build_network(4).eval()
    x = torch.randn(1, 3, info.profile_size, info.profile_size)

    def forward():
        with torch.inference_mode():
            return network(x)

    assert benchmark(forward).shape == (1, 4)


def test_synthetic_generation(benchmark):
    data = benchmark(load_dataset, "synthetic", classes=4, n_subjects=5, frames=8, cache=False)
    assert len(data) == 5 * 4 * 8


ORDER = ["shufflenet-v2", "ours-lem", "efficientnet-b0"]


@pytest.mark.parametrize("order", ["forward", "reverse"])
def test_profile_order(benchmark, order):
    """The same networks profiled in two orders, once each: the first network of a process must
    not pay for the thread pool's start (warm-up runs until the time per call settles). The
    latencies go to ``extra_info``; the CI summary prints each network's ratio between orders."""
    from bench.profiling import time_forward

    names = ORDER if order == "forward" else ORDER[::-1]
    networks = {n: get_estimator(n).build_network(4).eval() for n in names}
    x = torch.randn(1, 3, 64, 64)

    def measure():
        return {n: time_forward(networks[n], x, min_time=0.1)[0] for n in names}

    latencies = benchmark.pedantic(measure, rounds=1, iterations=1)
    benchmark.extra_info["latency_ms"] = latencies
    assert set(latencies) == set(ORDER) and all(v > 0 for v in latencies.values())
