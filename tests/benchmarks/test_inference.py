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
