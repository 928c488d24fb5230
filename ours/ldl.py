"""Label distribution learning: the ResNet-50 generator (LDGN) and the student side of it.

The LDGN is a ResNet-50 classifier trained with cross-entropy on the training split (optionally
pre-trained on FER2013 faces first, as in the paper). Its softmax (temperature 1, the paper's eq. 1)
on a training image is that image's label distribution. A student is then trained with the soft
cross-entropy between the distribution and its prediction (eq. 2), with no hard-label term.

**Distributions are computed once per training image, not per augmented batch.** The teacher runs
one eval-mode pass over the un-augmented training images. Reasons: the targets are then fixed and
reproducible, exactly as the paper describes ("generate the label distribution data set"); the
teacher's forward pass is not repeated every batch of every epoch (at the paper's 600 epochs that
is 600 times fewer ResNet-50 passes, which dominate the training cost otherwise); and one fitted
teacher can be shared by every student of a run. The price is that the distribution does not follow
the random crop and flip, which for these mild augmentations hardly changes the expression.

Eq. 2 also divides by the number of classes; that constant only rescales the learning rate, so the
loss here is the usual per-sample soft cross-entropy (mean over samples), which equals the
KL divergence to the teacher plus the teacher's entropy and is on the same scale as the hard-label
cross-entropy of the single-label ablations.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from bench import EmotionClassifier
from bench.classes import CLASSES_7
from bench.data import load_dataset
from bench.engine import train
from bench.errors import BenchError
from bench.pretrained import torchvision_network

#: estimator parameters a student hands on to its teacher
SHARED_PARAMS = ("epochs", "batch_size", "lr", "optimizer", "momentum", "weight_decay", "scheduler", "gamma",
                 "image_size", "augment", "pretrained", "device", "random_state",
                 "validation_fraction", "selection_metric", "classes", "verbose")


def soft_cross_entropy(logits: torch.Tensor, distributions: torch.Tensor) -> torch.Tensor:
    """Mean over samples of ``-sum_c d_c log softmax(logits)_c`` (log-softmax for stability)."""
    return -(distributions * F.log_softmax(logits, dim=1)).sum(dim=1).mean()


class LDGNClassifier(EmotionClassifier):
    """The label distribution generator: ResNet-50, single-label cross-entropy.

    Parameters (besides :class:`bench.EmotionClassifier`'s)
    --------------------------------------------------------
    fer2013_root : a FER2013 CSV (or its folder); when given, the network is first trained on
        FER2013's Training rows (PublicTest chooses the best epoch) for the same classes, then
        fine-tuned on the eye data, as the paper does.
    fer2013_epochs : epochs of that pre-training (default: ``epochs``).
    """

    def __init__(self, *, epochs=600, batch_size=128, lr=1e-4, optimizer="sgd", momentum=0.8,
                 weight_decay=0.0, scheduler="constant", gamma=0.9, image_size=224, augment=True,
                 pretrained=False, device="auto", random_state=None, validation_fraction=0.2,
                 selection_metric="accuracy", classes=None, verbose=0, fer2013_root=None,
                 fer2013_epochs=None):
        super().__init__(
            epochs=epochs, batch_size=batch_size, lr=lr, optimizer=optimizer, momentum=momentum,
            weight_decay=weight_decay, scheduler=scheduler, gamma=gamma, image_size=image_size,
            augment=augment, pretrained=pretrained, device=device, random_state=random_state,
            validation_fraction=validation_fraction, selection_metric=selection_metric,
            classes=classes, verbose=verbose)
        self.fer2013_root = fer2013_root
        self.fer2013_epochs = fer2013_epochs

    def build_network(self, n_classes):
        return torchvision_network("resnet50", n_classes, self.pretrained)

    def _prepare_network(self, network, device):
        self.pretrain_history_ = []
        if not self.fer2013_root:
            return
        unknown = [c for c in self.classes_ if str(c) not in CLASSES_7]
        if unknown:
            raise BenchError(f"FER2013 pre-training needs emotion class names as labels; "
                             f"{unknown} are not among {list(CLASSES_7)}")
        faces = load_dataset("fer2013", self.fer2013_root, classes=7, image_size=self.image_size)
        keep = np.isin(faces.label_names, [str(c) for c in self.classes_])
        faces = faces.subset(keep)
        y = self._encode(faces.label_names)
        fit, val = faces.split == "train", faces.split == "val"
        result = train(network, faces.images[fit], torch.as_tensor(y[fit]),
                       self._train_config(self.fer2013_epochs, desc="LDGN on FER2013"), device,
                       X_val=faces.images[val] if val.any() else None, y_val=y[val])
        self.pretrain_history_ = result.history

    def distributions(self, X) -> np.ndarray:
        """Label distributions (softmax, temperature 1) of images ``X``, rows summing to one."""
        return self.predict_proba(X).astype(np.float32)


class LabelDistributionStudent:
    """Mixin for estimators that can learn from the LDGN's label distributions.

    Declares ``needs_teacher`` (true when its ``ldl`` parameter is on), so the protocol can train one
    teacher per split and hand it to every such student through ``fit(..., teacher=...)``; without
    one, ``fit`` trains its own with :meth:`make_teacher`. The concrete class must have the
    parameters ``ldl``, ``teacher_params`` and ``fer2013_root``.
    """

    @property
    def needs_teacher(self) -> bool:
        return bool(self.ldl)

    def make_teacher(self) -> LDGNClassifier:
        """An unfitted LDGN with this student's training settings, updated by ``teacher_params``."""
        params = {k: getattr(self, k) for k in SHARED_PARAMS}
        params.update(self.teacher_params or {}, fer2013_root=self.fer2013_root)
        unknown = sorted(set(params) - set(LDGNClassifier().get_params()))
        if unknown:
            raise ValueError(f"teacher_params has unknown name(s) {unknown}")
        return LDGNClassifier(**params)

    def fit(self, X, y, groups=None, *, validation_data=None, teacher=None):
        """Fit; with ``ldl`` the targets are the distributions of ``teacher`` (a fitted
        :class:`LDGNClassifier`), trained here first when not given."""
        self._teacher = None
        self.teacher_ = None
        if self.needs_teacher:
            if teacher is None:
                teacher = self.make_teacher().fit(X, y, groups, validation_data=validation_data)
            self._teacher = teacher
            self.teacher_ = teacher_summary(teacher)
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
        return torch.from_numpy(self._teacher.distributions(X))

    def _loss(self, network, inputs, targets):
        if targets.ndim == 1:
            return super()._loss(network, inputs, targets)
        logits = network(inputs)
        return soft_cross_entropy(logits, targets), logits


def teacher_summary(teacher: LDGNClassifier) -> dict:
    """What a student's record says about its teacher."""
    best = teacher.history_[teacher.best_epoch_ - 1]
    return {
        "method": "ldgn",
        "epochs": teacher.n_epochs_,
        "best_epoch": teacher.best_epoch_,
        "val_accuracy": best.get("val_accuracy"),
        "train_s": sum(h["seconds"] for h in teacher.history_ + teacher.pretrain_history_),
        "fer2013_pretrained": bool(teacher.pretrain_history_),
    }
