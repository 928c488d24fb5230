"""Reliability, round two: results never replaced by other settings, outputs checked before any
training, odd files survived, and one-line errors where tracebacks were (docs/reliability.md)."""

from __future__ import annotations

import errno
import os
import warnings

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from bench.cli import main
from bench.data import load_dataset
from bench.errors import DatasetError
from bench.files import locked

SMOKE = ["run", "--dataset", "synthetic", "--classes", "4", "--preset", "smoke", "--epochs", "1",
         "--quiet"]


def run_cli(capsys, *argv):
    try:
        code = main(list(argv))
    except SystemExit as exit_:
        code = exit_.code
    out, err = capsys.readouterr()
    return code, out, err


def one_line_error(code, err, message):
    """Exit status 2 and the error on one line; warnings (e.g. that the machine is busy, which
    depends on what else runs) may precede it, one line each."""
    assert code == 2 and message in err, err
    lines = [line for line in err.strip().splitlines() if not line.startswith("bench: warning: ")]
    assert "Traceback" not in err and len(lines) == 1 and lines[0].startswith("bench: error: "), err


@pytest.fixture
def no_training(monkeypatch):
    """Make any training fail loudly: an error that comes first came before any work."""
    import bench.runner

    def refuse(*args, **kwargs):
        raise AssertionError("trained although the input was refused")

    monkeypatch.setattr(bench.runner, "fit_run", refuse)
    monkeypatch.setattr("bench.cli.stream_benchmark", refuse)


@pytest.fixture
def no_data(monkeypatch):
    """Make any data load fail loudly."""
    import bench.protocol

    def refuse(*args, **kwargs):
        raise AssertionError("loaded the data although the input was refused")

    monkeypatch.setattr(bench.protocol, "load_dataset", refuse)


def test_an_out_that_is_a_file_is_refused_before_training(capsys, tmp_path, no_training):
    (tmp_path / "out").write_text("not a folder")
    one_line_error(*run_cli(capsys, *SMOKE, "--methods", "shufflenet-v2", "--out",
                            str(tmp_path / "out"))[::2], "is a file; the output must be a folder")
    (tmp_path / "out2").mkdir()
    (tmp_path / "out2" / "runs").write_text("")
    one_line_error(*run_cli(capsys, *SMOKE, "--out", str(tmp_path / "out2"))[::2], "runs is a file")


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() == 0,
                    reason="root writes into read-only folders")
def test_a_read_only_out_is_refused_before_training(capsys, tmp_path, no_training):
    out = tmp_path / "ro"
    out.mkdir()
    out.chmod(0o555)
    try:
        one_line_error(*run_cli(capsys, *SMOKE, "--out", str(out))[::2], "cannot write to")
    finally:
        out.chmod(0o755)


def test_an_unwritable_out_is_refused_before_training(capsys, tmp_path, no_training, monkeypatch):
    """As a read-only mount or a full disk answers (also where the tests run as root)."""
    import bench.files

    def refused(*args, **kwargs):
        raise OSError(errno.EROFS, os.strerror(errno.EROFS))

    monkeypatch.setattr(bench.files.tempfile, "mkstemp", refused)
    code, _, err = run_cli(capsys, *SMOKE, "--out", str(tmp_path / "new" / "out"))
    one_line_error(code, err, "cannot write to")
    assert "Read-only file system" in err and not (tmp_path / "new").exists()


@pytest.mark.parametrize("command", [SMOKE, ["profile", "--methods", "shufflenet-v2"],
                                     ["leaderboard"]])
def test_an_empty_out_is_refused(capsys, command):
    code, _, err = run_cli(capsys, *command, "--out", "")
    assert code == 2 and "an empty path" in err


def test_a_full_disk_while_writing_a_record_keeps_the_other_runs(capsys, tmp_path, monkeypatch):
    import bench.records

    real = bench.records.atomic_write

    def full_for_one(path, data):
        if "shufflenet" in str(path):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real(path, data)

    monkeypatch.setattr(bench.records, "atomic_write", full_for_one)
    code, _, err = run_cli(capsys, *SMOKE, "--methods", "shufflenet-v2,ours-lem", "--out",
                           str(tmp_path))
    assert code == 2 and "No space left on device" in err and "Traceback" not in err
    assert [p.name for p in (tmp_path / "runs").glob("*.json")] == ["synthetic-4-ours-lem-seed0.json"]
    assert "ours-lem" in (tmp_path / "synthetic-4.md").read_text()


def test_threads_beyond_the_cpus_are_bounded(capsys, tmp_path, monkeypatch):
    monkeypatch.setattr("bench.cli.usable_cpus", lambda: 2)
    code, _, err = run_cli(capsys, *SMOKE, "--methods", "shufflenet-v2", "--threads", "1000",
                           "--out", str(tmp_path))
    assert code == 0 and "--threads 1000 is more than the 2 CPU(s)" in err and "using 2" in err


@pytest.mark.parametrize("seeds, message", [
    ("4294967296", "between 0 and 4294967295"),
    ("0-200000000", "names 200000001 splits; at most 1000"),
])
def test_seeds_out_of_range_are_one_line_errors(capsys, tmp_path, no_training, seeds, message):
    one_line_error(*run_cli(capsys, *SMOKE, "--seeds", seeds, "--out", str(tmp_path))[::2],
                   message)


@pytest.mark.parametrize("param, message", [
    ("batch_size=0", "'batch_size' parameter of ShuffleNetV2Classifier must be an int in the "
     "range [1, inf). Got 0"),
    ("lr=-1", "'lr' parameter"),
    ("image_size=0", "'image_size' parameter"),
    ('epochs="abc"', "'epochs' parameter"),
    ("optimizer=foo", "'optimizer' parameter of ShuffleNetV2Classifier must be a str among"),
])
def test_invalid_param_values_fail_before_the_data_is_loaded(capsys, tmp_path, no_data, param,
                                                            message):
    code, _, err = run_cli(capsys, *SMOKE, "--methods", "shufflenet-v2", "--param", param,
                           "--out", str(tmp_path))
    one_line_error(code, err, f"shufflenet-v2: The {message}")


@pytest.mark.parametrize("dataset", ["folder", "reed", "ckplus"])
def test_a_data_root_that_is_a_file(capsys, tmp_path, no_training, dataset):
    (tmp_path / "root").write_text("")
    code, _, err = run_cli(capsys, *SMOKE, "--dataset", dataset, "--data-root",
                           str(tmp_path / "root"), "--out", str(tmp_path / "out"))
    one_line_error(code, err, "is a file, not a folder. Expected layout")


def test_a_self_linked_subject_and_a_stray_file_are_named_and_skipped(folder_dataset):
    root = folder_dataset({f"s{i}": {"happy": 2, "angry": 2} for i in range(3)})
    (root / "loop").symlink_to(root / "loop")
    (root / "s0" / "stray.png").write_bytes(b"")
    with pytest.warns(UserWarning) as caught:
        data = load_dataset("folder", root, classes=4, cache=False)
    messages = " ".join(str(w.message) for w in caught)
    assert "loop: Too many levels of symbolic links" in messages
    assert "skipping 1 file(s) in" in messages and "where the layout has folders" in messages
    assert "e.g. stray.png" in messages
    assert len(data) == 12


def test_a_flat_folder_is_one_warning_and_an_error_that_says_flat(tmp_path):
    for i in range(30):  # e.g. JAFFE's images given as --dataset folder
        Image.new("L", (8, 8)).save(tmp_path / f"KA.AN{i}.tiff")
    with pytest.warns(UserWarning) as caught, \
            pytest.raises(DatasetError, match="its 30 images lie directly in it.*--dataset jaffe"):
        load_dataset("folder", tmp_path, classes=4, cache=False)
    strays = [w for w in caught if "where the layout has folders" in str(w.message)]
    assert len(strays) == 1 and "skipping 30 file(s)" in str(strays[0].message)


def test_exif_orientation_is_applied(tmp_path):
    from bench.data.images import read_image

    pixels = np.zeros((20, 40, 3), np.uint8)
    pixels[:, :20] = 255  # left half white, stored as the sensor saw it
    image = Image.fromarray(pixels)
    exif = image.getexif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise to view
    image.save(tmp_path / "photo.jpg", exif=exif)
    shown = read_image(tmp_path / "photo.jpg")
    assert shown.shape[:2] == (40, 20)  # portrait, as a viewer shows it
    assert shown[:15].mean() > 200 and shown[25:].mean() < 50  # the white half is on top


def test_profile_adds_rows_instead_of_replacing_the_file(capsys, tmp_path, monkeypatch):
    # an idle machine: under outside load the second call would time with fewer threads, a
    # measurement of its own (another latency_device) that rightly keeps the first call's row
    monkeypatch.setattr("bench.profile_command.cpus_busy", lambda *args, **kwargs: 0.0)
    base = ["profile", "--min-time", "0.01", "--batch-sizes", "1", "--profile-size", "32",
            "--out", str(tmp_path)]
    assert run_cli(capsys, *base, "--methods", "shufflenet-v2,ours-lem")[0] == 0
    code, out, _ = run_cli(capsys, *base, "--methods", "shufflenet-v2")
    table = pd.read_csv(tmp_path / "profile.csv")
    assert code == 0 and "1 row(s) of other measurements kept" in out
    assert sorted(table["method"]) == ["ours-lem", "shufflenet-v2"]


def test_profile_out_of_memory_is_one_line(capsys, tmp_path, monkeypatch):
    def oom(*args, **kwargs):
        raise RuntimeError("DefaultCPUAllocator: can't allocate memory: you tried to allocate "
                           "60211200000 bytes")

    monkeypatch.setattr("bench.profile_command.measure_latency", oom)
    code, _, err = run_cli(capsys, "profile", "--methods", "shufflenet-v2", "--batch-sizes",
                           "1,100000", "--out", str(tmp_path))
    one_line_error(code, err, "out of memory at batch 100000")


@pytest.mark.parametrize("content", [b"\xff\xfe\x00garbage", b"a,b\n1,2\n"])
def test_a_damaged_stream_table_is_found_before_training(capsys, tmp_path, no_training, content):
    (tmp_path / "stream-synthetic-4.csv").write_bytes(content)
    code, _, err = run_cli(capsys, "stream", "--method", "emo", "--preset", "smoke", "--out",
                           str(tmp_path))
    one_line_error(code, err, "stream-synthetic-4.csv")


def test_a_run_in_progress_is_not_disturbed_by_another_on_the_same_out(capsys, tmp_path,
                                                                       no_training):
    (tmp_path / "checkpoints").mkdir()
    lock = tmp_path / "checkpoints" / "synthetic-4-shufflenet-v2-seed0.lock"
    kept = tmp_path / "checkpoints" / "synthetic-4-shufflenet-v2-seed0"
    kept.mkdir()
    with locked([lock]):  # as a first `bench run` holds it while it trains
        code, _, err = run_cli(capsys, *SMOKE, "--methods", "shufflenet-v2", "--force", "--out",
                               str(tmp_path))
    one_line_error(code, err, f"process {os.getpid()} is working on a run in {tmp_path}")
    assert kept.is_dir()  # the other run's checkpoints are untouched



def test_the_cli_shows_a_data_warning_as_one_line_before_its_error(capsys, tmp_path):
    for i in range(3):
        Image.new("L", (8, 8)).save(tmp_path / f"KA.AN{i}.tiff")
    code, _, err = run_cli(capsys, *SMOKE[:2], "folder", *SMOKE[3:], "--data-root", str(tmp_path),
                           "--out", str(tmp_path / "out"))
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 2, err
    assert lines[0].startswith(f"bench: warning: skipping 3 file(s) in {tmp_path} where the layout")
    assert lines[1].startswith("bench: error: ") and "--dataset jaffe" in lines[1]


def test_another_librarys_warning_keeps_its_source_on_one_line(capsys):
    from bench.cli import _one_line_warnings

    with _one_line_warnings(), warnings.catch_warnings():
        warnings.simplefilter("always")
        warnings.warn_explicit("deprecated thing", FutureWarning, "/elsewhere/lib.py", 7)
    assert capsys.readouterr().err == ("bench: warning: FutureWarning from /elsewhere/lib.py:7: "
                                       "deprecated thing\n")


def test_dask_workers_keep_quiet_about_data_warnings_the_caller_showed(monkeypatch):
    from bench import runner
    from bench.errors import DataWarning

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        monkeypatch.setattr(runner, "_worker_address", lambda: None)
        runner._settle(None)  # the caller: shown
        warnings.warn("skipping 1 file(s)", DataWarning, stacklevel=1)
        monkeypatch.setattr(runner, "_worker_address", lambda: "tcp://127.0.0.1:1")
        runner._settle(None)  # a worker: quiet, other warnings still shown
        warnings.warn("skipping 1 file(s)", DataWarning, stacklevel=1)
        warnings.warn("something else", UserWarning, stacklevel=1)
    assert [str(w.message) for w in caught] == ["skipping 1 file(s)", "something else"]
