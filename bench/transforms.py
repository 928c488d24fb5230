"""Turning uint8 image arrays into normalised network input, with batched tensor augmentation.

All work happens on tensors, a whole batch at a time, on the training device: images are stored
once as uint8 and never decoded again during training. Grey images are repeated to three channels
so that ImageNet-pretrained stems work unchanged.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def check_images(X) -> np.ndarray:
    """Validate an image batch: uint8, ``(N, H, W)`` or ``(N, H, W, C)`` with C in {1, 3, 4}."""
    X = np.asarray(X)
    if X.dtype != np.uint8:
        raise ValueError(f"X must be uint8 images (N, H, W) or (N, H, W, C); got dtype {X.dtype}")
    if X.ndim not in (3, 4) or (X.ndim == 4 and X.shape[-1] not in (1, 3, 4)):
        raise ValueError(f"X must have shape (N, H, W) or (N, H, W, C) with C in 1/3/4; got {X.shape}")
    if len(X) == 0:
        raise ValueError("X holds no images")
    if X.ndim == 3 and X.shape[-1] in (3, 4) and X.shape[1] > X.shape[-1]:
        raise ValueError(f"X of shape {X.shape} reads as {len(X)} grey images {X.shape[-1]} pixels "
                         "wide; for one colour image pass a batch of one, X[None]")
    return X


def grey_or_rgb(X: np.ndarray) -> np.ndarray:
    """Checked images as ``(N, H, W)`` grey or ``(N, H, W, 3)`` RGB: a single channel axis is
    dropped and an alpha channel ignored, as :func:`to_input` does."""
    X = check_images(X)
    if X.ndim == 4 and X.shape[-1] == 1:
        return X[..., 0]
    return X[..., :3] if X.ndim == 4 else X


def conform_images(X: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """Images brought to one ``shape`` (``(H, W)`` grey or ``(H, W, 3)`` RGB): colour converted
    (ITU-R BT.601 luma; grey repeated) and resized as :func:`to_input` resizes (bilinear with
    antialiasing), for methods that combine images pixel by pixel."""
    X = grey_or_rgb(X)
    if X.shape[1:] == tuple(shape):
        return X
    if len(shape) == 2 and X.ndim == 4:
        X = np.rint(X @ np.array([0.299, 0.587, 0.114])).astype(np.uint8)
    elif len(shape) == 3 and X.ndim == 3:
        X = np.repeat(X[..., None], 3, axis=-1)
    if X.shape[1:3] != tuple(shape[:2]):
        x = torch.from_numpy(np.ascontiguousarray(X)).float()
        x = x.unsqueeze(1) if x.ndim == 3 else x.permute(0, 3, 1, 2)
        x = F.interpolate(x, size=tuple(shape[:2]), mode="bilinear", align_corners=False,
                          antialias=True).round_().clamp_(0, 255).to(torch.uint8)
        X = (x[:, 0] if len(shape) == 2 else x.permute(0, 2, 3, 1)).numpy()
    return X


def to_input(images: np.ndarray, device: torch.device, image_size: int) -> torch.Tensor:
    """uint8 ``(B, H, W[, C])`` -> float ``(B, 3, S, S)`` in [0, 1] on ``device``."""
    x = torch.from_numpy(np.ascontiguousarray(images))
    if device.type == "cuda":  # pinned host memory lets the copy overlap with compute
        x = x.pin_memory()
    x = x.to(device, non_blocking=True)
    x = x.unsqueeze(1) if x.ndim == 3 else x.permute(0, 3, 1, 2)
    x = x[:, :3].float().div_(255.0)
    if x.shape[1] == 1:
        x = x.expand(-1, 3, -1, -1)
    if x.shape[-2:] != (image_size, image_size):
        x = F.interpolate(x, size=(image_size, image_size), mode="bilinear", align_corners=False,
                          antialias=True)
    return x


def normalize(x: torch.Tensor) -> torch.Tensor:
    mean = x.new_tensor(IMAGENET_MEAN).view(1, 3, 1, 1)
    std = x.new_tensor(IMAGENET_STD).view(1, 3, 1, 1)
    return (x - mean) / std


def augment(x: torch.Tensor, generator: torch.Generator, pad_fraction: float = 0.125) -> torch.Tensor:
    """Random crop (from a reflect-padded image, a different offset per image) and random
    horizontal flip: the paper's "random crop and horizontal flip", done for the whole batch."""
    n, _, h, w = x.shape
    pad = max(1, int(round(h * pad_fraction)))
    padded = F.pad(x, (pad, pad, pad, pad), mode="reflect")
    offsets = torch.randint(0, 2 * pad + 1, (n, 2), generator=generator).tolist()
    x = torch.stack([padded[i, :, oy:oy + h, ox:ox + w] for i, (oy, ox) in enumerate(offsets)])
    flip = (torch.rand(n, generator=generator) < 0.5).to(x.device).view(n, 1, 1, 1)
    return torch.where(flip, x.flip(-1), x)
