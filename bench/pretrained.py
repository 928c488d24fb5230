"""torchvision backbones with an optional ImageNet initialisation that fails clearly offline."""

from __future__ import annotations

import torch
import torchvision
from torch import nn

from .errors import BenchError


def torchvision_network(arch: str, n_classes: int, pretrained: bool = False, **kwargs) -> nn.Module:
    """``torchvision.models.<arch>`` with ``n_classes`` outputs.

    With ``pretrained`` the ImageNet weights are loaded from the torch hub cache (downloaded there
    if missing and the network allows) and every 1000-way classifier is replaced by a freshly
    initialised ``n_classes``-way one. Without the weights, a one-line :class:`BenchError` says
    where to put them.

    From scratch, a ResNet's residual branches start at zero (the last BatchNorm of each block has
    zero scale; Goyal et al. 2017), so every block starts as the identity: with the short ``quick``
    budgets a random ResNet-50 otherwise barely trains (EAC's quick preset at 12 epochs on
    ``synthetic``-7, seed 0, one thread: 28.9 % without, 37.0 % with).
    """
    builder = torchvision.models.get_model_builder(arch)
    if not pretrained:
        if arch.startswith("resnet"):
            kwargs.setdefault("zero_init_residual", True)
        return builder(weights=None, num_classes=n_classes, **kwargs)
    weights = torchvision.models.get_model_weights(arch).DEFAULT
    try:
        state = weights.get_state_dict(progress=False)
    except Exception as err:  # noqa: BLE001 - URLError, OSError, hash errors: all mean "no weights"
        cache = f"{torch.hub.get_dir()}/checkpoints"
        raise BenchError(
            f"ImageNet weights for {arch} are not in {cache} and could not be downloaded "
            f"({type(err).__name__}); download {weights.url} into that folder (or set TORCH_HOME), "
            "or train from scratch with --no-pretrained (pretrained=False)"
        ) from None
    network = builder(weights=None, **kwargs)
    network.load_state_dict(state)
    return replace_classifiers(network, n_classes)


def replace_classifiers(network: nn.Module, n_classes: int, old_classes: int = 1000) -> nn.Module:
    """Swap every ``Linear(..., old_classes)`` (the head and any auxiliary head) for a new one."""
    for name, module in list(network.named_modules()):
        if isinstance(module, nn.Linear) and module.out_features == old_classes:
            parent = network.get_submodule(name.rpartition(".")[0]) if "." in name else network
            setattr(parent, name.rpartition(".")[2],
                    nn.Linear(module.in_features, n_classes, bias=module.bias is not None))
    return network
