"""The paper's method: network shapes, module behaviour, label distribution learning."""

import numpy as np
import pandas as pd
import pytest
import torch
import torch.nn.functional as F

from bench import RunSpec, get_estimator, run_grid, run_one
from bench.teacher import LDGNClassifier, soft_cross_entropy
from ours import EyeEmotionNet, GlobalEnhancement, LocalEnhancement, OursClassifier

from .conftest import TINY

VARIANTS = [(False, False), (True, False), (False, True), (True, True)]


@pytest.mark.parametrize("lem, gem", VARIANTS)
@pytest.mark.parametrize("size", [224, 64, 32, 40])
def test_output_shapes_at_paper_quick_smoke_and_odd_sizes(lem, gem, size):
    net = EyeEmotionNet(4, lem, gem).eval()
    with torch.no_grad():
        assert net(torch.zeros(2, 3, size, size)).shape == (2, 4)


def test_module_shapes_at_224():
    x = torch.randn(2, 24, 56, 56)
    assert LocalEnhancement()(x).shape == (2, 116, 28, 28)
    assert GlobalEnhancement()(torch.randn(2, 116, 28, 28)).shape == (2, 116, 28, 28)


def test_without_modules_it_is_torchvision_shufflenet():
    import torchvision

    torch.manual_seed(0)
    ours = EyeEmotionNet(4, lem=False, gem=False).eval()
    ref = torchvision.models.shufflenet_v2_x1_0(num_classes=4).eval()
    ref.load_state_dict(ours.state_dict())
    x = torch.randn(1, 3, 64, 64)
    torch.testing.assert_close(ours(x), ref(x))


def _features(lem, gem, x):
    torch.manual_seed(0)
    base = EyeEmotionNet(4, False, False).eval()
    net = EyeEmotionNet(4, lem, gem).eval()
    net.load_state_dict(base.state_dict(), strict=False)
    with torch.no_grad():
        return base.features(x), net.features(x)


@pytest.mark.parametrize("lem, gem", VARIANTS[1:])
def test_each_module_changes_the_features(lem, gem):
    x = torch.randn(2, 3, 64, 64)
    plain, enhanced = _features(lem, gem, x)
    assert plain.shape == enhanced.shape
    assert (plain - enhanced).abs().mean() > 1e-3 * plain.abs().mean()


def test_gem_is_not_the_identity_and_weights_each_position():
    gem = GlobalEnhancement().eval()
    x = torch.randn(2, 116, 28, 28)
    with torch.no_grad():
        ratio = gem(x) / x
    assert 0 < ratio.min() and ratio.max() < 1  # a sigmoid weight per element
    assert ratio.std() > 1e-4


def test_lem_weights_each_quadrant():
    lem = LocalEnhancement().eval()
    x = torch.randn(1, 24, 56, 56)
    x[..., :28, :28] = 0  # a blank top-left quadrant gives a blank top-left output
    with torch.no_grad():
        out = lem(x)
    assert out[..., :14, :14].std() < 1e-6 and out[..., 14:, 14:].std() > 1e-3


@pytest.mark.parametrize("lem, gem", VARIANTS[1:])
def test_gradients_reach_the_enhancement_modules(lem, gem):
    net = EyeEmotionNet(4, lem, gem).train()
    net(torch.randn(4, 3, 64, 64)).logsumexp(1).sum().backward()
    for module in (net.lem, net.gem):
        if module is None:
            continue
        for name, p in module.named_parameters():
            assert p.grad is not None and p.grad.abs().sum() > 0, name


def test_soft_cross_entropy_is_kl_plus_teacher_entropy():
    torch.manual_seed(0)
    logits = torch.randn(8, 4)
    d = torch.softmax(torch.randn(8, 4) * 2, 1)
    kl = F.kl_div(F.log_softmax(logits, 1), d, reduction="batchmean")
    entropy = -(d * d.log()).sum(1).mean()
    torch.testing.assert_close(soft_cross_entropy(logits, d), kl + entropy)
    # minimal (zero gradient) when the student reproduces the distribution
    z = d.log().clone().requires_grad_(True)
    soft_cross_entropy(z, d).backward()
    assert z.grad.abs().max() < 1e-6
    # with one-hot targets it is the ordinary cross-entropy
    y = torch.randint(0, 4, (8,))
    torch.testing.assert_close(soft_cross_entropy(logits, F.one_hot(y, 4).float()),
                               F.cross_entropy(logits, y))


def test_teacher_distributions_sum_to_one(tiny_synthetic):
    d = tiny_synthetic
    teacher = LDGNClassifier(**TINY).fit(d.images, d.label_names, d.subjects)
    dist = teacher.distributions(d.images)
    assert dist.shape == (len(d), 4) and (dist >= 0).all()
    np.testing.assert_allclose(dist.sum(1), 1, atol=1e-5)


def test_declarations_and_teacher_settings():
    ours = get_estimator("ours", epochs=7, teacher_params={"epochs": 3}, lr=0.01, image_size=48)
    assert ours.uses_teacher() and not get_estimator("ours-sll").uses_teacher()
    assert not get_estimator("ours-lem").uses_teacher()
    teacher = ours.make_teacher()
    assert isinstance(teacher, LDGNClassifier)
    assert (teacher.epochs, teacher.lr, teacher.image_size) == (3, 0.01, 48)
    assert get_estimator("ours", epochs=7).make_teacher().epochs == 7
    with pytest.raises(ValueError, match="unknown name"):
        get_estimator("ours", teacher_params={"depth": 101}).make_teacher()


def test_student_learns_from_the_given_teacher_only(tiny_synthetic, monkeypatch):
    d = tiny_synthetic
    teacher = LDGNClassifier(**TINY).fit(d.images, d.label_names, d.subjects)
    monkeypatch.setattr(LDGNClassifier, "fit", lambda *a, **k: pytest.fail("teacher retrained"))
    student = OursClassifier(**TINY).fit(d.images, d.label_names, d.subjects, teacher=teacher)
    assert student.teacher_["method"] == "ldgn" and student.teacher_["train_s"] > 0
    assert not hasattr(student, "_teacher")  # the teacher is not kept (nor saved) with the student
    assert sum(p.numel() for p in student.inference_network().parameters()) < 1.3e6


def test_single_label_variant_trains_no_teacher(tiny_synthetic, monkeypatch):
    monkeypatch.setattr(LDGNClassifier, "fit", lambda *a, **k: pytest.fail("teacher trained"))
    d = tiny_synthetic
    est = get_estimator("ours-sll", **TINY).fit(d.images, d.label_names, d.subjects)
    assert est.teacher_ is None


def test_teacher_with_other_classes_is_refused(tiny_synthetic):
    d = tiny_synthetic
    keep = d.label_names != "surprise"
    teacher = LDGNClassifier(**TINY).fit(d.images[keep], d.label_names[keep])
    with pytest.raises(ValueError, match="teacher's classes"):
        OursClassifier(**TINY).fit(d.images, d.label_names, teacher=teacher)


def test_fer2013_pretraining_of_the_generator(tiny_synthetic, tmp_path):
    rng = np.random.default_rng(0)
    rows = [(e, " ".join(map(str, rng.integers(0, 256, 48 * 48))), usage)
            for e in (0, 3, 5, 6, 1) for usage in ("Training", "Training", "PublicTest")]
    pd.DataFrame(rows, columns=["emotion", "pixels", "Usage"]).to_csv(tmp_path / "fer2013.csv",
                                                                       index=False)
    d = tiny_synthetic
    fer = {"teacher_pretrain": "fer2013", "teacher_pretrain_root": str(tmp_path)}
    teacher = LDGNClassifier(**TINY, **fer, teacher_pretrain_epochs=1)
    teacher.fit(d.images, d.label_names, d.subjects)
    assert len(teacher.pretrain_history_) == 1 and "val_accuracy" in teacher.pretrain_history_[0]
    assert teacher.pretrain_["dataset"] == "fer2013" and teacher.pretrain_["validation_images"] == 4
    student = OursClassifier(**TINY, **fer).fit(d.images, d.label_names)
    assert student.teacher_["pretrain"]["images"] == 8  # the four 4-class emotions' Training rows
    with pytest.raises(Exception, match="emotion class names"):
        LDGNClassifier(**TINY, **fer).fit(d.images, d.labels)


@pytest.fixture
def teacher_fits(monkeypatch):
    """The random_state of every LDGN fit made during the test."""
    fits = []
    original = LDGNClassifier.fit

    def counting_fit(self, *args, **kwargs):
        fits.append(self.get_params()["random_state"])
        return original(self, *args, **kwargs)

    monkeypatch.setattr(LDGNClassifier, "fit", counting_fit)
    return fits


def test_protocol_trains_one_teacher_per_split_for_all_students(teacher_fits):
    options = {"n_subjects": 6, "frames": 4}
    params = {"epochs": 1, "teacher_params": {"epochs": 1}}
    records = run_grid([RunSpec(m, "synthetic", 4, 0, preset="smoke", latency=False,
                                dataset_options=options, params=params)
                        for m in ("ours", "emo-ldl")])
    assert teacher_fits == [0]
    teacher = records[1]["teacher"]
    assert teacher["method"] == "ldgn" and records[1]["train_s"] >= teacher["train_s"]
    assert records[0]["params_m"] == pytest.approx(1.28, abs=0.01)  # the teacher is not counted


@pytest.mark.ckplus
@pytest.mark.parametrize("name", ["ours", "ours-sll"])
def test_runs_on_real_ckplus(ckplus_root, name):
    record = run_one(RunSpec(name, "ckplus", 7, 0, root=str(ckplus_root), preset="smoke",
                             latency=False, params={"epochs": 1, "image_size": 48}))
    assert record["n_test"] > 100 and 0 <= record["accuracy"] <= 1
    assert (record["teacher"] is not None) == (name == "ours")


def test_generator_row_reuses_the_teacher_trained_for_ours(teacher_fits):
    options = {"n_subjects": 6, "frames": 4}
    params = {"epochs": 1, "teacher_params": {"epochs": 1}}
    ours, ldgn = run_grid([
        RunSpec("ours", "synthetic", 4, 2, preset="smoke", latency=False, dataset_options=options,
                params=params),
        RunSpec("ldgn", "synthetic", 4, 2, preset="smoke", latency=False, dataset_options=options,
                params={"epochs": 1})])
    assert len(teacher_fits) == 1 and ldgn["reused_teacher_fit"] and not ours["reused_teacher_fit"]
    assert ldgn["train_s"] >= ours["teacher"]["train_s"] > 0  # wall time >= its epochs' time
    assert ldgn["params_m"] == pytest.approx(23.52, abs=0.01)


def test_a_teacher_trained_on_other_stored_images_is_not_reused(teacher_fits):
    options = {"n_subjects": 6, "frames": 4}
    _, ldgn = run_grid([
        RunSpec("ours", "synthetic", 4, 3, preset="smoke", latency=False, dataset_options=options,
                params={"epochs": 1, "teacher_params": {"epochs": 1, "image_size": 40}}),
        RunSpec("ldgn", "synthetic", 4, 3, preset="smoke", latency=False, dataset_options=options,
                params={"epochs": 1, "image_size": 40})])
    assert len(teacher_fits) == 2 and not ldgn["reused_teacher_fit"]


def test_the_teacher_is_kept_while_other_fits_of_the_split_come_and_go(teacher_fits):
    """In registry order several other methods train between two students of one teacher."""
    options = {"n_subjects": 6, "frames": 4}
    params = {"epochs": 1, "teacher_params": {"epochs": 1}}
    run_grid([RunSpec(method, "synthetic", 4, 4, preset="smoke", latency=False,
                      dataset_options=options, params=params if "ldl" in method or method == "ours"
                      else {"epochs": 1})
              for method in ("ours", "shufflenet-v2", "ours-lem", "ours-gem", "ours-sll",
                             "emo-ldl")])
    assert teacher_fits == [4]


def test_runs_outside_one_grid_train_their_own_teacher(teacher_fits):
    """No fit is kept between calls: each grid (or run_one) trains what it needs."""
    spec = RunSpec("ours", "synthetic", 4, 5, preset="smoke", latency=False,
                   dataset_options={"n_subjects": 6, "frames": 4},
                   params={"epochs": 1, "teacher_params": {"epochs": 1}})
    first, second = run_one(spec), run_one(spec)
    assert teacher_fits == [5, 5] and first["accuracy"] == second["accuracy"]
