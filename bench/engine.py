"""The one training engine every method uses.

It owns everything that is not method-specific: seeding, batching straight from the uint8 array,
augmentation, the optimiser and schedule, validation after every epoch, keeping the weights of the
best validation epoch (chosen on the validation split only; the test split never reaches this
module), progress bars and the per-epoch history. A method supplies only its network and its loss.
"""

from __future__ import annotations

import contextlib
import math
import sys
import time
import warnings
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field, replace

import numpy as np
import torch
import torch.nn.functional as F
from sklearn.metrics import accuracy_score, f1_score
from torch import nn
from tqdm.auto import tqdm

from .checkpoint import checkpoint_due, checkpoint_path, load_checkpoint, save_checkpoint
from .errors import BenchError
from .transforms import augment, normalize, to_input

OPTIMIZERS = ("sgd", "adam", "adamw")
SCHEDULERS = ("constant", "cosine", "exponential")
SELECTION_METRICS = ("accuracy", "macro_f1", "loss")
#: ``None``: every training image once per epoch; ``"equal"``: each class an equal share of every
#: epoch; ``"sqrt"``: shares in proportion to the square root of each class's size
#: (:func:`balanced_order`)
CLASS_BALANCE = (None, "equal", "sqrt")

#: loss_fn(network, inputs, targets) -> (loss, logits)
LossFn = Callable[[nn.Module, torch.Tensor, torch.Tensor], tuple[torch.Tensor, torch.Tensor]]


def cross_entropy_loss(network: nn.Module, inputs: torch.Tensor, targets: torch.Tensor):
    """Cross-entropy against hard labels ``(B,)`` or label distributions ``(B, C)``."""
    logits = network(inputs)
    return F.cross_entropy(logits, targets), logits


@dataclass(frozen=True)
class EngineOptions:
    """How the engine runs, as opposed to what it trains (which the estimator's parameters say).

    ``channels_last`` stores weights and activations NHWC: ``None`` (the default) lets each method
    choose (:attr:`bench.EmotionClassifier.channels_last`, set where it measured faster on a CPU:
    the depthwise-separable ShuffleNet-V2, Ours and EfficientNet and Inception v3, not the
    ResNets), ``True``/``False`` force it for every network (NHWC usually helps on GPUs); ``amp``
    uses float16 autocast with loss scaling on CUDA (ignored on the CPU); ``compile`` wraps the
    network in ``torch.compile`` for training (falls back with a warning if the platform cannot
    compile). Set them for a block with :func:`engine_options`, like scikit-learn's
    ``config_context``; every run record stores the options in force.
    """

    channels_last: bool | None = None
    amp: bool = True
    compile: bool = False

    def as_dict(self) -> dict:
        return asdict(self)


_OPTIONS = EngineOptions()


def get_engine_options() -> EngineOptions:
    return _OPTIONS


def set_engine_options(**changes) -> EngineOptions:
    """Change the engine options for the rest of the process; returns the previous ones."""
    global _OPTIONS
    previous, _OPTIONS = _OPTIONS, replace(_OPTIONS, **changes)
    return previous


@contextlib.contextmanager
def engine_options(**changes) -> Iterator[EngineOptions]:
    """``with engine_options(channels_last=True): est.fit(X, y)``."""
    previous = set_engine_options(**changes)
    try:
        yield _OPTIONS
    finally:
        set_engine_options(**previous.as_dict())


def autocast(device: torch.device):
    """float16 autocast on CUDA when ``amp`` is on; a no-op elsewhere."""
    enabled = device.type == "cuda" and _OPTIONS.amp
    return torch.autocast("cuda", dtype=torch.float16, enabled=enabled) if enabled \
        else contextlib.nullcontext()


def use_channels_last(network: nn.Module, preferred: bool | None = None) -> bool:
    """Put ``network`` in NHWC or NCHW: as the ``channels_last`` option forces, else as
    ``preferred`` (the method's choice; ``None``: as the network already is). Returns whether it
    is NHWC; inputs follow the network (:func:`memory_format`)."""
    if _OPTIONS.channels_last is not None:
        use = _OPTIONS.channels_last
    else:
        use = is_channels_last(network) if preferred is None else preferred
    network.to(memory_format=torch.channels_last if use else torch.contiguous_format)
    network.bench_channels_last = use
    return use


def is_channels_last(network: nn.Module) -> bool:
    """Whether :func:`use_channels_last` put ``network`` in NHWC."""
    return bool(getattr(network, "bench_channels_last", False))


def memory_format(x: torch.Tensor, network: nn.Module) -> torch.Tensor:
    """``x`` in the memory format of ``network``."""
    return x.contiguous(memory_format=torch.channels_last) if is_channels_last(network) else x


def _compiled(network: nn.Module) -> nn.Module:
    if not _OPTIONS.compile:
        return network
    try:
        return torch.compile(network)
    except Exception as err:  # noqa: BLE001 - any backend failure: train uncompiled
        warnings.warn(f"torch.compile is unavailable here ({err}); training uncompiled",
                      stacklevel=3)
        return network


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
    #: before each validation, recompute batch-norm statistics over this many training images
    #: with the current weights (0: keep the running averages)
    precise_bn_images: int = 0
    #: train in NHWC unless the ``channels_last`` engine option says otherwise
    channels_last: bool = False
    #: ``"equal"``/``"sqrt"`` draw class-balanced epochs (:func:`balanced_order`); ``None`` shuffles
    class_balance: str | None = None
    #: each epoch counts as at least this many optimiser steps: a training set of fewer batches
    #: trains for more epochs (see :func:`planned_epochs`); 0 = ``epochs`` as given
    min_epoch_steps: int = 0
    #: stop after this many epochs without a better validation score (None: never stop early)
    patience: int | None = None
    seed: int = 0
    verbose: int = 0
    desc: str = "train"

    def __post_init__(self):
        for name, value, valid in (("optimizer", self.optimizer, OPTIMIZERS),
                                   ("scheduler", self.scheduler, SCHEDULERS),
                                   ("selection_metric", self.selection_metric, SELECTION_METRICS)):
            if value not in valid:
                raise ValueError(f"{name}={value!r} is not one of {', '.join(valid)}")
        if self.class_balance not in CLASS_BALANCE:
            raise ValueError(f"class_balance={self.class_balance!r} is not one of "
                             f"{', '.join(map(repr, CLASS_BALANCE))}")
        if self.epochs < 1 or self.batch_size < 1:
            raise ValueError("epochs and batch_size must be at least 1")
        if self.min_epoch_steps < 0 or (self.patience is not None and self.patience < 1):
            raise ValueError("min_epoch_steps must be at least 0 and patience at least 1 (or None)")


@dataclass
class TrainResult:
    best_epoch: int
    history: list[dict] = field(default_factory=list)
    #: the epochs the run was planned for (``epochs``, raised by ``min_epoch_steps``)
    planned_epochs: int = 0
    #: True when ``patience`` ended it before ``planned_epochs``
    stopped_early: bool = False


def steps_per_epoch(n: int, batch_size: int) -> int:
    """Optimiser steps in one epoch of ``n`` images (:func:`batches` drops a trailing partial
    batch when there is more than one batch)."""
    return max(1, n // batch_size) if n > batch_size else 1


def planned_epochs(cfg: TrainConfig, n: int) -> int:
    """``cfg.epochs``, or more on a small training set: at least ``epochs x min_epoch_steps``
    optimiser steps in all. A budget in epochs alone starves small datasets (85 training images
    in batches of 32 make 2 steps an epoch), while a floor leaves large ones untouched."""
    if not cfg.min_epoch_steps:
        return cfg.epochs
    return max(cfg.epochs, math.ceil(cfg.epochs * cfg.min_epoch_steps / steps_per_epoch(n, cfg.batch_size)))


def balanced_order(labels: np.ndarray, generator: torch.Generator, rule: str = "equal") -> torch.Tensor:
    """One class-balanced epoch of ``len(labels)`` indices. Each class gets a share of the epoch,
    equal for ``"equal"`` and in proportion to the square root of its size for ``"sqrt"`` (a
    milder correction: a class 16 times larger is drawn 4 times as often, not 16 times); the
    rounding remainder goes to randomly chosen classes. A class's share is drawn without
    replacement from its images and repeats them only when it is larger than the class; then the
    epoch is shuffled. On balanced data every image appears exactly once, as in an ordinary
    epoch."""
    classes, counts = np.unique(labels, return_counts=True)
    n, k = len(labels), len(classes)
    weight = np.ones(k) if rule == "equal" else np.sqrt(counts)
    quota = np.floor(n * weight / weight.sum()).astype(int)
    quota[torch.randperm(k, generator=generator)[: n - quota.sum()].numpy()] += 1
    chosen = []
    for c, share in zip(classes, quota):
        members = torch.from_numpy(np.flatnonzero(labels == c))
        rounds = -(-int(share) // len(members))
        picks = torch.cat([members[torch.randperm(len(members), generator=generator)]
                           for _ in range(rounds)])
        chosen.append(picks[:share])
    order = torch.cat(chosen)
    return order[torch.randperm(n, generator=generator)]


def make_optimizer(params, cfg: TrainConfig) -> torch.optim.Optimizer:
    """The configured optimizer, fused on CPU and CUDA: one kernel updates every parameter, where
    the default loops over the tensors in Python (a ResNet-50 AdamW step on 2 CPU cores: 82 ms
    unfused, 22 ms fused; EfficientNet-B0 14 and 5 ms). Same update rule, same results up to
    float rounding."""
    params = list(params)
    fused = {"fused": True} if params and params[0].device.type in ("cpu", "cuda") else {}
    if cfg.optimizer == "sgd":
        return torch.optim.SGD(params, lr=cfg.lr, momentum=cfg.momentum,
                               weight_decay=cfg.weight_decay, **fused)
    cls = torch.optim.Adam if cfg.optimizer == "adam" else torch.optim.AdamW
    return cls(params, lr=cfg.lr, weight_decay=cfg.weight_decay, **fused)


def make_scheduler(opt: torch.optim.Optimizer, cfg: TrainConfig):
    if cfg.scheduler == "cosine":
        return torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=cfg.epochs)
    if cfg.scheduler == "exponential":
        return torch.optim.lr_scheduler.ExponentialLR(opt, gamma=cfg.gamma)
    return None


def batches(n: int, batch_size: int, generator: torch.Generator | None, drop_last: bool,
            order: torch.Tensor | None = None):
    """Index batches of ``order`` (default: shuffled when a generator is given). A trailing batch
    of one is always dropped in training, since batch norm cannot normalise a single pooled
    sample."""
    if order is None:
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
    use_channels_last(network)
    out = []
    with autocast(device):
        for idx in batches(len(X), batch_size, None, drop_last=False):
            x = memory_format(normalize(to_input(X[idx], device, image_size)), network)
            out.append(network(x).float().cpu())
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


def train_step(model: nn.Module, opt: torch.optim.Optimizer, scaler: torch.amp.GradScaler,
               images: np.ndarray, targets: torch.Tensor, cfg: TrainConfig,
               generator: torch.Generator, device: torch.device,
               loss_fn: LossFn = cross_entropy_loss) -> tuple[torch.Tensor, torch.Tensor]:
    """One optimisation step on a uint8 batch; returns the (detached) loss and logits."""
    x = to_input(images, device, cfg.image_size)
    if cfg.augment:
        x = augment(x, generator)
    with autocast(device):
        loss, logits = loss_fn(model, memory_format(normalize(x), model), targets)
    opt.zero_grad(set_to_none=True)
    scaler.scale(loss).backward()
    scaler.step(opt)
    scaler.update()
    return loss.detach(), logits.detach()


def recompute_bn_stats(network: nn.Module, X: np.ndarray, n_images: int, image_size: int,
                       device: torch.device, generator: torch.Generator, batch_size: int = 64):
    """Batch-norm running statistics recomputed as plain averages over ``n_images`` random
    training images with the current weights ("precise BN"). Running averages lag behind
    weights that move fast, which on small data can leave a network that fits its batches
    predicting one class in eval mode; EfficientNet trained from scratch does."""
    chosen = torch.randperm(len(X), generator=generator)[:n_images].sort().values.numpy()
    with torch.no_grad():
        inputs = [memory_format(normalize(to_input(X[chosen[i:i + batch_size]], device,
                                                   image_size)), network)
                  for i in range(0, len(chosen), batch_size)]
        torch.optim.swa_utils.update_bn(inputs, network)


def train(network: nn.Module, X: np.ndarray, targets: torch.Tensor, cfg: TrainConfig,
          device: torch.device, loss_fn: LossFn = cross_entropy_loss,
          X_val: np.ndarray | None = None, y_val: np.ndarray | None = None,
          labels: np.ndarray | None = None) -> TrainResult:
    """Train ``network`` in place; on return it holds the weights of the best validation epoch
    (the last epoch when there is no validation data).

    ``labels`` (class indices of ``X``) are needed for ``class_balance`` when ``targets`` are
    label distributions; by default they are ``targets`` (hard labels) or their argmax."""
    if len(X) < 2:
        raise ValueError("training needs at least two images")
    cfg = replace(cfg, epochs=planned_epochs(cfg, len(X)))
    if cfg.class_balance is not None and labels is None:
        labels = (targets if targets.ndim == 1 else targets.argmax(1)).cpu().numpy()
    generator = torch.Generator().manual_seed(cfg.seed)
    ckpt = checkpoint_path(network, X, targets, cfg)
    network.to(device)
    use_channels_last(network, cfg.channels_last)
    model = _compiled(network)
    opt = make_optimizer([p for p in network.parameters() if p.requires_grad], cfg)
    sched = make_scheduler(opt, cfg)
    scaler = torch.amp.GradScaler("cuda", enabled=device.type == "cuda" and _OPTIONS.amp)
    targets = targets.to(device)
    history, best, best_state, best_epoch = [], None, None, cfg.epochs
    first = 1
    if (state := load_checkpoint(ckpt)) is not None:
        network.load_state_dict(state["network"])
        opt.load_state_dict(state["optimizer"])
        if sched is not None:
            sched.load_state_dict(state["scheduler"])
        scaler.load_state_dict(state["scaler"])
        generator.set_state(state["generator"])
        torch.set_rng_state(state["torch_rng"])
        history, best, best_state = state["history"], state["best"], state["best_state"]
        best_epoch, first = state["best_epoch"], state["epoch"] + 1
        print(f"{cfg.desc}: resuming after epoch {state['epoch']} of {cfg.epochs} from {ckpt}",
              file=sys.stderr, flush=True)
    last_save, stopped = time.perf_counter(), False
    bar = tqdm(range(first, cfg.epochs + 1), desc=cfg.desc, disable=not cfg.verbose,
               leave=False, unit="epoch", dynamic_ncols=True)
    for epoch in bar:
        start = time.perf_counter()
        network.train()
        total = torch.zeros((), device=device)
        correct = torch.zeros((), device=device, dtype=torch.long)
        seen = 0
        order = None if cfg.class_balance is None else \
            balanced_order(labels, generator, cfg.class_balance)
        for idx in batches(len(X), cfg.batch_size, generator, drop_last=True, order=order):
            t = targets[torch.from_numpy(idx).to(device)]
            loss, logits = train_step(model, opt, scaler, X[idx], t, cfg, generator, device,
                                      loss_fn)
            total += loss * len(idx)  # summed on the device: no synchronisation per step
            correct += (logits.argmax(1) == (t if t.ndim == 1 else t.argmax(1))).sum()
            seen += len(idx)
        total, correct = total.item(), correct.item()
        if not math.isfinite(total):
            raise BenchError(
                f"the training loss became {total / seen} in epoch {epoch}; lower the learning "
                f"rate (now {cfg.lr:g}) or check the data")
        row = {"epoch": epoch, "lr": opt.param_groups[0]["lr"], "train_loss": total / seen,
               "train_accuracy": correct / seen}
        if sched is not None:
            sched.step()
        if cfg.precise_bn_images:
            recompute_bn_stats(network, X, cfg.precise_bn_images, cfg.image_size, device,
                               generator)
        if X_val is not None and len(X_val):
            row.update(validation_scores(
                predict_logits(network, X_val, image_size=cfg.image_size, device=device,
                               batch_size=max(cfg.batch_size, 64)), y_val))
            if _better(row, best, cfg.selection_metric):
                best, best_epoch = row, epoch
                best_state = {k: v.detach().clone() for k, v in network.state_dict().items()}
        row["seconds"] = time.perf_counter() - start
        history.append(row)
        if ckpt is not None and checkpoint_due(time.perf_counter() - last_save):
            saved = save_checkpoint(ckpt, {
                "epoch": epoch, "network": network.state_dict(), "optimizer": opt.state_dict(),
                "scheduler": None if sched is None else sched.state_dict(),
                "scaler": scaler.state_dict(), "generator": generator.get_state(),
                "torch_rng": torch.get_rng_state(), "history": history, "best": best,
                "best_state": best_state, "best_epoch": best_epoch})
            ckpt = ckpt if saved else None
            last_save = time.perf_counter()
        bar.set_postfix({k: f"{v:.3f}" for k, v in row.items()
                         if k in ("train_loss", "val_accuracy") and not math.isnan(v)})
        if cfg.patience and best is not None and epoch - best_epoch >= cfg.patience:
            stopped = epoch < cfg.epochs
            break
    if best_state is not None:
        network.load_state_dict(best_state)
    return TrainResult(best_epoch=best_epoch, history=history, planned_epochs=cfg.epochs,
                       stopped_early=stopped)
