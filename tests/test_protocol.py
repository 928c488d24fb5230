"""The protocol reads what methods declare, scores everyone on the same images, and records all."""

import numpy as np
import pytest
from torch import nn

from bench import EmotionClassifier, RunSpec, evaluate, list_methods, run_one
from bench.data import load_dataset

from .conftest import TINY

SMALL = {"n_subjects": 6, "frames": 6}


class Spy(EmotionClassifier):
    """A tiny classifier that remembers what the protocol handed it."""

    seen: dict = {}

    def build_network(self, n_classes):
        return nn.Sequential(nn.Conv2d(3, 4, 3), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                             nn.Linear(4, n_classes))

    def fit(self, X, y, groups=None, *, validation_data=None, **kwargs):
        Spy.seen.update(fit_groups=set(groups), val_size=len(validation_data[0]), fit_kwargs=kwargs,
                        val_X=validation_data[0])
        return super().fit(X, y, groups, validation_data=validation_data)

    def calibrate(self, X, groups, y=None):
        Spy.seen.update(cal_X=X, cal_groups=groups, cal_y=y)
        return self

    def predict(self, X, groups=None, **kwargs):
        Spy.seen.update(test_X=X, test_groups=groups, predict_kwargs=kwargs)
        return super().predict(X, groups)


def spy(kind=None, frames=False):
    cls = type(f"Spy_{kind}_{frames}", (Spy,), {"calibration": kind, "frame_order": frames})
    Spy.seen = {}
    return cls(**TINY)


def _evaluate(est, seed=0):
    return evaluate(est, "synthetic", 4, seeds=[seed], preset="smoke", latency=False,
                    dataset_options=SMALL)[0]


REQUIRED = ["accuracy", "macro_precision", "macro_recall", "macro_f1", "per_class_recall",
            "confusion_matrix", "params_m", "mflops", "latency_ms", "latency_iqr_ms",
            "latency_device", "throughput", "train_s", "epochs", "image_size", "pretrained",
            "preset", "calibration", "environment", "method", "dataset", "classes", "seed"]


def test_record_has_every_field():
    record = run_one(RunSpec("shufflenet-v2", "synthetic", 4, 0, preset="smoke",
                             dataset_options=SMALL, params={"epochs": 1}))
    missing = [k for k in REQUIRED if k not in record]
    assert not missing
    env = record["environment"]
    assert env["torch"] and env["bench"] and env["host"] and "git_commit" in env
    assert record["latency_ms"] > 0 and record["params_m"] == pytest.approx(1.26, abs=0.01)
    assert sum(map(sum, record["confusion_matrix"])) == record["n_test"]
    assert record["calibration"] is False and record["calibration_images"] == {}
    subjects = record["subjects"]
    assert not set(subjects["train"]) & set(subjects["test"])
    assert not set(subjects["val"]) & set(subjects["test"])


def test_methods_without_calibration_are_never_calibrated():
    _evaluate(spy(None))
    assert "cal_X" not in Spy.seen


def test_neutral_calibration_gets_only_neutral_images_of_test_subjects():
    record = _evaluate(spy("neutral"))
    d = load_dataset("synthetic", classes=4, image_size=32, **SMALL)
    neutral = d.images[d.label_names == "neutral"]
    for image in Spy.seen["cal_X"]:
        assert any(np.array_equal(image, n) for n in neutral)
    assert set(Spy.seen["cal_groups"]) == set(record["subjects"]["test"])
    assert Spy.seen["cal_y"] is None
    assert record["calibration"] is True and record["calibration_kind"] == "neutral"
    assert sum(record["calibration_images"].values()) == len(Spy.seen["cal_X"])


def test_unlabeled_and_labeled_calibration():
    record = _evaluate(spy("unlabeled"))
    assert len(Spy.seen["cal_X"]) == record["n_calibration"] and Spy.seen["cal_y"] is None
    _evaluate(spy("labeled"))
    assert set(Spy.seen["cal_y"]) == {"anger", "happiness", "surprise", "neutral"}


def test_everyone_is_scored_on_the_same_images():
    plain, personal = _evaluate(spy(None)), _evaluate(spy("unlabeled"))
    assert plain["n_test"] == personal["n_test"] and plain["n_calibration"] == personal["n_calibration"]
    # test subjects' images = scored + calibration
    assert plain["n_test"] + plain["n_calibration"] == len(plain["subjects"]["test"]) * 4 * 6
    # training: 4 of each sequence's 6 frames (smoke), of the training subjects' 4 x 6 each
    assert plain["n_train_available"] == len(plain["subjects"]["train"]) * 4 * 6
    assert plain["n_train"] == len(plain["subjects"]["train"]) * 4 * 4


def test_frame_order_methods_get_sequences_in_order():
    plain = _evaluate(spy(None))
    assert Spy.seen["predict_kwargs"] == {} and Spy.seen["fit_kwargs"] == {}
    ordered = _evaluate(spy(None, frames=True))
    assert len(Spy.seen["fit_kwargs"]["sequences"]) > 0
    # validation frames come in order with their sequences, spaced like the test frames (smoke:
    # at most 8 of each 6-frame sequence, i.e. all), not like the training frames (4)
    val_sequences = Spy.seen["fit_kwargs"]["validation_sequences"]
    assert len(val_sequences) == len(Spy.seen["val_X"]) == ordered["n_val"]
    assert ordered["n_val"] == len(ordered["subjects"]["val"]) * 4 * 6
    assert plain["n_val"] == len(plain["subjects"]["val"]) * 4 * 4
    assert plain["n_train"] == ordered["n_train"] and plain["n_test"] == ordered["n_test"]
    seq = Spy.seen["predict_kwargs"]["sequences"]
    assert len(seq) == len(Spy.seen["test_X"])
    # sequences are contiguous blocks: never revisited once left
    changes = [s for i, s in enumerate(seq) if i == 0 or s != seq[i - 1]]
    assert len(changes) == len(set(seq))


def test_validation_comes_from_other_subjects_than_test():
    record = _evaluate(spy(None))
    assert Spy.seen["fit_groups"] == set(record["subjects"]["train"])
    assert Spy.seen["val_size"] == record["n_val"] > 0


def test_same_seed_same_metrics_on_cpu():
    spec = RunSpec("shufflenet-v2", "synthetic", 4, 1, preset="smoke", dataset_options=SMALL,
                   params={"epochs": 1}, latency=False)
    a, b = run_one(spec), run_one(spec)
    for key in ("accuracy", "macro_f1", "confusion_matrix", "per_class_recall"):
        assert a[key] == b[key]
    assert a["history"][0]["train_loss"] == b["history"][0]["train_loss"]


def test_seeds_draw_different_test_subjects():
    a, b = (run_one(RunSpec("shufflenet-v2", "synthetic", 4, s, preset="smoke", latency=False,
                            dataset_options=SMALL, params={"epochs": 1})) for s in (0, 1))
    assert a["subjects"]["test"] != b["subjects"]["test"]


@pytest.mark.parametrize("name", list_methods())
def test_smoke_run_of_every_registered_method(name):
    record = run_one(RunSpec(name, "synthetic", 4, 0, preset="smoke", latency=False,
                             dataset_options=SMALL))
    assert record["method"] == name and 0 <= record["accuracy"] <= 1
    assert record["n_test"] > 0 and record["epochs_run"] == record["epochs"]


@pytest.mark.parametrize("frames, warned", [(12, True), (4, False)])
def test_a_folder_mostly_left_out_by_frame_thinning_is_named_before_training(
        folder_dataset, frames, warned):
    """A ``<subject>/<emotion>`` folder is one sequence: 12 photos in it keep 4 (a third of the
    data) under the smoke preset's rule, which a user of separate photos must hear about."""
    import warnings

    from bench.errors import DataWarning
    from bench.protocol import _prepared

    emotions = ("anger", "happiness", "surprise", "neutral")
    root = folder_dataset({f"s{i}": dict.fromkeys(emotions, frames) for i in range(10)})
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        _prepared(RunSpec("shufflenet-v2", "folder", 4, seed=0, root=str(root), preset="smoke"),
                  None, 0, False)
    said = [str(w.message) for w in caught if issubclass(w.category, DataWarning)
            and "frames of each sequence" in str(w.message)]
    assert len(said) == warned
    if warned:
        assert "160 of the data's 480 images (33%; 40 sequences)" in said[0]
        assert "--preset paper" in said[0]
