"""The shared teacher: leak-safe pre-training on face datasets, and what records say about it."""

import numpy as np
import pytest
from PIL import Image

import bench.pretraining
from bench import RunSpec, run_one
from bench.pretraining import FacePretraining, pretraining_subjects
from bench.teacher import LDGNClassifier

from .test_contract import TinyNet

SUBJECTS = [f"s{i:02d}" for i in range(10)]
OPTIONS = {"n_subjects": 10, "frames": 4}


def test_pretraining_subjects_of_the_same_people_are_the_training_subjects_only():
    faces = np.array(["s00", "s01", "s02", "s03", "s01"])
    assert pretraining_subjects(faces, ["s01", "s03"]).tolist() == [False, True, False, True, True]
    assert pretraining_subjects(faces, ["s01", "s03"], exclude_subjects=["s03"]).tolist() == \
        [False, True, False, False, True]


def test_pretraining_subjects_of_other_people_are_all_used_but_the_excluded():
    faces = np.array(["a", "b", "c"])
    assert pretraining_subjects(faces, ["s01"]).all()
    assert pretraining_subjects(faces, ["s01"], exclude_subjects=["b"]).tolist() == [True, False, True]


@pytest.fixture
def marked_faces(tmp_path):
    """A face folder with the benchmark's own subject ids, each subject's images filled with a
    grey level of its own, so an image that reaches training tells whose it is."""
    root = tmp_path / "faces"
    for i, subject in enumerate(SUBJECTS):
        for emotion in ("happy", "angry", "neutral", "surprise"):
            path = root / subject / emotion / "0.png"
            path.parent.mkdir(parents=True)
            Image.fromarray(np.full((40, 40), 10 + 20 * i, np.uint8)).save(path)
    return root


@pytest.fixture
def pretraining_seen(monkeypatch):
    """The subjects whose images reach any pre-training during the test."""
    seen = set()
    original = bench.pretraining.train

    def spying_train(network, X, targets, cfg, *args, **kwargs):
        if cfg.desc.startswith("pre-training"):
            seen.update(SUBJECTS[(int(v) - 10) // 20] for v in np.unique(X.reshape(len(X), -1)[:, 0]))
        return original(network, X, targets, cfg, *args, **kwargs)

    monkeypatch.setattr(bench.pretraining, "train", spying_train)
    return seen


def _run(method, faces, seed=0):
    params = {"epochs": 1, "teacher_pretrain": "folder", "teacher_pretrain_root": str(faces),
              "teacher_pretrain_epochs": 1}
    if method == "ours":
        params["teacher_params"] = {"epochs": 1}
    return run_one(RunSpec(method, "synthetic", 4, seed, preset="smoke", latency=False,
                           dataset_options=OPTIONS, params=params))


@pytest.mark.parametrize("method", ["ours", "ldgn"])
def test_no_validation_or_test_subject_reaches_pretraining(method, marked_faces, pretraining_seen):
    record = _run(method, marked_faces)
    held_out = set(record["subjects"]["val"]) | set(record["subjects"]["test"])
    assert pretraining_seen, "pre-training did not run"
    assert pretraining_seen <= set(record["subjects"]["train"])
    assert not pretraining_seen & held_out
    pre = (record["teacher"] or {}).get("pretrain") if method == "ours" else record["pretrain"]
    assert pre["left_out_subjects"] == len(held_out)


class FacePretrainedTiny(FacePretraining, TinyNet):
    """A method of someone else's that pre-trains its own network on faces."""

    def __init__(self, *, face_pretrain=None, face_pretrain_root=None, face_pretrain_epochs=None,
                 **base):
        super().__init__(**base)
        self.face_pretrain = face_pretrain
        self.face_pretrain_root = face_pretrain_root
        self.face_pretrain_epochs = face_pretrain_epochs


def test_any_method_can_pretrain_on_faces_without_a_leak(marked_faces, pretraining_seen):
    est = FacePretrainedTiny(face_pretrain="folder", face_pretrain_root=str(marked_faces),
                             face_pretrain_epochs=1)
    record = run_one(RunSpec("tiny", "synthetic", 4, 0, preset="smoke", latency=False,
                             dataset_options=OPTIONS, params={"epochs": 1}), estimator=est)
    held_out = set(record["subjects"]["val"]) | set(record["subjects"]["test"])
    assert pretraining_seen and pretraining_seen <= set(record["subjects"]["train"])
    assert record["pretrain"]["left_out_subjects"] == len(held_out)


def test_the_leak_check_catches_a_leak(monkeypatch, marked_faces, pretraining_seen):
    """Without the subject filter the same check sees held-out subjects: the test above can fail."""
    monkeypatch.setattr(bench.pretraining, "pretraining_subjects",
                        lambda subjects, *a, **k: np.ones(len(subjects), dtype=bool))
    record = _run("ours", marked_faces, seed=1)
    assert pretraining_seen & (set(record["subjects"]["val"]) | set(record["subjects"]["test"]))


def test_student_record_measures_its_teacher(tiny_synthetic):
    record = run_one(RunSpec("ours", "synthetic", 4, 0, preset="smoke", latency=False,
                             dataset_options={"n_subjects": 6, "frames": 4},
                             params={"epochs": 1, "teacher_params": {"epochs": 1}}))
    teacher = record["teacher"]
    for key in ("val_accuracy", "val_macro_f1", "labelled_accuracy", "mean_entropy"):
        assert teacher[key] is not None and np.isfinite(teacher[key])
    assert 0 <= teacher["relative_entropy"] <= 1
    assert record["val_accuracy"] is not None and 1 <= record["n_predicted_classes"] <= 4


def test_pretraining_on_an_unknown_folder_fails_clearly(tiny_synthetic, tmp_path):
    d = tiny_synthetic
    teacher = LDGNClassifier(epochs=1, batch_size=16, image_size=32, device="cpu",
                             teacher_pretrain="folder", teacher_pretrain_root=str(tmp_path / "no"))
    with pytest.raises(bench.DatasetError, match="does not exist"):
        teacher.fit(d.images, d.label_names, d.subjects)


def test_images_without_subject_ids_are_matched_to_their_crops_by_file():
    """RAF-DB has no subject ids: `bench prepare eyes` makes each image its own subject, and the
    same rule names its faces for pre-training, so held-out crops exclude their own faces."""
    from bench.data import EmotionDataset
    from bench.data.dataset import subject_ids

    faces = EmotionDataset("rafdb", np.zeros((2, 4, 4), np.uint8), np.array([0, 1]),
                           ("happiness", "neutral"), split=np.array(["train", "test"]),
                           sources=np.array(["a/train_00001_aligned.jpg", "b/test_0002_aligned.jpg"]))
    ids = subject_ids(faces)
    assert ids.tolist() == ["train-train_00001_aligned", "test-test_0002_aligned"]
    assert pretraining_subjects(ids, ["train-train_00001_aligned"]).tolist() == [True, False]
