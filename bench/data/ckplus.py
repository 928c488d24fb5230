"""CK+ as commonly shared: ``CK+/<class>/S<subject>_<sequence>_<frame>.png``.

The subject id comes from the file name; neutral images are the first frame of each sequence. The
root may be the ``CK+`` folder itself or the folder that contains it.
"""

from __future__ import annotations

import re

import pandas as pd

from ..classes import canonical_name
from ..errors import BenchError, DatasetError
from .images import is_image_file, read_image
from .registry import Listing, register_dataset

LAYOUT = "ROOT/CK+/<class>/S<subject>_<sequence>_<frame>.png (e.g. CK+/anger/S010_004_00000019.png)"
NAME = re.compile(r"^(S\d+)_(\d+)_(\d+)$", re.IGNORECASE)


@register_dataset("ckplus", description="CK+ faces (48x48 grey crops as commonly shared), 123 "
                  "subjects", layout=LAYOUT)
def list_ckplus(root, classes=7) -> Listing:
    base = root / "CK+" if (root / "CK+").is_dir() else root
    rows = []
    class_dirs = sorted(p for p in base.iterdir() if p.is_dir())
    unknown = [p.name for p in class_dirs
               if not p.name.startswith(".") and not _is_emotion(p.name)]
    if unknown:  # e.g. the folder above CK+'s parent, or another dataset's folder
        raise DatasetError(f"{base} has no CK+ folder and its folder(s) {', '.join(unknown[:3])} "
                           "are not emotion classes")
    for class_dir in class_dirs:
        for path in sorted(p for p in class_dir.iterdir() if is_image_file(p)):
            m = NAME.match(path.stem)
            if not m:
                raise DatasetError(f"CK+ file name {path.name!r} is not S<subject>_<seq>_<frame>")
            subject, seq, frame = m.group(1).upper(), m.group(2), int(m.group(3))
            rows.append((path, str(path), class_dir.name, subject, f"{subject}_{seq}", frame))
    if not rows:
        raise DatasetError(f"no CK+ images under {base}")
    table = pd.DataFrame(rows, columns=["source", "file", "label", "subject", "sequence", "frame"])
    return Listing(table, read_image)


def _is_emotion(name: str) -> bool:
    try:
        canonical_name(name)
    except BenchError:
        return False
    return True
