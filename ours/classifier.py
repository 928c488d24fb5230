"""``OursClassifier``: the eye emotion network trained on the LDGN's label distributions."""

from __future__ import annotations

from typing import ClassVar

from bench.estimator import DesignPoint
from bench.teacher import LabelDistributionStudent

from .network import EyeEmotionNet

#: at 224 px GEM works on Stage2's 28x28 map; its two 3x3 convolutions with dilation 4 see a 9x9
#: neighbourhood, so below 72 px (a map of input/8 < 9) most of their taps fall in the padding
GEM_DESIGN = DesignPoint(72, "GEM's dilated 3x3 convolutions (dilation 4) need Stage2's map "
                         "(input/8) to be at least 9x9", requires="gem")
#: LEM's quadrants of the input/4 map go through a stride-2 convolution: below 32 px a quadrant
#: ends as a single feature pixel
LEM_DESIGN = DesignPoint(32, "LEM's four quadrants end as single feature pixels below 32 px",
                         requires="lem")


class OursClassifier(LabelDistributionStudent):
    """ShuffleNet-V2 x1.0 + Local/Global Enhancement Modules, trained on label distributions.

    Parameters (besides :class:`bench.teacher.LabelDistributionStudent`'s)
    ------------------------------------------------------------------------
    lem, gem : switch the Local / Global Enhancement Module (the ablations of the paper's Table 3).
    ldl : train on the ResNet-50 generator's label distributions (soft cross-entropy); ``False``
        trains on hard labels (the single-label ablation of Table 4).

    The generator is used only in training: it is not part of :meth:`inference_network`, so it is
    not counted in this method's params, MFLOPs or latency (``ldgn`` has its own row). After
    ``fit``, ``teacher_`` summarises it (epochs, validation scores, distribution entropy).
    """

    # like ShuffleNet-V2: a training step at 48 px takes 0.65-0.75x as long in NHWC on a CPU
    channels_last: ClassVar[bool] = True
    design_points = (GEM_DESIGN, LEM_DESIGN)

    _parameter_constraints = {**LabelDistributionStudent._parameter_constraints,
                              "lem": ["boolean"], "gem": ["boolean"]}

    def __init__(self, *, lem=True, gem=True, **base):
        super().__init__(**base)
        self.lem = lem
        self.gem = gem

    def build_network(self, n_classes):
        return EyeEmotionNet(n_classes, lem=self.lem, gem=self.gem, pretrained=self.pretrained)
