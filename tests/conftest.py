"""Shared fixtures: tiny generated datasets, image-folder builders and the real CK+ copy."""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from bench.data import load_dataset
from bench.testing import SMALL, small_params  # the smallest settings that still train

REPO = Path(__file__).resolve().parents[1]
# the tests never read or fill the user's dataset cache, and leave no cache behind
os.environ["BENCH_CACHE"] = tempfile.mkdtemp(prefix="bench-test-cache-")
atexit.register(shutil.rmtree, os.environ["BENCH_CACHE"], ignore_errors=True)

CKPLUS = Path(os.environ.get("BENCH_CKPLUS", REPO.parent / "shared" / "data" / "ck-plus"))

TINY = SMALL
tiny_params = small_params


@pytest.fixture(scope="session")
def ckplus_root() -> Path:
    if not (CKPLUS / "CK+").is_dir():
        pytest.skip(f"real CK+ images not found at {CKPLUS}")
    return CKPLUS


@pytest.fixture(scope="session")
def tiny_synthetic():
    """6 subjects x 4 classes x 6 frames at 32 px."""
    return load_dataset("synthetic", classes=4, image_size=32, n_subjects=6, frames=6)


def write_image(path: Path, array: np.ndarray, **save_kwargs) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array).save(path, **save_kwargs)
    return path


def random_face(rng, size=(24, 32), channels=None) -> np.ndarray:
    shape = size if channels is None else (*size, channels)
    return rng.integers(0, 256, shape, dtype=np.uint8)


@pytest.fixture
def folder_dataset(tmp_path):
    """Build ``ROOT/<subject>/<emotion>/<n>.png`` trees: ``folder_dataset({"s1": {"happy": 3}})``."""

    def build(layout: dict, root: Path | None = None, size=(24, 32)) -> Path:
        root = root or tmp_path / "data"
        rng = np.random.default_rng(0)
        for subject, emotions in layout.items():
            for emotion, n in emotions.items():
                for i in range(n):
                    write_image(root / subject / emotion / f"{i}.png", random_face(rng, size))
        return root

    return build
