"""The method registry (timm-style): ``register``, ``get_estimator``, ``list_methods``.

One module per method family registers its variants with their metadata: display name, a one-line
description, the paper's reference numbers, its paper-reported cost (params / MFLOPs, tested
against fvcore like torchvision tests its model metadata) and per-preset hyperparameters.

Built-in methods live in the ``baselines`` and ``ours`` packages; other packages can add methods
through the ``bench.methods`` entry-point group (each entry point names a module that calls
:func:`register` on import), and scripts can call :func:`register` directly.
"""

from __future__ import annotations

import fnmatch
import importlib
import inspect
import warnings
from collections.abc import Iterable
from dataclasses import dataclass, field
from importlib.metadata import entry_points

from .errors import BenchError
from .estimator import CALIBRATION_KINDS, DesignPoint, EmotionClassifier

BUILTIN_PACKAGES = ("baselines", "ours")


@dataclass(frozen=True)
class Reference:
    """A number reported by a source paper; accuracy is a fraction (0.685 for 68.5 %)."""

    accuracy: float | None = None
    f1: float | None = None
    source: str = ""


@dataclass(frozen=True)
class Cost:
    """Reported inference cost, with the setting it was counted in. ``exact`` costs are tested
    against fvcore's count of the built network; others are shown for reference, with a ``note``
    saying why they differ."""

    params_m: float
    mflops: float
    classes: int = 4
    input_size: int = 224
    exact: bool = True
    note: str = ""


@dataclass(frozen=True)
class MethodInfo:
    name: str
    estimator: type[EmotionClassifier]
    display_name: str
    description: str
    #: constructor parameters that define this registered variant
    params: dict = field(default_factory=dict)
    #: (dataset, classes) -> the paper's numbers
    references: dict = field(default_factory=dict)
    cost: Cost | None = None
    #: preset name -> hyperparameters that differ from the shared preset for this method
    presets: dict = field(default_factory=dict)
    #: the input size cost is reported at (the method's native size)
    profile_size: int = 224
    #: row label in the ablation table (``<dataset>-<classes>-ablation.md``); None = not a row
    ablation: str | None = None

    @property
    def calibration(self) -> str | None:
        return self.estimator.calibration

    def create(self, **params) -> EmotionClassifier:
        return self.estimator(**{**self.params, **params})


def _overrides(cls: type, method: str) -> bool:
    return getattr(cls, method) is not getattr(EmotionClassifier, method)


def _accepts(function, name: str) -> bool:
    parameters = inspect.signature(function).parameters
    return name in parameters or any(p.kind is p.VAR_KEYWORD for p in parameters.values())


def declaration_problems(cls: type[EmotionClassifier]) -> list[str]:
    """What is wrong with the capabilities ``cls`` declares (see :mod:`bench.estimator`): each
    declaration has the type it must have, and the methods and parameters it promises exist."""
    problems = []
    params = set(cls._get_param_names())
    if cls.calibration not in CALIBRATION_KINDS:
        problems.append(f"calibration must be one of {CALIBRATION_KINDS}, got {cls.calibration!r}")
    if cls.calibration is not None and not _overrides(cls, "calibrate"):
        problems.append(f"calibration {cls.calibration!r} is declared but calibrate() is not "
                        "implemented")
    for flag in ("frame_order", "frame_skipping", "external_data", "channels_last"):
        if not isinstance(getattr(cls, flag), bool):
            problems.append(f"{flag} must be True or False, got {getattr(cls, flag)!r}")
    need = cls.needs_teacher
    if isinstance(need, str) and need not in params:
        problems.append(f"needs_teacher names {need!r}, which is not one of its parameters")
    elif not isinstance(need, (bool, str)):
        problems.append(f"needs_teacher must be True, False or a parameter name, got {need!r}")
    if need and (not _overrides(cls, "make_teacher") or not _accepts(cls.fit, "teacher")):
        problems.append("needs_teacher is declared, so it needs make_teacher() and "
                        "fit(..., teacher=...)")
    if cls.frame_order is True and not all(_accepts(cls.fit, a) for a in ("sequences",
                                                                         "validation_sequences")):
        problems.append("frame_order is declared, so fit() must accept sequences= and "
                        "validation_sequences=")
    if cls.frame_skipping and (not all(_overrides(cls, m) for m in ("stream", "threshold",
                                                                     "skip_costs"))
                               or "skip_threshold" not in params):
        problems.append("frame_skipping is declared, so it needs stream(), threshold(), "
                        "skip_costs() and a skip_threshold parameter")
    if cls.external_data and not _accepts(cls.fit, "exclude_subjects"):
        problems.append("external_data is declared, so fit() must accept exclude_subjects=")
    prefix = cls.pretrain_param
    missing = [p for p in (prefix, f"{prefix}_root", f"{prefix}_epochs") if p not in params]
    if prefix is not None and missing:
        problems.append(f"pretrain_param is {prefix!r}, so it needs the parameter(s) "
                        f"{', '.join(missing)}")
    for point in cls.design_points:
        if not isinstance(point, DesignPoint):
            problems.append(f"design_points must hold DesignPoint s, got {point!r}")
        elif point.requires is not None and point.requires not in params:
            problems.append(f"design point requires {point.requires!r}, which is not one of its "
                            "parameters")
    if not isinstance(cls.precise_bn_images, int) or cls.precise_bn_images < 0:
        problems.append("precise_bn_images must be a non-negative integer")
    return problems


_METHODS: dict[str, MethodInfo] = {}
_loaded = False


def register(name: str, estimator: type[EmotionClassifier], *, display_name: str,
             description: str, references: dict | None = None, cost: Cost | None = None,
             presets: dict | None = None, profile_size: int = 224, ablation: str | None = None,
             **params) -> MethodInfo:
    """Register ``estimator`` (with the fixed ``params`` that define this variant) as ``name``."""
    if not (isinstance(estimator, type) and issubclass(estimator, EmotionClassifier)):
        raise TypeError(f"{name}: {estimator!r} is not an EmotionClassifier subclass")
    problems = declaration_problems(estimator)
    if problems:
        raise TypeError(f"{name}: {'; '.join(problems)}")
    info = MethodInfo(name, estimator, display_name, description, dict(params),
                      dict(references or {}), cost, dict(presets or {}), profile_size, ablation)
    _METHODS[name] = info
    return info


def _load_methods() -> None:
    global _loaded
    if _loaded:
        return
    _loaded = True
    for package in BUILTIN_PACKAGES:
        importlib.import_module(package)
    for ep in entry_points(group="bench.methods"):
        try:
            ep.load()
        except Exception as err:  # noqa: BLE001 - a broken plug-in must not break the suite
            warnings.warn(f"method plug-in {ep.name!r} failed to load: {err}", stacklevel=2)


def _order(info: MethodInfo) -> int:
    package = info.estimator.__module__.partition(".")[0]
    return BUILTIN_PACKAGES.index(package) if package in BUILTIN_PACKAGES else len(BUILTIN_PACKAGES)


#: what ``list_methods(calibration=...)`` accepts: a declared kind, ``"none"`` or ``"any"``
CALIBRATION_FILTERS = ("none", *(k for k in CALIBRATION_KINDS if k), "any")


def list_methods(filter: str | Iterable[str] = "", *, dataset: str | None = None,
                 calibration: str | None = None) -> list[str]:
    """Names of the registered methods: built-in packages first (``baselines``, ``ours``), then
    plug-ins, each in registration order, whatever order they were imported in.

    Filters, as timm's ``list_models``: ``filter`` is a shell-style pattern or several
    (``"ours*"``, ``["eac", "efficientnet-*"]``); ``dataset`` keeps methods with the paper's
    reference numbers on that dataset; ``calibration`` keeps methods that declare that kind
    (``"neutral"``, ``"unlabeled"``, ``"labeled"``), none (``"none"``) or any (``"any"``)."""
    _load_methods()
    names = sorted(_METHODS, key=lambda name: _order(_METHODS[name]))
    patterns = [filter] if isinstance(filter, str) else list(filter)
    if any(patterns):
        names = [n for n in names if any(fnmatch.fnmatchcase(n, p) for p in patterns if p)]
    if dataset is not None:
        names = [n for n in names if any(d == dataset for d, _ in _METHODS[n].references)]
    if calibration is not None:
        if calibration not in CALIBRATION_FILTERS:
            raise BenchError(f"unknown calibration {calibration!r}; valid: "
                             f"{', '.join(CALIBRATION_FILTERS)}")
        names = [n for n in names if calibration == "any" and _METHODS[n].calibration
                 or calibration == "none" and not _METHODS[n].calibration
                 or _METHODS[n].calibration == calibration]
    return names


def method_info(name: str) -> MethodInfo:
    _load_methods()
    try:
        return _METHODS[name]
    except KeyError:
        raise BenchError(f"unknown method {name!r}; valid methods: {', '.join(list_methods())}") from None


def get_estimator(name: str, **params) -> EmotionClassifier:
    """A new, unfitted estimator of the registered method ``name``; ``params`` override its
    defaults (e.g. ``get_estimator("shufflenet-v2", epochs=10)``)."""
    info = method_info(name)
    valid = info.estimator().get_params()
    unknown = sorted(set(params) - set(valid))
    if unknown:
        raise BenchError(f"{name} has no parameter(s) {', '.join(unknown)}; valid: "
                         f"{', '.join(sorted(valid))}")
    return info.create(**params)
