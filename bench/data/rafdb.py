"""RAF-DB basic: ``Image/aligned/*_aligned.jpg`` and ``EmoLabel/list_patition_label.txt``.

The label file has one ``<name>.jpg <label>`` line per image, labels 1-7 = surprise, fear, disgust,
happiness, sadness, anger, neutral (the file name keeps the dataset's own spelling, "patition").
The official split is the file-name prefix (``train_``/``test_``). RAF-DB has no subject ids.
"""

from __future__ import annotations

import pandas as pd

from ..errors import DatasetError
from .images import read_image
from .registry import Listing, register_dataset

LABELS = {1: "surprise", 2: "fear", 3: "disgust", 4: "happiness", 5: "sadness", 6: "anger",
          7: "neutral"}
LAYOUT = ("ROOT/Image/aligned/<name>_aligned.jpg and ROOT/EmoLabel/list_patition_label.txt "
          "with lines '<name>.jpg <label 1-7>' (train_*/test_* = official split)")


def read_label_file(path) -> pd.DataFrame:
    rows = []
    with open(path, encoding="utf-8") as fh:
        for number, line in enumerate(fh, 1):
            if not line.strip():
                continue
            parts = line.split()
            if len(parts) != 2 or not parts[1].isdigit() or int(parts[1]) not in LABELS:
                raise DatasetError(
                    f"{path}:{number}: expected '<name>.jpg <label 1-7>', got {line.strip()!r}"
                )
            name, label = parts[0], int(parts[1])
            split = name.split("_", 1)[0].lower()
            if split not in ("train", "test"):
                raise DatasetError(f"{path}:{number}: file name {name!r} starts with neither "
                                   "train_ nor test_")
            rows.append((name, LABELS[label], split))
    if not rows:
        raise DatasetError(f"{path} lists no images")
    return pd.DataFrame(rows, columns=["name", "label", "split"])


@register_dataset("rafdb", description="RAF-DB basic: 15,339 aligned faces in the wild, official "
                  "train/test lists", layout=LAYOUT, split="official")
def list_rafdb(root, classes=7) -> Listing:
    label_file = root / "EmoLabel" / "list_patition_label.txt"
    image_dir = root / "Image" / "aligned"
    missing = [str(p.relative_to(root)) + ("/" if p is image_dir else "")
               for p, found in ((label_file, label_file.is_file()), (image_dir, image_dir.is_dir()))
               if not found]
    if missing:
        raise DatasetError(f"RAF-DB: no {' and no '.join(missing)} under {root}")
    table = read_label_file(label_file)
    paths = [image_dir / f"{n.rsplit('.', 1)[0]}_aligned.jpg" for n in table["name"]]
    table["source"] = paths
    table["file"] = [str(p) for p in paths]
    return Listing(table, read_image)
