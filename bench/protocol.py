"""The evaluation protocol: one (method, dataset, classes, seed) run at a time, each independent.

:func:`run_one` takes a :class:`RunSpec` (plain, picklable data) and returns a record (a JSON-able
dict); it writes nothing, so runs can be spread over processes or machines and their records
collected by the caller; :mod:`bench.runner` plans and runs grids of them (``bench.evaluate``).

What a run does, for every method alike (:func:`train_on_split` does steps 1-4):

1. load the dataset and split it by subject for this seed (:mod:`bench.splits`), keeping at most
   the preset's ``train_frames`` evenly spaced frames of each training and validation sequence
   (for methods that declare ``frame_order``, validation sequences are thinned like test ones,
   :func:`validation_frames`);
2. set aside each test subject's calibration images, which no method is scored on, keep at most
   the preset's ``test_frames`` evenly spaced frames of each remaining test sequence, and, with
   ``label_noise``, replace that fraction of the training labels by other classes;
3. ``fit`` on the training split, choosing the best epoch on the validation split; methods that
   declare ``frame_order`` also get ``sequences`` and ``validation_sequences``, and methods that
   declare ``needs_teacher`` learn from a fitted teacher (:func:`fit_teacher`; a grid trains it
   once per split, as a task of its own, for all of them);
4. score the model before calibration (personalised methods only), then ``calibrate`` it with what
   the method declares it needs (``calibration``);
5. ``predict`` the remaining test images (in frame order, with ``sequences=`` for frame-order
   methods) and score them (:mod:`bench.metrics`);
6. profile the network that runs at inference (:mod:`bench.profiling`).
"""

from __future__ import annotations

import copy
import time
import warnings
from dataclasses import asdict, dataclass, field, replace
from functools import lru_cache

import numpy as np
import torch
from sklearn.base import clone
from torch import nn

from .data import (
    EmotionDataset,
    dataset_info,
    load_dataset,
    prepared_source,
)
from .device import resolve_device
from .engine import get_engine_options, is_channels_last
from .errors import BenchError, DatasetError, DataWarning
from .estimator import EmotionClassifier
from .metrics import classification_metrics
from .presets import get_preset, preset_params
from .profiling import CostProfile, measure_latency, network_fingerprint, profile, shared_timing
from .records import jsonable, latency_fields, run_record, settings_of
from .registry import get_estimator, method_info
from .splits import CALIBRATION_SHARE, Split, make_split, noisy_labels, thin_sequences


@dataclass
class RunSpec:
    """Everything that defines one run. ``params`` override the preset's hyperparameters."""

    method: str
    dataset: str = "synthetic"
    classes: int = 4
    seed: int = 0
    root: str | None = None
    preset: str = "quick"
    params: dict = field(default_factory=dict)
    device: str = "auto"
    calibration_share: float = CALIBRATION_SHARE
    #: input size for params/FLOPs/latency; None = the method's native size (224 for most)
    profile_size: int | None = None
    latency: bool = True
    dataset_options: dict = field(default_factory=dict)
    #: fraction of training labels replaced by another class (validation and test stay clean)
    label_noise: float = 0.0
    #: refuse a dataset with unreadable images instead of skipping and counting them
    strict: bool = False


def estimator_params(spec: RunSpec) -> dict:
    """Hyperparameters of a registered method for ``spec``: the variant's own parameters < the
    preset < the method's overrides for that preset < the spec's overrides; plus seed and device."""
    info = method_info(spec.method)
    accepted = info.estimator().get_params()
    params = {k: v for k, v in preset_params(spec.preset, info.presets).items() if k in accepted}
    source = prepared_source(spec.dataset, spec.root)
    prefix = info.estimator.pretrain_param
    if get_preset(spec.preset).pretrain_on_source and source and prefix:
        params.update({prefix: source[0], f"{prefix}_root": source[1]})
    elif get_preset(spec.preset).pretrain_on_source and prefix and \
            (gone := prepared_source(spec.dataset, spec.root, must_exist=False)):
        warnings.warn(f"the eye crops in {spec.root} were cut from {gone[0]} faces at {gone[1]}, "
                      f"which is not there (moved?), so the {spec.preset} preset's pre-training "
                      f"on those faces is off; pass --teacher-pretrain {gone[0]} "
                      "--teacher-pretrain-root DIR",
                      DataWarning, stacklevel=2)
    return {**params, **spec.params, "random_state": spec.seed, "device": spec.device}


def build_estimator(spec: RunSpec, estimator: EmotionClassifier | None = None,
                    verbose: int = 0) -> EmotionClassifier:
    """A fresh estimator for ``spec``: the registered method, or a clone of ``estimator`` (whose
    own parameters are kept; the preset does not override them)."""
    if estimator is None:
        est = get_estimator(spec.method, **estimator_params(spec))
    else:
        est = clone(estimator).set_params(**spec.params, random_state=spec.seed,
                                          device=spec.device)
    return est.set_params(verbose=verbose)


@lru_cache(maxsize=1)
def _cached_dataset(name, root, classes, image_size, options) -> EmotionDataset:
    data = load_dataset(name, root=root, classes=classes, image_size=image_size, **dict(options))
    data.images.setflags(write=False)  # shared by the runs that follow: no method may alter it
    return data


def dataset_for(spec: RunSpec, image_size: int) -> EmotionDataset:
    """The dataset of ``spec`` at ``image_size``; the last one loaded stays in memory, so the
    seeds of a method share one load."""
    data = _cached_dataset(spec.dataset, spec.root, spec.classes, image_size,
                           tuple(sorted(spec.dataset_options.items())))
    if spec.strict and data.skipped:
        shown = "; ".join(data.skipped[:5]) + ("; ..." if len(data.skipped) > 5 else "")
        raise DatasetError(f"{spec.dataset}: {len(data.skipped)} unreadable image(s) and --strict "
                           f"was given: {shown}")
    return data


@dataclass
class Fit:
    """A fitted estimator and the seconds its training took. One fit can serve several runs: the
    split's teacher serves its students and its own row, and two runs whose :func:`fit_keys`
    are equal (a variant whose difference has no effect on this data) share one fit."""

    estimator: EmotionClassifier
    train_s: float


def held_out_subjects(run: TrainedRun) -> list:
    """The subjects of a run's split that training must never see: validation and test (the
    calibration images are test subjects' images)."""
    split, subjects = run.split, run.dataset.subjects
    if subjects is None:
        return []
    idx = np.concatenate([split.val, split.test, split.calibration]).astype(int)
    return sorted({str(s) for s in subjects[idx]})


def fit_keys(spec: RunSpec, estimator: EmotionClassifier | None = None
             ) -> tuple[tuple, tuple | None]:
    """(the key of ``spec``'s own fit, the key of its teacher's fit or ``None``). Two runs with
    the same own key train the very same model (a run whose own key is some student's teacher
    key is that teacher), so one fit serves both (:mod:`bench.runner` plans fits by these keys)."""
    run, train, _ = _prepared(spec, estimator, 0, whole_test=False)
    est, shape = run.estimator, run.dataset.images.shape[1:]
    teacher = _fit_key(est.make_teacher(), spec, shape, train[1]) if est.uses_teacher() else None
    return _fit_key(est, spec, shape, train[1]), teacher


def fit_teacher(spec: RunSpec, estimator: EmotionClassifier | None = None, *,
                whole_test: bool = False) -> Fit:
    """Train the teacher of ``spec``'s method on ``spec``'s split. The held-out subjects (the
    split's validation and test subjects) never reach it, pre-training on another dataset
    included. Its validation frames are spaced by its own declaration, not its student's, so
    one teacher fit serves every student of the split."""
    run, train, fit_args = _prepared(spec, estimator, 0, whole_test=whole_test, teacher=True)
    teacher = run.estimator.make_teacher()
    start = time.perf_counter()
    teacher.fit(*train, validation_data=fit_args["validation_data"],
                exclude_subjects=held_out_subjects(run))
    return Fit(teacher, time.perf_counter() - start)


def fit_run(spec: RunSpec, estimator: EmotionClassifier | None = None, *,
            teacher: Fit | None = None, verbose: int = 0, whole_test: bool = False) -> Fit:
    """Step 3 of a run: fit its estimator on its split. A method that needs a teacher learns
    from ``teacher`` (a :func:`fit_teacher` of the same split), or from one trained here.
    ``whole_test`` is :func:`train_on_split`'s (it spaces a frame-order method's validation)."""
    run, train, fit_args = _prepared(spec, estimator, verbose, whole_test=whole_test)
    est = run.estimator
    if est.uses_teacher():
        fit_args["teacher"] = (teacher or fit_teacher(spec, estimator,
                                                      whole_test=whole_test)).estimator
    if type(est).external_data:
        fit_args["exclude_subjects"] = held_out_subjects(run)
    start = time.perf_counter()
    est.fit(*train, **fit_args)
    return Fit(est, time.perf_counter() - start)


def _fit_key(estimator: EmotionClassifier, spec: RunSpec, image_shape: tuple, y_train) -> tuple:
    """Identifies a fit: the estimator's class and the settings that matter for these training
    labels (:meth:`~bench.EmotionClassifier.fit_signature`), and the data (split and the stored
    image shape, since methods of other input sizes load the images at other sizes). The declared
    ``frame_order`` also fixes how the validation frames are spaced (:func:`validation_frames`;
    keys are made without ``whole_test``)."""
    settings = {k: v for k, v in estimator.fit_signature(np.asarray(y_train)).items()
                if k != "verbose"}
    cls = type(estimator)
    declared = (cls.calibration, cls.frame_order, cls.channels_last, cls.precise_bn_images,
                get_engine_options().as_dict())  # engine options change the fit too
    return (f"{cls.__module__}.{cls.__qualname__}", repr(declared), repr(sorted(settings.items())),
            spec.dataset, spec.root,
            spec.classes, spec.seed, spec.calibration_share, spec.label_noise,
            repr(sorted(spec.dataset_options.items())), tuple(image_shape))


def _calibration_args(kind, dataset: EmotionDataset, idx: np.ndarray):
    """The calibration indices (and labels, if declared) a method gets, by its declaration."""
    if kind == "neutral":
        idx = idx[dataset.labels[idx] == dataset.class_names.index("neutral")]
    y = dataset.label_names[idx] if kind == "labeled" else None
    return idx, y


@dataclass
class TrainedRun:
    """A method fitted (and calibrated) on one split: what scoring and streaming start from."""

    spec: RunSpec
    estimator: EmotionClassifier
    dataset: EmotionDataset
    split: Split
    train_s: float
    reused_fit: bool
    #: the run's own estimator parameters (a reused fit is another estimator's, trained alike)
    params: dict = field(default_factory=dict)
    #: calibration images given to the method, per test subject
    calibration_images: dict = field(default_factory=dict)
    #: test scores of the same model before calibration (personalised methods only)
    uncalibrated: dict | None = None
    #: the training labels the method saw (with ``label_noise``, some are wrong)
    train_labels: np.ndarray | None = None
    #: classes of the class set with no image in a split part, by part
    missing_classes: dict = field(default_factory=dict)
    #: images of the training subjects before the preset's frames-per-sequence rule thinned them
    train_available: int | None = None

    def part(self, name: str):
        """(images, label names, subjects) of a split part."""
        idx = getattr(self.split, name)
        groups = self.dataset.subjects
        labels = self.train_labels if name == "train" and self.train_labels is not None \
            else self.dataset.label_names[idx]
        return self.dataset.images[idx], labels, None if groups is None else groups[idx]

    def order_args(self, name: str) -> dict:
        """``{"sequences": ...}`` of a split part for methods that declare ``frame_order``
        (``None`` for a dataset without sequences), else ``{}``."""
        if not type(self.estimator).frame_order:
            return {}
        sequences = self.dataset.sequences
        return {"sequences": None if sequences is None
                else sequences[getattr(self.split, name)]}

    def fit_order_args(self) -> dict:
        """What ``fit`` gets besides the images for methods that declare ``frame_order``: the
        training part's ``sequences`` and the validation part's ``validation_sequences``."""
        args = self.order_args("train")
        if args and len(self.split.val):
            args["validation_sequences"] = self.order_args("val")["sequences"]
        return args


def train_on_split(spec: RunSpec, *, estimator: EmotionClassifier | None = None, verbose: int = 0,
                   score_uncalibrated: bool = True, whole_test: bool = False,
                   fitted: Fit | None = None, teacher: Fit | None = None,
                   reused: bool = False) -> TrainedRun:
    """Load, split, fit (learning from ``teacher`` where the method needs one) and calibrate one
    run. With ``fitted`` (a :class:`Fit` of the same :func:`fit_keys`) nothing is trained: a copy
    of that model is calibrated and scored, and ``reused`` says whether another run trained it.

    ``whole_test`` keeps every test frame even when the preset scores a subset (streaming needs
    the full sequences), and every validation frame of a frame-order method
    (:func:`validation_frames`); ``fitted`` must then come from a fit with ``whole_test`` too
    (:func:`fit_keys` plans fits without it)."""
    run, _, _ = _prepared(spec, estimator, verbose, whole_test)
    run.params = run.estimator.get_params()
    if fitted is None:
        fitted = fit_run(spec, estimator, teacher=teacher, verbose=verbose, whole_test=whole_test)
        run.estimator = fitted.estimator
    else:  # a copy: one fit may serve several runs, and calibration (or prediction state)
        # changes it
        run.estimator = copy.deepcopy(fitted.estimator)
    run.reused_fit, run.train_s = reused, fitted.train_s
    if getattr(run.estimator, "teacher_", None):  # trained outside fit: count it in train_s
        run.train_s += run.estimator.teacher_["train_s"]
    _calibrate(run, score_uncalibrated)
    return run


def validation_frames(preset, frame_order: bool, whole_test: bool) -> int | None:
    """At most how many evenly spaced frames of each validation sequence a method gets: the
    training rule (``train_frames``), except for methods that declare ``frame_order``, whose
    validation frames are thinned like the test frames (``test_frames``, or all of them with
    ``whole_test``): what such a method learns from validation in frame order (EMO's skip
    threshold) must see the gaps between frames it will meet at test time."""
    if not frame_order:
        return preset.train_frames
    return None if whole_test else preset.test_frames


def _prepared(spec: RunSpec, estimator: EmotionClassifier | None, verbose: int,
              whole_test: bool, teacher: bool = False) -> tuple[TrainedRun, tuple, dict]:
    """Steps 1-2: the estimator, dataset and split of a run; its training data and fit args
    (with ``teacher``, the validation frames are spaced for the estimator's teacher)."""
    est = build_estimator(spec, estimator, verbose=verbose)
    dataset = dataset_for(spec, est.image_size)
    est.set_params(classes=list(dataset.class_names))
    split = make_split(dataset, spec.seed, dataset_info(spec.dataset).split, spec.calibration_share)
    preset = get_preset(spec.preset)
    spaced = est.make_teacher() if teacher else est
    val_frames = validation_frames(preset, type(spaced).frame_order, whole_test)
    available = len(split.train)
    split = replace(split, train=thin_sequences(dataset, split.train, preset.train_frames),
                    val=thin_sequences(dataset, split.val, val_frames))
    if not whole_test:  # after calibration was set aside, so calibration is the same either way
        split = replace(split, test=thin_sequences(dataset, split.test, preset.test_frames))
    run = TrainedRun(spec, est, dataset, split, 0.0, False)
    run.train_available = available
    _warn_thinning(dataset, preset, spec.preset)
    run.missing_classes = _missing_classes(dataset, split, spec.seed)
    run.train_labels = noisy_labels(dataset.label_names[split.train], dataset.class_names,
                                    spec.label_noise, spec.seed)
    train = run.part("train")
    fit_args = {"validation_data": run.part("val") if len(split.val) else None,
                **run.fit_order_args()}
    return run, train, fit_args


def _missing_classes(dataset: EmotionDataset, split, seed: int) -> dict:
    """Classes without a single image in the training or test part: reported, with a warning,
    rather than refused, since a small private dataset may simply lack them (the network keeps
    every output; such a class cannot be predicted correctly, or scored, in that seed)."""
    missing = {}
    nowhere = [c for c in dataset.class_names if c not in set(dataset.label_names)]
    if nowhere:
        _warn_once(dataset, f"{dataset.name}: no image of {', '.join(nowhere)} at all; the runs "
                   "go on and their records list it (missing_classes)")
    for part in ("train", "test"):
        present = set(dataset.label_names[getattr(split, part)])
        absent = [c for c in dataset.class_names if c not in present]
        if absent:
            missing[part] = absent
        if absent := [c for c in absent if c not in nowhere]:
            _warn_once(dataset, f"{dataset.name}: no {part} image of {', '.join(absent)} in "
                       f"the split of seed {seed}; the run goes on and its record lists them "
                       "(missing_classes)")
    return missing


def _warn_thinning(dataset: EmotionDataset, preset, preset_name: str) -> None:
    """Say so before training when the preset's frames-per-sequence rule keeps under half of
    a data folder's images: right for video (neighbouring frames are near-duplicates), wrong for a
    folder of separate photos, which the folder layouts read as one sequence. Counted over the
    whole dataset, so every seed and method gives the same message (shown once)."""
    if dataset.root is None or preset.train_frames is None or dataset.sequences is None:
        return
    _, lengths = np.unique(dataset.sequences, return_counts=True)
    kept, total = int(np.minimum(lengths, preset.train_frames).sum()), len(dataset)
    if kept >= total / 2:
        return
    _warn_once(dataset, (
        f"{dataset.name}: the {preset_name} preset trains on at most {preset.train_frames} evenly "
        f"spaced frames of each sequence, {kept} of the data's {total} images "
        f"({kept / total:.0%}; {len(lengths)} sequences). Right for "
        "video frames; for separate photos, give each photo a sequence folder of its own "
        "(<subject>/<emotion>/<sequence>/<image>) or use --preset paper, which keeps every "
        "frame"))


_WARNED: set[tuple] = set()


def _warn_once(dataset: EmotionDataset, message: str) -> None:
    """A warning about the data, shown once per process and data folder: every task of a grid
    prepares the same split again (planning, teacher, fit, score), and a dataset that lacks a
    class would otherwise say so for each of them."""
    key = (dataset.root, len(dataset), message)
    if key not in _WARNED:
        _WARNED.add(key)
        warnings.warn(message, DataWarning, stacklevel=4)


def _calibrate(run: TrainedRun, score_uncalibrated: bool) -> None:
    est, dataset, split = run.estimator, run.dataset, run.split
    kind = type(est).calibration
    if kind is None:
        return
    if score_uncalibrated:
        # the same model before calibration: what personalisation adds (fallback warnings are
        # expected here, every test subject is still unknown)
        X_te, y_te, g_te = run.part("test")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            y_pred = est.predict(X_te, g_te, **run.order_args("test"))
        scores = classification_metrics(y_te, y_pred, dataset.class_names)
        run.uncalibrated = {k: scores[k] for k in ("accuracy", "macro_f1", "per_class_recall")}
    if len(split.calibration):
        idx, y_cal = _calibration_args(kind, dataset, split.calibration)
        if len(idx):
            groups = dataset.subjects
            est.calibrate(dataset.images[idx], groups[idx], y_cal)
            run.calibration_images = {str(s): int(n) for s, n in
                                      zip(*np.unique(groups[idx], return_counts=True))}


def run_one(spec: RunSpec, *, estimator: EmotionClassifier | None = None, verbose: int = 0,
            **fits) -> dict:
    """Train, calibrate, test and profile one method on one seed; return its record.

    ``estimator`` runs an unregistered estimator (cloned; ``spec.method`` names it); ``fits``
    (``fitted``, ``teacher``, ``reused``) are :func:`train_on_split`'s."""
    return run_deferring_latency(spec, estimator=estimator, verbose=verbose, defer=False,
                                 **fits)[0]


def run_deferring_latency(spec: RunSpec, *, estimator: EmotionClassifier | None = None,
                          verbose: int = 0, defer: bool = True, **fits) -> tuple[dict, nn.Module]:
    """:func:`run_one`, but (with ``defer``) without timing latency: returns the record (latency
    fields empty) and the inference network, to be timed later by :func:`complete_latency` when
    nothing else runs on the machine (``bench run --jobs``)."""
    info = method_info(spec.method) if estimator is None else None
    run = train_on_split(spec, estimator=estimator, verbose=verbose, **fits)
    est = run.estimator
    X_te, y_te, g_te = run.part("test")
    start = time.perf_counter()
    y_pred = est.predict(X_te, g_te, **run.order_args("test"))
    predict_s = time.perf_counter() - start
    profile_size = spec.profile_size or (info.profile_size if info else 224)
    preset = get_preset(spec.preset)
    network = est.inference_network()
    nhwc = is_channels_last(network)  # timed in the memory format it trained and predicts in
    cost = profile(network, profile_size, resolve_device(spec.device),
                   latency=spec.latency and not defer, min_time=preset.latency_time,
                   throughput_batch=preset.throughput_batch, channels_last=nhwc)
    record = run_record(run, y_te, y_pred, cost, predict_s=predict_s, nhwc=nhwc, groups=g_te,
                        display_name=info.display_name if info else type(est).__name__)
    return record, network


def complete_latency(record: dict, network: nn.Module, timed: dict | None = None) -> dict:
    """``record`` (from :func:`run_deferring_latency`) with the latency of ``network`` timed now,
    as :func:`run_one` would have timed it (not at all for a spec with ``latency`` off).

    ``timed`` (a dict the caller keeps over a grid) shares one timing between networks of the
    same :func:`~bench.profiling.network_fingerprint`, input size, device, format and settings:
    the record then names the run it was timed with (``latency_timed_with``)."""
    spec, preset = record["spec"], get_preset(record["preset"])
    if not spec.get("latency", True):
        return record
    device = resolve_device(spec["device"])
    key = (network_fingerprint(network), record["cost"]["input_size"], str(device),
           record["engine"]["channels_last"], torch.get_num_threads(), preset.latency_time,
           preset.throughput_batch)
    if timed is not None and key in timed:
        first, cost = timed[key]
        cost = CostProfile(**{**record["cost"], **shared_timing(cost)})
        return jsonable({**record, **latency_fields(cost), "cost": cost.as_dict(),
                         "latency_timed_with": first})
    cost = measure_latency(CostProfile(**record["cost"]), network, device,
                           min_time=preset.latency_time, throughput_batch=preset.throughput_batch,
                           channels_last=record["engine"]["channels_last"])
    if timed is not None:
        timed[key] = (f"{record['method']} seed {record['seed']}", cost)
    return jsonable({**record, **latency_fields(cost), "cost": cost.as_dict()})


def retime_latency(records: list[dict]) -> tuple[list[dict], list[str], int]:
    """``records`` with their latency timed again here and now, one network at a time and
    identical networks once (:func:`complete_latency`), so rows from separate runs, or from days
    on which a shared machine ran at another speed, are timed under the same conditions. Each
    network is rebuilt from the record's method and parameters: latency does not depend on the
    trained weights, so nothing is trained again. Returns (the records, a line per record that
    was left as it was: an unregistered method, parameters the method no longer has, or latency
    off; how many networks were timed)."""
    from .registry import list_methods

    known, timed, out, kept = set(list_methods()), {}, [], []
    for record in records:
        if record["method"] not in known or not record.get("spec", {}).get("latency", True):
            kept.append(f"{record['method']} seed {record['seed']}: "
                        + ("not a registered method" if record["method"] not in known
                           else "latency off"))
            out.append(record)
            continue
        try:  # a record of an older version may name parameters the method no longer has
            estimator = get_estimator(record["method"], **record.get("params", {}))
        except BenchError as err:
            kept.append(f"{record['method']} seed {record['seed']}: {err}")
            out.append(record)
            continue
        network = estimator.build_network(len(record["class_names"])).eval()
        out.append(complete_latency({**record, "latency_timed_with": None}, network, timed))
    return out, kept, len(timed)


def expected_settings(spec: RunSpec) -> dict:
    """The :func:`settings_of` a finished record of ``spec`` will have (to skip finished runs)."""
    est = build_estimator(spec)
    return settings_of(jsonable({"spec": asdict(spec), "params": est.get_params()}))
