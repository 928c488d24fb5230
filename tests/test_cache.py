"""The on-disk dataset cache: hits skip decoding, and any change to the data misses."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest

from bench.data import cache, load_dataset, registry

from .conftest import random_face, write_image


@pytest.fixture
def fresh_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("BENCH_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


@pytest.fixture
def no_decoding(monkeypatch):
    """Make any decode fail loudly: a load that succeeds came from the cache."""

    def refuse(*args, **kwargs):
        raise AssertionError("decoded although the cache should have answered")

    def arm():
        monkeypatch.setattr(registry, "assemble", refuse)

    return arm


LAYOUT = {"s1": {"happy": 2, "angry": 2}, "s2": {"happy": 2}}


def test_second_load_comes_from_the_cache_and_is_identical(folder_dataset, fresh_cache,
                                                           no_decoding):
    root = folder_dataset(LAYOUT)
    first = load_dataset("folder", root, classes=4, image_size=16)
    no_decoding()
    second = load_dataset("folder", root, classes=4, image_size=16)
    assert isinstance(second.images, np.memmap) and not second.images.flags.writeable
    np.testing.assert_array_equal(first.images, second.images)
    for name in ("labels", "subjects", "sequences", "frames", "sources"):
        np.testing.assert_array_equal(getattr(first, name), getattr(second, name))
    assert second.class_names == first.class_names and second.root == first.root


def test_synthetic_is_cached_per_options(fresh_cache, no_decoding):
    load_dataset("synthetic", classes=4, n_subjects=3, frames=4)
    no_decoding()
    assert len(load_dataset("synthetic", classes=4, n_subjects=3, frames=4)) == 3 * 4 * 4
    with pytest.raises(AssertionError, match="decoded"):
        load_dataset("synthetic", classes=4, n_subjects=3, frames=5)


@pytest.mark.parametrize("change", ["edit", "add", "remove", "image_size", "classes"])
def test_any_change_misses_the_cache(folder_dataset, fresh_cache, change):
    root = folder_dataset(LAYOUT)
    before = load_dataset("folder", root, classes=4, image_size=16)
    size, classes = 16, 4
    target = root / "s1" / "happy" / "0.png"
    if change == "edit":  # same size and name, new pixels and time
        write_image(target, random_face(np.random.default_rng(9), (24, 32)))
        os.utime(target, ns=(1, 1))
    elif change == "add":
        write_image(root / "s2" / "happy" / "9.png", random_face(np.random.default_rng(9)))
    elif change == "remove":
        target.unlink()
    elif change == "image_size":
        size = 20
    else:
        classes = 7
    after = load_dataset("folder", root, classes=classes, image_size=size)
    assert (len(after) != len(before) or after.images.shape != before.images.shape
            or not np.array_equal(after.images, before.images)
            or after.class_names != before.class_names)
    if change == "edit":
        fresh = load_dataset("folder", root, classes=4, image_size=16, cache=False)
        np.testing.assert_array_equal(after.images, fresh.images)


def test_cache_off_writes_nothing(folder_dataset, tmp_path, monkeypatch):
    monkeypatch.setenv("BENCH_CACHE", "off")
    assert cache.cache_dir() is None
    load_dataset("folder", folder_dataset(LAYOUT), classes=4)
    monkeypatch.setenv("BENCH_CACHE", str(tmp_path / "c"))
    load_dataset("folder", folder_dataset(LAYOUT), classes=4, cache=False)
    assert not (tmp_path / "c").exists()


def _drop_key(entry):
    meta = json.loads((entry / "meta.json").read_text())
    del meta["class_names"]
    (entry / "meta.json").write_text(json.dumps(meta))


@pytest.mark.parametrize("damage", [
    lambda entry: (entry / "images.npy").write_bytes(b"garbage"),
    lambda entry: (entry / "meta.json").write_bytes(b"\xff{"),
    _drop_key,
    lambda entry: np.save(entry / "images.npy", np.zeros((2, 16, 16), np.uint8)),  # wrong length
    lambda entry: (entry / "images.npy").unlink(),
], ids=["garbage-images", "garbage-meta", "meta-without-a-key", "images-of-wrong-length",
        "images-missing"])
def test_a_damaged_entry_is_a_miss_and_is_rewritten(folder_dataset, fresh_cache, no_decoding,
                                                    damage):
    root = folder_dataset(LAYOUT)
    first = load_dataset("folder", root, classes=4)
    (entry,) = [p for p in fresh_cache.iterdir() if not p.name.startswith(".")]
    damage(entry)
    again = load_dataset("folder", root, classes=4)  # a miss: decoded again, and stored again
    np.testing.assert_array_equal(first.images, again.images)
    no_decoding()
    third = load_dataset("folder", root, classes=4)  # the rewritten entry answers
    np.testing.assert_array_equal(first.images, third.images)
    assert [p.name for p in fresh_cache.iterdir()] == [entry.name]


def test_the_key_changes_with_the_loader_code(monkeypatch):
    key = cache.dataset_key("synthetic", None, 4, 32, {}, registry.dataset_info("synthetic").lister)
    monkeypatch.setattr(cache, "_module_hash", lambda f: "other code")
    assert key != cache.dataset_key("synthetic", None, 4, 32, {},
                                    registry.dataset_info("synthetic").lister)
