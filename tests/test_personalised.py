"""Eyemotion (neutral subtraction) and EMO (K-means personalisation, frame skipping)."""

import numpy as np
import pytest

from baselines import EMOClassifier, EyemotionClassifier
from baselines.emo import infer_sequences
from baselines.eyemotion import subtract_neutral
from bench import EmotionClassifier, RunSpec, run_one
from bench.leaderboard import render_personalisation

from .conftest import TINY

EYE = {**TINY, "image_size": 75}


def two_subjects(n=6, size=16):
    """Subject a is dark, subject b bright; every image equals its subject's neutral image."""
    X = np.concatenate([np.full((n, size, size), 40, np.uint8), np.full((n, size, size), 200, np.uint8)])
    y = np.array(["neutral", "happiness"] * n)
    groups = np.array(["a"] * n + ["b"] * n)
    return X, y, groups


# ----------------------------------------------------------------------------------- Eyemotion
def test_subtract_neutral_encodes_the_signed_difference():
    X = np.array([[[0, 128, 255]]], np.uint8)
    out = subtract_neutral(X, np.full((1, 3), 128.0, np.float32))
    assert out.tolist() == [[[64, 128, 192]]]


def test_each_subject_gets_its_own_neutral_mean():
    X, y, groups = two_subjects()
    est = EyemotionClassifier(**EYE)
    est.neutral_mean_ = X[y == "neutral"].astype(np.float32).mean(0)
    means, missing = est._subject_means(X, y, groups)
    personal, unknown = est._personalise(X, groups, means)
    assert missing == 0 and unknown == 0
    assert np.all(np.abs(personal.astype(int) - 128) <= 1)  # mixing subjects up gives 48 or 208
    swapped, _ = est._personalise(X, groups[::-1], means)
    assert np.abs(swapped.astype(int) - 128).max() > 50


def test_calibration_means_are_used_per_test_subject(monkeypatch, tiny_synthetic):
    d = tiny_synthetic
    est = EyemotionClassifier(**EYE).fit(d.images, d.label_names, d.subjects)
    X, _, groups = two_subjects(size=32)
    est.calibrate(X[:2], groups[:2]).calibrate(X[-2:], groups[-2:])
    seen = {}

    def capture(self, X, groups=None):
        seen["X"] = X
        return np.zeros((len(X), len(self.classes_)))

    monkeypatch.setattr(EmotionClassifier, "decision_function", capture)
    est.decision_function(X, groups)
    assert np.all(np.abs(seen["X"].astype(int) - 128) <= 1)
    assert est.report_["calibrated_subjects"] == 2


def test_subjects_without_neutrals_fall_back_with_a_warning(tiny_synthetic):
    d = tiny_synthetic
    drop = (d.subjects == d.subjects[0]) & (d.label_names == "neutral")
    with pytest.warns(UserWarning, match="1 training subject"):
        est = EyemotionClassifier(**EYE).fit(d.images[~drop], d.label_names[~drop],
                                             d.subjects[~drop])
    assert est.report_["train_subjects_without_neutral"] == 1
    with pytest.warns(UserWarning, match="without calibration"):
        est.predict(d.images[:3], np.array(["stranger"] * 3))
    assert est.report_["predict_subjects_without_calibration"] == 1


def test_eyemotion_needs_neutral_training_images(tiny_synthetic):
    d = tiny_synthetic
    keep = d.label_names != "neutral"
    with pytest.raises(ValueError, match="neutral_label"):
        EyemotionClassifier(**EYE).fit(d.images[keep], d.label_names[keep], d.subjects[keep])


# ----------------------------------------------------------------------------------------- EMO
@pytest.fixture(scope="module")
def emo(tiny_synthetic):
    d = tiny_synthetic
    return EMOClassifier(**TINY, skip_epochs=1).fit(d.images, d.label_names, d.subjects,
                                                    sequences=d.sequences)


def test_kmeans_personalisation_is_deterministic(emo, tiny_synthetic):
    d = tiny_synthetic
    subject = d.subjects == d.subjects[0]
    emo.calibrate(d.images[subject], d.subjects[subject])
    first = {k: v.copy() for k, v in emo.personal_centroids_.items()}
    emo.calibrate(d.images[subject], d.subjects[subject])
    for k, v in first.items():
        np.testing.assert_array_equal(v, emo.personal_centroids_[k])
    assert emo.personal_centroids_[d.subjects[0]].shape == emo.centroids_.shape


def test_personalisation_changes_only_calibrated_subjects(emo, tiny_synthetic):
    d = tiny_synthetic
    emo.personal_centroids_ = {}
    before = emo.predict_proba(d.images, d.subjects)
    subject = d.subjects == d.subjects[0]
    emo.calibrate(d.images[subject], d.subjects[subject])
    after = emo.predict_proba(d.images, d.subjects)
    np.testing.assert_allclose(before[~subject], after[~subject], atol=1e-6)
    assert not np.allclose(before[subject], after[subject])


def count_backbone_calls(monkeypatch, est):
    calls = []
    original = type(est.network_).embed
    monkeypatch.setattr(type(est.network_), "embed",
                        lambda self, x: calls.append(len(x)) or original(self, x))
    return calls


def test_skipped_frames_reuse_the_last_prediction_without_the_backbone(monkeypatch, emo):
    frames = np.repeat(np.random.default_rng(0).integers(0, 256, (2, 32, 32), dtype=np.uint8), 5, 0)
    sequences = np.array(["s1"] * 5 + ["s2"] * 5)
    calls = count_backbone_calls(monkeypatch, emo)
    emo.set_params(skip_threshold=0.99)
    proba = emo.predict_proba(frames, sequences=sequences)
    assert sum(calls) == 2 and emo.backbone_calls_ == 2 and emo.skip_rate_ == 0.8
    assert (proba[:5] == proba[0]).all() and (proba[5:] == proba[5]).all()
    calls.clear()
    labels = emo.stream(frames, sequences=sequences)
    assert sum(calls) == 2 and len(set(labels[:5])) == 1
    calls.clear()
    emo.set_params(skip_threshold=None)
    emo.predict(frames, sequences=sequences)
    assert sum(calls) == 10 and emo.skip_rate_ == 0
    emo.set_params(skip_threshold=0.95)


def test_without_sequences_every_frame_runs(monkeypatch, emo, tiny_synthetic):
    calls = count_backbone_calls(monkeypatch, emo)
    emo.predict(tiny_synthetic.images[:12])
    assert sum(calls) == 12


def test_stream_and_batch_prediction_agree(emo, tiny_synthetic):
    d = tiny_synthetic
    batch = emo.predict(d.images, d.subjects, sequences=d.sequences)
    batch_skip = emo.skip_rate_
    stream = emo.stream(d.images, d.subjects, d.sequences)
    assert (batch == stream).mean() > 0.95 and abs(emo.skip_rate_ - batch_skip) < 0.05


def test_sequences_are_inferred_from_subject_and_label_changes():
    assert list(infer_sequences(["a", "a", "a", "b"], [1, 1, 2, 2])) == [1, 1, 2, 3]


def test_encoder_pairs_say_whether_the_prediction_changes():
    labels = np.array([0, 0, 0, 0, 1, 1, 1, 1])
    seq = np.array([1, 1, 1, 1, 2, 2, 2, 2])
    predicted = np.array([3, 0, 0, 0, 1, 1, 1, 1])  # the onset frame 0 is still predicted neutral
    pairs, same = EMOClassifier._pairs(predicted, labels, np.zeros(8), seq, np.random.default_rng(0))
    for (a, b), s in zip(pairs, same):
        assert bool(s) == (seq[a] == seq[b] and predicted[a] == predicted[b])
    assert same.sum() > 0 and (same == 0).sum() > 0


# ------------------------------------------------------------------------------ the protocol
SMALL = {"n_subjects": 6, "frames": 6}


@pytest.mark.parametrize("name, kind", [("eyemotion", "neutral"), ("emo", "unlabeled")])
def test_runs_record_calibration_and_the_uncalibrated_score(name, kind):
    record = run_one(RunSpec(name, "synthetic", 4, 0, preset="smoke", latency=False,
                             dataset_options=SMALL, params={"epochs": 1}))
    assert record["calibration"] and record["calibration_kind"] == kind
    assert record["calibration_images"] and all(n > 0 for n in record["calibration_images"].values())
    assert set(record["calibration_images"]) == set(record["subjects"]["test"])
    assert 0 <= record["uncalibrated"]["accuracy"] <= 1
    assert record["method_report"]["calibrated_subjects"] == len(record["subjects"]["test"])
    table = render_personalisation([record])
    assert name in table and "Accuracy % without" in table


@pytest.mark.ckplus
@pytest.mark.parametrize("name", ["eyemotion", "emo"])
def test_personalised_methods_on_real_ckplus(ckplus_root, name):
    record = run_one(RunSpec(name, "ckplus", 7, 0, root=str(ckplus_root), preset="smoke",
                             latency=False, params={"epochs": 1}))
    assert record["n_test"] > 100 and record["calibration_images"]
