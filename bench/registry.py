"""The method registry (timm-style): ``register``, ``get_estimator``, ``list_methods``.

One module per method family registers its variants with their metadata: display name, a one-line
description, the paper's reference numbers, its paper-reported cost (params / MFLOPs, tested
against fvcore like torchvision tests its model metadata) and per-preset hyperparameters.

Built-in methods live in the ``baselines`` and ``ours`` packages; other packages can add methods
through the ``bench.methods`` entry-point group (each entry point names a module that calls
:func:`register` on import), and scripts can call :func:`register` directly.
"""

from __future__ import annotations

import importlib
import warnings
from dataclasses import dataclass, field
from importlib.metadata import entry_points

from .errors import BenchError
from .estimator import CALIBRATION_KINDS, EmotionClassifier

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


_METHODS: dict[str, MethodInfo] = {}
_loaded = False


def register(name: str, estimator: type[EmotionClassifier], *, display_name: str,
             description: str, references: dict | None = None, cost: Cost | None = None,
             presets: dict | None = None, profile_size: int = 224, ablation: str | None = None,
             **params) -> MethodInfo:
    """Register ``estimator`` (with the fixed ``params`` that define this variant) as ``name``."""
    if not (isinstance(estimator, type) and issubclass(estimator, EmotionClassifier)):
        raise TypeError(f"{name}: {estimator!r} is not an EmotionClassifier subclass")
    if estimator.calibration not in CALIBRATION_KINDS:
        raise TypeError(f"{name}: calibration must be one of {CALIBRATION_KINDS}")
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


def list_methods() -> list[str]:
    """Names of all registered methods: built-in packages first (``baselines``, ``ours``), then
    plug-ins, each in registration order, whatever order they were imported in."""
    _load_methods()
    return sorted(_METHODS, key=lambda name: _order(_METHODS[name]))


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
