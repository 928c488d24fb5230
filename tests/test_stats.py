"""Confidence intervals and paired tests of the boards (bench.stats), on planted predictions."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats as sps
from sklearn.metrics import f1_score

from bench import stats
from bench.leaderboard import write_leaderboard
from bench.metrics import classification_metrics, decode_predictions, encode_predictions
from bench.records import write_record

CLASSES = ["anger", "happiness", "surprise", "neutral"]


def record(method, seed, true, pred, subjects, **extra):
    """A record as the protocol writes it, from label indices and the subject of each image."""
    names = np.asarray(CLASSES, dtype=object)
    y_true, y_pred = names[np.asarray(true)], names[np.asarray(pred)]
    return {
        "method": method, "dataset": "synthetic", "classes": 4, "seed": seed, "preset": "quick",
        "class_names": CLASSES, **classification_metrics(y_true, y_pred, CLASSES),
        "predictions": encode_predictions(y_true, y_pred, subjects, CLASSES),
        "params_m": 1.0, "mflops": 1.0, "latency_ms": 1.0, "latency_iqr_ms": 0.1,
        "latency_device": "cpu", "calibration": False, "train_s": 1.0, "epochs": 1,
        "image_size": 32, "pretrained": False, "cost": {"input_size": 224},
        "spec": {"preset": "quick"}, "params": {}, **extra,
    }


def planted(rng, n_subjects=12, per_subject=10, hit_rate=0.7, true=None):
    true = rng.integers(0, 4, n_subjects * per_subject) if true is None else true
    hits = rng.random(len(true)) < hit_rate
    pred = np.where(hits, true, (true + 1) % 4)
    subjects = np.repeat([f"s{i:02d}" for i in range(n_subjects)], per_subject)
    return true, pred, subjects


def test_predictions_round_trip():
    rng = np.random.default_rng(0)
    true, pred, subjects = planted(rng)
    names = np.asarray(CLASSES, dtype=object)
    stored = encode_predictions(names[true], names[pred], subjects, CLASSES)
    back = decode_predictions(stored)
    np.testing.assert_array_equal(back[0], true)
    np.testing.assert_array_equal(back[1], pred)
    np.testing.assert_array_equal(back[2], subjects)
    assert len(stored["subjects"]) == 12  # runs, not one name per image


def test_scores_from_confusion_match_scikit_learn():
    rng = np.random.default_rng(1)
    for _ in range(20):
        true, pred = rng.integers(0, 3, 30), rng.integers(0, 4, 30)  # class 3 only predicted
        cm = np.zeros((4, 4), dtype=np.int64)
        np.add.at(cm, (true, pred), 1)
        accuracy, macro = stats.scores(cm)
        assert accuracy == pytest.approx((true == pred).mean())
        assert macro == pytest.approx(f1_score(true, pred, average="macro", zero_division=0))


def test_the_subject_bootstrap_is_scipys_bootstrap_over_subjects():
    """With equal images per subject, one seed's pooled accuracy is the mean of its subjects'
    accuracies: the interval must be scipy's percentile bootstrap of that mean."""
    rng = np.random.default_rng(2)
    true, pred, subjects = planted(rng)
    rec = record("m", 0, true, pred, subjects)
    interval = stats.row_interval([rec])
    per_subject = [(true[subjects == s] == pred[subjects == s]).mean() for s in np.unique(subjects)]
    expected = sps.bootstrap((np.array(per_subject),), np.mean, n_resamples=stats.N_RESAMPLES,
                             confidence_level=stats.LEVEL, method="percentile",
                             random_state=np.random.default_rng(stats.SEED)).confidence_interval
    assert interval["accuracy"] == pytest.approx((expected.low, expected.high))
    low, high = interval["macro_f1"]
    assert low <= rec["macro_f1"] <= high
    assert stats.row_interval([rec]) == interval  # a fixed seed: boards re-render the same


def test_identical_predictions_differ_by_zero_with_p_one():
    rng = np.random.default_rng(3)
    true, pred, subjects = planted(rng)
    pairs = stats.pairwise({"a": [record("a", 0, true, pred, subjects)],
                            "b": [record("b", 0, true, pred, subjects)]})
    assert pairs.loc[0, "mean_diff_points"] == 0 and pairs.loc[0, "p"] == 1
    assert pairs.loc[0, "p_holm"] == 1 and not pairs.loc[0, "significant"]


def test_a_planted_large_difference_is_significant():
    rng = np.random.default_rng(4)
    true, good, subjects = planted(rng, n_subjects=15, hit_rate=0.9)
    _, bad, _ = planted(rng, n_subjects=15, hit_rate=0.3, true=true)
    by_method = {"good": [record("good", s, true, good, subjects) for s in (0, 1)],
                 "bad": [record("bad", s, true, bad, subjects) for s in (0, 1)],
                 "also-bad": [record("also-bad", s, true, bad, subjects) for s in (0, 1)]}
    pairs = stats.pairwise(by_method).set_index(["method_a", "method_b"])
    assert pairs.loc[("good", "bad"), "units"] == 30
    assert pairs.loc[("good", "bad"), "mean_diff_points"] > 40
    assert pairs.loc[("good", "bad"), "p_holm"] < 0.01
    assert pairs.loc[("bad", "also-bad"), "p"] == 1


def test_a_board_carries_intervals_and_a_pairwise_page_and_old_records_still_render(tmp_path):
    rng = np.random.default_rng(5)
    true, pred, subjects = planted(rng)
    for seed in (0, 1):
        write_record(tmp_path, record("shufflenet-v2", seed, true, pred, subjects))
        write_record(tmp_path, record("ours-lem", seed, true, true, subjects))
    table, markdown = write_leaderboard(tmp_path, "synthetic", 4)
    assert table["accuracy_ci_low"].notna().all() and "subject-level bootstrap" in markdown
    page = (tmp_path / "synthetic-4-pairwise.md").read_text()
    assert "| ours-lem   | shufflenet-v2 | 24" in page
    assert (tmp_path / "synthetic-4-pairwise.png").read_bytes()[:4] == b"\x89PNG"

    old = record("eac", 0, true, pred, subjects)
    del old["predictions"]  # written before predictions were kept
    write_record(tmp_path, old)
    table, markdown = write_leaderboard(tmp_path, "synthetic", 4)
    row = table.set_index("method").loc["eac"]
    assert np.isnan(row["accuracy_ci_low"]) and "| n/a " in markdown
    assert "| eac " not in (tmp_path / "synthetic-4-pairwise.md").read_text()


def test_images_are_the_units_without_subject_ids_and_memory_stays_bounded():
    """RAF-DB and FER2013 have no subject ids: thousands of single-image units."""
    rng = np.random.default_rng(6)
    true, pred, _ = planted(rng, n_subjects=300, per_subject=10)  # 3000 test images
    rec = record("m", 0, true, pred, None)
    names, cms = stats.unit_confusions(rec)
    assert len(names) == 3000 and cms.sum() == 3000
    low, high = stats.row_interval([rec])["accuracy"]
    assert low < rec["accuracy"] < high and high - low < 0.05
    assert stats.interval_note([rec]).startswith("95 % CI: image-level bootstrap")
    assert "images resampled (no subject ids)" in stats.interval_note([rec])
    with_subjects = record("m", 0, true, pred, np.repeat(np.arange(300), 10).astype(str))
    assert stats.interval_note([with_subjects]) == stats.INTERVAL_NOTE
