"""Board rows that are not the method they name are flagged, from the records alone."""

import pytest

from bench.leaderboard import summarise, write_leaderboard
from bench.quality import majority_scores
from bench.records import write_record

from .test_leaderboard import record

# the test split of `record`: 3 anger, 3 happiness, 3 surprise, 3 neutral; training mostly neutral
TRAIN = {"anger": 10, "happiness": 10, "surprise": 10, "neutral": 70}
ALL_NEUTRAL = [[0, 0, 0, 3], [0, 0, 0, 3], [0, 0, 0, 3], [0, 0, 0, 3]]


def full(method="shufflenet-v2", seed=0, f1=0.6, val=0.7, predicted=4, **extra):
    r = record(method, seed=seed, f1=f1)
    r.update({"train_class_counts": TRAIN, "n_predicted_classes": predicted,
              "val_accuracy": val, "teacher": None, "design_point": None, **extra})
    return r


def test_majority_predictor_scores_from_counts_and_confusion():
    scores = majority_scores(full())
    assert scores["class"] == "neutral"
    assert scores["accuracy"] == pytest.approx(3 / 12)
    # F1 of neutral: precision 3/12, recall 1 -> 0.4; averaged over the 4 classes present
    assert scores["macro_f1"] == pytest.approx(0.4 / 4)


def test_a_single_class_model_is_flagged_and_the_reference_row_shown(tmp_path):
    write_record(tmp_path, full("good", f1=0.6))
    write_record(tmp_path, full("flat", f1=0.1, predicted=1, confusion_matrix=ALL_NEUTRAL))
    table, markdown = write_leaderboard(tmp_path, "synthetic", 4)
    flags = dict(zip(table["method"], table["collapsed"]))
    assert flags == {"good": False, "flat": True}
    assert "majority-class (reference)" in markdown
    assert "fewer than half of the 4 classes" in markdown
    assert "within 0.02 of the majority-class predictor" in markdown


def test_a_row_just_above_the_reference_is_flagged_and_one_clearly_above_is_not():
    ref = majority_scores(full())["macro_f1"]
    near = summarise([full("near", f1=ref + 0.015)])
    clear = summarise([full("clear", f1=ref + 0.1)])
    assert bool(near.loc[0, "collapsed"]) and not bool(clear.loc[0, "collapsed"])


def test_a_teacher_below_a_hard_label_row_is_said_beside_its_students():
    teacher = {"method": "ldgn", "val_accuracy": 0.55, "epochs": 6}
    rows = [full("ours", val=0.5, teacher=teacher), full("ours-sll", val=0.78),
            full("ldgn", val=0.9)]  # the teacher's own row is not a peer
    notes = dict(zip(summarise(rows)["method"], summarise(rows)["notes"]))
    assert "weak teacher" in notes["ours"] and "ours-sll 0.780" in notes["ours"]
    assert "validation accuracy" in notes["ours"]  # the records' selection metric
    assert "weak teacher" not in notes["ours-sll"]
    strong = [full("ours", teacher={**teacher, "val_accuracy": 0.8}), full("ours-sll", val=0.78)]
    assert "weak teacher" not in summarise(strong).loc[0, "notes"]


def test_teachers_are_compared_on_the_selection_metric():
    """Selected by macro F1 (the quick preset), a teacher is judged by its validation F1, not by
    an accuracy that predicting the majority class would raise."""
    teacher = {"method": "ldgn", "val_accuracy": 0.60, "val_macro_f1": 0.40}
    f1 = {"params": {"selection_metric": "macro_f1"}}
    rows = [full("ours", teacher=teacher, **f1), full("ours-sll", val=0.70, val_macro_f1=0.30, **f1)]
    assert "weak teacher" not in summarise(rows).loc[0, "notes"]
    rows[1]["val_macro_f1"] = 0.45
    notes = dict(zip(summarise(rows)["method"], summarise(rows)["notes"]))
    assert "validation macro f1" in notes["ours"] and "0.400 < ours-sll 0.450" in notes["ours"]


def test_a_run_below_its_design_point_carries_the_declared_reason(tmp_path):
    point = {"min_size": 48, "reason": "maps are 1x1", "below": True}
    write_record(tmp_path, full("eac", design_point=point))
    _, markdown = write_leaderboard(tmp_path, "synthetic", 4)
    assert "below its design point" in markdown and "maps are 1x1" in markdown


def test_records_from_before_the_checks_still_render(tmp_path):
    write_record(tmp_path, record())  # no class counts, no predicted classes, no val accuracy
    table, markdown = write_leaderboard(tmp_path, "synthetic", 4)
    assert not table.loc[0, "collapsed"] and "majority-class" not in markdown


def test_identical_networks_timed_apart_are_said_and_twins_timed_together_are_not():
    """ours and ours-sll run one network; latencies 30 % apart were timed under other conditions."""
    rows = [full("ours", latency_ms=12.0), full("ours-sll", latency_ms=9.0),
            full("ours-gem", latency_ms=7.0, mflops=151.9)]  # another network: no comparison
    notes = dict(zip(summarise(rows)["method"], summarise(rows)["notes"]))
    assert "latency timed apart" in notes["ours"] and "ours-sll 9.00 ms" in notes["ours"]
    assert "ours 12.00 ms" in notes["ours-sll"] and "latency" not in notes["ours-gem"]
    together = [full("ours", latency_ms=9.5), full("ours-sll", latency_ms=9.0)]
    assert not any("latency" in n for n in summarise(together)["notes"])


def test_the_board_says_where_its_runs_were_trained_and_warns_when_machines_differ(tmp_path):
    def on(cpu, method, threads=1):
        return full(method, environment={"cpu": cpu, "torch_threads": threads, "gpu": None})

    write_record(tmp_path, on("AMD EPYC", "a"))
    write_record(tmp_path, on("AMD EPYC", "b"))
    markdown = write_leaderboard(tmp_path, "synthetic", 4)[1]
    assert "Trained on AMD EPYC, 1 thread (2 runs)." in markdown
    write_record(tmp_path, on("Intel Xeon", "c", threads=2))
    markdown = write_leaderboard(tmp_path, "synthetic", 4)[1]
    assert "2 kinds of machine: AMD EPYC, 1 thread (2 runs); Intel Xeon, 2 threads (1 run)" \
        in markdown
    assert "samples of their method, not run for run" in markdown


def test_rows_under_the_references_accuracy_on_imbalanced_data_are_explained(tmp_path):
    """Test split 9 of 12 neutral: the reference scores 75 %; a row that spreads its
    predictions scores less while learning more, which the board explains beside the reference."""
    mostly_neutral = [[1, 0, 0, 0], [0, 1, 0, 0], [0, 0, 1, 0], [3, 1, 1, 4]]
    write_record(tmp_path, {**full("spread", f1=0.5, confusion_matrix=mostly_neutral),
                            "accuracy": 7 / 12})
    write_record(tmp_path, {**full("sharp", f1=0.6, confusion_matrix=mostly_neutral),
                            "accuracy": 0.8})
    _, markdown = write_leaderboard(tmp_path, "synthetic", 4)
    assert "1 of 2 rows (spread) score below its accuracy (75.0%)" in markdown
    assert "compare such rows by macro F1" in markdown


def test_balanced_test_data_need_no_such_explanation(tmp_path):
    write_record(tmp_path, {**full("weak", f1=0.3), "accuracy": 0.24})
    _, markdown = write_leaderboard(tmp_path, "synthetic", 4)
    assert "majority-class (reference)" in markdown and "score below its accuracy" not in markdown
