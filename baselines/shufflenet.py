"""ShuffleNet-V2 x1.0: the ablation baseline of the paper's Table 3.

torchvision's ``shufflenet_v2_x1_0`` with a new head; with 4 outputs at 224x224 fvcore counts
1.26 M parameters and 147.79 MFLOPs, the paper's numbers. Plain cross-entropy on hard labels.
"""

from __future__ import annotations

from typing import ClassVar

from bench import Cost, EmotionClassifier, Reference, register
from bench.pretrained import torchvision_network


class ShuffleNetV2Classifier(EmotionClassifier):
    """ShuffleNet-V2 x1.0 trained with cross-entropy (see :class:`bench.EmotionClassifier` for
    the parameters)."""

    # depthwise convolutions: a training step at 48 px takes 0.77x as long in NHWC on a CPU
    channels_last: ClassVar[bool] = True

    def build_network(self, n_classes):
        return torchvision_network("shufflenet_v2_x1_0", n_classes, self.pretrained)


register(
    "shufflenet-v2", ShuffleNetV2Classifier,
    display_name="ShuffleNet-V2 x1.0",
    description="ShuffleNet-V2 x1.0, single-label cross-entropy (the paper's ablation baseline)",
    references={("reed", 4): Reference(accuracy=0.568, source="paper Table 3"),
                ("emug", 4): Reference(accuracy=0.652, source="paper Table 3")},
    cost=Cost(params_m=1.26, mflops=147.79),
    ablation="ShuffleNet-V2 baseline",
)
