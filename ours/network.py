"""The eye emotion network: ShuffleNet-V2 x1.0 with optional LEM and GEM (paper Fig. 1).

    conv1 + maxpool ──► Stage2 ──► [GEM] ──┐
           │                               (+) ──► Stage3 ──► Stage4 ──► Conv5 ──► pool ──► FC
           └──────────► [LEM] ─────────────┘

With both flags off it is exactly torchvision's ``shufflenet_v2_x1_0``; the four ablation variants
(baseline, +LEM, +GEM, +LEM+GEM) are the same class. At input sizes that are multiples of 32 the LEM
output matches Stage2's size exactly (28x28 at 224 px); at other sizes it is resized to match.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from bench.pretrained import torchvision_network

from .modules import GlobalEnhancement, LocalEnhancement


class EyeEmotionNet(nn.Module):
    def __init__(self, n_classes: int, lem: bool = True, gem: bool = True, pretrained: bool = False):
        super().__init__()
        backbone = torchvision_network("shufflenet_v2_x1_0", n_classes, pretrained)
        self.conv1, self.maxpool = backbone.conv1, backbone.maxpool
        self.stage2, self.stage3, self.stage4 = backbone.stage2, backbone.stage3, backbone.stage4
        self.conv5, self.fc = backbone.conv5, backbone.fc
        # x1.0 widths: 24 channels after conv1 + maxpool, 116 after Stage2
        self.lem = LocalEnhancement(24, 116) if lem else None
        self.gem = GlobalEnhancement(116) if gem else None

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """The fused map that enters Stage3."""
        x = self.maxpool(self.conv1(x))
        out = self.stage2(x)
        if self.gem is not None:
            out = self.gem(out)
        if self.lem is not None:
            local = self.lem(x)
            if local.shape[-2:] != out.shape[-2:]:
                local = F.interpolate(local, size=out.shape[-2:], mode="bilinear", align_corners=False)
            out = out + local
        return out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv5(self.stage4(self.stage3(self.features(x))))
        return self.fc(x.mean((2, 3)))
