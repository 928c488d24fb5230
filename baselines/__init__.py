"""Baseline methods, one module per family; importing this package registers them."""

from .shufflenet import ShuffleNetV2Classifier

__all__ = ["ShuffleNetV2Classifier"]
