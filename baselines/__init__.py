"""Baseline methods, one module per family; importing this package registers them.

The import order is the order ``bench list`` and the tables show them in.
"""

# isort: off
from .shufflenet import ShuffleNetV2Classifier
from .eyemotion import EyemotionClassifier
from .emo import EMOClassifier
from .efficientnet import EfficientNetLDLClassifier
from .eac import EACClassifier
# isort: on

__all__ = ["EACClassifier", "EMOClassifier", "EfficientNetLDLClassifier", "EyemotionClassifier",
           "ShuffleNetV2Classifier"]
