"""Label distribution learning, shared by every method that learns from a teacher: the ResNet-50
label distribution generator (LDGN), its optional pre-training on a face dataset, and the student
side (:class:`LabelDistributionStudent`).

The LDGN is a ResNet-50 classifier trained with cross-entropy on the training split. Its softmax
(temperature 1, the paper's eq. 1) on a training image is that image's label distribution. A
student is trained with the soft cross-entropy between the distribution and its prediction (eq.
2), with no hard-label term.

**Distributions are computed once per training image, not per augmented batch.** The teacher runs
one eval-mode pass over the un-augmented training images: the targets are then fixed and
reproducible, exactly as the paper describes ("generate the label distribution data set"); the
teacher's forward pass is not repeated every batch of every epoch; and one fitted teacher can be
shared by every student of a run. The price is that the distribution does not follow the random
crop and flip, which for these mild augmentations hardly changes the expression.

Eq. 2 also divides by the number of classes; that constant only rescales the learning rate, so the
loss here is the usual per-sample soft cross-entropy (mean over samples), which equals the KL
divergence to the teacher plus the teacher's entropy.

**Pre-training on faces** (the paper pre-trains on FER2013): ``teacher_pretrain`` names any
registered face dataset (``ckplus``, ``jaffe``, ``rafdb``, ``fer2013``, ``folder``), read from
``teacher_pretrain_root`` (default ``$BENCH_DATA/<name>``). It is leak-safe by construction (see
:mod:`bench.pretraining`): no image of a validation or test subject of the benchmark's split ever
reaches it, even when the benchmark is eye crops cut from the very same faces.

**Teacher quality** is measured, not assumed: a student's ``teacher_`` (copied into its run
record) holds the teacher's validation accuracy and macro F1, its accuracy on the training images
it labels, and the mean entropy of the distributions it hands over.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F
from sklearn.metrics import f1_score
from sklearn.utils.validation import check_is_fitted

from .estimator import EmotionClassifier
from .pretrained import torchvision_network
from .pretraining import FacePretraining, pretrain_constraints

#: the teacher's budget in the smoke and quick presets (the `ldgn` row uses the same, so in a run
#: with both it is the very teacher the students learned from). Quick: 16 epochs at lr 1e-3 (320
#: steps at batch 16), measured to validate at least as well as the hard-label student `ours-sll`
#: on synthetic-4 and CK+ eye crops where 12 epochs at the preset's lr 3e-3 did not; see
#: docs/methods.md, "Teacher quality, measured"
TEACHER_PRESETS = {"smoke": {"epochs": 1},
                   "quick": {"epochs": 16, "lr": 1e-3}}


def soft_cross_entropy(logits: torch.Tensor, distributions: torch.Tensor) -> torch.Tensor:
    """Mean over samples of ``-sum_c d_c log softmax(logits)_c`` (log-softmax for stability)."""
    return -(distributions * F.log_softmax(logits, dim=1)).sum(dim=1).mean()


class LDGNClassifier(FacePretraining, EmotionClassifier):
    """The label distribution generator: ResNet-50, single-label cross-entropy.

    Parameters (besides :class:`bench.EmotionClassifier`'s)
    --------------------------------------------------------
    teacher_pretrain, teacher_pretrain_root, teacher_pretrain_epochs : a registered face dataset
        to pre-train on first (same class names), then fine-tune on the training data, as the
        paper does with FER2013; its folder and epochs (see
        :class:`bench.pretraining.FacePretraining`, which makes it leak-safe).
    """

    pretrain_param = "teacher_pretrain"
    _parameter_constraints = {**EmotionClassifier._parameter_constraints,
                              **pretrain_constraints("teacher_pretrain")}

    def __init__(self, *, teacher_pretrain=None, teacher_pretrain_root=None,
                 teacher_pretrain_epochs=None, **base):
        super().__init__(**base)
        self.teacher_pretrain = teacher_pretrain
        self.teacher_pretrain_root = teacher_pretrain_root
        self.teacher_pretrain_epochs = teacher_pretrain_epochs

    def build_network(self, n_classes):
        return torchvision_network("resnet50", n_classes, self.pretrained)

    def distributions(self, X) -> np.ndarray:
        """Label distributions (softmax, temperature 1) of images ``X``, rows summing to one."""
        return self.predict_proba(X).astype(np.float32)


class LabelDistributionStudent(EmotionClassifier):
    """Base for estimators that can learn from the LDGN's label distributions.

    Declares ``needs_teacher = "ldl"`` (a teacher when ``ldl`` is on), so a grid can train one
    teacher per split and hand it to every such student through ``fit(..., teacher=...)``; without one,
    ``fit`` trains its own with :meth:`make_teacher`.

    Parameters (besides :class:`bench.EmotionClassifier`'s)
    --------------------------------------------------------
    ldl : learn the teacher's label distributions; ``False`` trains on hard labels.
    teacher_params : the teacher's settings that differ from this estimator's (a dict of
        :class:`LDGNClassifier` parameters, e.g. ``{"epochs": 6, "batch_size": 32}``).
    teacher_pretrain, teacher_pretrain_root, teacher_pretrain_epochs : the teacher's pre-training
        on a face dataset (see :class:`LDGNClassifier`).
    """

    needs_teacher = "ldl"
    pretrain_param = "teacher_pretrain"  # passed on to the teacher (make_teacher)
    _parameter_constraints = {**EmotionClassifier._parameter_constraints, "ldl": ["boolean"],
                              "teacher_params": [dict, None],
                              **pretrain_constraints("teacher_pretrain")}

    def __init__(self, *, ldl=True, teacher_params=None, teacher_pretrain=None,
                 teacher_pretrain_root=None, teacher_pretrain_epochs=None, **base):
        super().__init__(**base)
        self.ldl = ldl
        self.teacher_params = teacher_params
        self.teacher_pretrain = teacher_pretrain
        self.teacher_pretrain_root = teacher_pretrain_root
        self.teacher_pretrain_epochs = teacher_pretrain_epochs

    def set_params(self, **params):
        """scikit-learn's, plus ``teacher_params__<name>=value`` for one teacher setting, merged
        into a copy of ``teacher_params`` (a grid search can then vary the teacher's epochs)."""
        nested = {key.removeprefix("teacher_params__"): params.pop(key)
                  for key in list(params) if key.startswith("teacher_params__")}
        super().set_params(**params)
        if nested:
            self.teacher_params = {**(self.teacher_params or {}), **nested}
        return self

    def make_teacher(self) -> LDGNClassifier:
        """An unfitted LDGN with this student's training settings, updated by ``teacher_params``."""
        params = {k: getattr(self, k) for k in self.base_param_names()}
        params.update(teacher_pretrain=self.teacher_pretrain,
                      teacher_pretrain_root=self.teacher_pretrain_root,
                      teacher_pretrain_epochs=self.teacher_pretrain_epochs)
        params.update(self.teacher_params or {})
        unknown = sorted(set(params) - set(LDGNClassifier().get_params()))
        if unknown:
            raise ValueError(f"teacher_params has unknown name(s) {unknown}")
        return LDGNClassifier(**params)

    def fit(self, X, y, groups=None, *, validation_data=None, teacher=None):
        """Fit; with ``ldl`` the targets are the distributions of ``teacher`` (a fitted
        :class:`LDGNClassifier`), trained here first when not given."""
        X, y, groups = self.check_fit_inputs(X, y, groups)  # before the teacher trains
        self._teacher = None
        self.teacher_ = None
        if self.uses_teacher():
            if teacher is not None:
                check_teacher(teacher)
            else:
                teacher = self.make_teacher().fit(X, y, groups, validation_data=validation_data)
            self._teacher = teacher
        try:
            return super().fit(X, y, groups, validation_data=validation_data)
        finally:
            del self._teacher

    def _targets(self, X, y, device):
        if self._teacher is None:
            return super()._targets(X, y, device)
        if list(self._teacher.classes_) != list(self.classes_):
            raise ValueError(f"the teacher's classes {list(self._teacher.classes_)} differ from "
                             f"the student's {list(self.classes_)}")
        distributions = self._teacher.distributions(X)
        self.teacher_ = teacher_summary(self._teacher, distributions, y)
        return torch.from_numpy(distributions)

    def _loss(self, network, inputs, targets):
        if targets.ndim == 1:
            return super()._loss(network, inputs, targets)
        logits = network(inputs)
        return soft_cross_entropy(logits, targets), logits


def check_teacher(teacher) -> None:
    """A teacher handed to ``fit`` must be a fitted :class:`LDGNClassifier`."""
    if not isinstance(teacher, LDGNClassifier):
        raise TypeError(f"teacher must be a fitted LDGNClassifier (see make_teacher()); got "
                        f"{type(teacher).__name__}")
    check_is_fitted(teacher)


def teacher_summary(teacher: LDGNClassifier, distributions: np.ndarray | None = None,
                    y: np.ndarray | None = None) -> dict:
    """What a student's record says about its teacher: how it was trained and how good it is
    (validation scores at its chosen epoch; with the distributions it handed over and the true
    labels of those images, its accuracy on them and their mean entropy in nats and as a
    fraction of the uniform distribution's)."""
    best = teacher.history_[teacher.best_epoch_ - 1]
    summary = {
        "method": "ldgn",
        "epochs": teacher.n_epochs_,
        "planned_epochs": getattr(teacher, "planned_epochs_", teacher.n_epochs_),
        "stopped_early": bool(getattr(teacher, "stopped_early_", False)),
        "best_epoch": teacher.best_epoch_,
        "val_accuracy": best.get("val_accuracy"),
        "val_macro_f1": best.get("val_macro_f1"),
        "train_s": sum(h["seconds"] for h in teacher.history_ + teacher.pretrain_history_),
        "pretrain": getattr(teacher, "pretrain_", None),
    }
    if distributions is not None and y is not None:
        p = np.clip(distributions.astype(np.float64), 1e-12, 1.0)
        entropy = float(-(p * np.log(p)).sum(1).mean())
        predicted = distributions.argmax(1)
        summary.update(
            labelled_accuracy=float((predicted == np.asarray(y)).mean()),
            labelled_macro_f1=float(f1_score(y, predicted, average="macro", zero_division=0)),
            mean_entropy=entropy,
            relative_entropy=entropy / math.log(distributions.shape[1]))
    return summary
