"""What a method declares is checked when it is registered: every built-in method passes, and a
declaration without what it promises is refused with a message naming it."""

from __future__ import annotations

import pytest

from bench import EmotionClassifier, list_methods, register
from bench.estimator import DesignPoint
from bench.registry import declaration_problems


class Plain(EmotionClassifier):
    def build_network(self, n_classes):
        raise NotImplementedError


def _subclass(**declarations):
    return type("Declared", (Plain,), declarations)


@pytest.mark.parametrize("declarations, message", [
    ({"calibration": "sometimes"}, "calibration must be one of"),
    ({"calibration": "neutral"}, "calibrate() is not implemented"),
    ({"frame_order": "yes"}, "frame_order must be True or False"),
    ({"needs_teacher": True}, "needs make_teacher()"),
    ({"needs_teacher": "ldl"}, "'ldl', which is not one of its parameters"),
    ({"frame_skipping": True}, "needs stream(), threshold(), skip_costs() and a skip_threshold "
     "parameter"),
    ({"frame_order": True}, "fit() must accept sequences= and validation_sequences="),
    ({"external_data": True}, "fit() must accept exclude_subjects="),
    ({"design_points": (DesignPoint(64, "why", requires="gem"),)}, "requires 'gem'"),
    ({"design_points": (64,)}, "must hold DesignPoint"),
    ({"precise_bn_images": -1}, "precise_bn_images"),
    ({"pretrain_param": "faces"}, "needs the parameter(s) faces, faces_root, faces_epochs"),
])
def test_a_declaration_without_what_it_promises_is_refused_at_register(declarations, message):
    with pytest.raises(TypeError, match=message.replace("(", r"\(").replace(")", r"\)")):
        register("declared-badly", _subclass(**declarations), display_name="x", description="x")
    assert "declared-badly" not in list_methods()


def test_a_teacher_switch_names_a_parameter():
    class Student(Plain):
        needs_teacher = "distil"

        def __init__(self, *, distil=True, **base):
            super().__init__(**base)
            self.distil = distil

        def make_teacher(self):
            return Plain()

        def fit(self, X, y, groups=None, *, validation_data=None, teacher=None):
            return self

    assert declaration_problems(Student) == []
    assert Student().uses_teacher() and not Student(distil=False).uses_teacher()
    assert not Plain().uses_teacher()
