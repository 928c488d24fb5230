"""Estimator behaviour beyond the contract every method keeps (that one is checked over the
registry by :mod:`bench.testing`, in ``test_contract.py``): labels, sizes, validation, weights."""

import re
import urllib.error
import zipfile

import numpy as np
import pytest
import torch
from sklearn.exceptions import NotFittedError

import bench
from bench import EmotionClassifier, get_estimator, list_methods
from bench.errors import BenchError

from .conftest import TINY


@pytest.mark.parametrize("write", [
    lambda path: torch.save({"weights": 1}, path),
    lambda path: path.write_text("just some text\n"),
    lambda path: zipfile.ZipFile(path, "w").writestr("a.txt", "not a model"),
    lambda path: path.write_bytes(b""),
], ids=["another-pickle", "text", "zip", "empty"])
def test_loading_something_else_is_refused(tmp_path, write):
    write(tmp_path / "x.pt")
    with pytest.raises(ValueError, match="not a saved bench estimator"):
        EmotionClassifier.load(tmp_path / "x.pt")


def test_parameters_are_checked_before_any_data_with_scikit_learns_messages(tiny_synthetic):
    d = tiny_synthetic
    for bad, message in [({"batch_size": 0}, "'batch_size' parameter of ShuffleNetV2Classifier "
                          "must be an int in the range [1, inf). Got 0"),
                         ({"lr": -1}, "'lr' parameter"), ({"epochs": "abc"}, "'epochs' parameter"),
                         ({"optimizer": "foo"}, "'optimizer' parameter"),
                         ({"image_size": 0}, "'image_size' parameter")]:
        with pytest.raises(ValueError, match=re.escape(message)):
            get_estimator("shufflenet-v2", **bad).fit(d.images, d.label_names, d.subjects)
    with pytest.raises(ValueError, match="teacher_params: The 'epochs' parameter of LDGN"):
        get_estimator("ours", teacher_params={"epochs": 0}).check_params()


def test_a_single_class_is_refused(tiny_synthetic):
    d = tiny_synthetic
    with pytest.raises(ValueError, match="at least 2 classes"):
        get_estimator("shufflenet-v2", **TINY).fit(d.images, ["happiness"] * len(d.images))


def test_unfitted_estimator_refuses_to_predict(tiny_synthetic):
    with pytest.raises(NotFittedError):
        get_estimator("shufflenet-v2").predict(tiny_synthetic.images[:2])


def test_integer_labels_grey_rgb_and_any_size_work(tiny_synthetic):
    d = tiny_synthetic
    rgb = np.repeat(d.images[..., None], 3, axis=3)
    est = get_estimator("shufflenet-v2", **TINY).fit(rgb, d.labels)
    assert list(est.classes_) == [0, 1, 2, 3]
    big = np.zeros((3, 50, 70), np.uint8)  # resized on the fly to image_size
    assert est.predict(big).dtype == d.labels.dtype


def test_classes_parameter_keeps_an_absent_class_as_an_output(tiny_synthetic):
    d = tiny_synthetic
    keep = d.label_names != "surprise"
    est = get_estimator("shufflenet-v2", **TINY, classes=list(d.class_names))
    est.fit(d.images[keep], d.label_names[keep])
    assert list(est.classes_) == list(d.class_names)
    assert est.predict_proba(d.images[:2]).shape == (2, 4)
    with pytest.raises(ValueError, match="'contempt' is not one of classes"):
        est.fit(d.images[:2], ["anger", "contempt"])


@pytest.mark.parametrize("X, message", [
    (np.zeros((4, 8, 8), np.float32), "uint8"),
    (np.zeros((4, 8), np.uint8), "shape"),
    (np.zeros((4, 8, 8, 5), np.uint8), "shape"),
    (np.zeros((4, 8, 3), np.uint8), r"4 grey images 3 pixels wide; for one colour image .*X\[None\]"),
])
def test_bad_images_are_refused(X, message):
    with pytest.raises(ValueError, match=message):
        get_estimator("shufflenet-v2", **TINY).fit(X, [0, 1, 0, 1])


@pytest.mark.parametrize("y, message", [
    (lambda y: y + 0.1, "class labels .* Unknown label type: continuous"),
    (lambda y: np.where(y == 0, np.nan, y), "class labels .* NaN"),
], ids=["continuous", "nan"])
def test_labels_that_are_not_classes_are_refused(tiny_synthetic, y, message):
    """scikit-learn's rule: noisy float labels must not become one class per image."""
    d = tiny_synthetic
    with pytest.raises(ValueError, match=message):
        get_estimator("shufflenet-v2", **TINY).fit(d.images, y(d.labels.astype(float)))


def test_whole_number_float_labels_are_classes(tiny_synthetic):
    d = tiny_synthetic
    est = get_estimator("shufflenet-v2", **{**TINY, "epochs": 1}).fit(d.images, d.labels * 1.0)
    assert list(est.classes_) == [0.0, 1.0, 2.0, 3.0]


def test_one_teacher_setting_is_set_by_name_as_a_grid_search_does():
    from sklearn.base import clone

    est = get_estimator("ours", teacher_params={"epochs": 6, "lr": 0.01})
    est.set_params(teacher_params__epochs=2, lr=0.5)
    assert est.teacher_params == {"epochs": 2, "lr": 0.01} and est.lr == 0.5
    assert est.make_teacher().epochs == 2
    assert clone(est).teacher_params == {"epochs": 2, "lr": 0.01}
    fresh = get_estimator("ours").set_params(teacher_params__batch_size=8)
    assert fresh.teacher_params == {"batch_size": 8}
    with pytest.raises(ValueError, match="unknown name"):
        get_estimator("ours").set_params(teacher_params__nosuch=1).make_teacher()


def test_label_count_must_match(tiny_synthetic):
    with pytest.raises(ValueError, match="labels"):
        get_estimator("shufflenet-v2", **TINY).fit(tiny_synthetic.images[:5], [0, 1])


def test_best_epoch_is_chosen_on_validation(tiny_synthetic):
    d = tiny_synthetic
    est = get_estimator("shufflenet-v2", **{**TINY, "epochs": 4, "lr": 5e-3})
    est.fit(d.images, d.label_names, d.subjects)  # holds out 20 % of the subjects
    scores = [(h["val_accuracy"], -h["val_loss"]) for h in est.history_]
    assert est.best_epoch_ == 1 + max(range(4), key=lambda i: scores[i])
    assert all("val_macro_f1" in h and "train_loss" in h for h in est.history_)


def test_no_validation_keeps_the_last_epoch(tiny_synthetic):
    d = tiny_synthetic
    est = get_estimator("shufflenet-v2", **{**TINY, "epochs": 2}, validation_fraction=0)
    est.fit(d.images, d.label_names)
    assert est.best_epoch_ == 2 and "val_accuracy" not in est.history_[0]


def test_registry_refuses_unknown_names_and_parameters():
    with pytest.raises(BenchError, match="valid methods: shufflenet-v2"):
        get_estimator("resnet-9000")
    with pytest.raises(BenchError, match="no parameter.*epoch_count"):
        get_estimator("shufflenet-v2", epoch_count=3)


def test_metadata_is_complete():
    for name in list_methods():
        info = bench.method_info(name)
        assert info.display_name and info.description
        assert info.calibration in (None, "neutral", "unlabeled", "labeled")


# --------------------------------------------------------------------- ImageNet initialisation
def test_pretrained_without_weights_is_a_one_line_error(monkeypatch, tmp_path):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))

    def offline(*args, **kwargs):
        raise urllib.error.URLError("no network")

    monkeypatch.setattr(torch.hub, "download_url_to_file", offline)
    est = get_estimator("shufflenet-v2", pretrained=True)
    with pytest.raises(BenchError) as err:
        est.build_network(4)
    message = str(err.value)
    assert "\n" not in message and "--no-pretrained" in message
    assert str(tmp_path) in message and "https://" in message


def test_pretrained_uses_cached_weights(monkeypatch, tmp_path):
    import torchvision

    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    weights = torchvision.models.ShuffleNet_V2_X1_0_Weights.DEFAULT
    cached = tmp_path / "hub" / "checkpoints" / weights.url.rsplit("/", 1)[1]
    cached.parent.mkdir(parents=True)
    torch.manual_seed(1)
    reference = torchvision.models.shufflenet_v2_x1_0()
    torch.save(reference.state_dict(), cached)
    net = get_estimator("shufflenet-v2", pretrained=True).build_network(4)
    assert net.fc.out_features == 4
    torch.testing.assert_close(net.conv1[0].weight, reference.conv1[0].weight)


@pytest.mark.parametrize("arch, last_bn", [("resnet18", "bn2"), ("resnet50", "bn3")])
def test_from_scratch_resnet_blocks_start_as_the_identity(arch, last_bn):
    from bench.pretrained import torchvision_network

    net = torchvision_network(arch, 4, pretrained=False)
    blocks = [m for layer in (net.layer1, net.layer2, net.layer3, net.layer4) for m in layer]
    assert all(torch.count_nonzero(getattr(b, last_bn).weight) == 0 for b in blocks)
    assert torch.count_nonzero(net.bn1.weight) > 0  # only the residual branches' last BatchNorm


@pytest.mark.parametrize("y, message", [
    (["anger", None, "anger", "neutral"], "must all be names or all integers; y holds NoneType, str"),
    ([["anger"], ["neutral"], ["anger"], ["neutral"]], "one label per image"),
])
def test_labels_of_mixed_kinds_are_refused_clearly(y, message):
    X = np.zeros((4, 8, 8), np.uint8)
    with pytest.raises(ValueError, match=re.escape(message)):
        get_estimator("shufflenet-v2", **TINY).fit(X, y)


def test_a_teacher_must_be_a_fitted_ldgn(tiny_synthetic):
    d = tiny_synthetic
    student = get_estimator("ours", **TINY)
    with pytest.raises(TypeError, match="teacher must be a fitted LDGNClassifier .* got "
                                        "ShuffleNetV2Classifier"):
        student.fit(d.images, d.label_names, d.subjects,
                    teacher=get_estimator("shufflenet-v2", **TINY))
    with pytest.raises(NotFittedError):
        student.fit(d.images, d.label_names, d.subjects, teacher=student.make_teacher())
