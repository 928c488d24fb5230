"""``OursClassifier``: the eye emotion network trained on the LDGN's label distributions."""

from __future__ import annotations

from typing import ClassVar

from bench import EmotionClassifier

from .ldl import LabelDistributionStudent
from .network import EyeEmotionNet


class OursClassifier(LabelDistributionStudent, EmotionClassifier):
    """ShuffleNet-V2 x1.0 + Local/Global Enhancement Modules, trained on label distributions.

    Parameters (besides :class:`bench.EmotionClassifier`'s)
    --------------------------------------------------------
    lem, gem : switch the Local / Global Enhancement Module (the ablations of the paper's Table 3).
    ldl : train on the ResNet-50 generator's label distributions (soft cross-entropy); ``False``
        trains on hard labels (the single-label ablation of Table 4).
    teacher_params : settings of the generator that differ from this estimator's (a dict of
        :class:`ours.LDGNClassifier` parameters, e.g. ``{"epochs": 6, "batch_size": 32}``).
    fer2013_root : pre-train the generator on FER2013 first (see :class:`ours.LDGNClassifier`).

    The generator is used only in training: it is not part of :meth:`inference_network`, so it is
    not counted in this method's params, MFLOPs or latency (``ldgn`` has its own row). After
    ``fit``, ``teacher_`` summarises it (epochs, validation accuracy, training seconds).
    """

    # like ShuffleNet-V2: a training step at 48 px takes 0.65-0.75x as long in NHWC on a CPU
    channels_last: ClassVar[bool] = True

    def __init__(self, *, epochs=600, batch_size=128, lr=1e-4, optimizer="sgd", momentum=0.8,
                 weight_decay=0.0, scheduler="constant", gamma=0.9, image_size=224, augment=True,
                 pretrained=False, device="auto", random_state=None, validation_fraction=0.2,
                 selection_metric="accuracy", classes=None, verbose=0, lem=True, gem=True,
                 ldl=True, teacher_params=None, fer2013_root=None):
        super().__init__(
            epochs=epochs, batch_size=batch_size, lr=lr, optimizer=optimizer, momentum=momentum,
            weight_decay=weight_decay, scheduler=scheduler, gamma=gamma, image_size=image_size,
            augment=augment, pretrained=pretrained, device=device, random_state=random_state,
            validation_fraction=validation_fraction, selection_metric=selection_metric,
            classes=classes, verbose=verbose)
        self.lem = lem
        self.gem = gem
        self.ldl = ldl
        self.teacher_params = teacher_params
        self.fer2013_root = fer2013_root

    def build_network(self, n_classes):
        return EyeEmotionNet(n_classes, lem=self.lem, gem=self.gem, pretrained=self.pretrained)
