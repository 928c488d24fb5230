"""Eyemotion (neutral subtraction) and EMO (K-means personalisation, frame skipping)."""

import numpy as np
import pytest

from baselines import EMOClassifier, EyemotionClassifier
from baselines.emo import FALLBACK_THRESHOLD, THRESHOLD_GRID, infer_sequences
from baselines.eyemotion import subtract_neutral
from bench import EmotionClassifier, RunSpec, list_methods, run_one
from bench.leaderboard import render_personalisation
from bench.protocol import fit_run, fit_teacher, train_on_split
from bench.stream import streaming_methods
from bench.testing import check_parameters, small_estimator

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
    personal, missing = est._personalise_labelled(X, y, groups)
    assert missing == 0
    assert np.all(np.abs(personal.astype(int) - 128) <= 1)  # mixing subjects up gives 48 or 208
    means = {g: X[groups == g][0].astype(np.float32) for g in ("a", "b")}
    swapped, _ = est._personalise(X, groups[::-1], means)  # as a test image of the wrong subject
    assert np.abs(swapped.astype(int) - 128).max() > 50


def test_a_training_neutral_is_not_part_of_the_mean_it_is_subtracted_from():
    """As at test time, where calibration neutrals are not scored: subject a's neutrals are 40
    and 80 (happy 60), subject b has one neutral, which gets the training set's mean instead."""
    X = np.array([40, 80, 60, 100, 100], np.uint8)[:, None, None] * np.ones((1, 4, 4), np.uint8)
    y = np.array(["neutral", "neutral", "happiness", "neutral", "happiness"])
    groups = np.array(["a", "a", "a", "b", "b"])
    est = EyemotionClassifier(**EYE)
    est.neutral_mean_ = np.full((4, 4), 70.0, np.float32)
    out, missing = est._personalise_labelled(X, y, groups)
    assert missing == 0
    assert out[:, 0, 0].tolist() == [108, 148, 128, 143, 128]  # 128 + (x - reference) / 2


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
    with pytest.warns(UserWarning, match="no subject ids"):
        est = EyemotionClassifier(**{**EYE, "epochs": 1}).fit(d.images, d.label_names)
    with pytest.warns(UserWarning, match="no subject ids .* to predict with") as caught:
        est.predict(d.images[:3])
    assert not any("without calibration" in str(w.message) for w in caught)


def test_eyemotion_needs_neutral_training_images(tiny_synthetic):
    d = tiny_synthetic
    keep = d.label_names != "neutral"
    with pytest.raises(ValueError, match="neutral_label"):
        EyemotionClassifier(**EYE).fit(d.images[keep], d.label_names[keep], d.subjects[keep])
    # integer labels (cross_val_predict(method="predict_proba") encodes them): the fix is named
    with pytest.raises(ValueError, match="set neutral_label to the neutral class's integer"):
        EyemotionClassifier(**EYE).fit(d.images, d.labels, d.subjects)
    neutral = list(d.class_names).index("neutral")
    est = EyemotionClassifier(**{**EYE, "epochs": 1}, neutral_label=neutral)
    assert est.fit(d.images, d.labels, d.subjects).report_["train_subjects_without_neutral"] == 0


def test_calibration_with_labels_keeps_only_the_neutral_images(tiny_synthetic):
    d = tiny_synthetic
    est = EyemotionClassifier(**{**EYE, "epochs": 1}).fit(d.images, d.label_names, d.subjects)
    subject = d.subjects == d.subjects[0]
    neutral = subject & (d.label_names == "neutral")
    est.calibrate(d.images[subject], d.subjects[subject], d.label_names[subject])
    labelled = est.subject_means_[d.subjects[0]]
    est.calibrate(d.images[neutral], d.subjects[neutral])
    np.testing.assert_array_equal(labelled, est.subject_means_[d.subjects[0]])
    with pytest.raises(ValueError, match="none equals neutral_label"):
        est.calibrate(d.images[subject & ~neutral], d.subjects[subject & ~neutral],
                      d.label_names[subject & ~neutral])


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
    emo.set_params(skip_threshold=0.99, max_skips=None)  # identical frames: all skipped
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
    emo.set_params(skip_threshold=0.95, max_skips=2)


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


def test_at_most_max_skips_frames_in_a_row_reuse_a_prediction(emo, tiny_synthetic):
    codes = np.tile([[1.0, 0.0]], (7, 1))  # every frame identical to the one before
    seq = np.array([1, 1, 1, 1, 1, 2, 2])
    assert EMOClassifier._skips(codes, seq, 0.9).tolist() == [0, 1, 1, 1, 1, 0, 1]
    assert EMOClassifier._skips(codes, seq, 0.9, 2).tolist() == [0, 1, 1, 0, 1, 0, 1]
    assert EMOClassifier._skips(codes, seq, 0.9, 1).tolist() == [0, 1, 0, 1, 0, 0, 1]
    d, fitted_with = tiny_synthetic, emo.get_params()
    try:  # stream (batch 1, in order) follows the same rule as batch prediction
        emo.set_params(skip_threshold=-1.0, max_skips=1)  # the encoder always says "similar"
        batch = emo.predict(d.images, d.subjects, sequences=d.sequences)
        assert emo.skip_rate_ == pytest.approx(EMOClassifier._skips(
            np.ones((len(d.images), 1)), d.sequences, -1.0, 1).mean())
        assert (emo.stream(d.images, d.subjects, d.sequences) == batch).all()
    finally:
        emo.set_params(**fitted_with)


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


def test_skip_threshold_and_max_skip_cost_are_checked():
    for good in ({"skip_threshold": "auto"}, {"skip_threshold": None}, {"skip_threshold": 0.9},
                 {"max_skip_cost": 0}, {"max_skip_cost": 1}, {"max_skips": 1}, {"max_skips": None}):
        EMOClassifier(**good).check_params()
    for bad in ({"skip_threshold": "sometimes"}, {"skip_threshold": 1.5}, {"max_skip_cost": -0.1},
                {"max_skip_cost": 1.5}, {"max_skip_cost": "1 point"}, {"max_skips": 0}):
        with pytest.raises(ValueError, match=next(iter(bad))):
            EMOClassifier(**bad).check_params()
    assert EMOClassifier().skip_threshold == "auto" and EMOClassifier().max_skip_cost == 0.01
    for name in list_methods():  # every parameter of every method still has its constraint
        check_parameters(small_estimator(name))


def test_auto_falls_back_without_validation_frames_in_order(emo, tiny_synthetic):
    # the fixture was fitted without validation data
    assert emo.threshold_ == FALLBACK_THRESHOLD == 0.95
    assert emo.report_["skip_threshold_source"] == "fallback"
    assert "no validation data" in emo.report_["skip_threshold_note"]
    d = tiny_synthetic
    val = np.isin(d.subjects, np.unique(d.subjects)[:2])
    est = EMOClassifier(**TINY, skip_epochs=1).fit(
        d.images[~val], d.label_names[~val], d.subjects[~val], sequences=d.sequences[~val],
        validation_data=(d.images[val], d.label_names[val], d.subjects[val]))
    assert est.threshold() == FALLBACK_THRESHOLD and "val_skip_rate" not in est.report_
    assert "no validation sequences" in est.report_["skip_threshold_note"]
    single = np.arange(val.sum())  # still images: each frame a sequence of its own
    threshold, report = est._settle_threshold((d.images[val], d.label_names[val]), single, "cpu")
    assert threshold == FALLBACK_THRESHOLD and "one frame each" in report["skip_threshold_note"]
    with pytest.raises(ValueError, match="validation_sequences must have one entry per image"):
        EMOClassifier(**TINY).fit(
            d.images[~val], d.label_names[~val], d.subjects[~val],
            validation_data=(d.images[val], d.label_names[val]), validation_sequences=d.sequences[:3])
    given = EMOClassifier(**TINY, skip_threshold=0.9)
    given.threshold_, report = given._settle_threshold(None, None, "cpu")
    assert given.threshold() == given.threshold_ == 0.9 and report["skip_threshold_source"] == "parameter"


def test_the_lowest_threshold_within_the_cost_is_chosen(emo, tiny_synthetic):
    d = tiny_synthetic
    frames = np.isin(d.subjects, np.unique(d.subjects)[:3])
    X, y, seq = d.images[frames], d.label_names[frames], d.sequences[frames]
    fitted_with = emo.get_params()
    try:
        threshold, report = emo.set_params(max_skip_cost=1.0).choose_threshold(X, y, seq)
        assert threshold == THRESHOLD_GRID[0] == 0.5  # any cost allowed: the one skipping most
        threshold, report = emo.set_params(max_skip_cost=0.0).choose_threshold(X, y, seq)
        curve = report["val_curve"]
        assert curve["threshold"] == list(THRESHOLD_GRID) and report["val_frames"] == len(X)
        no_skip = report["val_accuracy_no_skip"]
        costs = [no_skip - a for a in curve["accuracy"]]
        if threshold is None:
            assert all(c > 0 for c in costs) and report["val_skip_rate"] == 0
        else:
            k = curve["threshold"].index(threshold)
            assert costs[k] <= 1e-9 and all(c > 1e-9 for c in costs[:k])
        # each point of the curve is what predicting in order with that threshold gives (the
        # classifier alone: no groups, so no subject's centroids)
        for k in (0, len(THRESHOLD_GRID) - 1):
            emo.set_params(skip_threshold=THRESHOLD_GRID[k])
            predicted = emo.predict(X, sequences=seq)
            assert np.mean(predicted == y) == pytest.approx(curve["accuracy"][k])
            assert emo.skip_rate_ == pytest.approx(curve["skip_rate"][k])
            emo.set_params(skip_threshold=None)
            assert np.mean(emo.predict(X) == y) == pytest.approx(no_skip)
    finally:  # the module's fixture goes back to the parameters it was fitted with
        emo.set_params(**fitted_with)


def test_skip_costs_are_fvcores_counts_of_backbone_and_encoder(emo):
    import copy

    backbone, encoder = emo.skip_costs()
    assert encoder == pytest.approx((24 * 24 * 16 + 12 * 12 * 32 * 16 + 6 * 6 * 64 * 32) * 9 / 1e6)
    assert 0 < backbone < 1818.56  # the smoke networks run at 32 px, below ResNet-18's 224
    at_224 = copy.deepcopy(emo).set_params(image_size=224)
    assert at_224.skip_costs()[0] == pytest.approx(1818.56, abs=0.01)  # the registered count


# ------------------------------------------------------------------------------ the protocol
SMALL = {"n_subjects": 6, "frames": 6}


def test_the_threshold_is_chosen_on_validation_frames_spaced_like_test_frames(monkeypatch):
    """Only the validation part reaches the choice: the frames encoded during fit are exactly
    the validation frames, in order, thinned like the test frames; and a run whose test part
    differs (another calibration share) chooses the same."""
    seen = []
    codes = EMOClassifier._codes
    monkeypatch.setattr(EMOClassifier, "_codes",
                        lambda self, X, device: seen.append(X.copy()) or codes(self, X, device))
    options = {"n_subjects": 10, "frames": 12}
    spec = RunSpec("emo", preset="smoke", params={"epochs": 1}, dataset_options=options)
    run = train_on_split(spec, score_uncalibrated=False)
    X_val = run.part("val")[0]
    assert len(seen) == 1 and np.array_equal(seen[0], X_val)
    report = run.estimator.report_
    assert report["skip_threshold_source"] == "validation" and report["val_frames"] == len(X_val)
    assert run.estimator.threshold_ == report["skip_threshold"]
    per_sequence = np.unique(run.dataset.sequences[run.split.val], return_counts=True)[1]
    assert per_sequence.max() == 8  # the smoke preset's test_frames, not its train_frames (4)
    assert not set(run.dataset.subjects[run.split.val]) & set(run.dataset.subjects[run.split.test])
    other = fit_run(RunSpec("emo", preset="smoke", params={"epochs": 1}, dataset_options=options,
                            calibration_share=0.5))
    assert other.estimator.report_ == {**report, "calibrated_subjects": 0}
    seen.clear()
    whole = train_on_split(spec, score_uncalibrated=False, whole_test=True)  # bench stream's
    assert np.unique(whole.dataset.sequences[whole.split.val], return_counts=True)[1].max() == 12
    assert np.array_equal(seen[0], whole.part("val")[0])


def test_a_students_teacher_gets_validation_frames_spaced_for_itself(monkeypatch):
    from bench.teacher import LDGNClassifier

    class Stop(Exception):
        pass

    sizes = {}

    def record(self, X, y, groups=None, *, validation_data=None, **kwargs):
        raise Stop(len(validation_data[0]))

    monkeypatch.setattr(LDGNClassifier, "fit", record)
    for name in ("ours", "emo-ldl"):
        with pytest.raises(Stop) as stop:
            fit_teacher(RunSpec(name, preset="smoke", dataset_options={"n_subjects": 10,
                                                                       "frames": 12}))
        sizes[name] = stop.value.args[0]
    assert sizes["ours"] == sizes["emo-ldl"]  # one teacher fit serves both students
    assert "emo-ldl" in streaming_methods()


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
    named = render_personalisation([{**record, "dataset": "folder", "board": "my-eyes"}])
    assert named.startswith("# Personalisation on my-eyes, 4 classes")  # the board's name


@pytest.mark.ckplus
@pytest.mark.parametrize("name", ["eyemotion", "emo"])
def test_personalised_methods_on_real_ckplus(ckplus_root, name):
    record = run_one(RunSpec(name, "ckplus", 7, 0, root=str(ckplus_root), preset="smoke",
                             latency=False, params={"epochs": 1}))
    assert record["n_test"] > 100 and record["calibration_images"]


def test_eyemotion_takes_subjects_as_a_list_and_images_of_any_size(tiny_synthetic):
    d = tiny_synthetic
    est = EyemotionClassifier(**EYE).fit(d.images, list(d.label_names), list(d.subjects))
    assert est.report_["train_subjects_without_neutral"] == 0
    mine = np.flatnonzero(d.subjects == d.subjects[0])
    neutral = mine[d.label_names[mine] == "neutral"]
    wide = np.stack([np.pad(image, ((4, 4), (0, 8)), mode="edge") for image in d.images[mine]])
    rgb = np.repeat(wide[..., None], 3, axis=-1)
    est.calibrate(rgb[np.isin(mine, neutral)], [d.subjects[0]] * len(neutral))
    assert est.predict(wide, list(d.subjects[mine])).shape == (len(mine),)
    np.testing.assert_array_equal(est.predict_proba(rgb, d.subjects[mine]),
                                  est.predict_proba(wide, d.subjects[mine]))
