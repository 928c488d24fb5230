"""Pictures drawn from the records: each PNG opens, has the expected size and is not blank."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from bench.cli import main
from bench.leaderboard import write_leaderboard
from bench.plots import pareto_front
from bench.records import write_record

from .test_leaderboard import record


def is_a_picture(path, min_size=(400, 200)) -> None:
    with Image.open(path) as image:
        assert image.format == "PNG" and image.size[0] >= min_size[0] and image.size[1] >= min_size[1]
        pixels = np.asarray(image.convert("L"), dtype=float)
    assert pixels.std() > 5, f"{path} is blank"


def test_pareto_front_keeps_the_points_nothing_beats():
    cost = np.array([1.0, 2.0, 3.0, 4.0, 0.5])
    accuracy = np.array([0.5, 0.7, 0.6, 0.9, 0.4])
    assert pareto_front(cost, accuracy).tolist() == [4, 0, 1, 3]


def test_a_board_draws_accuracy_against_cost(tmp_path):
    for method, acc, latency, teacher in (("shufflenet-v2", 0.5, 10.0, None),
                                          ("ours", 0.6, 12.0, {"val_accuracy": 0.6}),
                                          ("eyemotion", 0.55, 90.0, None)):
        for seed in (0, 1):
            write_record(tmp_path, {**record(method, seed=seed, accuracy=acc + 0.01 * seed),
                                    "latency_ms": latency, "teacher": teacher,
                                    "calibration": method == "eyemotion"})
    _, markdown = write_leaderboard(tmp_path, "synthetic", 4)
    assert "![Accuracy against latency and MFLOPs](synthetic-4-pareto.png)" in markdown
    is_a_picture(tmp_path / "synthetic-4-pareto.png", (1000, 400))


def test_plot_curves_draws_every_method_of_every_board(tmp_path, capsys):
    history = [{"epoch": e, "train_loss": 1.5 / e, "val_accuracy": 0.3 + 0.05 * e,
                "val_macro_f1": 0.2 + 0.05 * e} for e in range(1, 6)]
    for method in ("shufflenet-v2", "ours"):
        for seed in (0, 1):
            write_record(tmp_path, {**record(method, seed=seed), "history": history,
                                    "best_epoch": 4})
    assert main(["plot", "curves", "--out", str(tmp_path)]) == 0
    pictures = sorted((tmp_path / "curves").glob("*.png"))
    assert [p.name for p in pictures] == ["synthetic-4-ours.png", "synthetic-4-shufflenet-v2.png"]
    for path in pictures:
        is_a_picture(path, (1000, 300))
    assert "wrote 2 picture(s)" in capsys.readouterr().out


def test_plot_without_records_is_one_line(tmp_path, capsys):
    assert main(["plot", "curves", "--out", str(tmp_path)]) == 2
    assert "no run records" in capsys.readouterr().err


@pytest.mark.parametrize("board", ["synthetic-4", "ckplus-7", "ck-eyes-7", "ck-eyes-4"])
def test_committed_boards_have_their_pictures(board):
    from .conftest import REPO

    is_a_picture(REPO / "leaderboards" / f"{board}-pareto.png", (1000, 400))
    is_a_picture(REPO / "leaderboards" / f"{board}-pairwise.png", (300, 300))
