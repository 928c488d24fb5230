import numpy as np

from bench.data import load_dataset
from bench.data.synthetic import generate


def test_same_seed_same_bytes_other_seed_other_images():
    a = load_dataset("synthetic", classes=4, n_subjects=3, frames=4, seed=0)
    b = load_dataset("synthetic", classes=4, n_subjects=3, frames=4, seed=0)
    c = load_dataset("synthetic", classes=4, n_subjects=3, frames=4, seed=1)
    np.testing.assert_array_equal(a.images, b.images)
    assert not np.array_equal(a.images, c.images)


def test_four_classes_are_the_same_images_as_in_the_seven_class_set():
    d4 = load_dataset("synthetic", classes=4, n_subjects=2, frames=3)
    d7 = load_dataset("synthetic", classes=7, n_subjects=2, frames=3)
    in7 = np.isin(d7.label_names, d4.class_names)
    np.testing.assert_array_equal(d4.images, d7.images[in7])


def test_structure_subjects_sequences_frames():
    d = load_dataset("synthetic", classes=7, n_subjects=5, frames=8, image_size=48)
    assert d.images.shape == (5 * 7 * 8, 48, 48)
    assert len(set(d.subjects)) == 5 and len(set(d.sequences)) == 35
    assert d.class_counts() == {c: 40 for c in d.class_names}
    assert d.dropped == {} and d.root is None


def test_sequences_are_smooth():
    """Consecutive frames of a sequence are closer than frames of different subjects (what
    frame skipping relies on)."""
    table = generate(n_subjects=4, frames=12, seed=0, emotions=("neutral", "happiness"))
    images = np.stack(table["source"]).astype(np.float32)
    seq = table["sequence"].to_numpy()
    within = [np.abs(images[i] - images[i + 1]).mean() for i in range(len(images) - 1)
              if seq[i] == seq[i + 1]]
    across = [np.abs(images[i] - images[j]).mean() for i, j in [(0, 30), (5, 60), (12, 80)]]
    assert np.mean(within) < 0.6 * np.mean(across)


def test_expressions_change_the_eye_region():
    """At the apex, each emotion differs from the same subject's neutral more than neutral
    frames differ from each other."""
    d = load_dataset("synthetic", classes=7, n_subjects=1, frames=12)
    last = {c: d.images[(d.label_names == c)][-4:].astype(np.float32).mean(0) for c in d.class_names}
    neutral = d.images[d.label_names == "neutral"].astype(np.float32)
    noise = np.abs(neutral[-4:].mean(0) - neutral[:4].mean(0)).mean()
    for c in d.class_names:
        if c != "neutral":
            assert np.abs(last[c] - last["neutral"]).mean() > noise, c
