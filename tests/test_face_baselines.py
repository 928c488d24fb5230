"""EfficientNet-LDL (stylised oversampling), EAC (erasing attention consistency), label noise."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from baselines.eac import CAMResNet50, EACClassifier, class_activation_maps, consistency_loss, random_erasing
from baselines.efficientnet import STYLES, oversample, oversampling_plan, stylise
from bench import RunSpec, get_estimator, run_grid, run_one
from bench.presets import preset_params
from bench.protocol import noisy_labels
from bench.records import run_path
from bench.registry import method_info

from .conftest import tiny_params


# ----------------------------------------------------------------------------------------- EAC
class MirrorNet(nn.Module):
    """Features = the input itself (mirror-equivariant), or a left-edge filter (not)."""

    def __init__(self, symmetric: bool, classes: int = 3):
        super().__init__()
        self.symmetric = symmetric
        self.conv = nn.Conv2d(3, 3, (1, 3), padding=(0, 1), bias=False)
        with torch.no_grad():
            self.conv.weight.zero_()
            self.conv.weight[:, :, 0, 0] = torch.eye(3)  # look one pixel to the left
        self.fc = nn.Linear(3, classes)

    def features(self, x):
        return x if self.symmetric else self.conv(x)


def test_cam_shape_and_flip_equivariance_on_a_symmetric_input():
    net = MirrorNet(symmetric=True)
    x = torch.randn(2, 3, 6, 4)
    x = torch.cat([x, x.flip(-1)], dim=3)  # mirror-symmetric images
    cams = class_activation_maps(net.features(x), net.fc.weight)
    assert cams.shape == (2, 3, 6, 8)
    torch.testing.assert_close(cams, class_activation_maps(net.features(x.flip(-1)),
                                                           net.fc.weight).flip(-1))


def test_consistency_is_zero_for_mirror_symmetry_and_positive_otherwise():
    x = torch.randn(2, 3, 6, 8)
    assert consistency_loss(MirrorNet(symmetric=True), x)[1].item() == pytest.approx(0, abs=1e-7)
    assert consistency_loss(MirrorNet(symmetric=False), x)[1].item() > 1e-3


def test_one_pass_over_the_pair_matches_two_passes():
    net, x = MirrorNet(symmetric=False), torch.randn(3, 3, 6, 8)
    logits, loss = consistency_loss(net, x)
    f1, f2 = net.features(x), net.features(x.flip(-1))
    expected = F.mse_loss(class_activation_maps(f1, net.fc.weight),
                          class_activation_maps(f2, net.fc.weight).flip(-1))
    torch.testing.assert_close(logits, net.fc(f1.mean((2, 3))))
    torch.testing.assert_close(loss, expected)


def test_cam_weights_are_detached():
    net = MirrorNet(symmetric=True)
    _, loss = consistency_loss(MirrorNet(symmetric=False), torch.randn(1, 3, 4, 4))
    loss.backward()
    assert net.fc.weight.grad is None


def test_erasing_comes_before_the_flip(monkeypatch):
    torch.manual_seed(0)
    x = torch.ones(4, 3, 16, 16)
    erased = random_erasing(x, p=1.0, scale=(0.1, 0.2))
    assert ((erased == 0).flatten(1).any(1)).all()  # every image got a box
    seen = []
    net = MirrorNet(symmetric=True)
    original = net.features
    monkeypatch.setattr(net, "features", lambda t: seen.append(t) or original(t))
    consistency_loss(net, erased)
    first, mirrored = seen[0].chunk(2)  # one pass over the pair
    torch.testing.assert_close(mirrored, first.flip(-1))  # the pair shares the box, mirrored
    assert (first == 0).any()


def test_eac_trains_and_its_network_is_resnet50(tiny_synthetic):
    d = tiny_synthetic
    est = get_estimator("eac", **tiny_params("eac")).fit(d.images, d.label_names, d.subjects)
    assert est.network_.features(torch.zeros(1, 3, 64, 64)).shape == (1, 2048, 2, 2)
    assert np.isfinite(est.history_[0]["train_loss"])


def test_eac_design_point_is_the_least_input_with_spatial_attention_maps():
    """The declared size is recomputed: layer4's maps are 2x2 there and 1x1 one pixel below."""
    (point,) = EACClassifier.design_points
    net = CAMResNet50(3).eval()
    with torch.no_grad():
        at, below = (net.features(torch.zeros(1, 3, s, s)).shape[-2:]
                     for s in (point.min_size, point.min_size - 1))
    assert tuple(at) == (2, 2) and tuple(below) == (1, 1)
    # every preset's rows run at or above it
    for preset in ("quick", "paper"):
        assert preset_params(preset, method_info("eac").presets)["image_size"] >= point.min_size


# ----------------------------------------------------------------------------- stylisation
@pytest.mark.parametrize("style", STYLES)
@pytest.mark.parametrize("shape", [(48, 48), (40, 56, 3)])
def test_each_style_keeps_shape_and_changes_the_image(style, shape):
    image = np.random.default_rng(0).integers(0, 256, shape, dtype=np.uint8)
    out = stylise(image, style)
    assert out.shape == image.shape and out.dtype == np.uint8
    assert np.abs(out.astype(int) - image).mean() > 2


def test_oversampling_rule():
    assert oversampling_plan({"a": 100, "b": 10, "c": 95, "d": 40}) == {
        "a": 0, "b": 13, "c": 5, "d": 13}  # min(2n, ceil(12.5 % of 100), 100 - n)
    assert oversampling_plan({"a": 4772, "b": 281}) == {"a": 0, "b": 562}
    assert set(oversampling_plan({"a": 5, "b": 5}).values()) == {0}  # balanced: nothing


def test_only_minority_images_are_stylised_and_counts_match_the_rule():
    rng = np.random.default_rng(0)
    X = rng.integers(0, 256, (130, 24, 24), dtype=np.uint8)
    y = np.array(["happiness"] * 100 + ["fear"] * 10 + ["anger"] * 20)
    groups = np.array([f"s{i % 5}" for i in range(130)], dtype=object)
    X2, y2, g2, before, after = oversample(X, y, groups, 0.125, rng)
    assert before == {"anger": 20, "fear": 10, "happiness": 100}
    assert after == {"anger": 33, "fear": 23, "happiness": 100}
    np.testing.assert_array_equal(X2[:130], X)  # the originals are untouched
    assert (y2[130:] != "happiness").all() and len(y2) == 156 and len(g2) == 156


def test_stylising_estimator_reports_counts_and_never_touches_test_images(tiny_synthetic, monkeypatch):
    d = tiny_synthetic
    keep = ~((d.label_names == "anger") & (d.frames > 1))  # anger becomes a minority class
    calls = []
    import baselines.efficientnet as eff

    original = eff.stylise
    monkeypatch.setattr(eff, "stylise", lambda im, st: calls.append(1) or original(im, st))
    est = get_estimator("efficientnet-ldl-style", **tiny_params("efficientnet-ldl-style"))
    est.fit(d.images[keep], d.label_names[keep], d.subjects[keep])
    report = est.report_
    assert report["class_counts_after"]["anger"] > report["class_counts_before"]["anger"]
    assert report["class_counts_after"]["neutral"] == report["class_counts_before"]["neutral"]
    fitted = len(calls)
    est.predict(d.images)
    assert len(calls) == fitted > 0


# ---------------------------------------------------------------------------------- label noise
def test_label_noise_flips_exactly_round_p_n_labels():
    labels = np.array(["anger", "happiness", "surprise", "neutral"] * 25, dtype=object)
    noisy = noisy_labels(labels, ("anger", "happiness", "surprise", "neutral"), 0.2, seed=3)
    assert (noisy != labels).sum() == 20 and set(noisy) <= set(labels)
    again = noisy_labels(labels, ("anger", "happiness", "surprise", "neutral"), 0.2, seed=3)
    assert (noisy == again).all()
    assert (noisy_labels(labels, ("anger", "happiness", "surprise", "neutral"), 0.0, 3) == labels).all()


def test_protocol_noise_reaches_training_only():
    options = {"n_subjects": 6, "frames": 4}
    record = run_one(RunSpec("shufflenet-v2", "synthetic", 4, 0, preset="smoke", latency=False,
                             dataset_options=options, params={"epochs": 1}, label_noise=0.25))
    assert record["label_noise"] == 0.25
    assert record["noisy_labels"] == round(0.25 * record["n_train"])
    assert sum(map(sum, record["confusion_matrix"])) == record["n_test"]  # test labels complete
    assert run_path("out", "synthetic", 4, "eac", 0, 0.2).name == "synthetic-4-noise20-eac-seed0.json"


# ------------------------------------------------------------------------------------- smoke
SMALL = {"n_subjects": 6, "frames": 4}


@pytest.mark.parametrize("name", ["efficientnet-ldl", "eac"])
@pytest.mark.parametrize("classes", [4, 7])
def test_smoke_at_4_and_7_classes(name, classes):
    record = run_one(RunSpec(name, "synthetic", classes, 0, preset="smoke", latency=False,
                             dataset_options=SMALL, params={"epochs": 1}))
    assert len(record["class_names"]) == classes and 0 <= record["accuracy"] <= 1


@pytest.mark.ckplus
@pytest.mark.parametrize("name", ["efficientnet-ldl-style", "eac"])
def test_face_baselines_on_real_ckplus(ckplus_root, name):
    record = run_one(RunSpec(name, "ckplus", 7, 0, root=str(ckplus_root), preset="smoke",
                             latency=False, params={"epochs": 1}))
    assert record["n_test"] > 100
    if name == "efficientnet-ldl-style":  # CK+ is mostly neutral: the other classes get copies
        report = record["method_report"]
        assert report["class_counts_after"]["fear"] > report["class_counts_before"]["fear"]


def test_stylised_oversampling_of_balanced_data_reuses_the_plain_fit():
    """On balanced data the style row stylises nothing, so the protocol fits that model once."""
    options = {"n_subjects": 6, "frames": 4}
    params = {"epochs": 1, "teacher_params": {"epochs": 1}}
    plain, styled = run_grid([RunSpec(m, "synthetic", 4, 5, preset="smoke", latency=False,
                                      dataset_options=options, params=params)
                              for m in ("efficientnet-ldl", "efficientnet-ldl-style")])
    assert not plain["reused_fit"] and styled["reused_fit"]
    assert styled["accuracy"] == plain["accuracy"] and styled["params"]["stylise"] is True
    est = get_estimator("efficientnet-ldl-style")
    assert est.fit_signature(np.array(["a"] * 4 + ["b"] * 4))["stylise"] is False
    assert est.fit_signature(np.array(["a"] * 8 + ["b"] * 2))["stylise"] is True


def test_stochastic_depth_reaches_every_block_and_the_quick_preset_turns_it_off():
    from torchvision.ops import StochasticDepth

    from bench.presets import preset_params
    from bench.registry import method_info

    def drop_rates(est):
        return [m.p for m in est.build_network(4).modules() if isinstance(m, StochasticDepth)]

    default = drop_rates(get_estimator("efficientnet-b0"))
    assert len(default) == 16 and max(default) == pytest.approx(0.2 * 15 / 16)
    for name in ("efficientnet-b0", "efficientnet-ldl", "efficientnet-ldl-style"):
        quick = preset_params("quick", method_info(name).presets)
        assert quick["stochastic_depth"] == 0.0
        assert drop_rates(get_estimator(name, **quick)) == [0.0] * 16


@pytest.mark.parametrize("channels", [1, 4])
def test_stylising_keeps_a_channel_axis_and_passes_alpha_through(channels):
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (24, 32, channels), dtype=np.uint8)
    for style in STYLES:
        out = stylise(image, style)
        assert out.shape == image.shape and out.dtype == np.uint8
        if channels == 4:
            np.testing.assert_array_equal(out[..., 3], image[..., 3])
    X = np.repeat(image[None], 6, axis=0)
    X2, y2, _, _, after = oversample(X, np.array(["a"] * 5 + ["b"]), np.arange(6), 0.5,
                                     np.random.default_rng(0))
    assert X2.shape[1:] == image.shape and after == {"a": 5, "b": 3}
