"""Decoding image files into uint8 arrays, whatever their mode, and resizing them."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
from PIL import Image, ImageOps

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".pgm", ".ppm", ".webp")


def is_image_file(path: Path) -> bool:
    return path.is_file() and path.suffix.lower() in IMAGE_SUFFIXES and not path.name.startswith(".")


def read_image(path) -> np.ndarray:
    """Read an image file as uint8: ``(H, W)`` when grey, ``(H, W, 3)`` when colour.

    16-bit and 32-bit images are scaled to 8 bits, alpha is dropped, palettes are expanded, and an
    RGB image whose three channels are identical is returned as grey (infrared frames are often
    saved as RGB). A photo's EXIF orientation is applied, as an image viewer does.
    """
    with Image.open(path) as im:
        im.load()
        # a camera's JPEG stores its pixels as the sensor saw them and the way up in EXIF
        return pil_to_array(ImageOps.exif_transpose(im))


def pil_to_array(im: Image.Image) -> np.ndarray:
    if im.mode in ("I;16", "I;16B", "I;16L", "I;16N"):
        return (np.asarray(im, dtype=np.uint16) // 257).astype(np.uint8)
    if im.mode in ("I", "F"):
        a = np.asarray(im, dtype=np.float64)
        top = 65535.0 if a.max(initial=0) > 255 else 255.0
        return np.clip(a * (255.0 / top), 0, 255).astype(np.uint8)
    if im.mode in ("1", "L", "LA"):
        return np.asarray(im.convert("L"))
    if im.mode == "P":
        im = im.convert("RGBA")
    a = np.asarray(im.convert("RGB"))
    if (a[..., 0] == a[..., 1]).all() and (a[..., 1] == a[..., 2]).all():
        return np.ascontiguousarray(a[..., 0])
    return a


def resize_square(image: np.ndarray, size: int) -> np.ndarray:
    """Resize to ``size x size`` (area interpolation when shrinking, bilinear when growing).

    The aspect ratio is not kept: an eye crop is squashed rather than cut, so nothing of the
    region is lost.
    """
    h, w = image.shape[:2]
    if (h, w) == (size, size):
        return image
    interp = cv2.INTER_AREA if size < min(h, w) else cv2.INTER_LINEAR
    return cv2.resize(image, (size, size), interpolation=interp)


def to_common_mode(images: list[np.ndarray]) -> np.ndarray | None:
    """Stack images; grey ones become RGB when any image is colour. ``None`` if sizes differ."""
    if len({im.shape[:2] for im in images}) != 1:
        return None
    if any(im.ndim == 3 for im in images):
        images = [np.repeat(im[..., None], 3, axis=2) if im.ndim == 2 else im for im in images]
    return np.stack(images).astype(np.uint8, copy=False)
