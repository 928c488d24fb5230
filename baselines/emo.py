"""EMO (Wu et al., MobiSys 2020): ResNet-18, K-means personalisation, Siamese frame skipping.

Public details are thin; this is the design of the benchmark's specification, with these decisions:

* **Classifier and embedding.** torchvision ResNet-18; the 512-d pooled feature is the embedding.
  After training, each class's mean training embedding is its global centroid, and the mean
  squared distance of training embeddings to their centroid is the distance scale ``T``.
* **Personalisation** (``calibrate``, unlabeled calibration frames of each test subject): K-means
  with k = number of classes on the subject's calibration embeddings, initialised from the global
  centroids (one run, seeded), so cluster k stays tied to class k. Each personalised centroid is
  then shrunk towards its global centroid, ``(sum of its members + prior * global) / (members +
  prior)``: with a few calibration frames per class, raw cluster means are noisy, and an empty or
  tiny cluster falls back to the global centroid. A subject with fewer frames than classes keeps
  the global centroids. Prediction blends the nearest-centroid probabilities
  ``softmax(-|e - c_k|^2 / T)`` over the personalised centroids with the classifier's softmax,
  ``(1 - blend) * centroid + blend * classifier``; ``blend=0`` is pure nearest-centroid (the
  original description), the default 0.5 keeps the classifier's evidence when a subject's
  clusters drift. Uncalibrated subjects use the classifier alone.
* **Frame skipping.** A small Siamese encoder (three stride-2 convs on the 48x48 grey frame, shared
  weights, L2-normalised 64-d output) is trained after the classifier with a contrastive loss
  (margin 0.5 on the cosine) to tell whether the classifier's answer would change: frames 1-3
  apart in a sequence are "same" when the trained classifier predicts the same class for both and
  "different" otherwise (an expression's onset), and frames of another class of the same subject
  are "different". When predicting frames in order (``sequences`` given),
  a frame whose cosine similarity to the last *processed* frame is at least the skip threshold
  reuses that frame's prediction and the backbone does not run, at most ``max_skips`` (default 2)
  frames in a row; the first frame of a sequence is always processed. The limit is what makes
  skipping cheap in accuracy: without it, held frames kept reusing the prediction of an onset
  frame the encoder could not tell from them (on synthetic-4, an onset frame is classified right
  31-42 % of the time against 69-86 % later, and at 0.95 24-43 % of skipped frames took their
  answer from the first frame of their sequence); with ``max_skips=2`` the threshold chosen on
  validation cost 0.72 points of test accuracy for 2.24x fewer FLOPs on seeds 0-2 (2.06x the
  frames per second), against 0.90 points for 1.37x without it (``bench stream`` measures it;
  docs/methods.md has the study). ``skip_rate_`` and ``backbone_calls_`` describe the last
  prediction, and :meth:`stream` replays frames one at a time (batch 1) for frames-per-second
  measurements.
* **Threshold chosen on validation subjects** (``skip_threshold="auto"``, the default). After the
  encoder is trained, ``fit`` predicts the validation frames in frame order (they must come with
  ``validation_sequences``) once without skipping and once per threshold of :data:`THRESHOLD_GRID`
  (0.500 to 0.925 in steps of 0.025, then 0.950 to 0.995 in steps of 0.005), and keeps the lowest
  (lower thresholds skip more) whose validation accuracy is at most ``max_skip_cost`` below that
  without skipping; none qualifying means no skipping. The protocol spaces a frame-order method's
  validation frames like its test frames, so the skip rule meets the same gaps between frames in
  both. Validation subjects are not calibrated, so the comparison uses the classifier alone, while
  the test subjects are personalised: the cost measured on test frames may differ, and ``bench
  stream`` reports both. The validation frames are embedded and encoded once; each threshold only
  re-runs the skip rule on the codes. Without validation data or sequences the threshold falls back
  to :data:`FALLBACK_THRESHOLD` (0.95, which cost under one point of accuracy on two synthetic
  splits), with the reason in ``report_``; so it does when every validation sequence is a single
  frame (still images), where every threshold skips nothing and no choice has evidence. Test frames
  never reach the choice.
* ``emo-ldl`` is the same network trained on the label distributions of the LDGN teacher of
  ``ours`` (the paper's Table 4 "Baseline (LDL)"), through the same mixin as ``ours``.
"""

from __future__ import annotations

from numbers import Real

import numpy as np
import torch
import torch.nn.functional as F
from sklearn.cluster import KMeans
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import check_is_fitted
from torch import nn

from bench import Cost, Reference, register
from bench.engine import batches
from bench.estimator import aligned, positive_int, unit_interval
from bench.pretrained import torchvision_network
from bench.profiling import count_mflops
from bench.teacher import TEACHER_PRESETS, LabelDistributionStudent
from bench.transforms import check_images, normalize, to_input

ENCODER_SIZE = 48
#: the thresholds ``skip_threshold="auto"`` chooses from: 0.500, 0.525, ..., 0.925 (the contrastive
#: loss pushes "different" pairs below 0.5), then 0.950, 0.955, ..., 0.995, finer near 1, where
#: "same" pairs are pulled and most of the trade-off lies
THRESHOLD_GRID = tuple([round(0.5 + 0.025 * i, 3) for i in range(18)]
                       + [round(0.95 + 0.005 * i, 3) for i in range(10)])
#: the threshold ``"auto"`` falls back to without validation frames in order
FALLBACK_THRESHOLD = 0.95


class EmbeddingResNet(nn.Module):
    """ResNet-18 split into an embedding (everything up to the pooled feature) and its head."""

    def __init__(self, n_classes: int, pretrained: bool = False):
        super().__init__()
        body = torchvision_network("resnet18", n_classes, pretrained)
        self.fc, body.fc = body.fc, nn.Identity()
        self.body = body

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.body(x))


class SkipEncoder(nn.Module):
    """The Siamese branch: a 48x48 grey frame (``ENCODER_SIZE``) -> an L2-normalised 64-d code."""

    def __init__(self, dim: int = 64):
        super().__init__()
        layers, cin = [], 1
        for cout in (16, 32, dim):
            layers += [nn.Conv2d(cin, cout, 3, stride=2, padding=1), nn.ReLU(inplace=True)]
            cin = cout
        self.net = nn.Sequential(*layers)

    def forward(self, images_uint8: np.ndarray, device) -> torch.Tensor:
        x = to_input(images_uint8, device, ENCODER_SIZE).mean(1, keepdim=True)
        return F.normalize(self.net(x - 0.5).mean((2, 3)), dim=1)


def infer_sequences(groups, y) -> np.ndarray:
    """Sequence ids for data given in frame order without them: a new sequence starts wherever
    the subject or the label changes."""
    keys = list(zip(groups if groups is not None else [None] * len(y), y))
    change = np.r_[True, [a != b for a, b in zip(keys[1:], keys[:-1])]]
    return np.cumsum(change)


class EMOClassifier(LabelDistributionStudent):
    """ResNet-18 with K-means personalisation and Siamese frame skipping.

    Parameters (besides :class:`bench.EmotionClassifier`'s)
    --------------------------------------------------------
    skip_threshold : cosine similarity to the last processed frame from which a frame is skipped
        (``None`` never skips), or ``"auto"``: chosen during ``fit`` on the validation frames
        (see the module docstring). Lower values skip more; ``bench stream`` measures the
        trade-off.
    max_skip_cost : with ``"auto"``, the validation accuracy (a fraction: 0.01 is one point)
        skipping may cost against not skipping.
    max_skips : at most this many frames in a row reuse a processed frame's prediction (the
        next one runs the backbone whatever the encoder says); ``None``: no limit.
    blend : weight of the classifier against the personalised centroids (0 = centroids only).
    prior : pseudo-count of the global centroid in each personalised centroid (0 = K-means
        centroids as they are).
    skip_epochs : epochs of the Siamese encoder's contrastive training.
    ldl : train on the LDGN teacher's label distributions (``emo-ldl``; see
        :class:`bench.teacher.LabelDistributionStudent` for the teacher's parameters).

    Attributes (besides the shared ones)
    ------------------------------------
    threshold_ : the skip threshold ``fit`` settled on (chosen, fallen back to, or given).
    report_ : ``skip_threshold`` (= ``threshold_``), ``skip_threshold_source`` (``"validation"``,
        ``"fallback"`` with ``skip_threshold_note`` saying why, or ``"parameter"``) and, when
        chosen, ``val_frames``, ``val_skip_rate``, ``val_accuracy_no_skip``,
        ``val_accuracy_skip``, ``val_accuracy_cost`` and ``val_curve`` (skip rate and accuracy
        per threshold of the grid); then calibration and the last prediction's skip rate.
    """

    calibration = "unlabeled"
    frame_order = True
    frame_skipping = True

    _parameter_constraints = {**LabelDistributionStudent._parameter_constraints,
                              "skip_threshold": [Interval(Real, -1, 1, closed="both"),
                                                 StrOptions({"auto"}), None],
                              "max_skip_cost": [unit_interval()],
                              "max_skips": [positive_int(1), None],
                              "blend": [unit_interval()],
                              "prior": [Interval(Real, 0, None, closed="left")],
                              "skip_epochs": [positive_int(0)]}

    def __init__(self, *, skip_threshold="auto", max_skip_cost=0.01, max_skips=2, blend=0.5,
                 prior=5.0, skip_epochs=5, ldl=False, **base):
        super().__init__(ldl=ldl, **base)
        self.skip_threshold = skip_threshold
        self.max_skip_cost = max_skip_cost
        self.max_skips = max_skips
        self.blend = blend
        self.prior = prior
        self.skip_epochs = skip_epochs

    def build_network(self, n_classes):
        return EmbeddingResNet(n_classes, self.pretrained)

    # ------------------------------------------------------------------------------ training
    def fit(self, X, y, groups=None, *, validation_data=None, teacher=None, sequences=None,
            validation_sequences=None):
        """Train the classifier (as every method), then the global centroids and the encoder,
        then (``skip_threshold="auto"``) choose the skip threshold on ``validation_data``, whose
        frames are in order with sequence ids ``validation_sequences``. ``sequences`` (or,
        without it, changes of subject or label in ``X``'s order) tell which frames are
        neighbours for the encoder's training pairs."""
        X, y, groups = self.check_fit_inputs(X, y, groups)
        sequences = aligned("sequences", sequences, len(X))
        if validation_data is not None and validation_sequences is not None:  # checked before,
            validation_sequences = aligned(  # not after, the training
                "validation_sequences", validation_sequences, len(validation_data[0]))
        super().fit(X, y, groups, validation_data=validation_data, teacher=teacher)
        device = self._device()
        embeddings, logits = self._embed(X, device)
        labels = self._encode(y)
        self.centroids_ = np.stack([embeddings[labels == k].mean(0) if (labels == k).any()
                                    else embeddings.mean(0) for k in range(len(self.classes_))])
        self.scale_ = float(((embeddings - self.centroids_[labels]) ** 2).sum(1).mean()) or 1.0
        seq = sequences if sequences is not None else infer_sequences(groups, y)
        self.encoder_ = self._train_encoder(X, logits.argmax(1), labels, groups, seq, device)
        self.personal_centroids_ = {}
        self.skip_rate_, self.backbone_calls_ = 0.0, 0
        self.threshold_, selection = self._settle_threshold(validation_data, validation_sequences,
                                                            device)
        self.report_ = {**selection, "calibrated_subjects": 0}
        return self

    def _settle_threshold(self, validation_data, validation_sequences, device):
        """(threshold, what ``report_`` says about it): the parameter, or with ``"auto"`` the
        choice on the validation frames (a fallback when there are none in order)."""
        if self.skip_threshold != "auto":
            return self.skip_threshold, {"skip_threshold": self.skip_threshold,
                                         "skip_threshold_source": "parameter"}
        if validation_data is None or not len(validation_data[0]):
            why = "no validation data"
        elif validation_sequences is None:
            why = "no validation sequences (frames in order)"
        elif not np.any(np.diff(np.unique(validation_sequences, return_inverse=True)[1]) == 0):
            # every threshold would skip nothing and "cost" nothing: no evidence to choose on
            why = "validation sequences of one frame each (nothing could be skipped)"
        else:
            return self.choose_threshold(validation_data[0], validation_data[1],
                                         np.asarray(validation_sequences), device)
        return FALLBACK_THRESHOLD, {"skip_threshold": FALLBACK_THRESHOLD,
                                    "skip_threshold_source": "fallback",
                                    "skip_threshold_note": f"{why}: the fixed "
                                    f"{FALLBACK_THRESHOLD} instead of a choice"}

    def choose_threshold(self, X, y, sequences, device=None) -> tuple[float | None, dict]:
        """The lowest threshold of :data:`THRESHOLD_GRID` whose accuracy on ``(X, y)`` (frames
        in order, ``sequences`` their sequence ids) is at most ``max_skip_cost`` below that
        without skipping (``None`` when none is), and the evidence. The classifier alone
        predicts: these subjects are not calibrated. Frames are embedded and encoded once."""
        X, device = check_images(X), device or self._device()
        _, logits = self._embed(X, device)
        y = self._encode(np.asarray(y))
        predicted = logits.argmax(1)
        codes = self._codes(X, device)
        no_skip = float((predicted == y).mean())
        curve = {"threshold": [], "skip_rate": [], "accuracy": []}
        chosen = None
        for threshold in THRESHOLD_GRID:
            skip = self._skips(codes, sequences, threshold, self.max_skips)
            # a skipped frame reuses the prediction of the last processed one before it
            source = np.maximum.accumulate(np.where(skip, 0, np.arange(len(skip))))
            accuracy = float((predicted[source] == y).mean())
            for key, value in zip(curve, (threshold, float(skip.mean()), accuracy)):
                curve[key].append(value)
            if chosen is None and no_skip - accuracy <= self.max_skip_cost + 1e-9:
                chosen = len(curve["threshold"]) - 1
        skip_rate = 0.0 if chosen is None else curve["skip_rate"][chosen]
        with_skip = no_skip if chosen is None else curve["accuracy"][chosen]
        threshold = None if chosen is None else curve["threshold"][chosen]
        return threshold, {"skip_threshold": threshold, "skip_threshold_source": "validation",
                           "val_frames": len(X), "val_skip_rate": skip_rate,
                           "val_accuracy_no_skip": no_skip, "val_accuracy_skip": with_skip,
                           "val_accuracy_cost": no_skip - with_skip, "val_curve": curve}

    @staticmethod
    def _pairs(predicted, labels, groups, seq, rng):
        """Index pairs and same(1)/different(0) targets for the contrastive loss: frames 1-3 apart
        in a sequence are "same" when the trained classifier predicts the same class for both,
        else "different"; frames of another class of the same subject are "different"."""
        n = len(labels)
        near = np.array([(i, i + k) for k in (1, 2, 3) for i in range(n - k)
                         if seq[i] == seq[i + k]], dtype=np.int64).reshape(-1, 2)
        same = (predicted[near[:, 0]] == predicted[near[:, 1]]).astype(np.float32)
        # the rare onset pairs (same sequence, changed prediction) are repeated to be as many as
        # the other-class pairs below
        changed = near[same == 0]
        if len(changed):
            repeat = rng.choice(len(changed), size=max(len(near) // 2, 1))
            near = np.concatenate([near, changed[repeat]])
            same = np.r_[same, np.zeros(len(repeat), np.float32)]
        groups = np.zeros(n) if groups is None else np.asarray(groups)
        far = []
        for i in rng.permutation(n)[: max(len(near) // 2, 1)]:
            other = np.flatnonzero((groups == groups[i]) & (labels != labels[i]))
            if len(other):
                far.append((i, rng.choice(other)))
        far = np.array(far, dtype=np.int64).reshape(-1, 2)
        return np.concatenate([near, far]), np.r_[same, np.zeros(len(far), np.float32)]

    def _train_encoder(self, X, predicted, labels, groups, seq, device) -> SkipEncoder:
        torch.manual_seed(self._seed())
        rng = np.random.default_rng(self._seed())
        encoder = SkipEncoder().to(device)
        pairs, same = self._pairs(predicted, labels, groups, seq, rng)
        if not len(pairs):
            return encoder.eval()
        opt = torch.optim.Adam(encoder.parameters(), lr=1e-3)
        target = torch.from_numpy(same).to(device)
        # "same" pairs far outnumber "different" ones; weight both halves equally, or the encoder
        # learns to call everything the same
        weight = torch.where(target > 0, 0.5 / max(same.mean(), 1e-6), 0.5 / max(1 - same.mean(), 1e-6))
        gen = torch.Generator().manual_seed(self._seed())
        encoder.train()
        for _ in range(self.skip_epochs):
            for idx in batches(len(pairs), 128, gen, drop_last=False):
                a, b = pairs[idx, 0], pairs[idx, 1]
                cos = (encoder(X[a], device) * encoder(X[b], device)).sum(1)
                sel = torch.from_numpy(idx).to(device)
                t = target[sel]
                loss = (weight[sel] * (t * (1 - cos) ** 2 + (1 - t) * F.relu(cos - 0.5) ** 2)).mean()
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
        return encoder.eval()

    @torch.inference_mode()
    def _embed(self, X, device) -> tuple[np.ndarray, np.ndarray]:
        """(embeddings, logits) of every image, eval mode."""
        net = self.network_.to(device).eval()
        emb, logits = [], []
        for idx in batches(len(X), max(self.batch_size, 64), None, drop_last=False):
            e = net.embed(normalize(to_input(X[idx], device, self.image_size)))
            emb.append(e.float().cpu())
            logits.append(net.fc(e).float().cpu())
        return torch.cat(emb).numpy(), torch.cat(logits).numpy()

    # ------------------------------------------------------------------------ personalisation
    def calibrate(self, X, groups, y=None):
        """K-means per subject on its unlabeled calibration frames (see the module docstring)."""
        check_is_fitted(self, "encoder_")
        X = check_images(X)
        groups = aligned("groups", groups, len(X))
        embeddings, _ = self._embed(X, self._device())
        k = len(self.classes_)
        for subject in np.unique(groups):
            mine = embeddings[groups == subject]
            if len(mine) < k:
                continue
            km = KMeans(n_clusters=k, init=self.centroids_.astype(np.float64), n_init=1,
                        random_state=self._seed()).fit(mine.astype(np.float64))
            counts = np.bincount(km.labels_, minlength=k)[:, None]
            sums = km.cluster_centers_ * counts
            self.personal_centroids_[subject] = ((sums + self.prior * self.centroids_)
                                                 / (counts + self.prior))
        self.report_["calibrated_subjects"] = len(self.personal_centroids_)
        return self

    def _scores(self, embeddings, logits, groups) -> np.ndarray:
        """Class probabilities from the classifier, blended with the subject's centroids."""
        proba = torch.softmax(torch.from_numpy(logits), 1).numpy()
        if groups is None or not self.personal_centroids_:
            return proba
        groups = np.asarray(groups)
        for subject, centroids in self.personal_centroids_.items():
            idx = groups == subject
            if idx.any():
                d2 = ((embeddings[idx, None, :] - centroids[None]) ** 2).sum(-1)
                near = torch.softmax(torch.from_numpy(-d2 / self.scale_), 1).numpy()
                proba[idx] = (1 - self.blend) * near + self.blend * proba[idx]
        return proba

    # --------------------------------------------------------------------------- prediction
    def threshold(self) -> float | None:
        """The skip threshold in use (for :mod:`bench.stream`): the one ``fit`` chose with
        ``"auto"``, the parameter otherwise."""
        if isinstance(self.skip_threshold, str):
            check_is_fitted(self, "threshold_")
            return self.threshold_
        return self.skip_threshold

    def skip_costs(self) -> tuple[float, float]:
        """(backbone, encoder) MFLOPs per frame, counted by fvcore as :mod:`bench.profiling`
        counts them: the ResNet-18 at ``image_size`` (what a skipped frame saves) and the
        Siamese encoder at its 48x48 grey input (what every frame costs while skipping)."""
        check_is_fitted(self, "encoder_")
        backbone, _ = count_mflops(self.network_, self.image_size)
        encoder, _ = count_mflops(self.encoder_.net, ENCODER_SIZE, channels=1)
        return backbone, encoder

    @torch.inference_mode()
    def _codes(self, X, device) -> np.ndarray:
        return torch.cat([self.encoder_.to(device)(X[idx], device).cpu()
                          for idx in batches(len(X), 256, None, drop_last=False)]).numpy()

    @staticmethod
    def _skips(codes, sequences, threshold, max_skips=None) -> np.ndarray:
        """True for frames similar enough to the last processed frame of their sequence, at most
        ``max_skips`` in a row."""
        skip = np.zeros(len(codes), dtype=bool)
        last, limit = 0, max_skips or len(codes)
        for i in range(1, len(codes)):
            if sequences[i] == sequences[last] and i - last <= limit \
                    and codes[i] @ codes[last] >= threshold:
                skip[i] = True
            else:
                last = i
        return skip

    def _skip_mask(self, X, sequences, device) -> np.ndarray:
        """True for frames whose backbone pass is skipped."""
        threshold = self.threshold()
        if sequences is None or threshold is None:
            return np.zeros(len(X), dtype=bool)
        return self._skips(self._codes(X, device), sequences, threshold, self.max_skips)

    def predict_proba(self, X, groups=None, sequences=None):
        """Probabilities; with ``sequences`` (frames in order) similar frames reuse the last
        processed frame's probabilities instead of running the backbone."""
        check_is_fitted(self, "encoder_")
        X = check_images(X)
        groups, sequences = aligned("groups", groups, len(X)), aligned("sequences", sequences, len(X))
        device = self._device()
        skip = self._skip_mask(X, sequences, device)
        run = np.flatnonzero(~skip)
        embeddings, logits = self._embed(X[run], device)
        proba = np.empty((len(X), len(self.classes_)), dtype=np.float32)
        proba[run] = self._scores(embeddings, logits, None if groups is None else groups[run])
        for i in np.flatnonzero(skip):  # in order, so the source is always filled first
            proba[i] = proba[i - 1]
        self.skip_rate_, self.backbone_calls_ = float(skip.mean()), len(run)
        self.report_.update(skip_rate=self.skip_rate_, backbone_calls=self.backbone_calls_)
        return proba

    def decision_function(self, X, groups=None, sequences=None):
        return np.log(np.clip(self.predict_proba(X, groups, sequences), 1e-12, None))

    def predict(self, X, groups=None, sequences=None):
        proba = self.predict_proba(X, groups, sequences)  # first: it checks that fit has run
        return self.classes_[np.argmax(proba, axis=1)]

    @torch.inference_mode()
    def stream(self, X, groups=None, sequences=None, skip=True) -> np.ndarray:
        """Predict frame by frame at batch 1, as a headset would, skipping when allowed; returns
        the predicted labels (for timing frames per second)."""
        check_is_fitted(self, "encoder_")
        X = check_images(X)
        groups, sequences = aligned("groups", groups, len(X)), aligned("sequences", sequences, len(X))
        device = self._device()
        net, encoder = self.network_.to(device).eval(), self.encoder_.to(device)
        labels, last_code, last_seq, last = [], None, None, None
        calls, run, limit = 0, 0, self.max_skips or len(X)
        for i in range(len(X)):
            frame, seq = X[i:i + 1], None if sequences is None else sequences[i]
            if skip and sequences is not None and self.threshold() is not None:
                code = encoder(frame, device)[0]
                if seq == last_seq and run < limit and float(code @ last_code) >= self.threshold():
                    labels.append(last)
                    run += 1
                    continue
                last_code, last_seq, run = code, seq, 0
            e = net.embed(normalize(to_input(frame, device, self.image_size)))
            proba = self._scores(e.cpu().numpy(), net.fc(e).cpu().numpy(),
                                 None if groups is None else groups[i:i + 1])
            last = self.classes_[int(proba.argmax())]
            labels.append(last)
            calls += 1
        self.skip_rate_, self.backbone_calls_ = 1 - calls / max(len(X), 1), calls
        return np.asarray(labels)


_EMO_COST = Cost(params_m=11.69, mflops=2054.52, exact=False,
                 note="the paper's Table 4; fvcore counts torchvision's ResNet-18 with 4 outputs "
                 "at 11.18 M / 1818.56 MFLOPs (11.69 M is its 1000-class parameter count)")

register(
    "emo", EMOClassifier,
    display_name="EMO (ResNet-18, K-means, frame skipping)",
    description="ResNet-18 with K-means personalisation and Siamese frame skipping "
    "(Wu et al. 2020)",
    references={("reed", 4): Reference(accuracy=0.647, f1=0.653, source="paper Table 1"),
                ("emug", 4): Reference(accuracy=0.769, f1=0.784, source="paper Table 1")},
    cost=_EMO_COST, ablation="EMO baseline ResNet-18 (single-label)",
    presets={"smoke": {"skip_epochs": 1}}, ldl=False,
)
register(
    "emo-ldl", EMOClassifier,
    display_name="EMO on label distributions",
    description="EMO's ResNet-18 trained on the LDGN's label distributions (paper Table 4)",
    references={("reed", 4): Reference(accuracy=0.678, source="paper Table 4"),
                ("emug", 4): Reference(accuracy=0.785, source="paper Table 4")},
    cost=_EMO_COST, ablation="EMO baseline ResNet-18 (LDL)",
    presets={"smoke": {"skip_epochs": 1, "teacher_params": TEACHER_PRESETS["smoke"]},
             "quick": {"teacher_params": TEACHER_PRESETS["quick"]}}, ldl=True,
)
