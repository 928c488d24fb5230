import json
import re

import pandas as pd
import pytest

from bench.leaderboard import (
    COLUMNS,
    PAPER_COLUMNS,
    calibration_cell,
    summarise,
    write_all,
    write_leaderboard,
)
from bench.records import latency_where, load_records, write_record


def record(method="shufflenet-v2", dataset="synthetic", classes=4, seed=0, accuracy=0.5, f1=0.4,
           preset="quick"):
    return {
        "method": method, "dataset": dataset, "classes": classes, "seed": seed, "preset": preset,
        "class_names": ["anger", "happiness", "surprise", "neutral"],
        "accuracy": accuracy, "macro_precision": f1, "macro_recall": f1, "macro_f1": f1,
        "params_m": 1.2577, "mflops": 147.788, "latency_ms": 10.0 + seed, "latency_iqr_ms": 0.5,
        "latency_device": "cpu (2 threads)", "calibration": False, "train_s": 30.0,
        "confusion_matrix": [[2, 1, 0, 0], [0, 3, 0, 0], [0, 0, 3, 0], [1, 0, 0, 2]],
        "epochs": 15, "image_size": 64, "pretrained": False, "cost": {"input_size": 224},
        "data": {"dropped": {"contempt": 3}},
        "spec": {"preset": preset, "seed": seed}, "params": {"epochs": 15, "random_state": seed},
    }


def test_csv_has_exactly_the_documented_columns(tmp_path):
    for seed, acc in enumerate([0.5, 0.6, 0.7]):
        write_record(tmp_path, record(seed=seed, accuracy=acc))
    table, markdown = write_leaderboard(tmp_path, "synthetic", 4)
    csv = pd.read_csv(tmp_path / "synthetic-4.csv")
    assert list(csv.columns) == COLUMNS
    row = csv.iloc[0]
    assert row["n_seeds"] == 3 and row["accuracy"] == pytest.approx(0.6)
    assert row["accuracy_std"] == pytest.approx(0.1)  # sample std over seeds
    assert row["latency_ms"] == pytest.approx(11.0) and row["calibration"] == "no"
    assert "60.0 ± 10.0" in markdown and "over seeds" in markdown
    assert "1 multiply-add = 1 FLOP" in markdown and "contempt 3" in markdown
    assert (tmp_path / "confusion" / "synthetic-4-shufflenet-v2.png").read_bytes()[:4] == b"\x89PNG"


def test_paper_columns_appear_where_the_paper_has_numbers(tmp_path):
    write_record(tmp_path, record(dataset="reed", accuracy=0.5))
    table, markdown = write_leaderboard(tmp_path, "reed", 4)
    assert list(table.columns) == COLUMNS + PAPER_COLUMNS
    assert table.loc[0, "paper_accuracy"] == pytest.approx(0.568)
    assert table.loc[0, "gap_accuracy"] == pytest.approx(0.5 - 0.568)
    assert "-6.8" in markdown


def test_rows_are_sorted_best_first_and_one_per_method():
    rows = [record("a", accuracy=0.4), record("b", accuracy=0.7), record("a", seed=1, accuracy=0.5)]
    table = summarise(rows)
    assert list(table["method"]) == ["b", "a"] and list(table["n_seeds"]) == [1, 2]
    assert pd.isna(table.loc[0, "accuracy_std"])


def test_a_board_never_averages_runs_of_different_settings(tmp_path):
    old = {**record(seed=0, accuracy=0.9, preset="quick"), "created": "2026-01-01T00:00:00"}
    new = [{**record(seed=s, accuracy=0.3, preset="smoke"), "created": "2026-02-01T00:00:00"}
           for s in (1, 2)]
    for r in (old, *new):
        write_record(tmp_path, r)
    table, markdown = write_leaderboard(tmp_path, "synthetic", 4)
    assert table.loc[0, "n_seeds"] == 2 and table.loc[0, "accuracy"] == pytest.approx(0.3)
    assert "Left out, made with other settings" in markdown
    assert "shufflenet-v2 seed(s) 0 (spec.preset 'smoke' -> 'quick')" in markdown


def test_rerender_from_saved_runs_and_skip_broken_files(tmp_path):
    write_record(tmp_path, record())
    write_record(tmp_path, record(dataset="ckplus", classes=7))
    (tmp_path / "runs" / "broken.json").write_text("{not json")
    with pytest.warns(UserWarning, match="broken.json: not a run record: unreadable"):
        boards = write_all(tmp_path)
    assert [name for name, _ in boards] == ["ckplus-7", "synthetic-4"]
    assert (tmp_path / "ckplus-7.md").exists()


@pytest.mark.parametrize("content, problem", [
    (b"\xff\xfe\x00bad", "unreadable"),
    (b"[]", "a JSON list, not a record"),
    (b'{"not": "a record"}', "no 'method'"),
    (json.dumps({**record(seed=1), "accuracy": None}).encode(), "no 'accuracy'"),
    (json.dumps({**record(seed=1), "macro_f1": float("inf")}).encode(), "'macro_f1' is inf"),
    (json.dumps({**record(seed=1), "accuracy": float("nan")}).encode(), "'accuracy' is nan"),
    (json.dumps({**record(seed=1), "seed": "one"}).encode(), "'seed' is 'one', not a int"),
])
def test_an_odd_file_in_runs_is_named_skipped_and_never_counted(tmp_path, content, problem):
    write_record(tmp_path, record(seed=0, accuracy=0.5))
    (tmp_path / "runs" / "odd.json").write_bytes(content)
    with pytest.warns(UserWarning, match=f"odd.json: not a run record: {problem}"):
        table, markdown = write_leaderboard(tmp_path, "synthetic", 4)
    assert table.loc[0, "n_seeds"] == 1 and not re.search(r"\b(inf|nan)\b", markdown)


def test_records_are_written_atomically(tmp_path):
    path = write_record(tmp_path, record())
    assert json.loads(path.read_text())["method"] == "shufflenet-v2"
    assert not list(path.parent.glob(".*.tmp"))
    with pytest.warns(UserWarning):
        (path.parent / "partial.json").write_text('{"method": ')
        assert len(load_records(tmp_path)) == 1


@pytest.mark.parametrize("declared, given, cell", [
    ([False, False], [{}, {}], "no"),
    ([True, True], [{"s1": 2}, {"s2": 1}], "yes"),
    ([True, True], [{}, {"a": 0}], "none given"),  # no subject ids: nothing to calibrate on
])
def test_the_calibration_column_says_whether_calibration_images_were_given(declared, given, cell):
    g = pd.DataFrame({"calibration": declared, "calibration_images": given})
    assert calibration_cell(g) == cell
    assert calibration_cell(g.drop(columns="calibration_images")) == ("no" if cell == "no" else "yes")


@pytest.mark.parametrize("calibrated, cell", [([0, 0], "none used"), ([0, 3], "yes"),
                                              ([None, None], "yes")])
def test_a_method_given_calibration_images_that_calibrated_nobody_is_not_called_personalised(
        tmp_path, calibrated, cell):
    for seed, n in enumerate(calibrated):
        report = {} if n is None else {"calibrated_subjects": n}  # None: a method that says nothing
        write_record(tmp_path, {**record(method="emo", seed=seed), "calibration": True,
                                "calibration_images": {"s1": 1, "s2": 2}, "method_report": report})
    table, markdown = write_leaderboard(tmp_path, "synthetic", 4)
    assert table.loc[0, "calibration"] == cell
    assert ("personalisation unused: given 1.5 calibration image(s) per test subject"
            in markdown) == (cell == "none used")


def test_the_board_says_when_its_latencies_come_from_separate_timing_passes(tmp_path):
    times = ["2026-12-01T09:00+00:00", "2026-12-01T09:20+00:00", "2026-12-03T14:05+00:00"]
    for seed, at in enumerate(times):
        write_record(tmp_path, {**record(seed=seed), "latency_timed_at": at})
    _, markdown = write_leaderboard(tmp_path, "synthetic", 4)
    assert ("separate timing passes: 2026-12-01 09:00 UTC (2 runs), 2026-12-03 14:05 UTC (1 run)"
            in markdown and "--retime" in markdown)
    write_record(tmp_path, {**record(seed=2), "latency_timed_at": times[1]})  # retimed with them
    _, markdown = write_leaderboard(tmp_path, "synthetic", 4)
    assert "Latencies timed in one pass, from 2026-12-01 09:00 UTC (3 runs)." in markdown
    write_record(tmp_path, record(seed=2))  # an older record: no time kept
    _, markdown = write_leaderboard(tmp_path, "synthetic", 4)
    assert "1 run(s) timed before the time was recorded" in markdown


def test_the_board_names_the_processor_and_lists_several(tmp_path):
    epyc = {"environment": {"cpu": "AMD EPYC"}}  # trained and timed there (an older record)
    for seed in (0, 1):
        write_record(tmp_path, {**record(seed=seed), **epyc})
    table, markdown = write_leaderboard(tmp_path, "synthetic", 4)
    assert "median (IQR) on cpu (2 threads, AMD EPYC)" in markdown
    assert table.loc[0, "latency_device"] == "cpu (2 threads, AMD EPYC)"
    assert "devices or processors" not in markdown
    write_record(tmp_path, {**record(seed=1), **epyc, "latency_processor": "Intel Xeon"})  # retimed
    _, markdown = write_leaderboard(tmp_path, "synthetic", 4)
    assert ("timed on 2 devices or processors (cpu (2 threads, AMD EPYC): 1 run; "
            "cpu (2 threads, Intel Xeon): 1 run), whose milliseconds do not compare") in markdown
    one = {**record(), "latency_device": "cpu (1 threads)", "environment": {"cpu": "AMD EPYC"}}
    assert latency_where(one) == "cpu (1 thread, AMD EPYC)"  # older records' spelling
    for seed in range(3):
        write_record(tmp_path, record(seed=seed))
    _, markdown = write_leaderboard(tmp_path, "synthetic", 4)
    assert "When these latencies were timed is not recorded" in markdown


def test_settings_say_when_a_network_or_its_teacher_was_pre_trained_on_faces(tmp_path):
    faces = {"dataset": "ckplus", "images": 272, "subjects": 49, "left_out_subjects": 74}
    write_record(tmp_path, {**record("ldgn"), "pretrain": faces})
    write_record(tmp_path, {**record("ours"), "teacher": {"pretrain": {**faces, "subjects": 50}}})
    write_record(tmp_path, {**record("ours", seed=1), "teacher": {"pretrain": faces}})
    write_record(tmp_path, {**record("eac"), "teacher": None})
    _, markdown = write_leaderboard(tmp_path, "synthetic", 4)
    settings = {line.split("**")[1]: line for line in markdown.splitlines() if line.startswith("- **")}
    assert "pre-trained on ckplus faces (49 subjects, 74 left out)" in settings["ldgn"]
    assert "from scratch" not in settings["ldgn"]
    assert ("from scratch; its teacher pre-trained on ckplus faces (49-50 subjects, 74 left out)"
            in settings["ours"])
    assert "from scratch, seeds 0" in settings["eac"] and "teacher" not in settings["eac"]


def test_the_board_names_the_methods_that_share_a_latency_figure(tmp_path):
    write_record(tmp_path, record("efficientnet-b0"))
    write_record(tmp_path, record("efficientnet-b0", seed=1)
                 | {"latency_timed_with": "efficientnet-b0 seed 0"})
    write_record(tmp_path, record("efficientnet-ldl") | {"latency_timed_with": "efficientnet-b0 seed 0"})
    write_record(tmp_path, record("emo") | {"latency_timed_with": "emo-ldl seed 0"})
    write_record(tmp_path, record("emo-ldl"))
    write_record(tmp_path, record("eac", seed=1) | {"latency_timed_with": "eac seed 0"})
    _, markdown = write_leaderboard(tmp_path, "synthetic", 4)
    assert ("share that figure (each record's `latency_timed_with`): the seeds of a method, and "
            "efficientnet-b0, efficientnet-ldl; emo, emo-ldl." in markdown)
    for path in (tmp_path / "runs").iterdir():
        path.unlink()
    write_record(tmp_path, record("eac"))
    _, markdown = write_leaderboard(tmp_path, "synthetic", 4)
    assert "share that figure" not in markdown


def test_the_board_says_which_rows_come_from_one_seed(tmp_path):
    write_record(tmp_path, record("a"))
    _, markdown = write_leaderboard(tmp_path, "synthetic", 4)
    assert "Every row comes from one seed, so without a standard deviation" in markdown
    write_record(tmp_path, record("b"))
    write_record(tmp_path, record("b", seed=1))
    _, markdown = write_leaderboard(tmp_path, "synthetic", 4)
    assert "1 row(s) come (a) from one seed" in markdown
    write_record(tmp_path, record("a", seed=1))
    _, markdown = write_leaderboard(tmp_path, "synthetic", 4)
    assert "from one seed" not in markdown


def test_the_board_says_how_many_runs_trained_beside_each_other(tmp_path):
    local = {"executor": "dask", "scheduler": "tcp://127.0.0.1:34287", "workers": 2}
    for seed in range(2):
        write_record(tmp_path, {**record(seed=seed), "execution": local, "jobs": 2})
    _, markdown = write_leaderboard(tmp_path, "synthetic", 4)
    assert "Train s: wall time of a run's fit, its teacher's included" in markdown
    assert "trained up to 2 runs at once on one machine. Runs training side by side" in markdown
    write_record(tmp_path, {**record(seed=1), "execution": {"executor": "in-process"}, "jobs": 1})
    _, markdown = write_leaderboard(tmp_path, "synthetic", 4)
    assert ("trained one run at a time (1 run); up to 2 runs at once on one machine (1 run)"
            in markdown)


def test_the_board_says_how_many_training_images_the_frame_rule_kept(tmp_path):
    for seed in range(2):
        write_record(tmp_path, {**record(seed=seed), "dataset": "folder", "n_train": 96,
                                "n_train_available": 2000 + 100 * seed, "train_frames": 4})
    _, markdown = write_leaderboard(tmp_path, "folder", 4)
    assert ("Training images: 96 of the training subjects' 2050 per split (5%, mean over 2 "
            "split(s)): the quick preset keeps at most 4 evenly spaced frames") in markdown
    assert "without sequence sub-folders is one sequence" in markdown
    for seed in range(2):  # nothing left out, or not recorded: nothing said
        write_record(tmp_path, {**record(seed=seed), "n_train": 96, "n_train_available": 96})
    assert "Training images:" not in write_leaderboard(tmp_path, "synthetic", 4)[1]
