"""Drawn faces for the eye-cropping tests: a skin ellipse with two eyes (sclera, iris, lid, brow),
a nose and a mouth, realistic enough for OpenCV's Haar cascades."""

from __future__ import annotations

import cv2
import numpy as np


def draw_face(canvas=(240, 240), centre=None, size=240, eye_gap=36, eye_height=0.40, eyes=True,
              skin=170, background=40) -> tuple[np.ndarray, list[tuple[int, int]]]:
    """A grey face image and the (x, y) centres of its eyes."""
    height, width = canvas
    image = np.full((height, width), background, np.uint8)
    cx, cy = centre or (width // 2, height // 2)
    top = cy - size // 2
    cv2.ellipse(image, (cx, int(top + 0.52 * size)), (int(0.33 * size), int(0.43 * size)), 0, 0,
                360, skin, -1)
    y = int(top + eye_height * size)
    centres = [(cx - eye_gap * size // 240, y), (cx + eye_gap * size // 240, y)]
    if eyes:
        scale = size / 240
        for x, _ in centres:
            axes = (int(16 * scale), int(8 * scale))
            cv2.ellipse(image, (x, y), axes, 0, 0, 360, 235, -1)
            cv2.circle(image, (x, y), int(6 * scale), 25, -1)
            cv2.ellipse(image, (x, y), axes, 0, 180, 360, 40, 2)
            cv2.ellipse(image, (x, y - axes[1] - int(8 * scale)), (axes[0] + 4, 5), 0, 180, 360,
                        70, 4)
    cv2.ellipse(image, (cx, int(top + 0.75 * size)), (int(0.1 * size), int(0.03 * size)), 0, 0,
                360, 110, -1)
    cv2.ellipse(image, (cx, int(top + 0.62 * size)), (12, 5), 0, 0, 180, skin - 60, 2)
    return cv2.GaussianBlur(image, (7, 7), 0), centres
