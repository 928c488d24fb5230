"""Runs on a Dask cluster: the Python API with a client, a worker killed mid-run, the CLI against
a scheduler started here, and the errors a user gets before any work."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
import warnings

import dask
import pytest
from distributed import Client, LocalCluster

from bench import RunSpec, evaluate, run_grid
from bench.cli import main
from bench.cluster import check_workers
from bench.errors import BenchError
from bench.records import run_path
from bench.runner import (
    Unit,
    _settle,
    _WarningRelay,
    busy_summary,
    expected_work,
    fit_task,
    plan,
    run_on_dask,
)

SMOKE = {"preset": "smoke", "latency": False, "dataset_options": {"n_subjects": 6, "frames": 4}}


@pytest.fixture(scope="module")
def cluster():
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None,
                      host="127.0.0.1") as cluster:
        yield cluster


@pytest.fixture
def client(cluster):
    with Client(cluster, set_as_default=False) as client:
        yield client


def comparable(record: dict) -> dict:
    return {k: record[k] for k in ("method", "seed", "accuracy", "macro_f1", "confusion_matrix",
                                   "best_epoch", "reused_fit", "params_m", "mflops")}


def test_a_grid_on_dask_gives_the_records_of_an_in_process_run(client):
    """One teacher and two students (``ours`` learns from it, ``ldgn`` is it)."""
    specs = [RunSpec(m, seed=0, params={"epochs": 1}, **SMOKE)
             for m in ("shufflenet-v2", "ours", "ldgn")]
    on_dask = run_grid(specs, client=client)
    here = run_grid(specs)
    assert [comparable(r) for r in on_dask] == [comparable(r) for r in here]
    assert on_dask[2]["reused_fit"] and on_dask[2]["execution"]["fit_task"] == \
        on_dask[1]["execution"]["teacher_task"]
    assert {r["execution"]["executor"] for r in on_dask} == {"dask"}


def test_evaluate_takes_a_client(client):
    records = evaluate("shufflenet-v2", seeds=[0, 1], client=client, params={"epochs": 1}, **SMOKE)
    assert [r["seed"] for r in records] == [0, 1]
    assert [comparable(r) for r in records] == [
        comparable(r) for r in evaluate("shufflenet-v2", seeds=[0, 1], params={"epochs": 1},
                                        **SMOKE)]


def test_a_run_whose_worker_dies_is_retried_and_every_record_is_whole(tmp_path):
    specs = [RunSpec(m, seed=s, params={"epochs": 3}, **SMOKE)
             for s in (0, 1) for m in ("shufflenet-v2", "ours-lem")]
    units = [Unit(spec, run_path(tmp_path, "synthetic", 4, spec.method, spec.seed), tmp_path)
             for spec in specs]
    killed = []
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None,
                      host="127.0.0.1") as cluster, Client(cluster, set_as_default=False) as client:
        pids = client.run(os.getpid)

        def kill_a_busy_worker():
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline and not killed:
                for address, tasks in client.processing().items():
                    if any(str(t).startswith("fit-") for t in tasks) and address in pids:
                        time.sleep(0.5)  # in the middle of its training
                        os.kill(pids[address], signal.SIGKILL)
                        killed.append(address)
                        return
                time.sleep(0.05)

        killer = threading.Thread(target=kill_a_busy_worker)
        killer.start()
        records = run_on_dask(client, plan(units), threads=1)
        killer.join()
    assert killed, "no worker was killed: the test did not test anything"
    assert len(records) == len(units)
    for unit in units:
        record = json.loads(unit.path.read_text())  # valid JSON, written once, whole
        assert record["accuracy"] is not None and record["latency_ms"] is None  # latency off
    assert not list(tmp_path.rglob("*.tmp")) and not (tmp_path / "pending").exists()


def test_the_cli_sends_runs_to_a_scheduler(cluster, capsys, tmp_path):
    code = main(["run", "--methods", "shufflenet-v2,ours", "--preset", "smoke", "--quiet",
                 "--scheduler", cluster.scheduler_address, "--out", str(tmp_path)])
    out, err = capsys.readouterr()
    assert code == 0, err
    assert f"the Dask scheduler {cluster.scheduler_address} (2 workers)" in out
    assert "timed the latency of 2 network(s)" in out
    assert "on 2 slot(s), which computed" in out and "busy" in out
    assert (tmp_path / "synthetic-4.md").exists()
    record = json.loads((tmp_path / "runs" / "synthetic-4-ours-seed0.json").read_text())
    assert record["execution"]["scheduler"] == cluster.scheduler_address
    assert record["latency_ms"] > 0


def test_the_scheduler_address_can_come_from_the_environment(cluster, capsys, tmp_path,
                                                              monkeypatch):
    monkeypatch.setenv("BENCH_SCHEDULER", cluster.scheduler_address)
    code = main(["run", "--methods", "shufflenet-v2", "--preset", "smoke", "--quiet",
                 "--out", str(tmp_path)])
    assert code == 0 and "the Dask scheduler" in capsys.readouterr().out


def test_a_scheduler_without_workers_is_one_line_and_announces_no_training(capsys, tmp_path):
    with LocalCluster(n_workers=0, processes=False, dashboard_address=None) as empty:
        code = main(["run", "--methods", "shufflenet-v2", "--preset", "smoke", "--quiet",
                     "--scheduler", empty.scheduler_address, "--out", str(tmp_path)])
    out, err = capsys.readouterr()
    assert code == 2 and "has no workers; start some with `dask worker" in err
    assert "run(s) on the Dask scheduler" not in out and "Traceback" not in err


def test_an_unreachable_scheduler_is_one_line(capsys, tmp_path):
    with dask.config.set({"distributed.comm.timeouts.connect": "2s"}):
        code = main(["run", "--methods", "shufflenet-v2", "--preset", "smoke", "--quiet",
                     "--scheduler", "tcp://127.0.0.1:9", "--out", str(tmp_path)])
    _, err = capsys.readouterr()
    assert code == 2 and "cannot reach the Dask scheduler at tcp://127.0.0.1:9" in err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "runs").exists()


def test_a_server_that_is_not_a_scheduler_is_one_line_not_a_hang(cluster, capsys, tmp_path):
    """A client's handshake with a port that accepts but never answers (a dashboard's, say)
    would wait forever; a worker's address answers, as a worker."""
    import socket

    silent = socket.create_server(("127.0.0.1", 0))  # accepts (backlog), never answers
    address = f"tcp://127.0.0.1:{silent.getsockname()[1]}"
    worker = next(iter(cluster.scheduler_info["workers"]))
    try:
        with dask.config.set({"distributed.comm.timeouts.connect": "2s"}):
            for given, said in [(address, f"cannot reach the Dask scheduler at {address} "
                                          "(no answer within 2 s)"),
                                (address.removeprefix("tcp://"), f"at {address} (no answer"),
                                (worker, f"{worker} is a Dask Worker, not a scheduler"),
                                ("foo://x", "Dask has no protocol 'foo'; its addresses start "
                                            "with inproc://")]:
                code = main(["run", "--methods", "shufflenet-v2", "--preset", "smoke", "--quiet",
                             "--scheduler", given, "--out", str(tmp_path)])
                _, err = capsys.readouterr()
                assert code == 2 and said in err and len(err.strip().splitlines()) == 1
    finally:
        silent.close()
    assert not (tmp_path / "runs").exists()


def test_a_worker_that_cannot_read_the_data_is_named_before_any_work(client, tmp_path):
    spec = RunSpec("shufflenet-v2", "folder", 4, 0, root=str(tmp_path / "nowhere"), preset="smoke")
    with pytest.raises(BenchError, match="Dask worker tcp://.* cannot read the data: data root"):
        check_workers(client, [Unit(spec)])


def test_a_warning_raised_on_a_worker_is_shown_by_the_caller_once_naming_its_run(client):
    """Eyemotion scoring subjects without calibration neutrals warns in its score task (and in
    the score before calibration): the caller shows it once, naming the run, in its own format."""
    spec = RunSpec("eyemotion", seed=0, calibration_share=0.0, params={"epochs": 1}, **SMOKE)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        run_grid([spec], client=client)
    assert [str(w.message) for w in caught] == [
        "eyemotion seed 0: Eyemotion: 2 subject(s) without calibration neutrals use the training "
        "set's mean neutral image"]


def test_the_caller_shows_only_its_own_grids_warnings(client):
    def warn():
        _settle(None)
        warnings.warn("from a task", RuntimeWarning, stacklevel=1)

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with _WarningRelay(client, "mine", {"fit-x-mine": "x seed 0"}):
            client.submit(warn, key="fit-x-mine").result()
            client.submit(warn, key="fit-y-other").result()
            client.submit(warn, key="latency-y-seed1-mine").result()
    assert sorted((str(w.message), w.category.__name__) for w in caught) == [
        ("x seed 0: from a task", "RuntimeWarning"), ("y-seed1: from a task", "RuntimeWarning")]


def test_cuda_runs_need_a_worker_with_a_gpu_resource(client):
    spec = RunSpec("shufflenet-v2", preset="smoke", device="cuda")
    with pytest.raises(BenchError, match="--resources GPU=1"):
        check_workers(client, [Unit(spec)])


def test_cuda_runs_can_be_sent_from_a_machine_without_cuda(cluster, capsys, tmp_path):
    """The workers resolve the device: a client without a GPU is refused only because no
    worker offers one, and a name that is no device at all is refused here, at once."""
    for device, said in [("cuda", "--resources GPU=1"), ("cuda:1", "--resources GPU=1"),
                         ("gpu", "unknown device 'gpu'")]:
        code = main(["run", "--methods", "shufflenet-v2", "--preset", "smoke", "--quiet",
                     "--scheduler", cluster.scheduler_address, "--device", device,
                     "--out", str(tmp_path)])
        _, err = capsys.readouterr()
        assert code == 2 and said in err and "CUDA is not available here" not in err, err
    assert not (tmp_path / "runs").exists()


def test_sigterm_stops_the_workers_and_keeps_what_finished(tmp_path):
    """``kill PID`` (as a batch system does at its time limit) is handled as Ctrl-C."""
    psutil = pytest.importorskip("psutil")
    command = [sys.executable, "-m", "bench.cli", "run", "--methods", "shufflenet-v2,ours-lem",
               "--preset", "smoke", "--epochs", "40", "--quiet", "--jobs", "2", "--out",
               str(tmp_path)]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    for line in process.stdout:
        if "run(s) on a Dask LocalCluster" in line:
            break
    time.sleep(3)  # training
    workers = psutil.Process(process.pid).children(recursive=True)
    assert workers
    process.send_signal(signal.SIGTERM)
    _, err = process.communicate(timeout=120)
    assert process.returncode == 143 and "interrupted" in err and "Traceback" not in err
    psutil.wait_procs(workers, timeout=30)
    assert not [w for w in workers if w.is_running() and w.status() != psutil.STATUS_ZOMBIE]
    assert not list((tmp_path / "runs").glob("*.json"))  # nothing had finished


class CountingClient:
    """A client that counts the fits it was asked to send and how many were unfinished at once."""

    def __init__(self, client):
        self._client, self.fits, self.most_at_once = client, [], 0

    def __getattr__(self, name):
        return getattr(self._client, name)

    def submit(self, function, *args, **kwargs):
        future = self._client.submit(function, *args, **kwargs)
        if function is fit_task:
            self.fits.append((kwargs["key"], future))
            self.most_at_once = max(self.most_at_once, sum(not f.done() for _, f in self.fits))
        return future


def test_fits_are_sent_while_a_worker_is_free_largest_first(client):
    """Fits sent all at once queued on a busy worker while another stood idle; sent one per free
    slot, each lands on the idle worker."""
    specs = [RunSpec(m, seed=0, params={"epochs": 1}, **SMOKE)
             for m in ("shufflenet-v2", "ours-lem", "emo", "efficientnet-b0")]
    counting = CountingClient(client)
    records = run_on_dask(counting, plan([Unit(spec) for spec in specs]), threads=1)
    assert [r["method"] for r in records] == [s.method for s in specs]
    assert counting.most_at_once <= 2 and len(counting.fits) == 4  # two workers
    sent = [key.split("-synthetic")[0].removeprefix("fit-") for key, _ in counting.fits]
    work = {s.method: expected_work(s) for s in specs}
    assert sent == sorted(work, key=lambda m: -work[m])


def test_the_busy_share_counts_this_grids_computing_only():
    """Transfers and another client's tasks (whatever their keys) are not this grid's work."""
    stream = [{"key": "fit-a-abc123", "startstops": [{"action": "compute", "start": 0, "stop": 30},
                                                     {"action": "transfer", "start": 30, "stop": 35}]},
              {"key": "fit-b-zzz999", "startstops": [{"action": "compute", "start": 0, "stop": 40}]},
              {"key": ("x", 0), "startstops": [{"action": "compute", "start": 0, "stop": 40}]},
              {"key": "score-a-abc123", "startstops": [{"action": "compute", "start": 30, "stop": 45}]}]
    line = busy_summary(stream, "abc123", slots=2, wall=50)
    assert "took 50 s on 2 slot(s), which computed 45 s" in line and "busy 45%" in line
    # a worker lost while training: the share is of the most slots there were, said as such
    line = busy_summary(stream, "abc123", slots=2, wall=50, slots_at_end=1)
    assert "on 2 slot(s), 1 at the end, which computed 45 s" in line and "busy 45%" in line


def test_a_run_trained_before_an_interruption_is_timed_on_the_cluster(cluster, capsys, tmp_path):
    """Resuming against a scheduler: the kept network is scattered to a worker and timed there,
    never sent inside a task's graph (Dask warns of graphs over 10 MB: an EfficientNet's is)."""
    import torch

    from bench.protocol import run_deferring_latency
    from bench.records import run_path

    spec = RunSpec("shufflenet-v2", preset="smoke", device="auto")
    path = run_path(tmp_path, "synthetic", 4, "shufflenet-v2", 0)
    unit = Unit(spec, path, tmp_path)
    record, network = run_deferring_latency(spec)
    unit.pending.parent.mkdir(parents=True)
    torch.save({"record": record, "network": network}, unit.pending)
    with dask.config.set({"distributed.admin.large-graph-warning-threshold": "1MB"}):
        # ShuffleNet's 5 MB would be a large graph now
        code = main(["run", "--methods", "shufflenet-v2", "--preset", "smoke", "--quiet",
                     "--scheduler", cluster.scheduler_address, "--out", str(tmp_path)])
    out, err = capsys.readouterr()
    assert code == 0, err
    assert "timed the latency of 1 network(s)" in out
    assert "large graph" not in err
    written = json.loads(path.read_text())
    assert written["accuracy"] == record["accuracy"] and written["latency_ms"] > 0
    assert written["execution"]["latency_worker"] in cluster.scheduler_info["workers"]
    assert not unit.pending.exists()
