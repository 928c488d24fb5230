import numpy as np
import pytest

from bench.data import EmotionDataset
from bench.errors import BenchError
from bench.splits import calibration_set, make_split, subject_counts


def fake_dataset(n_subjects, per_class=5, classes=("anger", "happiness", "surprise", "neutral"),
                 split=None):
    rows = [(f"s{s:02d}", c, f) for s in range(n_subjects) for c in range(len(classes))
            for f in range(per_class)]
    subjects = np.array([r[0] for r in rows], dtype=object)
    labels = np.array([r[1] for r in rows])
    return EmotionDataset(
        "fake", np.zeros((len(rows), 4, 4), np.uint8), labels, tuple(classes),
        subjects=subjects,
        sequences=np.array([f"{s}/{c}" for s, c, _ in rows], dtype=object),
        frames=np.array([r[2] for r in rows]), split=split)


@pytest.mark.parametrize("n, fractions, expected", [
    (25, (0.4, 0.2, 0.4), (10, 5, 10)),               # REED
    (52, (28 / 52, 12 / 52, 12 / 52), (28, 12, 12)),  # EMUG
    (123, (0.4, 0.2, 0.4), (49, 25, 49)),              # CK+
])
def test_subject_counts_match_the_paper(n, fractions, expected):
    assert subject_counts(n, fractions) == expected


def test_splits_are_subject_disjoint_and_seeds_differ():
    d = fake_dataset(25)
    s0, s1 = make_split(d, 0, (0.4, 0.2, 0.4)), make_split(d, 1, (0.4, 0.2, 0.4))
    parts = [set(d.subjects[getattr(s0, p)]) for p in ("train", "val", "test")]
    assert [len(p) for p in parts] == [10, 5, 10]
    assert not (parts[0] & parts[1] or parts[0] & parts[2] or parts[1] & parts[2])
    assert set(d.subjects[s0.calibration]) <= parts[2]
    everything = np.concatenate([s0.train, s0.val, s0.test, s0.calibration])
    assert sorted(everything) == list(range(len(d)))  # every image used exactly once
    assert s0.subjects(d, "test") != s1.subjects(d, "test")
    np.testing.assert_array_equal(make_split(d, 0, (0.4, 0.2, 0.4)).test, s0.test)


def test_calibration_takes_evenly_spaced_frames_of_each_class():
    d = fake_dataset(3, per_class=10)
    test = np.flatnonzero(d.subjects == "s00")
    cal = calibration_set(d, test, share=0.2)
    assert len(cal) == 4 * 2
    assert set(d.frames[cal]) == {2, 7}  # the middles of frames 0-4 and 5-9


def test_a_single_image_class_is_never_taken_for_calibration():
    d = fake_dataset(3, per_class=1)
    test = np.flatnonzero(d.subjects == "s00")
    assert len(calibration_set(d, test, share=0.5)) == 0


def test_official_split_carves_validation_per_seed():
    split = np.array(["train"] * 80 + ["test"] * 20, dtype=object)
    d = fake_dataset(1, per_class=25, split=split)
    d = EmotionDataset(d.name, d.images, d.labels, d.class_names, split=split)
    s0, s1 = make_split(d, 0, "official"), make_split(d, 1, "official")
    assert len(s0.val) == 8 and len(s0.train) == 72 and list(s0.test) == list(range(80, 100))
    assert set(s0.val) != set(s1.val) and len(s0.calibration) == 0


def test_too_few_subjects_is_a_clear_error():
    with pytest.raises(BenchError, match="at least 3 subjects"):
        make_split(fake_dataset(2), 0, (0.4, 0.2, 0.4))
