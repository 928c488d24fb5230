"""The estimator protocol every method implements.

:class:`EmotionClassifier` is a scikit-learn classifier over uint8 image arrays. A method subclasses
it, implements :meth:`~EmotionClassifier.build_network` and, when it needs to, overrides the loss
(:meth:`~EmotionClassifier._loss`), the training targets (:meth:`~EmotionClassifier._targets`) or
:meth:`~EmotionClassifier.calibrate`. Everything else (validation, best-epoch selection, devices,
progress, persistence) is shared.

Methods *declare* what the protocol must give them, as class attributes, and the protocol reads the
declarations instead of knowing methods by name:

``calibration``
    ``None`` (no calibration), ``"neutral"`` (each test subject's neutral calibration images, e.g.
    for a neutral-face subtraction), ``"unlabeled"`` (each test subject's calibration images without
    labels, e.g. for clustering) or ``"labeled"`` (with labels, for few-shot personalisation).
``frame_order``
    ``True`` when the method uses temporal order; the protocol then passes the test images in
    (subject, sequence, frame) order together with ``sequences=``, and ``fit`` gets the training
    part's ``sequences=`` and the validation part's ``validation_sequences=`` (validation frames
    in order, spaced like the test frames).
``needs_teacher``
    ``True`` when the method learns from a teacher network, or the name of its boolean parameter
    that turns this on (``"ldl"``); :meth:`~EmotionClassifier.uses_teacher` says whether this
    instance does. It then has ``make_teacher()`` (an unfitted teacher estimator), accepts
    ``fit(..., teacher=fitted)`` and sets ``teacher_`` (a dict with at least ``train_s``). A grid
    trains one teacher per split, as a task of its own, for every student that asks for the same
    one (see :mod:`bench.teacher`, :mod:`bench.runner`).
``frame_skipping``
    ``True`` when the method skips frames in a stream. It then has a ``skip_threshold``
    parameter, ``threshold()`` (the threshold in effect), ``skip_costs()`` (the MFLOPs per frame
    of the network a skipped frame saves and of what decides to skip) and ``stream(X, groups,
    sequences, skip=True)`` (frame-by-frame prediction at batch 1), which sets ``skip_rate_``;
    ``bench stream`` replays it (:mod:`bench.stream`).
``external_data``
    ``True`` when ``fit`` may read data beyond what it is given (pre-training on another
    dataset). ``fit`` then accepts ``exclude_subjects=``, and the protocol passes the split's
    validation and test subjects, which must never reach any training.
``pretrain_param``
    The prefix of the parameters that pre-train the method's network (or, for a student, its
    teacher's) on a face dataset first: ``<prefix>`` (the dataset), ``<prefix>_root`` and
    ``<prefix>_epochs`` (see :mod:`bench.pretraining`). The quick preset sets them on eye crops
    made by ``bench prepare eyes`` (the faces they were cut from, training subjects only).
``design_points``
    :class:`DesignPoint` s: the smallest input at which a part of the method is still what its
    paper describes (EAC's attention maps, Inception v3's native input, ...). A run below one is
    still scored, and its board row carries a footnote made from the declaration.

**Parameters are written once.** A subclass lists only its own parameters, keyword-only, and
passes the rest on with ``**base``; its ``__init__`` signature (which scikit-learn's
``get_params``, ``clone`` and ``GridSearchCV`` read) is completed with the inherited ones::

    class MyNet(EmotionClassifier):
        def __init__(self, *, width=16, image_size=64, **base):   # own default for image_size
            super().__init__(image_size=image_size, **base)
            self.width = width
"""

from __future__ import annotations

import inspect
import io
from dataclasses import dataclass
from numbers import Integral, Real
from pathlib import Path
from typing import ClassVar

import numpy as np
import torch
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.metrics import accuracy_score
from sklearn.model_selection import GroupShuffleSplit, StratifiedShuffleSplit
from sklearn.utils._param_validation import (  # scikit-learn's own parameter checks (>= 1.2)
    Interval,
    InvalidParameterError,
    StrOptions,
    validate_parameter_constraints,
)
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted
from torch import nn

from .device import resolve_device
from .engine import (
    CLASS_BALANCE,
    OPTIMIZERS,
    SCHEDULERS,
    SELECTION_METRICS,
    TrainConfig,
    cross_entropy_loss,
    predict_logits,
    train,
)
from .files import atomic_write
from .transforms import check_images

CALIBRATION_KINDS = (None, "neutral", "unlabeled", "labeled")
_FORMAT = "bench-estimator/1"
#: the largest seed (NumPy's generators take 0 .. 2**32 - 1)
MAX_SEED = 2**32 - 1


def positive_int(low: int = 1):
    return Interval(Integral, low, None, closed="left")


def unit_interval(closed: str = "both"):
    return Interval(Real, 0, 1, closed=closed)


#: scikit-learn style constraints of the parameters every method shares (subclasses add theirs)
BASE_CONSTRAINTS = {
    "epochs": [positive_int()], "batch_size": [positive_int()],
    "lr": [Interval(Real, 0, None, closed="neither")],
    "optimizer": [StrOptions(set(OPTIMIZERS))], "momentum": [unit_interval()],
    "weight_decay": [Interval(Real, 0, None, closed="left")],
    "scheduler": [StrOptions(set(SCHEDULERS))], "gamma": [unit_interval("right")],
    "image_size": [positive_int(8)], "augment": ["boolean"], "pretrained": ["boolean"],
    "device": [str, torch.device],
    "random_state": [Interval(Integral, 0, MAX_SEED, closed="both"), None],
    "validation_fraction": [unit_interval("left")],
    "selection_metric": [StrOptions(set(SELECTION_METRICS))],
    "classes": ["array-like", None],
    "class_balance": [StrOptions(set(CLASS_BALANCE) - {None}), None],
    "min_epoch_steps": [positive_int(0)], "patience": [positive_int(), None],
    "verbose": ["verbose"],
}


@dataclass(frozen=True)
class DesignPoint:
    """The smallest square input (px) at which a part of a method is still itself, and why; with
    ``requires``, it applies only when that boolean parameter is on (e.g. a module's switch)."""

    min_size: int
    reason: str
    requires: str | None = None


def _complete_signature(cls) -> None:
    """Give ``cls.__init__`` (``(self, *, own..., **base)``) the full signature: the parent's
    parameters, then its own (which override inherited defaults)."""
    init = cls.__dict__.get("__init__")
    if init is None:
        return
    signature = inspect.signature(init)
    params = list(signature.parameters.values())
    if not any(p.kind is p.VAR_KEYWORD for p in params):
        return  # a complete signature of its own
    own = [p for p in params[1:] if p.kind is not p.VAR_KEYWORD]
    if any(p.kind is not p.KEYWORD_ONLY for p in own):
        raise TypeError(f"{cls.__name__}.__init__: parameters must be keyword-only (after *)")
    parent = next(c for c in cls.__mro__[1:] if "__init__" in c.__dict__)
    names = {p.name for p in own}
    inherited = [p for p in list(inspect.signature(parent.__init__).parameters.values())[1:]
                 if p.name not in names]
    init.__signature__ = signature.replace(parameters=[params[0], *inherited, *own])


def aligned(name: str, values, n_images: int) -> np.ndarray | None:
    """Per-image ``values`` (subject or sequence ids) as an array, checked to have one entry
    per image; ``None`` stays ``None``."""
    if values is None:
        return None
    values = np.asarray(values)
    if values.ndim != 1 or len(values) != n_images:
        raise ValueError(f"{name} must have one entry per image: {n_images} images, "
                         f"{name} of shape {values.shape}")
    return values


class EmotionClassifier(ClassifierMixin, BaseEstimator):
    """Base class: a CNN emotion classifier with the scikit-learn estimator interface.

    The defaults are the paper's full recipe (224 px, SGD momentum 0.8, lr 1e-4, batch 128, 600
    epochs); the ``smoke``/``quick``/``paper`` presets of :mod:`bench.presets` set smaller budgets.

    Parameters
    ----------
    epochs, batch_size, lr : training budget and learning rate.
    optimizer : ``"sgd"``, ``"adam"`` or ``"adamw"``; ``momentum`` applies to SGD.
    weight_decay : L2 penalty (decoupled for AdamW).
    scheduler : ``"constant"``, ``"cosine"`` (to zero over ``epochs``) or ``"exponential"``
        (multiplied by ``gamma`` after every epoch).
    image_size : the square input size; images of another size are resized on the fly.
    augment : random crop and horizontal flip during training.
    pretrained : start from torchvision's ImageNet weights (must be cached or downloadable).
    device : ``"auto"`` (CUDA when present), ``"cpu"``, ``"cuda"`` or ``"cuda:N"``.
    random_state : seed for initialisation, shuffling, augmentation and the internal validation
        split; ``None`` means 0, so that runs are reproducible by default.
    validation_fraction : share of the training subjects (of the images, without ``groups``) held
        out to choose the best epoch when ``fit`` gets no ``validation_data``; 0 trains all epochs
        and keeps the last.
    selection_metric : validation ``"accuracy"``, ``"macro_f1"`` or ``"loss"`` for the best epoch.
    classes : the label set and output order; default the sorted unique labels of ``y``. Give it
        when a class may be missing from a training set but must stay an output.
    class_balance : ``None`` (every training image once per epoch), ``"equal"`` (each class an
        equal share of every epoch) or ``"sqrt"`` (shares in proportion to the square root of
        the class sizes): class-balanced epochs (:func:`bench.engine.balanced_order`) against a
        majority class swamping a small dataset.
    min_epoch_steps : each epoch counts as at least this many optimiser steps, so a small
        training set trains for more epochs (:func:`bench.engine.planned_epochs`); 0 = off.
    patience : stop after this many epochs without a better validation score (``None``: train
        every epoch); the weights of the best epoch are kept either way.
    verbose : 0 silent, 1 progress bars.
    """

    calibration: ClassVar[str | None] = None
    frame_order: ClassVar[bool] = False
    needs_teacher: ClassVar[bool | str] = False
    frame_skipping: ClassVar[bool] = False
    #: training images over which batch-norm statistics are recomputed before each validation
    #: (see :func:`bench.engine.recompute_bn_stats`); 0 keeps the running averages
    precise_bn_images: ClassVar[int] = 0
    #: train and predict in NHWC memory format, for networks measured faster that way on a CPU
    #: (the ``channels_last`` engine option overrides it for every method)
    channels_last: ClassVar[bool] = False
    #: fit may read other datasets and accepts ``exclude_subjects=`` (see the module doc)
    external_data: ClassVar[bool] = False
    #: the prefix of its face pre-training parameters (see the module doc)
    pretrain_param: ClassVar[str | None] = None
    #: the inputs below which parts of the method stop being themselves (see the module doc)
    design_points: ClassVar[tuple[DesignPoint, ...]] = ()

    #: what each parameter may be, in scikit-learn's constraint language; a subclass adds its own
    #: (``{**Parent._parameter_constraints, "mine": [...]}``); the contract check requires one
    #: for every parameter
    _parameter_constraints: ClassVar[dict] = BASE_CONSTRAINTS

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        _complete_signature(cls)

    def check_params(self) -> EmotionClassifier:
        """Validate every parameter (and the teacher's) against ``_parameter_constraints``, so
        that a wrong value fails before any data is loaded, with scikit-learn's message
        (:class:`~sklearn.utils._param_validation.InvalidParameterError`, a ``ValueError``).
        ``fit`` calls it first; ``bench run`` before it loads anything. Returns ``self``."""
        validate_parameter_constraints(self._parameter_constraints, self.get_params(deep=False),
                                       caller_name=type(self).__name__)
        if self.uses_teacher():
            try:
                self.make_teacher().check_params()
            except ValueError as err:  # InvalidParameterError is one
                raise InvalidParameterError(f"teacher_params: {err}") from None
        return self

    def __init__(self, *, epochs=600, batch_size=128, lr=1e-4, optimizer="sgd", momentum=0.8,
                 weight_decay=0.0, scheduler="constant", gamma=0.9, image_size=224, augment=True,
                 pretrained=False, device="auto", random_state=None, validation_fraction=0.2,
                 selection_metric="accuracy", classes=None, class_balance=None,
                 min_epoch_steps=0, patience=None, verbose=0):
        self.epochs = epochs
        self.batch_size = batch_size
        self.lr = lr
        self.optimizer = optimizer
        self.momentum = momentum
        self.weight_decay = weight_decay
        self.scheduler = scheduler
        self.gamma = gamma
        self.image_size = image_size
        self.augment = augment
        self.pretrained = pretrained
        self.device = device
        self.random_state = random_state
        self.validation_fraction = validation_fraction
        self.selection_metric = selection_metric
        self.classes = classes
        self.class_balance = class_balance
        self.min_epoch_steps = min_epoch_steps
        self.patience = patience
        self.verbose = verbose

    @classmethod
    def base_param_names(cls) -> list[str]:
        """The parameters every method shares (those of :class:`EmotionClassifier` itself)."""
        return EmotionClassifier._get_param_names()

    def fit_signature(self, y) -> dict:
        """The parameters that decide what ``fit`` learns from training labels ``y``: all of
        them, unless a parameter has no effect on such data (e.g. oversampling a dataset that
        is already balanced). Two runs of equal signature on the same split train the same
        model, so the protocol fits it once."""
        return self.get_params()

    def uses_teacher(self) -> bool:
        """Whether this instance learns from a teacher (see ``needs_teacher``)."""
        need = type(self).needs_teacher
        return bool(getattr(self, need)) if isinstance(need, str) else bool(need)

    def make_teacher(self) -> EmotionClassifier:
        """An unfitted teacher for this student (methods that declare ``needs_teacher``)."""
        raise NotImplementedError(f"{type(self).__name__} declares no teacher")

    def threshold(self) -> float | None:
        """The frame-skipping threshold in effect (methods that declare ``frame_skipping``)."""
        return None

    def stream(self, X, groups=None, sequences=None, skip=True) -> np.ndarray:
        """Predict frame by frame at batch 1 (methods that declare ``frame_skipping``)."""
        raise NotImplementedError(f"{type(self).__name__} does not skip frames")

    def skip_costs(self) -> tuple[float, float]:
        """(MFLOPs per frame a skipped frame saves, MFLOPs per frame of deciding to skip), for
        methods that declare ``frame_skipping``."""
        raise NotImplementedError(f"{type(self).__name__} does not skip frames")

    def design_point(self) -> DesignPoint | None:
        """The strictest of the declared design points that apply with these parameters."""
        points = [p for p in type(self).design_points
                  if p.requires is None or getattr(self, p.requires, False)]
        return max(points, key=lambda p: p.min_size, default=None)

    # ----------------------------------------------------------------- what a method implements
    def build_network(self, n_classes: int) -> nn.Module:
        """A freshly initialised network with ``n_classes`` outputs (the one that runs at
        inference; a teacher used only in training is not part of it)."""
        raise NotImplementedError

    def _prepare_network(self, network: nn.Module, device: torch.device) -> None:
        """Hook between building and training the network (e.g. pre-training on another
        dataset); ``classes_`` is already set."""

    def _targets(self, X: np.ndarray, y: np.ndarray, device: torch.device) -> torch.Tensor:
        """Training targets: class indices ``(N,)`` here; label distributions ``(N, C)`` for
        methods that learn from a teacher."""
        return torch.as_tensor(y, dtype=torch.long)

    def _loss(self, network: nn.Module, inputs: torch.Tensor, targets: torch.Tensor):
        """``(loss, logits)`` for one augmented, normalised batch."""
        return cross_entropy_loss(network, inputs, targets)

    def calibrate(self, X, groups, y=None):
        """Adapt to test subjects from their calibration images (a no-op unless the method
        declares ``calibration``). Returns ``self``."""
        check_is_fitted(self)
        return self

    # ----------------------------------------------------------------------- shared behaviour
    def fit(self, X, y, groups=None, *, validation_data=None):
        """Train on images ``X`` with labels ``y`` (names or ints) and optional subject ids.

        ``validation_data=(X_val, y_val)`` or ``(X_val, y_val, groups_val)`` chooses the best epoch
        on that split; otherwise a subject-disjoint ``validation_fraction`` of the training data
        is held out.
        """
        X, y, groups = self.check_fit_inputs(X, y, groups)
        self.classes_ = np.asarray(self.classes) if self.classes is not None else np.unique(y)
        if len(self.classes_) < 2:
            raise ValueError(f"a classifier needs at least 2 classes; y has only "
                             f"{list(self.classes_)} (give classes= to keep absent ones)")
        y_idx = self._encode(y)
        seed = self._seed()
        if validation_data is not None:
            X_val = check_images(validation_data[0])
            y_val = self._encode(np.asarray(validation_data[1]))
        else:
            train_idx, val_idx = self._internal_split(y_idx, groups, seed)
            X, y_idx, X_val, y_val = X[train_idx], y_idx[train_idx], X[val_idx], y_idx[val_idx]
            if groups is not None:
                groups = np.asarray(groups)[train_idx]
        self.device_ = str(resolve_device(self.device))
        device = torch.device(self.device_)
        torch.manual_seed(seed)
        self.network_ = self.build_network(len(self.classes_))
        self._prepare_network(self.network_, device)
        targets = self._targets(X, y_idx, device)
        result = train(self.network_, X, targets, self._train_config(), device, self._loss,
                       X_val if len(X_val) else None, y_val, labels=y_idx)
        self.history_ = result.history
        self.best_epoch_ = result.best_epoch
        self.n_epochs_ = len(result.history)
        self.planned_epochs_ = result.planned_epochs
        self.stopped_early_ = result.stopped_early
        return self

    def check_fit_inputs(self, X, y, groups=None) -> tuple[np.ndarray, np.ndarray,
                                                           np.ndarray | None]:
        """Check the parameters (``check_params``), then return ``(X, y, groups)`` as arrays of
        one length (lists work as arrays do), or raise a clear ``ValueError``. ``fit`` starts
        with it; methods that use their inputs before the shared ``fit`` (a teacher to train,
        neutral images to average) call it first themselves."""
        self.check_params()
        X = check_images(X)
        y = np.asarray(y)
        if y.ndim != 1:
            raise ValueError(f"y must be one label per image (1-D); got shape {y.shape}")
        if y.dtype == object:
            kinds = sorted({"str" if isinstance(v, str) else "number" if isinstance(v, Real)
                            else type(v).__name__ for v in y})
            if len(kinds) > 1 or kinds[0] not in ("str", "number"):
                raise ValueError(f"labels must all be names or all integers; y holds "
                                 f"{', '.join(kinds)}")
        if len(y) != len(X):
            raise ValueError(f"X has {len(X)} images but y has {len(y)} labels")
        if y.dtype.kind == "f" and np.isnan(y).any():
            raise ValueError(f"y must hold class labels (names or integers): it holds NaN "
                             f"({int(np.isnan(y).sum())} of {len(y)})")
        try:  # scikit-learn's rule: class labels, not continuous values
            check_classification_targets(y)
        except ValueError as err:
            raise ValueError(f"y must hold class labels (names or integers): {err}") from None
        return X, y, aligned("groups", groups, len(X))

    def _seed(self) -> int:
        return 0 if self.random_state is None else int(self.random_state)

    def _train_config(self, epochs: int | None = None, desc: str | None = None) -> TrainConfig:
        """The engine settings from this estimator's hyperparameters."""
        return TrainConfig(
            epochs=epochs or self.epochs, batch_size=self.batch_size, lr=self.lr,
            optimizer=self.optimizer, momentum=self.momentum, weight_decay=self.weight_decay,
            scheduler=self.scheduler, gamma=self.gamma, image_size=self.image_size,
            augment=self.augment, selection_metric=self.selection_metric,
            precise_bn_images=self.precise_bn_images, channels_last=self.channels_last,
            class_balance=self.class_balance, min_epoch_steps=self.min_epoch_steps,
            patience=self.patience, seed=self._seed(),
            verbose=self.verbose, desc=desc or type(self).__name__)

    def _encode(self, y: np.ndarray) -> np.ndarray:
        lookup = {c.item() if hasattr(c, "item") else c: i for i, c in enumerate(self.classes_)}
        try:
            return np.array([lookup[v.item() if hasattr(v, "item") else v] for v in y],
                            dtype=np.int64)
        except KeyError as err:
            raise ValueError(f"label {err.args[0]!r} is not one of classes "
                             f"{list(self.classes_)}") from None

    def _internal_split(self, y, groups, seed):
        everything = np.arange(len(y))
        if not self.validation_fraction:
            return everything, everything[:0]
        if groups is not None and len(np.unique(groups)) >= 2:
            splitter = GroupShuffleSplit(n_splits=1, test_size=self.validation_fraction,
                                         random_state=seed)
            return next(splitter.split(everything, y, groups))
        counts = np.bincount(y)
        if groups is None and counts[counts > 0].min() >= 2:
            splitter = StratifiedShuffleSplit(n_splits=1, test_size=self.validation_fraction,
                                              random_state=seed)
            try:
                return next(splitter.split(everything, y))
            except ValueError:
                pass
        return everything, everything[:0]

    def _device(self) -> torch.device:
        return resolve_device(self.device)

    def inference_network(self) -> nn.Module:
        """The trained network that runs at prediction time (what cost profiling measures)."""
        check_is_fitted(self)
        return self.network_

    def decision_function(self, X, groups=None) -> np.ndarray:
        """Raw class scores (logits), ``(N, n_classes)``."""
        check_is_fitted(self)
        X = check_images(X)
        aligned("groups", groups, len(X))  # unused here; a wrong length is still a mistake
        device = self._device()
        network = self.inference_network().to(device)
        return predict_logits(network, X, image_size=self.image_size, device=device,
                              batch_size=self.batch_size).numpy()

    def predict_proba(self, X, groups=None) -> np.ndarray:
        """Class probabilities, ``(N, n_classes)`` in the order of ``classes_``."""
        logits = torch.from_numpy(self.decision_function(X, groups))
        return torch.softmax(logits, dim=1).numpy()

    def predict(self, X, groups=None) -> np.ndarray:
        """The most probable class of every image, as labels from ``classes_``."""
        proba = self.predict_proba(X, groups)
        return self.classes_[np.argmax(proba, axis=1)]

    def score(self, X, y, sample_weight=None, groups=None) -> float:
        """Accuracy on ``(X, y)``; ``groups`` is passed to ``predict`` for personalised methods."""
        return float(accuracy_score(y, self.predict(X, groups), sample_weight=sample_weight))

    # ------------------------------------------------------------------------------ persistence
    def save(self, path) -> Path:
        """Write the estimator (parameters, fitted state and weights) to ``path`` atomically."""
        buffer = io.BytesIO()
        torch.save({"format": _FORMAT, "estimator": self}, buffer)
        return atomic_write(path, buffer.getvalue())

    @classmethod
    def load(cls, path) -> EmotionClassifier:
        """Read an estimator written by :meth:`save` (weights land on the CPU; ``device`` decides
        where it runs next). The file is a pickle: load only files you trust."""
        try:
            blob = torch.load(path, map_location="cpu", weights_only=False)
        except OSError:  # missing or unreadable: its own message says which
            raise
        except Exception as err:  # noqa: BLE001 - torch/pickle/zip errors of a foreign file
            raise ValueError(f"{path} is not a saved bench estimator (it does not load: "
                             f"{type(err).__name__})") from None
        if not isinstance(blob, dict) or blob.get("format") != _FORMAT:
            raise ValueError(f"{path} is not a saved bench estimator")
        est = blob["estimator"]
        if not isinstance(est, cls):
            raise TypeError(f"{path} holds a {type(est).__name__}, not a {cls.__name__}")
        return est
