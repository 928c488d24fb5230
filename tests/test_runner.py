"""``bench run --jobs`` on a Dask LocalCluster: runs trained by workers give the records an
in-process run gives, a split's teacher is still trained once, latency is timed afterwards, and a
run interrupted after training keeps what it trained. (Clusters: ``test_cluster.py``.)"""

from __future__ import annotations

import json
from argparse import Namespace

import pytest
import torch

import bench.cli
import bench.runner
from bench.cli import _job_count, main
from bench.protocol import RunSpec, run_deferring_latency
from bench.records import run_path
from bench.runner import Unit, expected_work

METHODS = "shufflenet-v2,ours,ldgn"


def run_cli(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def records(out) -> dict:
    return {p.stem: json.loads(p.read_text()) for p in (out / "runs").glob("*.json")}


def test_parallel_runs_match_sequential_ones_and_time_latency_afterwards(capsys, tmp_path):
    common = ["run", "--methods", METHODS, "--preset", "smoke", "--quiet", "--threads"]
    code, out, _ = run_cli(capsys, *common, "2", "--jobs", "2", "--out", str(tmp_path / "par"))
    assert code == 0
    assert "a Dask LocalCluster of 2 workers of 1 thread(s) each" in out
    assert out.count("teacher of ours seed 0 trained") == 1  # one teacher for ours and ldgn
    assert "timed the latency of 3 network(s), one at a time" in out
    code, _, _ = run_cli(capsys, *common, "1", "--jobs", "1", "--out", str(tmp_path / "seq"))
    assert code == 0
    parallel, sequential = records(tmp_path / "par"), records(tmp_path / "seq")
    assert parallel.keys() == sequential.keys() and len(parallel) == 3
    for name, record in parallel.items():
        for key in ("accuracy", "macro_f1", "best_epoch", "confusion_matrix", "params_m", "mflops"):
            assert record[key] == sequential[name][key], (name, key)
        assert record["latency_ms"] > 0 and record["jobs"] == 2
        assert record["environment"]["torch_threads"] == 1
        assert record["execution"]["executor"] == "dask"
        assert sequential[name]["execution"]["executor"] == "in-process"
    ours = parallel["synthetic-4-ours-seed0"]["execution"]
    assert ours["teacher_task"].startswith("teacher-synthetic-4-seed0-")
    assert parallel["synthetic-4-ldgn-seed0"]["execution"]["fit_task"] == ours["teacher_task"]
    assert parallel["synthetic-4-ldgn-seed0"]["reused_teacher_fit"]
    assert not (tmp_path / "par" / "pending").exists()
    assert not (tmp_path / "par" / "checkpoints").exists()
    code, out, _ = run_cli(capsys, *common, "2", "--jobs", "2", "--out", str(tmp_path / "par"))
    assert code == 0 and out.count("skipped") == 3 and "LocalCluster" not in out


def test_parallel_runs_reuse_an_identical_fit_and_still_write_both_records(capsys, tmp_path):
    """On balanced data the style row's fit is efficientnet-ldl's: trained once, recorded twice,
    each record with its own parameters."""
    code, out, err = run_cli(capsys, "run", "--methods", "efficientnet-ldl,efficientnet-ldl-style",
                             "--preset", "smoke", "--quiet", "--jobs", "2", "--out", str(tmp_path))
    assert code == 0, err
    runs = records(tmp_path)
    plain = runs["synthetic-4-efficientnet-ldl-seed0"]
    styled = runs["synthetic-4-efficientnet-ldl-style-seed0"]
    assert styled["reused_fit"] and not plain["reused_fit"]
    assert styled["params"]["stylise"] is True and plain["params"]["stylise"] is False
    assert styled["accuracy"] == plain["accuracy"]
    assert not (tmp_path / "pending").exists()


def test_a_run_trained_before_an_interruption_only_needs_its_latency(capsys, tmp_path,
                                                                     monkeypatch):
    spec = RunSpec("shufflenet-v2", preset="smoke", device="auto")
    path = run_path(tmp_path, "synthetic", 4, "shufflenet-v2", 0)
    unit = Unit(spec, path, tmp_path)
    record, network = run_deferring_latency(spec)
    assert record["latency_ms"] is None
    unit.pending.parent.mkdir(parents=True)
    torch.save({"record": record, "network": network}, unit.pending)

    def no_training(*args, **kwargs):
        raise AssertionError("trained again")

    monkeypatch.setattr(bench.runner, "fit_run", no_training)
    code, out, _ = run_cli(capsys, "run", "--methods", "shufflenet-v2", "--preset", "smoke",
                           "--quiet", "--out", str(tmp_path))
    assert code == 0 and "shufflenet-v2 seed 0: accuracy" in out
    written = json.loads(path.read_text())
    assert written["accuracy"] == record["accuracy"] and written["latency_ms"] > 0
    assert not unit.pending.exists()


def test_a_pending_run_with_other_settings_is_trained_again(tmp_path):
    spec = RunSpec("shufflenet-v2", preset="smoke", device="auto")
    unit = Unit(spec, run_path(tmp_path, "synthetic", 4, "shufflenet-v2", 0), tmp_path)
    record, network = run_deferring_latency(RunSpec("shufflenet-v2", preset="smoke",
                                                    params={"epochs": 1}))
    unit.pending.parent.mkdir(parents=True)
    torch.save({"record": record, "network": network}, unit.pending)
    assert bench.runner.load_pending(unit) is None and not unit.pending.exists()
    unit.pending.write_bytes(b"not a checkpoint")
    assert bench.runner.load_pending(unit) is None


def test_an_error_in_a_worker_is_one_line(capsys, tmp_path):
    code, _, err = run_cli(capsys, "run", "--methods", "shufflenet-v2,ours-lem", "--preset",
                           "smoke", "--param", "lr=1e30", "--jobs", "2", "--quiet",
                           "--out", str(tmp_path))
    assert code == 2 and "the training loss became" in err and "Traceback" not in err
    assert not list(tmp_path.rglob("*.json"))


@pytest.mark.parametrize("value", ["0", "-1", "two"])
def test_malformed_jobs_are_refused(capsys, value):
    with pytest.raises(SystemExit) as exit_:
        main(["run", "--jobs", value])
    assert exit_.value.code == 2 and "--jobs" in capsys.readouterr().err


@pytest.mark.parametrize("preset, threads, expected", [
    ("smoke", None, 1),  # a worker takes longer to start than a smoke run
    ("paper", None, 1),  # a paper-preset run needs several GB
    ("quick", None, 4),  # one per usable CPU
    ("quick", 2, 2),  # never more jobs than threads
])
def test_auto_jobs(monkeypatch, preset, threads, expected):
    monkeypatch.setattr(bench.cli, "usable_cpus", lambda: 4)
    args = Namespace(jobs="auto", device="cpu", preset=preset, threads=threads)
    assert _job_count(args, units=list(range(13))) == expected
    assert _job_count(args, units=[0]) == 1  # never more jobs than runs
    args.jobs = 3
    assert _job_count(args, units=list(range(13))) == 3  # as asked
    assert _job_count(args, units=[0]) == 1


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_auto_jobs_on_cuda_is_one():
    args = Namespace(jobs="auto", device="cuda", preset="quick", threads=None)
    assert _job_count(args, units=list(range(13))) == 1


def test_expected_work_grows_with_flops_epochs_and_input_area():
    def work(method, **params):
        return expected_work(RunSpec(method, preset="quick", params=params))

    assert work("eac") > work("efficientnet-b0") > work("shufflenet-v2") > 0
    assert work("shufflenet-v2", epochs=20) == pytest.approx(2 * work("shufflenet-v2", epochs=10))
    assert work("shufflenet-v2", image_size=96) == pytest.approx(4 * work("shufflenet-v2",
                                                                          image_size=48))


@pytest.mark.parametrize("jobs", ["1", "2"])
def test_a_failed_run_is_reported_and_the_board_is_written_with_the_others(capsys, tmp_path, jobs):
    """The teacher's loss diverges: ``ours`` (its student) fails, ``shufflenet-v2`` does not."""
    code, out, err = run_cli(capsys, "run", "--methods", "shufflenet-v2,ours", "--preset", "smoke",
                             "--param", 'teacher_params={"lr": 1e30}', "--jobs", jobs, "--quiet",
                             "--out", str(tmp_path))
    assert code == 2 and "Traceback" not in err
    assert "bench: error: ours seed 0: the training loss became" in err
    assert "1 run(s) failed" in err
    assert [p.name for p in (tmp_path / "runs").glob("*.json")] == \
        ["synthetic-4-shufflenet-v2-seed0.json"]
    assert "shufflenet-v2" in (tmp_path / "synthetic-4.md").read_text()
    assert not (tmp_path / "pending").exists()
