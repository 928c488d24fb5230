"""Nothing lost: a run killed with SIGKILL mid-training resumes from its last epoch when the same
command runs again, and finishes with the same result as an uninterrupted run."""

from __future__ import annotations

import errno
import json
import os
import signal
import subprocess
import sys
import time

import pandas as pd
import pytest
import torch

from bench.checkpoint import checkpointing, load_checkpoint

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="needs SIGKILL")

EPOCHS = 8


def command(out):
    return [sys.executable, "-m", "bench", "run", "--dataset", "synthetic", "--classes", "4",
            "--methods", "shufflenet-v2", "--preset", "smoke", "--epochs", str(EPOCHS),
            "--seeds", "0", "--out", str(out), "--quiet", "--checkpoint-every", "0"]


def test_sigkill_mid_training_then_rerun_resumes_and_completes(tmp_path):
    out = tmp_path / "killed"
    proc = subprocess.Popen(command(out), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 300
    while not list((out / "checkpoints").rglob("*.pt")):
        assert proc.poll() is None, "the run ended before its first checkpoint"
        assert time.monotonic() < deadline, "no checkpoint within 5 minutes"
        time.sleep(0.02)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    (checkpoint,) = (out / "checkpoints").rglob("*.pt")
    killed_at = load_checkpoint(checkpoint)["epoch"]
    assert killed_at < EPOCHS and not list((out / "runs").glob("*.json"))

    rerun = subprocess.run(command(out), capture_output=True, text=True, timeout=600)
    assert rerun.returncode == 0, rerun.stderr
    assert f"resuming after epoch {killed_at} of {EPOCHS}" in rerun.stderr
    (record_file,) = (out / "runs").glob("*.json")
    record = json.loads(record_file.read_text())
    assert [h["epoch"] for h in record["history"]] == list(range(1, EPOCHS + 1))
    table = pd.read_csv(out / "synthetic-4.csv")
    assert list(table["method"]) == ["shufflenet-v2"] and table.loc[0, "n_seeds"] == 1
    assert not (out / "checkpoints").exists()
    assert not [p for p in out.rglob("*") if p.name.endswith(".tmp")]

    clean = subprocess.run(command(tmp_path / "clean"), capture_output=True, text=True,
                           timeout=600)
    assert clean.returncode == 0, clean.stderr
    uninterrupted = json.loads(next((tmp_path / "clean" / "runs").glob("*.json")).read_text())
    for key in ("accuracy", "macro_f1", "best_epoch"):
        assert record[key] == uninterrupted[key]


@pytest.mark.parametrize("damage", [
    lambda path: path.write_bytes(b"half a file"),
    lambda path: torch.save({"epoch": 3}, path),  # loads, but is not a whole checkpoint
    lambda path: torch.save([1, 2, 3], path),
], ids=["truncated", "keys-missing", "not-a-dict"])
def test_a_damaged_checkpoint_starts_the_training_afresh(tmp_path, tiny_synthetic, damage):
    from bench import get_estimator

    from .conftest import TINY

    d = tiny_synthetic
    with checkpointing(tmp_path):
        first = get_estimator("shufflenet-v2", **TINY).fit(d.images, d.label_names, d.subjects)
        (saved,) = tmp_path.glob("*.pt")
        damage(saved)
        with pytest.warns(UserWarning, match="ignoring the checkpoint .*starts afresh"):
            again = get_estimator("shufflenet-v2", **TINY).fit(d.images, d.label_names, d.subjects)
    assert again.history_[0]["train_loss"] == first.history_[0]["train_loss"]


def test_a_checkpoint_that_cannot_be_written_does_not_end_the_training(tmp_path, tiny_synthetic,
                                                                      monkeypatch):
    from bench import checkpoint, get_estimator

    from .conftest import TINY

    def disk_full(path, data):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(checkpoint, "atomic_write", disk_full)
    d = tiny_synthetic
    with checkpointing(tmp_path), pytest.warns(UserWarning, match="No space left on device"):
        est = get_estimator("shufflenet-v2", **TINY).fit(d.images, d.label_names, d.subjects)
    assert len(est.history_) == TINY["epochs"] and not list(tmp_path.glob("*.pt"))


def test_a_finished_checkpoint_is_reused_without_training(tmp_path, tiny_synthetic, capfd):
    from bench import get_estimator

    from .conftest import TINY

    d = tiny_synthetic
    with checkpointing(tmp_path):
        first = get_estimator("shufflenet-v2", **TINY).fit(d.images, d.label_names, d.subjects)
        again = get_estimator("shufflenet-v2", **TINY).fit(d.images, d.label_names, d.subjects)
    assert "resuming after epoch 1 of 1" in capfd.readouterr().err
    assert again.history_ == first.history_
    other = get_estimator("shufflenet-v2", **{**TINY, "lr": 0.5})
    with checkpointing(tmp_path):  # other settings: another key, trained afresh
        other.fit(d.images, d.label_names, d.subjects)
    assert len(list(tmp_path.glob("*.pt"))) == 2


def test_checkpoints_wait_for_the_interval(tmp_path, tiny_synthetic):
    from bench import get_estimator

    from .conftest import TINY

    d = tiny_synthetic
    with checkpointing(tmp_path / "hourly", every=3600):
        get_estimator("shufflenet-v2", **TINY).fit(d.images, d.label_names, d.subjects)
    with checkpointing(tmp_path / "each", every=0):
        get_estimator("shufflenet-v2", **TINY).fit(d.images, d.label_names, d.subjects)
    assert not (tmp_path / "hourly").exists()
    assert len(list((tmp_path / "each").glob("*.pt"))) == 1
    with pytest.raises(ValueError, match="every"):
        with checkpointing(tmp_path, every=-1):
            pass


def test_ctrl_c_in_a_parallel_run_stops_the_workers_and_a_rerun_completes(tmp_path):
    out = tmp_path / "parallel"
    argv = command(out)
    argv[argv.index("shufflenet-v2")] = "shufflenet-v2,ours-lem"
    argv += ["--jobs", "2"]
    # its own process group, to see that no worker outlives it; SIGINT as a terminal sends it
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    deadline = time.monotonic() + 300
    while not list((out / "checkpoints").rglob("*.pt")):
        assert proc.poll() is None, "the run ended before its first checkpoint"
        assert time.monotonic() < deadline, "no checkpoint within 5 minutes"
        time.sleep(0.02)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130 and "bench: interrupted" in err
    assert "Traceback" not in err and "leaked" not in err
    assert not list((out / "runs").glob("*.json"))
    deadline = time.monotonic() + 30
    while True:  # the workers (and multiprocessing's resource tracker) are gone
        try:
            os.killpg(proc.pid, 0)
        except ProcessLookupError:
            break
        assert time.monotonic() < deadline, "worker processes outlived the interrupted run"
        time.sleep(0.1)

    rerun = subprocess.run(argv, capture_output=True, text=True, timeout=600)
    assert rerun.returncode == 0, rerun.stderr
    assert len(list((out / "runs").glob("*.json"))) == 2
    assert not (out / "checkpoints").exists() and not (out / "pending").exists()
