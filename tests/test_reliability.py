"""The bad-input catalogue cases not covered by the dataset and CLI tests, and loader fuzzing.

Each mistake ends in a one-line message and exit status 2 (no traceback, no result written), or
in a documented, reported handling (docs/reliability.md lists them all).
"""

from __future__ import annotations

import io
import string
import warnings

import numpy as np
import pandas as pd
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bench import evaluate
from bench.cli import main
from bench.data import load_dataset
from bench.errors import BenchError

from .conftest import random_face, write_image


def run_cli(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_a_loss_that_becomes_nan_stops_the_run_and_writes_nothing(capsys, tmp_path):
    code, _, err = run_cli(capsys, "run", "--methods", "shufflenet-v2", "--preset", "smoke",
                           "--param", "lr=1e30", "--out", str(tmp_path), "--quiet")
    assert code == 2 and "the training loss became" in err and "lower the learning rate" in err
    assert "Traceback" not in err and not list(tmp_path.rglob("*.json"))


def test_cuda_out_of_memory_suggests_a_smaller_batch(capsys, tmp_path, monkeypatch):
    import bench.runner

    def oom(*args, **kwargs):
        raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")

    monkeypatch.setattr(bench.runner, "fit_run", oom)
    code, _, err = run_cli(capsys, "run", "--methods", "shufflenet-v2", "--preset", "smoke",
                           "--out", str(tmp_path))
    assert code == 2 and "smaller batch" in err and "Traceback" not in err


def test_strict_refuses_unreadable_files_that_are_otherwise_skipped(capsys, tmp_path,
                                                                    folder_dataset):
    layout = {f"s{i}": {"happy": 3, "angry": 3, "surprise": 3, "neutral": 3} for i in range(6)}
    root = folder_dataset(layout)
    (root / "s0" / "happy" / "9.png").write_bytes(b"")
    args = ["run", "--dataset", "folder", "--data-root", str(root), "--methods",
            "shufflenet-v2", "--preset", "smoke", "--out", str(tmp_path / "out"), "--quiet"]
    code, _, err = run_cli(capsys, *args, "--strict")
    assert code == 2 and "1 unreadable image(s) and --strict" in err and "9.png" in err
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        code, _, err = run_cli(capsys, *args)
    assert code == 0
    board = tmp_path / "out" / "data-4.md"  # a folder dataset's board is named after its folder
    assert "Unreadable image files, skipped: 1" in board.read_text()


def test_a_class_absent_from_the_training_split_is_reported(folder_dataset):
    layout = {f"s{i}": {"happy": 3, "angry": 3, "neutral": 3} for i in range(6)}
    layout["s0"]["surprise"] = 3  # one subject only: missing from whichever parts it is not in
    root = folder_dataset(layout)
    with pytest.warns(UserWarning, match="no (train|test) image of surprise"):
        record = evaluate("shufflenet-v2", "folder", 4, seeds=[0], root=root, preset="smoke",
                          latency=False)[0]
    assert "surprise" in sum(record["missing_classes"].values(), [])
    assert len(record["class_names"]) == 4  # the class stays an output and a table column


def test_a_class_absent_from_the_whole_dataset_is_reported_once(folder_dataset):
    root = folder_dataset({f"s{i}": {"happy": 3, "angry": 3, "neutral": 3} for i in range(6)})
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("default")
        records = evaluate("shufflenet-v2", "folder", 4, seeds=[0, 1], root=root,
                           preset="smoke", latency=False)
    messages = [str(w.message) for w in caught if "surprise" in str(w.message)]
    assert messages == ["folder: no image of surprise at all; the runs go on and their records "
                        "list it (missing_classes)"]
    assert all(r["missing_classes"] == {"train": ["surprise"], "test": ["surprise"]}
               for r in records)


@pytest.mark.parametrize("argv, message", [
    (["run", "--label-noise", "1.5"], "must be at least 0 and below 1"),
    (["run", "--threads", "0"], "must be at least 1"),
    (["profile", "--batch-sizes", "32"], "expected 1 or 1,N"),
    (["run", "--methods", "shufflenet-v2,nope"], "unknown method"),
])
def test_more_malformed_options(capsys, argv, message):
    try:
        code = main(argv)
    except SystemExit as exit_:
        code = exit_.code
    err = capsys.readouterr().err
    assert code == 2 and message in err and "Traceback" not in err


# ---------------------------------------------------------------------------------- fuzzing
FUZZ = settings(max_examples=40, deadline=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture,
                                       HealthCheck.too_slow])


def _loads_or_fails_cleanly(name, root, **kwargs):
    """The only outcomes allowed: a dataset, or a BenchError (which the CLI prints in a line)."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            data = load_dataset(name, root, cache=False, **kwargs)
    except BenchError as err:
        assert str(err) and "\n" not in str(err).strip()
        return None
    assert data.images.dtype == np.uint8 and len(data) == len(data.labels) > 0
    return data


@FUZZ
@given(blobs=st.lists(st.binary(max_size=300), min_size=1, max_size=4))
def test_random_bytes_as_image_files(tmp_path_factory, blobs):
    root = tmp_path_factory.mktemp("bytes")
    write_image(root / "s1" / "happy" / "good.png", random_face(np.random.default_rng(0)))
    for i, blob in enumerate(blobs):
        (root / "s1" / "happy" / f"fuzz{i}.png").write_bytes(blob)
    data = _loads_or_fails_cleanly("folder", root, classes=4, image_size=16)
    assert data is not None and len(data) >= 1  # the good image always survives


@FUZZ
@given(names=st.lists(st.text(alphabet=string.ascii_letters + string.digits + " -_.",
                              min_size=1, max_size=12), min_size=1, max_size=3))
def test_random_folder_names(tmp_path_factory, names):
    root = tmp_path_factory.mktemp("names")
    for name in names:
        if name.strip(" .") and name not in (".", ".."):
            write_image(root / "s1" / name / "0.png", random_face(np.random.default_rng(1)))
    _loads_or_fails_cleanly("folder", root, classes=7, image_size=16)


_CELL = st.text(alphabet=string.printable, max_size=20)


@FUZZ
@given(rows=st.lists(st.tuples(_CELL, _CELL, _CELL), min_size=1, max_size=5),
       good=st.booleans())
def test_random_fer2013_rows(tmp_path_factory, rows, good):
    root = tmp_path_factory.mktemp("fer")
    frame = pd.DataFrame(rows, columns=["emotion", "pixels", "Usage"])
    if good:  # one well-formed row among the random ones
        frame.loc[len(frame)] = ["3", " ".join(["128"] * 48 * 48), "Training"]
    buffer = io.StringIO()
    frame.to_csv(buffer, index=False)
    (root / "fer2013.csv").write_text(buffer.getvalue())
    _loads_or_fails_cleanly("fer2013", root, classes=7)


@FUZZ
@given(lines=st.lists(st.text(alphabet=string.printable.replace("\x0b", "").replace("\x0c", ""),
                              max_size=30), min_size=1, max_size=5))
def test_random_rafdb_label_lines(tmp_path_factory, lines):
    root = tmp_path_factory.mktemp("raf")
    (root / "EmoLabel").mkdir()
    (root / "Image" / "aligned").mkdir(parents=True)
    write_image(root / "Image" / "aligned" / "train_00001_aligned.jpg",
                random_face(np.random.default_rng(2), (16, 16), 3))
    (root / "EmoLabel" / "list_patition_label.txt").write_text(
        "\n".join(["train_00001.jpg 4", *lines]) + "\n")
    _loads_or_fails_cleanly("rafdb", root, classes=7)
