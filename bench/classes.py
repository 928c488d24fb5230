"""Emotion class sets and the synonym table that maps dataset-specific names onto them.

Class names are always mapped by this table, never by folder order, so "angry", "Anger" and "AN"
all become ``anger``. Names that are known but outside the chosen set (``contempt``, ``squint``, or
``disgust`` in the 4-class set) are dropped and counted; names that are not known at all are an
error, because silently dropping a misspelt folder would corrupt a benchmark.
"""

from __future__ import annotations

import re

from .errors import BenchError

#: The 7 basic emotions, in the order used by every table and confusion matrix.
CLASSES_7 = ("anger", "disgust", "fear", "happiness", "sadness", "surprise", "neutral")
#: The 4 emotions Eyemotion supports (its fifth, "squint", is not an emotion).
CLASSES_4 = ("anger", "happiness", "surprise", "neutral")
CLASS_SETS = {4: CLASSES_4, 7: CLASSES_7}

#: Known names that belong to no class set; images with these labels are dropped and counted.
EXTRA_CLASSES = ("contempt", "squint")

SYNONYMS: dict[str, tuple[str, ...]] = {
    "anger": ("angry", "anger", "an", "ang", "mad"),
    "disgust": ("disgust", "disgusted", "di", "dis"),
    "fear": ("fear", "fearful", "afraid", "scared", "fe"),
    "happiness": ("happiness", "happy", "ha", "hap", "joy", "smile"),
    "sadness": ("sadness", "sad", "sa"),
    "surprise": ("surprise", "surprised", "su", "sur"),
    "neutral": ("neutral", "neutrality", "calm", "ne", "neu"),
    "contempt": ("contempt", "co", "contemptuous"),
    "squint": ("squint", "squinting"),
}

_LOOKUP = {alias: canonical for canonical, aliases in SYNONYMS.items() for alias in aliases}


def _key(name: str) -> str:
    return re.sub(r"[^a-z]", "", str(name).lower())


def canonical_name(name: str) -> str:
    """Map a dataset's class name (``"Angry"``, ``"HA"``, ``"calm"``) to its canonical name.

    Raises :class:`BenchError` listing the accepted names when ``name`` is unknown.
    """
    try:
        return _LOOKUP[_key(name)]
    except KeyError:
        raise BenchError(
            f"unknown emotion class name {name!r}; accepted names: {accepted_names()}"
        ) from None


def accepted_names() -> str:
    """One line listing every canonical class with its synonyms."""
    return "; ".join(f"{c} ({', '.join(a for a in al if a != c)})" for c, al in SYNONYMS.items())


def class_set(classes: int) -> tuple[str, ...]:
    """The class names of the 4- or 7-class setting."""
    try:
        return CLASS_SETS[int(classes)]
    except (KeyError, TypeError, ValueError):
        raise BenchError(
            f"--classes must be one of {sorted(CLASS_SETS)}, got {classes!r}"
        ) from None
