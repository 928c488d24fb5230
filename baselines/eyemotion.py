"""Eyemotion (Hickson et al., WACV 2019): Inception v3 on neutral-subtracted eye images.

Personalisation: the pixel-wise mean of a user's neutral images is subtracted from every image of
that user, in training (each training subject's own labelled neutral images) and at test time (the
neutral images of the test subject's calibration set, which the protocol hands to ``calibrate``).

Decisions (no public code exists):

* Network: torchvision's ``inception_v3`` without the auxiliary head, at ``image_size`` (299 in the
  paper preset; Inception v3 needs at least 75 px, so the quick and smoke presets use 75).
* Only the subtraction is used; the neutral mean is not fed as an extra input (the patent allows
  both; the paper describes the subtraction).
* The difference image (range -255..255) is stored as ``128 + difference / 2`` in uint8, so that
  the shared engine (augmentation, normalisation) is used unchanged; one grey level of the
  difference is lost.
* In training (and validation) a neutral image is subtracted from the mean of its subject's
  *other* neutral images, as a test image is from a calibration mean it is not part of; with a
  subject's only neutral image, the training set's mean neutral is used.
* A subject without neutral images gets the training set's mean neutral image instead, with a
  warning; ``report_`` counts such subjects (training and last prediction), and the protocol
  copies it into the run record.
* Without ``groups`` every image is treated as one unknown subject (the fallback mean).
* Images given to ``calibrate`` and ``predict`` in another size or colour than the training images
  are converted to the training images' shape first, so that means and images subtract pixel by
  pixel; an alpha channel is ignored, as everywhere.
"""

from __future__ import annotations

import warnings
from numbers import Integral
from typing import ClassVar

import numpy as np
from sklearn.utils.validation import check_is_fitted

from bench import Cost, EmotionClassifier, Reference, register
from bench.estimator import DesignPoint, aligned
from bench.pretrained import torchvision_network
from bench.transforms import conform_images, grey_or_rgb


def subtract_neutral(X: np.ndarray, means: np.ndarray) -> np.ndarray:
    """``128 + (X - means) / 2`` as uint8 (``means`` broadcast per image)."""
    diff = X.astype(np.float32) - means
    return np.clip(np.rint(128 + diff / 2), 0, 255).astype(np.uint8)


class EyemotionClassifier(EmotionClassifier):
    """Inception v3 on images minus their subject's mean neutral image.

    Parameters (besides :class:`bench.EmotionClassifier`'s)
    --------------------------------------------------------
    neutral_label : the label of the neutral class in ``y`` (default ``"neutral"``); its integer
        where ``y`` holds integers.

    ``calibrate(X, groups)`` takes each test subject's neutral images, or, given their labels
    ``y``, any of its images, of which it keeps the neutral ones.
    """

    calibration = "neutral"
    design_points = (DesignPoint(299, "Inception v3's native input, at which the paper trains it; "
                                 "at 75 px, its least, the last blocks see a 1x1 map"),)
    # a training step of Inception v3 at 75 px takes 0.86x as long in NHWC on a CPU
    channels_last: ClassVar[bool] = True

    _parameter_constraints = {**EmotionClassifier._parameter_constraints,
                              "neutral_label": [str, Integral]}

    def __init__(self, *, image_size=299, neutral_label="neutral", **base):
        super().__init__(image_size=image_size, **base)
        self.neutral_label = neutral_label

    def build_network(self, n_classes):
        if self.pretrained:  # the ImageNet checkpoint includes the auxiliary head
            net = torchvision_network("inception_v3", n_classes, True, aux_logits=True,
                                      init_weights=False)
            net.aux_logits, net.AuxLogits = False, None
            return net
        return torchvision_network("inception_v3", n_classes, False, aux_logits=False,
                                   init_weights=True)

    # ------------------------------------------------------------------- neutral means
    def _conform(self, X) -> np.ndarray:
        """Images in the training images' shape, so that a subject's mean can be subtracted
        from images of another size or colour (the network would resize them anyway)."""
        shape = getattr(self, "image_shape_", None)  # absent from estimators saved before it
        return grey_or_rgb(X) if shape is None else conform_images(X, shape)

    def _personalise_labelled(self, X, y, groups) -> tuple[np.ndarray, int]:
        """Labelled images minus their subject's mean neutral image, a neutral image minus the
        mean of its subject's *other* neutral images (the training set's mean neutral when it
        has none): at test time a neutral image is never part of the calibration mean it is
        subtracted from, so training must not see neutral differences shrunk towards zero (a
        subject's only neutral image would otherwise become a flat grey image, an easy cue that
        test images never show). Returns (images, subjects without neutral images)."""
        if groups is None:
            return subtract_neutral(X, self.neutral_mean_), 1
        neutral = y == self.neutral_label
        out, missing = np.empty_like(X), 0
        for subject in np.unique(groups):
            mine = groups == subject
            own = np.flatnonzero(mine & neutral)
            if not len(own):
                missing += 1
                out[mine] = subtract_neutral(X[mine], self.neutral_mean_)
                continue
            total = X[own].astype(np.float32).sum(axis=0)
            rest = np.flatnonzero(mine & ~neutral)
            out[rest] = subtract_neutral(X[rest], total / len(own))
            for i in own:
                others = (total - X[i]) / (len(own) - 1) if len(own) > 1 else self.neutral_mean_
                out[i] = subtract_neutral(X[i], others)
        return out, missing

    def _personalise(self, X, groups, means: dict) -> tuple[np.ndarray, int]:
        """Subtract each image's subject mean (the fallback for unknown subjects)."""
        if groups is None:
            return subtract_neutral(X, self.neutral_mean_), 1
        groups = aligned("groups", groups, len(X))
        out = np.empty_like(X)
        unknown = 0
        for subject in np.unique(groups):
            idx = groups == subject
            mean = means.get(subject)
            if mean is None:
                mean, unknown = self.neutral_mean_, unknown + 1
            out[idx] = subtract_neutral(X[idx], mean)
        return out, unknown

    def fit(self, X, y, groups=None, *, validation_data=None):
        X, y, groups = self.check_fit_inputs(X, y, groups)
        X = grey_or_rgb(X)
        self.image_shape_ = X.shape[1:]
        neutral = y == self.neutral_label
        if not neutral.any():
            hint = ("; y holds integer labels (as scikit-learn's cross_val_predict makes them for "
                    "predict_proba): set neutral_label to the neutral class's integer"
                    if isinstance(self.neutral_label, str) and np.issubdtype(y.dtype, np.number)
                    else "")
            raise ValueError(f"Eyemotion needs neutral images in training; no label equals "
                             f"neutral_label={self.neutral_label!r}{hint}")
        self.neutral_mean_ = X[neutral].astype(np.float32).mean(axis=0)
        X_personal, missing = self._personalise_labelled(X, y, groups)
        if validation_data is not None:
            X_val, y_val = self._conform(validation_data[0]), np.asarray(validation_data[1])
            g_val = aligned("validation groups", validation_data[2], len(X_val)) \
                if len(validation_data) > 2 else None
            validation_data = (self._personalise_labelled(X_val, y_val, g_val)[0], y_val)
        if groups is None:
            warnings.warn("Eyemotion: no subject ids (groups), so no per-subject neutral means: "
                          "every image uses the training set's mean neutral image", stacklevel=2)
        elif missing:
            warnings.warn(f"Eyemotion: {missing} training subject(s) without neutral images use "
                          "the training set's mean neutral image", stacklevel=2)
        self.subject_means_ = {}
        self.report_ = {"train_subjects_without_neutral": missing}
        return super().fit(X_personal, y, groups, validation_data=validation_data)

    def calibrate(self, X, groups, y=None):
        """Store each test subject's mean neutral image. ``X`` are its neutral images, or, with
        labels ``y``, any of its images, of which the neutral ones are used."""
        check_is_fitted(self)
        X = self._conform(X)
        groups = aligned("groups", groups, len(X))
        if y is not None:
            neutral = aligned("y", y, len(X)) == self.neutral_label
            if not neutral.any():
                raise ValueError(f"calibrate got labels y but none equals "
                                 f"neutral_label={self.neutral_label!r}")
            X, groups = X[neutral], groups[neutral]
        for subject in np.unique(groups):
            self.subject_means_[subject] = X[groups == subject].astype(np.float32).mean(axis=0)
        self.report_["calibrated_subjects"] = len(self.subject_means_)
        return self

    def decision_function(self, X, groups=None):
        check_is_fitted(self)
        X = self._conform(X)
        X_personal, unknown = self._personalise(X, groups, self.subject_means_)
        self.report_["predict_subjects_without_calibration"] = unknown
        if groups is None:
            warnings.warn("Eyemotion: no subject ids (groups) to predict with, so every image "
                          "uses the training set's mean neutral image", stacklevel=2)
        elif unknown:
            warnings.warn(f"Eyemotion: {unknown} subject(s) without calibration neutrals use the "
                          "training set's mean neutral image", stacklevel=2)
        return super().decision_function(X_personal, groups)


register(
    "eyemotion", EyemotionClassifier,
    display_name="Eyemotion (Inception v3, neutral subtraction)",
    description="Inception v3 on images minus the user's mean neutral image (Hickson et al. 2019)",
    references={("reed", 4): Reference(accuracy=0.579, f1=0.601, source="paper Table 1"),
                ("emug", 4): Reference(accuracy=0.668, f1=0.703, source="paper Table 1")},
    cost=Cost(params_m=21.79, mflops=5729.24, input_size=299,
              note="torchvision inception_v3 with 4 outputs at 299 px; the paper gives no cost"),
    profile_size=299,
    presets={"smoke": {"image_size": 75}, "quick": {"image_size": 75, "epochs": 5},
             "paper": {"image_size": 299}},
)
