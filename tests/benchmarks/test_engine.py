"""pytest-benchmark: the training engine against a hand-written loop, and cold/warm dataset loads.

``test_train_step_engine`` and ``test_train_step_raw`` run one optimisation step of the same
network on the same uint8 batch; their median ratio is the engine's overhead (``.ci/run`` prints
it). The raw loop does the same work (uint8 to float, normalisation, random crop and flip,
forward, cross-entropy, backward, SGD step) in the fewest lines of plain PyTorch, with the same
fused SGD as the engine, so the ratio is overhead and not a different optimizer.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from bench.data import cache as data_cache
from bench.data import load_dataset
from bench.engine import TrainConfig, make_optimizer, train_step
from bench.pretrained import torchvision_network

from ..conftest import write_image

BATCH, SIZE, CLASSES = 32, 48, 4


@pytest.fixture(scope="module")
def batch():
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (BATCH, SIZE, SIZE), dtype=np.uint8)
    labels = torch.as_tensor(rng.integers(0, CLASSES, BATCH))
    return images, labels


def _network():
    torch.manual_seed(0)
    return torchvision_network("shufflenet_v2_x1_0", CLASSES, False).train()


def test_train_step_engine(benchmark, batch):
    images, labels = batch
    network = _network()
    cfg = TrainConfig(epochs=1, batch_size=BATCH, lr=1e-2, optimizer="sgd", image_size=SIZE)
    opt = make_optimizer(network.parameters(), cfg)
    scaler = torch.amp.GradScaler("cuda", enabled=False)
    generator = torch.Generator().manual_seed(0)
    device = torch.device("cpu")

    def step():
        return train_step(network, opt, scaler, images, labels, cfg, generator, device)

    loss, logits = benchmark.pedantic(step, rounds=50, warmup_rounds=5)
    assert torch.isfinite(loss) and logits.shape == (BATCH, CLASSES)


def test_train_step_raw(benchmark, batch):
    images, labels = batch
    network = _network()
    opt = torch.optim.SGD(network.parameters(), lr=1e-2, momentum=0.9, fused=True)
    mean = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
    std = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
    pad = SIZE // 8

    def step():
        x = torch.from_numpy(images).unsqueeze(1).float().div(255).expand(-1, 3, -1, -1)
        x = F.pad(x, (pad,) * 4, mode="reflect")
        oy, ox = torch.randint(0, 2 * pad + 1, (2,)).tolist()
        x = x[:, :, oy:oy + SIZE, ox:ox + SIZE]
        flip = torch.rand(BATCH) < 0.5
        x = torch.where(flip.view(-1, 1, 1, 1), x.flip(-1), x)
        logits = network((x - mean) / std)
        loss = F.cross_entropy(logits, labels)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        return loss.detach()

    assert torch.isfinite(benchmark.pedantic(step, rounds=50, warmup_rounds=5))


@pytest.fixture(scope="module")
def image_folder(tmp_path_factory):
    """300 PNG files of 96x96 in the REED layout."""
    root = tmp_path_factory.mktemp("load") / "data"
    rng = np.random.default_rng(0)
    for s in range(10):
        for emotion in ("happy", "angry", "calm"):
            for i in range(10):
                write_image(root / f"s{s}" / emotion / f"{i}.png",
                            rng.integers(0, 256, (96, 96), dtype=np.uint8))
    return root


def test_dataset_load_cold(benchmark, image_folder, tmp_path, monkeypatch):
    """Decoding every file (a cache miss: the cache folder is emptied before each round)."""
    counter = iter(range(10**6))

    def fresh_cache():
        monkeypatch.setenv("BENCH_CACHE", str(tmp_path / f"cold{next(counter)}"))

    data = benchmark.pedantic(load_dataset, args=("folder", image_folder),
                              kwargs=dict(classes=4, image_size=SIZE), setup=fresh_cache,
                              rounds=5, iterations=1)
    assert len(data) == 300 and not isinstance(data.images, np.memmap)


def test_dataset_load_warm(benchmark, image_folder, tmp_path, monkeypatch):
    """The same load answered by the on-disk cache."""
    monkeypatch.setenv("BENCH_CACHE", str(tmp_path / "warm"))
    load_dataset("folder", image_folder, classes=4, image_size=SIZE)
    assert data_cache.cache_dir() == tmp_path / "warm"
    data = benchmark(load_dataset, "folder", image_folder, classes=4, image_size=SIZE)
    assert len(data) == 300 and isinstance(data.images, np.memmap)
