"""The method contract as a check anyone can run, like scikit-learn's ``check_estimator``.

A method added in another package proves it keeps the contract the protocol relies on::

    from bench.testing import check_estimator, parametrize_with_checks

    check_estimator(MyNet(epochs=1, image_size=32))   # AssertionError naming the broken rule

    @parametrize_with_checks([MyNet(epochs=1, image_size=32), "shufflenet-v2"])
    def test_contract(estimator, check):
        check(estimator)

Each check gets an unfitted estimator whose (small) budget it keeps, trains it on a tiny generated
eye set on the CPU and asserts one rule:

* declarations are well formed (:func:`bench.registry.declaration_problems`);
* ``__init__`` only stores its parameters; ``clone`` and ``get_params``/``set_params`` round-trip;
* user mistakes fail at once: predicting or calibrating before ``fit`` raises ``NotFittedError``,
  and a bad parameter or inputs of unequal length raise ``ValueError`` before anything trains;
* ``fit`` returns ``self``; ``predict_proba`` is ``(N, n_classes)`` in the order of ``classes_``,
  rows summing to one, and ``predict`` is its arg-max, as labels; the network is in the memory
  format the class declares; a 2-class and a 7-class fit work;
* ``save``/``load`` give the same parameters and predictions;
* declared calibration is honoured: a method that declares it changes its predictions for a
  calibrated subject, one that does not is left as it was; frame-order methods accept
  ``sequences=``;
* a teacher, when declared, is an estimator, and a student records it (``teacher_``);
* two fits with the same ``random_state`` on the CPU give identical probabilities, the second
  given labels, subject and sequence ids as lists;
* the registered cost (:class:`bench.Cost`, when ``exact``) equals fvcore's count.

A registered name stands for that method at its smoke-preset settings with one epoch
(:func:`small_estimator`).
"""

from __future__ import annotations

import copy
import functools
import tempfile
from collections.abc import Callable, Iterable
from pathlib import Path
from unittest import mock

import numpy as np
from sklearn.base import clone
from sklearn.exceptions import NotFittedError

from .classes import CLASSES_7
from .data import load_dataset
from .engine import get_engine_options, is_channels_last
from .estimator import EmotionClassifier
from .registry import declaration_problems, get_estimator, list_methods, method_info

#: the smallest settings that still exercise every code path of a method
SMALL = dict(epochs=1, batch_size=16, image_size=32, optimizer="adamw", lr=1e-3, device="cpu")


def small_params(name: str, **params) -> dict:
    """:data:`SMALL`, with what registered method ``name``'s smoke preset needs beyond it (e.g.
    Inception v3's least input size), then ``params``."""
    smoke = {k: v for k, v in method_info(name).presets.get("smoke", {}).items() if k != "epochs"}
    return {**SMALL, **smoke, **params}


def small_estimator(name: str, **params) -> EmotionClassifier:
    """Registered method ``name`` at :func:`small_params` settings."""
    return get_estimator(name, **small_params(name, **params))


@functools.lru_cache(maxsize=2)
def _eyes(classes: int):
    """A tiny generated eye set: 6 subjects, 4 frames of each emotion, 32 px."""
    return load_dataset("synthetic", classes=classes, image_size=32, n_subjects=6, frames=4)


def _prepared(estimator: EmotionClassifier) -> EmotionClassifier:
    """A fresh copy that trains on the CPU, quietly: checks never alter what they are given."""
    return clone(estimator).set_params(device="cpu", verbose=0)


def _fit(estimator: EmotionClassifier, classes: int = 4, keep=None,
         as_lists: bool = False) -> EmotionClassifier:
    data = _eyes(classes)
    keep = np.ones(len(data), bool) if keep is None else keep
    y, groups, order = data.label_names[keep], data.subjects[keep], _order(estimator, data, keep)
    if as_lists:
        y, groups, order = list(y), list(groups), {k: list(v) for k, v in order.items()}
    fitted = estimator.fit(data.images[keep], y, groups, **order)
    assert fitted is estimator, "fit must return self"
    return fitted


_FITTED: dict[tuple, EmotionClassifier] = {}


def _fitted(estimator: EmotionClassifier) -> EmotionClassifier:
    """``estimator`` fitted on the 4-class set (one fit per settings, shared by the checks that
    only read it; each gets its own copy)."""
    key = (type(estimator), repr(sorted(estimator.get_params().items())))
    if key not in _FITTED:
        _FITTED.clear()  # one method at a time: parametrised checks come grouped by estimator
        _FITTED[key] = _fit(_prepared(estimator))
    return copy.deepcopy(_FITTED[key])


def _order(estimator: EmotionClassifier, data, index) -> dict:
    return {"sequences": data.sequences[index]} if type(estimator).frame_order else {}


# ------------------------------------------------------------------------------------ the checks
def check_declarations(estimator: EmotionClassifier) -> None:
    """What the class declares is well formed and backed by what it promises."""
    problems = declaration_problems(type(estimator))
    assert not problems, "; ".join(problems)
    assert isinstance(estimator.uses_teacher(), bool)


def check_parameters(estimator: EmotionClassifier) -> None:
    """``__init__`` stores its parameters and nothing else; ``clone`` and ``set_params`` work;
    every parameter has a constraint that ``check_params`` enforces."""
    est = clone(estimator)
    names = set(est.get_params())
    assert set(vars(est)) == names, (
        f"__init__ must store exactly its parameters: extra {sorted(set(vars(est)) - names)}, "
        f"missing {sorted(names - set(vars(est)))}")
    assert set(EmotionClassifier().get_params()) <= names, "every base parameter must be kept"
    twin = clone(est)
    assert twin is not est and twin.get_params() == est.get_params(), "clone changes parameters"
    assert est.set_params(epochs=est.epochs + 1) is est and est.epochs == estimator.epochs + 1
    unchecked = sorted(names - set(type(est)._parameter_constraints))
    assert not unchecked, (f"parameters without a constraint in _parameter_constraints: "
                           f"{unchecked} (a wrong value must fail before any data is loaded)")
    est.check_params()  # its own values are valid
    try:
        clone(est).set_params(epochs=0).check_params()
    except ValueError:
        pass
    else:
        raise AssertionError("check_params accepted epochs=0")


def check_fit_predict(estimator: EmotionClassifier) -> None:
    """Shapes, order and consistency of what a fitted estimator returns."""
    est, data = _fitted(estimator), _eyes(4)
    assert list(est.classes_) == sorted(data.class_names)
    assert len(est.history_) == est.n_epochs_ >= 1 and 1 <= est.best_epoch_ <= est.n_epochs_
    index = np.arange(9)
    X, groups = data.images[index], data.subjects[index]
    proba = est.predict_proba(X, groups, **_order(est, data, index))
    assert proba.shape == (9, 4), f"predict_proba gave shape {proba.shape}, expected (9, 4)"
    assert np.all(proba >= 0) and np.allclose(proba.sum(1), 1, atol=1e-5), \
        "predict_proba rows must be probabilities"
    predicted = est.predict(X, groups, **_order(est, data, index))
    assert list(predicted) == list(est.classes_[proba.argmax(1)]), \
        "predict must be the class of predict_proba's largest column (columns in classes_ order)"
    assert 0 <= est.score(X, data.label_names[index], groups=groups) <= 1
    _refused(ValueError, "predict_proba with one subject id too few", est.predict_proba, X,
             groups[:-1], **_order(est, data, index))
    if type(est).frame_order:
        _refused(ValueError, "predict_proba with one sequence id too few", est.predict_proba, X,
                 groups, sequences=data.sequences[index][:-1])
    forced = get_engine_options().channels_last
    wanted = type(est).channels_last if forced is None else forced
    assert is_channels_last(est.inference_network()) == wanted, \
        "the network must train and predict in the memory format the class declares"


def _refused(error: type[Exception], what: str, call: Callable, *args, **kwargs) -> None:
    try:
        call(*args, **kwargs)
    except error:
        return
    except AssertionError:
        raise
    except Exception as err:  # noqa: BLE001 - any other error is the finding
        raise AssertionError(f"{what} raised {type(err).__name__}: {err}, not "
                             f"{error.__name__}") from err
    raise AssertionError(f"{what} raised nothing; expected {error.__name__}")


def check_input_errors(estimator: EmotionClassifier) -> None:
    """User mistakes fail at once with a clear error: an unfitted estimator refuses to predict
    and calibrate (scikit-learn's ``NotFittedError``), and a bad parameter value, or labels,
    subject or sequence ids of the wrong length, stop ``fit`` before anything trains (a teacher
    included)."""
    est, data = _prepared(estimator), _eyes(4)
    index = np.arange(12)
    X, y, groups = data.images[index], data.label_names[index], data.subjects[index]
    order = _order(est, data, index)
    for name in ("predict", "predict_proba", "calibrate"):
        args = (X, groups, y) if name == "calibrate" else (X, groups)
        _refused(NotFittedError, f"{name} before fit", getattr(est, name), *args,
                 **({} if name == "calibrate" else order))
    mistakes = {"epochs=0": (clone(est).set_params(epochs=0), (X, y, groups), order),
                "one label too few": (est, (X, y[:-1], groups), order),
                "one subject id too few": (est, (X, y, groups[:-1]), order)}
    if type(est).frame_order:
        mistakes["one sequence id too few"] = (est, (X, y, groups),
                                               {"sequences": data.sequences[index][:-1]})
    untrained = AssertionError("fit began training before it checked its parameters and inputs")
    with mock.patch("bench.estimator.train", side_effect=untrained):
        for what, (candidate, args, kwargs) in mistakes.items():
            _refused(ValueError, f"fit with {what}", candidate.fit, *args, **kwargs)


def check_class_counts(estimator: EmotionClassifier) -> None:
    """A 2-class and a 7-class training set give 2 and 7 outputs."""
    data = _eyes(4)
    two = np.isin(data.label_names, ["happiness", "neutral"])
    est = _fit(_prepared(estimator), 4, keep=two)
    assert est.predict_proba(data.images[:5], data.subjects[:5]).shape == (5, 2)
    est = _fit(_prepared(estimator), 7)
    assert list(est.classes_) == sorted(CLASSES_7)
    assert est.predict_proba(data.images[:5], data.subjects[:5]).shape == (5, 7)


def check_save_load(estimator: EmotionClassifier) -> None:
    """A saved estimator loads with the same parameters and predictions."""
    est, data = _fitted(estimator), _eyes(4)
    with tempfile.TemporaryDirectory() as folder:
        again = EmotionClassifier.load(est.save(Path(folder) / "model.pt"))
    assert type(again) is type(est) and again.get_params() == est.get_params()
    np.testing.assert_array_equal(again.predict_proba(data.images[:8], data.subjects[:8]),
                                  est.predict_proba(data.images[:8], data.subjects[:8]))


def check_calibration(estimator: EmotionClassifier) -> None:
    """Calibration does what the method declares: it personalises the calibrated subject's
    predictions when declared (given what the protocol gives: neutral images, unlabeled or
    labeled ones), and changes nothing otherwise."""
    est, data = _fitted(estimator), _eyes(4)
    subject = data.subjects[0]
    mine = np.flatnonzero(data.subjects == subject)
    before = est.predict_proba(data.images[mine], data.subjects[mine], **_order(est, data, mine))
    kind = type(est).calibration
    given = mine[data.label_names[mine] == "neutral"] if kind == "neutral" else mine
    y = data.label_names[given] if kind == "labeled" else None
    assert est.calibrate(data.images[given], data.subjects[given], y) is est, \
        "calibrate must return self"
    after = est.predict_proba(data.images[mine], data.subjects[mine], **_order(est, data, mine))
    if kind is None:
        np.testing.assert_array_equal(after, before, err_msg="calibrate changed a method that "
                                      "declares no calibration")
    else:
        assert not np.allclose(after, before), (
            f"calibration {kind!r} is declared, but calibrating a subject did not change its "
            "predictions")


def check_teacher(estimator: EmotionClassifier) -> None:
    """A declared teacher is an estimator, and a student trained with one records it."""
    if not estimator.uses_teacher():
        return
    student = _prepared(estimator)
    teacher = student.make_teacher()
    assert isinstance(teacher, EmotionClassifier), "make_teacher() must return an estimator"
    data = _eyes(4)
    teacher.set_params(device="cpu", verbose=0).fit(data.images, data.label_names, data.subjects)
    kwargs = _order(student, data, np.arange(len(data)))
    student.fit(data.images, data.label_names, data.subjects, teacher=teacher, **kwargs)
    assert isinstance(student.teacher_, dict) and "train_s" in student.teacher_, \
        "a student must set teacher_ (a dict with at least train_s)"


def check_determinism(estimator: EmotionClassifier) -> None:
    """The same ``random_state`` on the CPU gives the very same model, whether labels, subject
    and sequence ids come as arrays or as lists (as scikit-learn's tools may pass them)."""
    data = _eyes(4)
    again = _fit(_prepared(estimator), as_lists=True)
    np.testing.assert_array_equal(
        again.predict_proba(data.images[:10], list(data.subjects[:10])),
        _fitted(estimator).predict_proba(data.images[:10], data.subjects[:10]),
        err_msg="two fits with the same random_state differ (the second given lists)")


def check_cost(estimator: EmotionClassifier) -> None:
    """The registered cost of this method, if exact, is fvcore's count of the built network."""
    from .profiling import profile

    for name in _registered_as(estimator):
        cost = method_info(name).cost
        if cost is None or not cost.exact:
            continue
        network = method_info(name).estimator(**method_info(name).params).build_network(cost.classes)
        counted = profile(network, cost.input_size, latency=False)
        assert abs(counted.params_m - cost.params_m) <= 0.01, \
            f"{name}: registered {cost.params_m} M parameters, fvcore counts {counted.params_m:.2f}"
        assert abs(counted.mflops - cost.mflops) <= 0.02 * cost.mflops, \
            f"{name}: registered {cost.mflops} MFLOPs, fvcore counts {counted.mflops:.2f}"


def _registered_as(estimator: EmotionClassifier) -> list[str]:
    """The registered names whose class and fixed parameters this estimator has."""
    params = estimator.get_params()
    return [name for name in list_methods()
            if method_info(name).estimator is type(estimator)
            and all(params.get(k) == v for k, v in method_info(name).params.items())]


CHECKS: tuple[Callable[[EmotionClassifier], None], ...] = (
    check_declarations, check_parameters, check_input_errors, check_fit_predict, check_save_load,
    check_calibration,
    check_teacher, check_determinism, check_class_counts, check_cost)


def _resolve(estimator) -> EmotionClassifier:
    if isinstance(estimator, str):
        return small_estimator(estimator)
    if not isinstance(estimator, EmotionClassifier):
        raise TypeError(f"expected an EmotionClassifier or a registered name, got {estimator!r}")
    return estimator


def check_estimator(estimator) -> None:
    """Run every check on ``estimator`` (an unfitted :class:`~bench.EmotionClassifier` with a
    small budget, or a registered name); the first broken rule raises ``AssertionError``."""
    estimator = _resolve(estimator)
    for check in CHECKS:
        try:
            check(estimator)
        except AssertionError as err:
            raise AssertionError(f"{type(estimator).__name__} fails {check.__name__}: {err}") \
                from err


def parametrize_with_checks(estimators: Iterable):
    """A ``pytest.mark.parametrize`` over ``(estimator, check)`` for every estimator (instances
    or registered names) and every check, with readable test ids (``shufflenet-v2-check_cost``)."""
    import pytest

    cases, ids = [], []
    for given in estimators:
        est = _resolve(given)
        for check in CHECKS:
            cases.append((est, check))
            ids.append(f"{given if isinstance(given, str) else type(est).__name__}-"
                       f"{check.__name__}")
    return pytest.mark.parametrize("estimator, check", cases, ids=ids)


__all__ = ["CHECKS", "SMALL", "check_estimator", "parametrize_with_checks", "small_estimator",
           "small_params",
           *[check.__name__ for check in CHECKS]]
