import pytest

from bench.classes import CLASSES_4, CLASSES_7, accepted_names, canonical_name, class_set
from bench.errors import BenchError


@pytest.mark.parametrize("raw, expected", [
    ("angry", "anger"), ("Anger", "anger"), ("AN", "anger"), ("happy", "happiness"),
    ("Happiness", "happiness"), ("calm", "neutral"), ("NE", "neutral"), ("surprised", "surprise"),
    ("sad", "sadness"), ("fearful", "fear"), ("disgusted", "disgust"), ("contempt", "contempt"),
    (" Happy ", "happiness"), ("squint", "squint"),
])
def test_synonyms_map_to_canonical_names(raw, expected):
    assert canonical_name(raw) == expected


def test_unknown_name_lists_the_accepted_names():
    with pytest.raises(BenchError, match="accepted names: anger"):
        canonical_name("grumpy")
    assert "calm" in accepted_names()


def test_class_sets_keep_the_fixed_order():
    assert class_set(4) == CLASSES_4 == ("anger", "happiness", "surprise", "neutral")
    assert class_set(7) == CLASSES_7
    assert set(CLASSES_4) < set(CLASSES_7)


@pytest.mark.parametrize("bad", [5, 0, "x", None])
def test_other_class_counts_are_refused(bad):
    with pytest.raises(BenchError, match="4, 7"):
        class_set(bad)
