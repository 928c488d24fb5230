"""The one training engine every method uses.

It owns everything that is not method-specific: seeding, batching straight from the uint8 array,
augmentation, the optimiser and schedule, validation after every epoch, keeping the weights of the
best validation epoch (chosen on the validation split only; the test split never reaches this
module), progress bars and the per-epoch history. A method supplies only its network and its loss.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F
from sklearn.metrics import accuracy_score, f1_score
from torch import nn
from tqdm.auto import tqdm

from .errors import BenchError
from .transforms import augment, normalize, to_input

OPTIMIZERS = ("sgd", "adam", "adamw")
SCHEDULERS = ("constant", "cosine", "exponential")
SELECTION_METRICS = ("accuracy", "macro_f1", "loss")

#: loss_fn(network, inputs, targets) -> (loss, logits)
LossFn = Callable[[nn.Module, torch.Tensor, torch.Tensor], tuple[torch.Tensor, torch.Tensor]]


def cross_entropy_loss(network: nn.Module, inputs: torch.Tensor, targets: torch.Tensor):
    """Cross-entropy against hard labels ``(B,)`` or label distributions ``(B, C)``."""
    logits = network(inputs)
    return F.cross_entropy(logits, targets), logits


@dataclass
class TrainConfig:
    epochs: int
    batch_size: int
    lr: float
    optimizer: str = "sgd"
    momentum: float = 0.9
    weight_decay: float = 0.0
    scheduler: str = "constant"
    gamma: float = 0.9
    image_size: int = 224
    augment: bool = True
    selection_metric: str = "accuracy"
    seed: int = 0
    verbose: int = 0
    desc: str = "train"

    def __post_init__(self):
        for name, value, valid in (("optimizer", self.optimizer, OPTIMIZERS),
                                   ("scheduler", self.scheduler, SCHEDULERS),
                                   ("selection_metric", self.selection_metric, SELECTION_METRICS)):
            if value not in valid:
                raise ValueError(f"{name}={value!r} is not one of {', '.join(valid)}")
        if self.epochs < 1 or self.batch_size < 1:
            raise ValueError("epochs and batch_size must be at least 1")


@dataclass
class TrainResult:
    best_epoch: int
    history: list[dict] = field(default_factory=list)


def make_optimizer(params, cfg: TrainConfig) -> torch.optim.Optimizer:
    if cfg.optimizer == "sgd":
        return torch.optim.SGD(params, lr=cfg.lr, momentum=cfg.momentum,
                               weight_decay=cfg.weight_decay)
    cls = torch.optim.Adam if cfg.optimizer == "adam" else torch.optim.AdamW
    return cls(params, lr=cfg.lr, weight_decay=cfg.weight_decay)


def make_scheduler(opt: torch.optim.Optimizer, cfg: TrainConfig):
    if cfg.scheduler == "cosine":
        return torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=cfg.epochs)
    if cfg.scheduler == "exponential":
        return torch.optim.lr_scheduler.ExponentialLR(opt, gamma=cfg.gamma)
    return None


def batches(n: int, batch_size: int, generator: torch.Generator | None, drop_last: bool):
    """Index batches; shuffled when a generator is given. A trailing batch of one is always
    dropped in training, since batch norm cannot normalise a single pooled sample."""
    order = torch.randperm(n, generator=generator) if generator is not None else torch.arange(n)
    for start in range(0, n, batch_size):
        idx = order[start:start + batch_size]
        if drop_last and (len(idx) < batch_size and n > batch_size or len(idx) < 2):
            break
        yield idx.numpy()


@torch.inference_mode()
def predict_logits(network: nn.Module, X: np.ndarray, *, image_size: int, device: torch.device,
                   batch_size: int = 128) -> torch.Tensor:
    """Logits for every image of ``X`` (eval mode, no augmentation), on the CPU."""
    network.eval()
    out = [network(normalize(to_input(X[idx], device, image_size))).float().cpu()
           for idx in batches(len(X), batch_size, None, drop_last=False)]
    return torch.cat(out)


def validation_scores(logits: torch.Tensor, y: np.ndarray) -> dict:
    pred = logits.argmax(1).numpy()
    return {
        "val_loss": float(F.cross_entropy(logits, torch.as_tensor(y))),
        "val_accuracy": float(accuracy_score(y, pred)),
        "val_macro_f1": float(f1_score(y, pred, average="macro", zero_division=0)),
    }


def _better(scores: dict, best: dict | None, metric: str) -> bool:
    """Higher accuracy/F1 (lower loss) wins; ties go to the lower validation loss."""
    if best is None:
        return True
    if metric == "loss":
        return scores["val_loss"] < best["val_loss"]
    key = f"val_{metric}"
    return (scores[key], -scores["val_loss"]) > (best[key], -best["val_loss"])


def train(network: nn.Module, X: np.ndarray, targets: torch.Tensor, cfg: TrainConfig,
          device: torch.device, loss_fn: LossFn = cross_entropy_loss,
          X_val: np.ndarray | None = None, y_val: np.ndarray | None = None) -> TrainResult:
    """Train ``network`` in place; on return it holds the weights of the best validation epoch
    (the last epoch when there is no validation data)."""
    if len(X) < 2:
        raise ValueError("training needs at least two images")
    generator = torch.Generator().manual_seed(cfg.seed)
    network.to(device)
    opt = make_optimizer([p for p in network.parameters() if p.requires_grad], cfg)
    sched = make_scheduler(opt, cfg)
    targets = targets.to(device)
    history, best, best_state, best_epoch = [], None, None, cfg.epochs
    bar = tqdm(range(1, cfg.epochs + 1), desc=cfg.desc, disable=not cfg.verbose, leave=False,
               unit="epoch", dynamic_ncols=True)
    for epoch in bar:
        start = time.perf_counter()
        network.train()
        total, correct, seen = 0.0, 0, 0
        for idx in batches(len(X), cfg.batch_size, generator, drop_last=True):
            x = to_input(X[idx], device, cfg.image_size)
            if cfg.augment:
                x = augment(x, generator)
            t = targets[torch.from_numpy(idx).to(device)]
            loss, logits = loss_fn(network, normalize(x), t)
            if not torch.isfinite(loss):
                raise BenchError(
                    f"the training loss became {loss.item()} at epoch {epoch}; lower the learning "
                    f"rate (now {cfg.lr:g}) or check the data"
                )
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            total += loss.item() * len(idx)
            hard = t if t.ndim == 1 else t.argmax(1)
            correct += int((logits.argmax(1) == hard).sum())
            seen += len(idx)
        row = {"epoch": epoch, "lr": opt.param_groups[0]["lr"], "train_loss": total / seen,
               "train_accuracy": correct / seen}
        if sched is not None:
            sched.step()
        if X_val is not None and len(X_val):
            row.update(validation_scores(
                predict_logits(network, X_val, image_size=cfg.image_size, device=device,
                               batch_size=max(cfg.batch_size, 64)), y_val))
            if _better(row, best, cfg.selection_metric):
                best, best_epoch = row, epoch
                best_state = {k: v.detach().clone() for k, v in network.state_dict().items()}
        row["seconds"] = time.perf_counter() - start
        history.append(row)
        bar.set_postfix({k: f"{v:.3f}" for k, v in row.items()
                         if k in ("train_loss", "val_accuracy") and not math.isnan(v)})
    if best_state is not None:
        network.load_state_dict(best_state)
    return TrainResult(best_epoch=best_epoch, history=history)
