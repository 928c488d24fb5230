"""Locating the eye region in a face image with OpenCV's Haar cascades.

The paper cut its EMUG eye images out of MUG faces with the eye-region detector of Eivazi et al.;
that model is not available offline, so this is the stand-in METHODS §7 names: the frontal-face
cascade, then the eye cascade inside the upper half of the face, the crop being the union of the two
eyes plus a margin, widened or heightened to a fixed aspect ratio. Images smaller than
``upscale_to`` pixels (CK+ and FER2013 are 48x48) are upscaled before detection, because the
cascades were trained on larger faces. When no face is found the whole image is taken as the face
(the face datasets the suite reads are already face crops); when no pair of eyes is found the
*fallback* is a fixed band of the upper face (:data:`FALLBACK_BAND`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import cv2
import numpy as np

#: The fallback crop as fractions of the face box (x0, y0, x1, y1): where the eyes of a frontal
#: face sit, both in OpenCV face boxes and in tightly cropped face datasets.
FALLBACK_BAND = (0.08, 0.18, 0.92, 0.55)

DETECTORS = ("haar", "fixed")


class Box(NamedTuple):
    """A rectangle in source-image pixels."""

    x: int
    y: int
    w: int
    h: int


class Located(NamedTuple):
    box: Box
    #: "detected" (two eyes found) or "fallback" (the fixed upper-face band)
    method: str


def _cascade(name: str) -> cv2.CascadeClassifier:
    cascade = cv2.CascadeClassifier(cv2.data.haarcascades + name)
    if cascade.empty():
        raise RuntimeError(f"OpenCV's {name} is missing; install opencv-python-headless>=4.8,<5")
    return cascade


@dataclass
class EyeCropper:
    """Find the eye region of a face image and cut it out at a fixed size.

    Parameters
    ----------
    detector : "haar" (cascades, with the fallback band when they fail) or "fixed" (always the band).
    margin : added around the union of the two eye boxes, as a fraction of its width.
    size : output (width, height); the box is grown to this aspect ratio before cropping.
    upscale_to : images whose shorter side is below this are enlarged to it before detection.
    """

    detector: str = "haar"
    margin: float = 0.15
    size: tuple[int, int] = (128, 64)
    upscale_to: int = 240

    def __post_init__(self):
        if self.detector not in DETECTORS:
            raise ValueError(f"unknown detector {self.detector!r}; valid: {', '.join(DETECTORS)}")
        if self.detector == "haar":
            self._face = _cascade("haarcascade_frontalface_default.xml")
            self._eyes = [_cascade("haarcascade_eye.xml"),
                          _cascade("haarcascade_eye_tree_eyeglasses.xml")]

    @property
    def aspect(self) -> float:
        return self.size[0] / self.size[1]

    def locate(self, image: np.ndarray) -> Located:
        """The eye-region box of ``image`` and whether it was detected or is the fallback."""
        h, w = image.shape[:2]
        face = Box(0, 0, w, h)
        if self.detector == "haar":
            grey = image if image.ndim == 2 else cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)
            scale = max(1.0, self.upscale_to / min(h, w))
            if scale > 1:
                grey = cv2.resize(grey, (round(w * scale), round(h * scale)),
                                  interpolation=cv2.INTER_CUBIC)
            grey = cv2.equalizeHist(grey)
            found = self._find_face(grey)
            face_scaled = found if found is not None else Box(0, 0, grey.shape[1], grey.shape[0])
            eyes = self._find_eyes(grey, face_scaled)
            if eyes is not None:
                box = Box(*(round(v / scale) for v in eyes))
                return Located(self._fit(self._grow(box), w, h), "detected")
            if found is not None:
                face = Box(*(round(v / scale) for v in found))
        x0, y0, x1, y1 = FALLBACK_BAND
        band = Box(round(face.x + x0 * face.w), round(face.y + y0 * face.h),
                   round((x1 - x0) * face.w), round((y1 - y0) * face.h))
        return Located(self._fit(band, w, h), "fallback")

    def crop(self, image: np.ndarray, box: Box) -> np.ndarray:
        """Cut ``box`` out of ``image`` and resize it to :attr:`size`."""
        part = image[box.y:box.y + box.h, box.x:box.x + box.w]
        interp = cv2.INTER_AREA if part.shape[1] > self.size[0] else cv2.INTER_CUBIC
        return cv2.resize(part, self.size, interpolation=interp)

    # -- detection steps ---------------------------------------------------------------------

    def _find_face(self, grey: np.ndarray) -> Box | None:
        side = min(grey.shape)
        faces = self._face.detectMultiScale(grey, scaleFactor=1.1, minNeighbors=4,
                                            minSize=(side // 3, side // 3))
        if len(faces) == 0:
            return None
        return Box(*max(faces, key=lambda f: f[2] * f[3]))

    def _find_eyes(self, grey: np.ndarray, face: Box) -> Box | None:
        """The union of the best left/right eye pair in the upper half of ``face``, or None."""
        top = grey[face.y:face.y + face.h // 2 + face.h // 10, face.x:face.x + face.w]
        smallest = max(8, face.w // 10)
        for cascade in self._eyes:
            found = cascade.detectMultiScale(top, scaleFactor=1.05, minNeighbors=3,
                                             minSize=(smallest, smallest),
                                             maxSize=(face.w // 2, face.w // 2))
            pair = _best_pair([Box(*e) for e in found], face.w)
            if pair is not None:
                a, b = pair
                x0, y0 = min(a.x, b.x), min(a.y, b.y)
                x1, y1 = max(a.x + a.w, b.x + b.w), max(a.y + a.h, b.y + b.h)
                return Box(face.x + x0, face.y + y0, x1 - x0, y1 - y0)
        return None

    def _grow(self, box: Box) -> Box:
        pad = self.margin * box.w
        return Box(round(box.x - pad), round(box.y - pad), round(box.w + 2 * pad),
                   round(box.h + 2 * pad))

    def _fit(self, box: Box, width: int, height: int) -> Box:
        """Grow ``box`` to the output aspect ratio around its centre and keep it inside the image."""
        w, h = float(box.w), float(box.h)
        if w / h < self.aspect:
            w = h * self.aspect
        else:
            h = w / self.aspect
        if w > width:  # too wide for the image: shrink both, keeping the ratio
            w, h = width, width / self.aspect
        if h > height:
            w, h = height * self.aspect, height
        cx, cy = box.x + box.w / 2, box.y + box.h / 2
        x = int(round(min(max(cx - w / 2, 0), width - w)))
        y = int(round(min(max(cy - h / 2, 0), height - h)))
        return Box(x, y, max(1, int(round(w))), max(1, int(round(h))))


def _best_pair(eyes: list[Box], face_width: int) -> tuple[Box, Box] | None:
    """Two boxes side by side, of similar size and height, far enough apart to be two eyes;
    among such pairs the one with the largest total area (nostrils and brows are smaller)."""
    best, best_area = None, 0
    for i, a in enumerate(eyes):
        for b in eyes[i + 1:]:
            left, right = (a, b) if a.x <= b.x else (b, a)
            gap = (right.x + right.w / 2) - (left.x + left.w / 2)
            similar = 0.5 <= left.w / right.w <= 2.0
            level = abs((left.y + left.h / 2) - (right.y + right.h / 2)) < 0.5 * max(a.h, b.h)
            if similar and level and 0.2 * face_width <= gap <= 0.75 * face_width:
                area = a.w * a.h + b.w * b.h
                if area > best_area:
                    best, best_area = (left, right), area
    return best
