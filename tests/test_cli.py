import json
import os
import subprocess
import sys

import pandas as pd
import pytest

from bench.cli import main, parse_seeds
from bench.device import cpu_model
from bench.errors import BenchError


def run_cli(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_list_shows_methods_datasets_presets(capsys):
    code, out, _ = run_cli(capsys, "list")
    assert code == 0
    for word in ("shufflenet-v2", "synthetic", "ckplus", "rafdb", "smoke", "paper"):
        assert word in out


def test_run_writes_and_prints_the_leaderboard_and_resumes(capsys, tmp_path):
    args = ["run", "--dataset", "synthetic", "--classes", "4", "--methods", "shufflenet-v2",
            "--preset", "smoke", "--epochs", "1", "--out", str(tmp_path), "--quiet"]
    code, out, _ = run_cli(capsys, *args)
    assert code == 0
    assert "| shufflenet-v2" in out and "total time" in out
    table = pd.read_csv(tmp_path / "synthetic-4.csv")
    assert list(table["method"]) == ["shufflenet-v2"] and 0 <= table["accuracy"][0] <= 1
    assert (tmp_path / "runs" / "synthetic-4-shufflenet-v2-seed0.json").exists()
    code, out, _ = run_cli(capsys, *args)
    assert code == 0 and "skipped" in out
    code, out, _ = run_cli(capsys, *args, "--force")
    assert "skipped" not in out
    record = tmp_path / "runs" / "synthetic-4-shufflenet-v2-seed0.json"
    before = record.read_bytes()
    code, out, err = run_cli(capsys, *args, "--epochs", "2")  # other settings: refused, kept
    assert code == 2 and "1 finished run(s) made with other settings" in err
    assert "params.epochs 1 -> 2" in err and "--force to replace" in err and err.count("\n") == 1
    assert record.read_bytes() == before and "Training" not in out
    code, out, _ = run_cli(capsys, *args, "--epochs", "2", "--force")
    assert code == 0 and json.loads(record.read_text())["epochs"] == 2


@pytest.mark.parametrize("argv, message", [
    (["run", "--methods", "nope"], "unknown method nope; valid methods: shufflenet-v2, eyemotion"),
    (["run", "--methods", ""], "unknown method ''; valid methods: shufflenet-v2, eyemotion"),
    (["run", "--seeds", "1,x"], "malformed --seeds"),
    (["run", "--dataset", "reed", "--methods", "shufflenet-v2"], "Expected layout: ROOT/<subject>"),
    (["run", "--device", "tpu"], "unknown device"),
    (["leaderboard", "--out", "nowhere-at-all"], "no run records"),
])
def test_user_mistakes_are_one_line_errors(capsys, monkeypatch, argv, message):
    monkeypatch.delenv("BENCH_DATA", raising=False)
    code, _, err = run_cli(capsys, *argv)
    assert code == 2 and message in err and "Traceback" not in err
    assert err.count("\n") == 1


def test_data_of_another_layout_is_named_before_imagenet_weights_are_fetched(capsys, tmp_path,
                                                                           monkeypatch):
    """The paper preset starts from ImageNet weights; a data root in the wrong layout is the
    user's first problem and is named first (no download attempted)."""
    import torchvision

    (tmp_path / "S005" / "happy").mkdir(parents=True)  # the folder layout, not CK+'s
    monkeypatch.setattr(torchvision.models.WeightsEnum, "get_state_dict",
                        lambda *a, **k: pytest.fail("fetched ImageNet weights"))
    code, _, err = run_cli(capsys, "run", "--dataset", "ckplus", "--data-root", str(tmp_path),
                           "--methods", "shufflenet-v2", "--out", str(tmp_path / "out"))
    assert code == 2 and "Expected layout: ROOT/CK+/<class>/" in err and err.count("\n") == 1
    # the same for the teacher's pre-training data
    code, _, err = run_cli(capsys, "run", "--methods", "ours", "--teacher-pretrain", "ckplus",
                           "--teacher-pretrain-root", str(tmp_path), "--out", str(tmp_path / "out"))
    assert code == 2 and "Expected layout: ROOT/CK+/<class>/" in err and err.count("\n") == 1


@pytest.mark.parametrize("argv, message", [
    (["run", "--dataset", "mnist"], "invalid choice: 'mnist'"),
    (["run", "--preset", "huge"], "invalid choice: 'huge' (choose from"),
    (["run", "--classes", "5"], "invalid choice: 5 (choose from"),
    (["run", "--epochs", "0"], "must be at least 1"),
])
def test_invalid_choices_list_the_valid_ones(capsys, argv, message):
    with pytest.raises(SystemExit) as exit_:
        main(argv)
    err = capsys.readouterr().err
    assert exit_.value.code == 2 and message in err
    if "--preset" in argv:
        assert all(p in err for p in ("smoke", "quick", "paper"))
    if "--classes" in argv:
        assert "4, 7" in err


def test_parse_seeds():
    assert parse_seeds("0,1,2") == [0, 1, 2]
    assert parse_seeds("0-3,7") == [0, 1, 2, 3, 7]
    for bad in ("a", "3-1", "-1", ""):
        with pytest.raises(BenchError):
            parse_seeds(bad)


def test_profile_reports_the_papers_cost(capsys, tmp_path):
    code, out, _ = run_cli(capsys, "profile", "--methods", "shufflenet-v2", "--classes", "4",
                           "--out", str(tmp_path), "--min-time", "0.05", "--batch-sizes", "1,2")
    assert code == 0 and "1.26" in out and "147.79" in out and "1 multiply-add" in out
    table = pd.read_csv(tmp_path / "profile.csv")
    assert list(table.columns) == ["method", "params_m", "mflops", "latency_ms", "latency_iqr_ms",
                                   "throughput", "throughput_batch", "input_size", "latency_device",
                                   "latency_processor", "dtype", "memory_format", "threads", "torch",
                                   "latency_blocks",
                                   "latency_stable", "latency_cpu_share", "throughput_stable",
                                   "latency_others_busy", "latency_rounds",
                                   "latency_round_spread",
                                   "throughput_round_spread", "latency_timed_with"]
    assert table.loc[0, "throughput_batch"] == 2 and table.loc[0, "dtype"] == "float32"
    assert table.loc[0, "latency_processor"] == cpu_model() and f"on {cpu_model()}" in out
    assert table.loc[0, "latency_rounds"] == 2 and table.loc[0, "latency_round_spread"] >= 0


def test_profile_rounds_alternate_the_order(capsys, tmp_path, monkeypatch):
    import bench.profile_command as command
    order, timed = [], command._timed
    monkeypatch.setattr(command, "_timed", lambda method, *a: (order.append(method), timed(method, *a))[1])
    code, _, _ = run_cli(capsys, "profile", "--methods", "shufflenet-v2,ours-sll,ours", "--out",
                         str(tmp_path), "--min-time", "0.01", "--batch-sizes", "1",
                         "--profile-size", "32", "--rounds", "3")
    assert code == 0 and order == ["shufflenet-v2", "ours-sll"] + ["ours-sll", "shufflenet-v2"] \
        + ["shufflenet-v2", "ours-sll"]  # ours shares ours-sll's figure
    assert set(pd.read_csv(tmp_path / "profile.csv")["latency_rounds"]) == {3}


def test_profile_channels_last_is_recorded(capsys, tmp_path):
    code, _, _ = run_cli(capsys, "profile", "--methods", "shufflenet-v2", "--out", str(tmp_path),
                         "--min-time", "0.01", "--batch-sizes", "1", "--channels-last",
                         "--profile-size", "64")
    table = pd.read_csv(tmp_path / "profile.csv")
    assert code == 0 and table.loc[0, "memory_format"] == "channels_last"
    assert pd.isna(table.loc[0, "throughput"])


@pytest.mark.parametrize("flag, expected", [
    ([], ["channels_last", "contiguous"]),  # each method's own format
    (["--no-channels-last"], ["contiguous", "contiguous"]),
])
def test_profile_times_each_method_in_its_own_memory_format(capsys, tmp_path, flag, expected):
    code, _, _ = run_cli(capsys, "profile", "--methods", "shufflenet-v2,emo", "--out",
                         str(tmp_path), "--min-time", "0.01", "--batch-sizes", "1",
                         "--profile-size", "64", *flag)
    assert code == 0
    assert list(pd.read_csv(tmp_path / "profile.csv")["memory_format"]) == expected


def test_profile_times_identical_networks_once(capsys, tmp_path):
    code, out, _ = run_cli(capsys, "profile", "--methods", "ours-sll,shufflenet-v2,ours", "--out",
                           str(tmp_path), "--min-time", "0.01", "--batch-sizes", "1",
                           "--profile-size", "64")
    table = pd.read_csv(tmp_path / "profile.csv").set_index("method")
    assert code == 0 and "ours with ours-sll" in out
    assert list(table["latency_timed_with"]) == ["ours-sll", "shufflenet-v2", "ours-sll"]
    shared = ["latency_ms", "latency_iqr_ms", "latency_blocks", "latency_stable", "memory_format"]
    assert table.loc["ours", shared].equals(table.loc["ours-sll", shared])
    assert table.loc["ours", "latency_ms"] != table.loc["shufflenet-v2", "latency_ms"]


def test_module_entry_point_has_no_traceback_for_missing_data(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "BENCH_DATA"}
    proc = subprocess.run([sys.executable, "-m", "bench", "run", "--dataset", "reed", "--classes",
                           "4"], capture_output=True, text=True, env=env, cwd=tmp_path, timeout=120)
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    assert "REED" in proc.stderr or "reed" in proc.stderr
    assert "ROOT/<subject>/<emotion>" in proc.stderr


@pytest.mark.ckplus
def test_smoke_run_on_real_ckplus(capsys, tmp_path, ckplus_root):
    code, out, _ = run_cli(capsys, "run", "--dataset", "ckplus", "--data-root", str(ckplus_root),
                           "--classes", "7", "--methods", "shufflenet-v2", "--preset", "smoke",
                           "--out", str(tmp_path), "--quiet")
    assert code == 0 and "| shufflenet-v2" in out
    table = pd.read_csv(tmp_path / "ckplus-7.csv")
    assert table.loc[0, "n_seeds"] == 1
    assert "contempt 17" in (tmp_path / "ckplus-7.md").read_text()


def test_missing_imagenet_weights_stop_the_run_before_training(capsys, monkeypatch, tmp_path):
    import urllib.error

    import torch

    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))

    def offline(*args, **kwargs):
        raise urllib.error.URLError("no network")

    monkeypatch.setattr(torch.hub, "download_url_to_file", offline)
    code, out, err = run_cli(capsys, "run", "--methods", "shufflenet-v2", "--preset", "paper",
                             "--out", str(tmp_path / "out"))
    assert code == 2 and "--no-pretrained" in err and "Traceback" not in err
    assert not (tmp_path / "out" / "runs").exists()


def test_parse_params():
    from bench.cli import parse_params

    assert parse_params(["epochs=3", "lr=0.1", "teacher_pretrain_root=/data/fer", "augment=false",
                         'teacher_params={"epochs": 2}']) == {
        "epochs": 3, "lr": 0.1, "teacher_pretrain_root": "/data/fer", "augment": False,
        "teacher_params": {"epochs": 2}}
    for bad in ("epochs", "=3", "teacher_params={epochs: 2}"):
        with pytest.raises(BenchError):
            parse_params([bad])


def test_param_no_selected_method_has_is_refused(capsys):
    code, _, err = run_cli(capsys, "run", "--methods", "shufflenet-v2", "--param",
                           "teacher_pretrain_root=/x")
    assert code == 2 and "no selected method has parameter(s) teacher_pretrain_root" in err


@pytest.fixture
def small_stream(monkeypatch):
    """``bench stream`` on 10 synthetic subjects of 12 frames (every test frame is replayed)."""
    import functools

    from bench.protocol import RunSpec

    monkeypatch.setattr("bench.cli.RunSpec", functools.partial(
        RunSpec, dataset_options={"n_subjects": 10, "frames": 12}))


def test_stream_writes_the_curve_and_the_chosen_threshold_of_each_seed(capsys, tmp_path,
                                                                       small_stream):
    from baselines.emo import ENCODER_SIZE, EmbeddingResNet, SkipEncoder
    from bench.profiling import count_mflops

    from .test_plots import is_a_picture

    args = ["stream", "--method", "emo", "--preset", "smoke", "--epochs", "1", "--out",
            str(tmp_path), "--quiet", "--thresholds", "0.5,0.99", "--seeds", "0,1"]
    code, out, _ = run_cli(capsys, *args)
    assert code == 0 and "speedup" in out and "At the chosen threshold" in out
    assert "depend on the machine and its load" in out and "| mean" in out
    table = pd.read_csv(tmp_path / "stream-synthetic-4.csv")
    assert list(table.columns) == ["method", "seed", "threshold", "chosen", "skip_rate", "accuracy",
                                   "accuracy_no_skip", "macro_f1", "macro_f1_no_skip", "fps",
                                   "fps_no_skip", "speedup", "flops_speedup", "val_accuracy_cost",
                                   "speedup_rounds", "speedup_spread", "cpu_share"]
    assert table.groupby("seed")["chosen"].sum().to_dict() == {0: 1, 1: 1}
    assert "the median of 3 round(s), each a no-skip and a skipping pass back to back" in out
    assert (table["speedup_rounds"] == table["chosen"].map({True: 3, False: 1})).all()
    assert table["speedup_spread"].notna().tolist() == table["chosen"].tolist()
    assert table["cpu_share"].between(0, 1).all()
    chosen = table[table["chosen"]]
    # within emo's default budget of one point of validation accuracy
    assert chosen["val_accuracy_cost"].notna().all() and (chosen["val_accuracy_cost"] <= 0.01 + 1e-9).all()
    for _, mine in table.groupby("seed"):
        assert {0.5, 0.99} <= set(mine["threshold"]) and (mine["fps"] > 0).all()
        sweep = mine[~mine["chosen"]]["fps_no_skip"]  # one no-skip pass for the sweep
        assert (sweep == sweep.iloc[0]).all()
        assert mine.set_index("threshold")["skip_rate"][0.5] >= \
            mine.set_index("threshold")["skip_rate"][0.99]
    # FLOP-counted speed-up: N B / (calls B + N E), from fvcore's counts of the two networks
    backbone = count_mflops(EmbeddingResNet(4), 32)[0]
    encoder = count_mflops(SkipEncoder().net, ENCODER_SIZE, channels=1)[0]
    skipping = table["threshold"].notna()
    expected = backbone / ((1 - table["skip_rate"]) * backbone + encoder * skipping)
    assert table["flops_speedup"].to_numpy() == pytest.approx(expected.to_numpy(), rel=1e-4)
    is_a_picture(tmp_path / "stream-synthetic-4.png", (1000, 350))
    # a rerun of seed 1 replaces that seed's rows and keeps seed 0's
    code, _, _ = run_cli(capsys, *args[:-1], "1")
    again = pd.read_csv(tmp_path / "stream-synthetic-4.csv")
    assert code == 0 and len(again) == len(table) and again.groupby("seed")["chosen"].sum().tolist() == [1, 1]
    # `bench leaderboard` draws the picture again from the CSV, with nothing to replay
    (tmp_path / "stream-synthetic-4.png").unlink()
    code, out, _ = run_cli(capsys, "leaderboard", "--out", str(tmp_path))
    assert code == 0 and "re-drew" in out
    is_a_picture(tmp_path / "stream-synthetic-4.png", (1000, 350))


def test_stream_keeps_the_rows_of_an_earlier_table_layout(capsys, tmp_path, small_stream):
    (tmp_path / "stream-synthetic-4.csv").write_text(
        "method,threshold,skip_rate,fps,fps_no_skip,speedup,accuracy,accuracy_no_skip\n"
        "emo,0.95,0.68,237.2,81.8,2.9,0.62,0.63\n")
    code, _, _ = run_cli(capsys, "stream", "--method", "emo", "--preset", "smoke", "--epochs",
                         "1", "--out", str(tmp_path), "--quiet", "--thresholds", "0.9",
                         "--seed", "0")
    table = pd.read_csv(tmp_path / "stream-synthetic-4.csv")
    assert code == 0 and table["seed"].isna().sum() == 1 and (table["seed"] == 0).sum() >= 1
    assert 237.2 in set(table["fps"])


def test_stream_refuses_a_method_that_does_not_skip_frames(capsys):
    code, _, err = run_cli(capsys, "stream", "--method", "shufflenet-v2")
    assert code == 2 and ("does not skip frames, so it has nothing to stream; methods that do: "
                          "emo") in err


def test_stream_refuses_malformed_thresholds(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["stream", "--method", "emo", "--thresholds", "high"])
    assert exit_.value.code == 2
    assert "'high' is not a list of numbers" in capsys.readouterr().err
    code, _, err = run_cli(capsys, "stream", "--method", "emo", "--preset", "smoke",
                           "--thresholds", "0.9,1.5")
    assert code == 2 and "--thresholds" in err and "skip_threshold" in err
    with pytest.raises(SystemExit):
        main(["stream", "--method", "emo", "--seed", "0", "--seeds", "0,1"])
    assert "not allowed with argument" in capsys.readouterr().err


def test_label_noise_runs_get_a_board_of_their_own(capsys, tmp_path):
    code, out, _ = run_cli(capsys, "run", "--methods", "shufflenet-v2", "--preset", "smoke",
                           "--epochs", "1", "--label-noise", "0.2", "--out", str(tmp_path), "--quiet")
    assert code == 0 and "20% noisy training labels" in out
    assert (tmp_path / "synthetic-4-noise20.md").exists()
    assert (tmp_path / "runs" / "synthetic-4-noise20-shufflenet-v2-seed0.json").exists()
    assert not (tmp_path / "synthetic-4.md").exists()
    with pytest.raises(SystemExit):
        main(["run", "--label-noise", "1.5"])
    assert "must be at least 0 and below 1" in capsys.readouterr().err


def test_teacher_pretrain_from_the_command_line(capsys, tmp_path, folder_dataset):
    faces = folder_dataset({f"p{i}": {"happy": 2, "angry": 2, "surprise": 2, "neutral": 2}
                            for i in range(4)}, root=tmp_path / "faces")
    out = tmp_path / "out"
    code, _, err = run_cli(capsys, "run", "--methods", "ours", "--preset", "smoke", "--epochs",
                           "1", "--out", str(out), "--quiet", "--teacher-pretrain", "folder",
                           "--teacher-pretrain-root", str(faces))
    assert code == 0, err
    record = json.loads((out / "runs" / "synthetic-4-ours-seed0.json").read_text())
    assert record["params"]["teacher_pretrain"] == "folder"
    assert record["teacher"]["pretrain"]["images"] > 0


def test_teacher_pretrain_mistakes_are_one_line_errors(capsys, tmp_path):
    code, _, err = run_cli(capsys, "run", "--methods", "ours", "--teacher-pretrain-root", "x")
    assert code == 2 and "needs --teacher-pretrain" in err
    code, _, err = run_cli(capsys, "run", "--methods", "ours", "--teacher-pretrain", "jaffe",
                           "--teacher-pretrain-root", str(tmp_path / "absent"))
    assert code == 2 and "does not exist" in err and "Traceback" not in err


@pytest.mark.parametrize("argv, shown, hidden", [
    (["ours*"], {"ours", "ours-sll", "ours-lem", "ours-gem"}, {"shufflenet-v2", "eac", "ldgn"}),
    (["eac", "efficientnet-ldl*"], {"eac", "efficientnet-ldl", "efficientnet-ldl-style"},
     {"efficientnet-b0"}),
    (["--calibration", "neutral"], {"eyemotion"}, {"emo", "ours"}),
    (["--calibration", "any"], {"eyemotion", "emo", "emo-ldl"}, {"ours", "eac"}),
    (["--calibration", "none"], {"ours", "eac"}, {"eyemotion", "emo"}),
    (["--dataset", "rafdb"], {"eac"}, {"emo", "eyemotion"}),
])
def test_list_filters_methods(capsys, argv, shown, hidden):
    code, out, _ = run_cli(capsys, "list", *argv)
    assert code == 0 and out.startswith("methods:") and "datasets:" not in out
    listed = {line.split()[0] for line in out.splitlines()[1:]}
    assert shown <= listed and not hidden & listed


def test_list_says_when_nothing_matches(capsys):
    code, _, err = run_cli(capsys, "list", "resnet*")
    assert code == 2 and "no method matches" in err and "shufflenet-v2" in err


def test_stream_summary_prints_the_chosen_threshold_as_chosen():
    from bench.stream import COLUMNS, stream_summary

    rows = [dict.fromkeys(COLUMNS, 0.5) | {"method": "emo", "seed": seed, "threshold": t,
                                          "chosen": True, "accuracy": 0.7}
            for seed, t in ((0, 0.925), (1, 0.995), (2, None))]
    table = stream_summary(pd.DataFrame(rows, columns=COLUMNS))
    assert list(table["threshold"]) == ["0.925", "0.995", "none (no skipping)", ""]
    assert table["cost_points"].iloc[-1] == pytest.approx(-20.0)  # 100 * (0.5 - 0.7)


def test_stream_speedups_say_what_they_are_worth():
    from bench.stream import COLUMNS, timing_quality

    def row(seed, chosen, spread, share):
        return dict.fromkeys(COLUMNS) | {"method": "emo", "seed": seed, "chosen": chosen,
                                         "speedup_rounds": 3 if chosen else 1,
                                         "speedup_spread": spread, "cpu_share": share}

    table = pd.DataFrame([row(0, False, None, 0.5), row(0, True, 0.04, 0.98),
                          row(1, True, 0.25, 0.97), row(2, True, 0.02, 0.6)], columns=COLUMNS)
    lines = timing_quality(table)
    assert lines[0].startswith("speedup at the chosen threshold: the median of 3 round(s)")
    assert lines[1:] == [
        "emo seed 1: its rounds spread 25%; its wall-clock speedup is approximate, rerun on an "
        "idle machine",
        "emo seed 2: this process got 60% of its CPU time (the machine was busy); its wall-clock "
        "speedup is approximate, rerun on an idle machine"]


def test_leaderboard_retime_times_rows_of_separate_runs_together(capsys, tmp_path):
    """ours and ours-sll run one network; a latency from another day is said on the board, and
    --retime times both again here (once), without training."""
    run_cli(capsys, "run", "--methods", "ours,ours-sll", "--preset", "smoke", "--epochs", "1",
            "--jobs", "1", "--quiet", "--out", str(tmp_path))
    path = tmp_path / "runs" / "synthetic-4-ours-seed0.json"
    record = json.loads(path.read_text())
    accuracy = record["accuracy"]
    path.write_text(json.dumps({**record, "latency_ms": 999.0, "latency_timed_with": None}))
    code, out, _ = run_cli(capsys, "leaderboard", "--out", str(tmp_path))
    assert code == 0 and "latency timed apart" in out and "999.00 ms here" in out
    code, out, _ = run_cli(capsys, "leaderboard", "--retime", "--out", str(tmp_path))
    assert code == 0 and "timed the latency of 2 record(s) again (1 network(s)" in out
    assert "latency timed apart" not in out
    retimed = [json.loads((tmp_path / "runs" / f"synthetic-4-{m}-seed0.json").read_text())
               for m in ("ours", "ours-sll")]
    assert retimed[0]["latency_ms"] == retimed[1]["latency_ms"] < 999
    assert retimed[1]["latency_timed_with"] == "ours seed 0" and retimed[0]["accuracy"] == accuracy
    assert record["latency_timed_at"] and all(r["latency_timed_at"] for r in retimed)
    assert "Latencies timed in one pass" in (tmp_path / "synthetic-4.md").read_text()


def test_leaderboard_retime_leaves_records_it_cannot_rebuild_as_they_were(capsys, tmp_path):
    run_cli(capsys, "run", "--methods", "shufflenet-v2", "--preset", "smoke", "--epochs", "1",
            "--jobs", "1", "--quiet", "--out", str(tmp_path))
    path = tmp_path / "runs" / "synthetic-4-shufflenet-v2-seed0.json"
    record = json.loads(path.read_text())
    path.write_text(json.dumps({**record, "params": {**record["params"], "renamed": 1}}))
    code, out, _ = run_cli(capsys, "leaderboard", "--retime", "--out", str(tmp_path))
    assert code == 0 and "timed the latency of 0 record(s) again (0 network(s)" in out
    assert "left as they were: shufflenet-v2 seed 0: shufflenet-v2 has no parameter(s) renamed" in out
    assert json.loads(path.read_text())["latency_ms"] == record["latency_ms"]
