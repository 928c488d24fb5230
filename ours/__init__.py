"""The paper's method: ShuffleNet-V2 with the Local and Global Enhancement Modules, trained on label
distributions from a ResNet-50 generator, and its ablations. Importing this package registers
``ours``, ``ours-sll``, ``ours-lem``, ``ours-gem`` and ``ldgn``."""

from bench import Cost, Reference, register
from bench.teacher import TEACHER_PRESETS, LDGNClassifier

from .classifier import OursClassifier
from .modules import GlobalEnhancement, LocalEnhancement
from .network import EyeEmotionNet

__all__ = ["EyeEmotionNet", "GlobalEnhancement", "LocalEnhancement", "OursClassifier"]

TABLES = "paper Tables 1-4"


def _refs(reed4, emug4, reed7=None, emug7=None):
    """References from (accuracy %, F1) pairs of the paper's tables."""
    out = {}
    for key, value in ((("reed", 4), reed4), (("emug", 4), emug4), (("reed", 7), reed7),
                       (("emug", 7), emug7)):
        if value is not None:
            acc, f1 = value
            out[key] = Reference(accuracy=acc / 100, f1=f1, source=TABLES)
    return out


# registered in the order of the paper's ablation tables
register("ours-lem", OursClassifier, display_name="ShuffleNet-V2 + LEM",
         description="ShuffleNet-V2 + local enhancement module, hard labels (ablation)",
         references=_refs((63.4, None), (73.4, None)), cost=Cost(1.27, 152.79),
         ablation="+ LEM", lem=True, gem=False, ldl=False)
register("ours-gem", OursClassifier, display_name="ShuffleNet-V2 + GEM",
         description="ShuffleNet-V2 + global enhancement module, hard labels (ablation)",
         references=_refs((62.9, None), (72.9, None)), cost=Cost(1.27, 153.79),
         ablation="+ GEM", lem=False, gem=True, ldl=False)
register("ours-sll", OursClassifier, display_name="Ours, single-label",
         description="ShuffleNet-V2 + LEM + GEM on hard labels (ablation)",
         references=_refs((66.7, None), (77.1, None)), cost=Cost(1.28, 154.18),
         ablation="+ LEM + GEM (single-label)", lem=True, gem=True, ldl=False)
register("ours", OursClassifier, display_name="Ours (LEM + GEM + LDL)",
         description="ShuffleNet-V2 + local and global enhancement, trained on ResNet-50 label "
         "distributions (the paper's method)",
         references=_refs((68.5, 0.720), (80.9, 0.826), (62.0, 0.658), (68.1, 0.702)),
         cost=Cost(1.28, 154.18),
         presets={k: {"teacher_params": v} for k, v in TEACHER_PRESETS.items()},
         ablation="+ LEM + GEM + LDL = Ours",
         lem=True, gem=True, ldl=True)
register("ldgn", LDGNClassifier, display_name="LDGN (ResNet-50)",
         description="the label distribution generator alone: ResNet-50, hard labels",
         references=_refs((67.4, None), (78.0, None)), cost=Cost(23.52, 4109.48),
         presets=TEACHER_PRESETS, ablation="LDGN teacher, ResNet-50 (single-label)")
