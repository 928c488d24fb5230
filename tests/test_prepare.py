"""``bench prepare``: eye detection, the REED-layout output, its manifest, re-runs and bad input."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from bench.cli import main
from bench.data import dataset_info, load_dataset
from bench.errors import DatasetError
from bench.eyecrop import EyeCropper
from bench.prepare import MANIFEST, prepare_emug, prepare_eyes
from bench.splits import make_split

from .conftest import write_image
from .faces import draw_face
from .test_datasets import _rafdb_tree


def run_cli(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.parametrize("kwargs", [{}, dict(canvas=(300, 400), centre=(260, 150)),
                                    dict(eye_height=0.36, eye_gap=42)])
def test_detection_finds_drawn_eyes_where_they_are(kwargs):
    image, eyes = draw_face(**kwargs)
    found = EyeCropper().locate(image)
    box = found.box
    assert found.method == "detected"
    for x, y in eyes:  # both eyes inside the crop...
        assert box.x < x < box.x + box.w and box.y < y < box.y + box.h
    middle = np.mean(eyes, axis=0)  # ...and the crop centred on them
    assert abs(box.x + box.w / 2 - middle[0]) < 0.05 * image.shape[1]
    assert abs(box.y + box.h / 2 - middle[1]) < 0.05 * image.shape[0]
    assert box.w == pytest.approx(2 * box.h, abs=1)
    assert box.w < 0.8 * image.shape[1]  # not the whole face


def test_small_faces_are_upscaled_before_detection():
    import cv2

    image, eyes = draw_face()
    small = cv2.resize(image, (48, 48), interpolation=cv2.INTER_AREA)
    found = EyeCropper().locate(small)
    assert found.method == "detected"
    assert abs(found.box.y + found.box.h / 2 - eyes[0][1] / 5) < 3


def test_a_face_without_eyes_gets_the_upper_face_band():
    image, eyes = draw_face(eyes=False)
    found = EyeCropper().locate(image)
    assert found.method == "fallback"
    assert found.box.y < eyes[0][1] < found.box.y + found.box.h
    assert EyeCropper(detector="fixed").locate(draw_face()[0]).method == "fallback"


@pytest.mark.parametrize("size", [(128, 64), (96, 96)])
def test_crops_have_the_requested_size_and_stay_inside_the_image(size):
    image, _ = draw_face(canvas=(300, 400), centre=(330, 150))  # face near the right edge
    cropper = EyeCropper(size=size, margin=0.5)
    found = cropper.locate(image)
    assert found.box.x >= 0 and found.box.x + found.box.w <= 400
    assert found.box.y >= 0 and found.box.y + found.box.h <= 300
    assert cropper.crop(image, found.box).shape == (size[1], size[0])


def face_folder(root, layout, blank=()):
    """``{subject: {emotion: n}}`` of drawn faces; (subject, emotion) pairs in ``blank`` get
    faceless grey images instead."""
    for s, (subject, emotions) in enumerate(layout.items()):
        for emotion, n in emotions.items():
            for i in range(n):
                if (subject, emotion) in blank:
                    image = np.full((240, 240), 128, np.uint8)
                else:
                    image = draw_face(eye_gap=34 + 2 * ((s + i) % 3))[0]
                write_image(root / subject / emotion / f"{i}.png", image)
    return root


LAYOUT = {"s1": {"happy": 2, "angry": 2}, "s2": {"happy": 2, "sad": 2}, "s3": {"calm": 2}}


def test_prepare_writes_the_reed_layout_and_a_matching_manifest(tmp_path):
    src = face_folder(tmp_path / "faces", LAYOUT, blank={("s3", "calm")})
    (tmp_path / "faces" / "s1" / "happy" / "broken.png").write_bytes(b"not a png")
    out = tmp_path / "eyes"
    report = prepare_eyes("folder", src, out, on_miss="drop", progress=False)
    assert report.methods["detected"] == 8 and report.methods["dropped"] == 2
    assert len(report.unreadable) == 1 and "broken.png" in report.unreadable[0]
    assert "detection rate: 80.0 %" in report.summary()

    manifest = pd.read_csv(out / MANIFEST, dtype=str, keep_default_na=False)
    written = manifest[manifest["method"] != "dropped"]
    assert sorted(written["file"]) == sorted(
        p.relative_to(out).as_posix() for p in out.rglob("*.png"))
    assert set(manifest.loc[manifest["method"] == "dropped", "file"]) == {""}
    assert {"source", "subject", "emotion", "x", "y", "w", "h", "method"} <= set(manifest.columns)

    crops = load_dataset("folder", out, classes=7)  # the crops are a dataset the suite reads
    assert crops.images.shape == (8, 64, 128)
    assert sorted(set(crops.subjects)) == ["s1", "s2"]
    pairs = {(s, c) for s, c in zip(crops.subjects, crops.label_names)}
    assert pairs == {("s1", "happiness"), ("s1", "anger"), ("s2", "happiness"), ("s2", "sadness")}


def test_fallback_keeps_faces_without_eyes(tmp_path):
    src = face_folder(tmp_path / "faces", LAYOUT, blank={("s3", "calm")})
    report = prepare_eyes("folder", src, tmp_path / "eyes", progress=False)
    assert report.methods["fallback"] == 2 and report.written == 10
    manifest = pd.read_csv(tmp_path / "eyes" / MANIFEST)
    assert set(manifest.loc[manifest["subject"] == "s3", "method"]) == {"fallback"}


def test_rerunning_is_safe_and_removes_crops_of_vanished_images(tmp_path):
    src = face_folder(tmp_path / "faces", LAYOUT)
    out = tmp_path / "eyes"
    prepare_eyes("folder", src, out, progress=False)
    first = sorted(p.relative_to(out) for p in out.rglob("*") if p.is_file())
    prepare_eyes("folder", src, out, progress=False)
    assert sorted(p.relative_to(out) for p in out.rglob("*") if p.is_file()) == first
    assert not list(out.rglob("*.tmp"))

    for image in (src / "s2" / "sad").iterdir():
        image.unlink()
    (src / "s2" / "sad").rmdir()
    report = prepare_eyes("folder", src, out, progress=False)
    assert report.removed_stale == 2 and not (out / "s2" / "sad").exists()
    assert len(pd.read_csv(out / MANIFEST)) == 8


def test_an_unrelated_non_empty_output_folder_is_refused(tmp_path):
    src = face_folder(tmp_path / "faces", {"s1": {"happy": 1}})
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "thesis.tex").write_text("precious")
    with pytest.raises(DatasetError, match="not empty"):
        prepare_eyes("folder", src, tmp_path / "mine", progress=False)
    assert (tmp_path / "mine" / "thesis.tex").read_text() == "precious"


def test_no_faces_at_all_is_a_clear_error(tmp_path):
    src = face_folder(tmp_path / "faces", {"s1": {"happy": 2}}, blank={("s1", "happy")})
    with pytest.raises(DatasetError, match="no eyes were found in any of the 2 images"):
        prepare_eyes("folder", src, tmp_path / "eyes", progress=False)
    assert not (tmp_path / "eyes").exists()


def test_only_unreadable_images_is_a_clear_error(tmp_path):
    bad = tmp_path / "faces" / "s1" / "happy"
    bad.mkdir(parents=True)
    (bad / "a.png").write_bytes(b"")
    (bad / "b.jpg").write_bytes(b"\xff\xd8 truncated")
    with pytest.raises(DatasetError, match="none of the 2 images could be read"):
        prepare_eyes("folder", tmp_path / "faces", tmp_path / "eyes", progress=False)


def test_emug_from_the_mug_layout_drops_frames_without_eyes_and_keeps_takes(tmp_path):
    mug = tmp_path / "MUG" / "subjects3"
    for subject in ("001", "002"):
        for take in ("take000", "take001"):
            for frame in range(3):
                image = draw_face()[0] if frame < 2 else np.full((240, 240), 90, np.uint8)
                write_image(mug / subject / "happiness" / take / f"img_{frame:04d}.jpg",
                            np.repeat(image[..., None], 3, axis=2))
    report = prepare_emug(tmp_path / "MUG", tmp_path / "emug", progress=False)
    assert report.methods["detected"] == 8 and report.methods["dropped"] == 4
    emug = load_dataset("emug", tmp_path / "emug", classes=7)
    assert len(emug) == 8 and len(set(emug.sequences)) == 4  # one sequence per take


def test_cli_prepare_prints_the_detection_rate_and_writes_a_contact_sheet(capsys, tmp_path):
    src = face_folder(tmp_path / "faces", LAYOUT)
    sheet = tmp_path / "sheet.png"
    code, out, err = run_cli(capsys, "prepare", "eyes", "--dataset", "folder", "--data-root",
                             str(src), "--out", str(tmp_path / "eyes"), "--size", "96x48",
                             "--preview", str(sheet), "--quiet")
    assert code == 0, err
    assert "detection rate: 100.0 %" in out
    from PIL import Image

    with Image.open(sheet) as im:
        assert im.size[0] > 400
    assert load_dataset("folder", tmp_path / "eyes").images.shape[1:] == (48, 96)


@pytest.mark.parametrize("argv, message", [
    (["eyes", "--dataset", "ckplus", "--data-root", "/nonexistent/ck", "--out", "x"],
     "Expected layout: ROOT/CK+/<class>"),
    (["emug", "--mug-root", "/nonexistent/mug", "--out", "x"], "subjects3"),
    (["eyes", "--dataset", "folder", "--data-root", ".", "--out", "x", "--size", "128by64"],
     "WIDTHxHEIGHT"),
    (["eyes", "--dataset", "synthetic", "--out", "x"], "invalid choice"),
])
def test_prepare_mistakes_are_one_line_errors(capsys, argv, message):
    try:
        code = main(["prepare", *argv])
    except SystemExit as exit_:  # argparse
        code = exit_.code
    err = capsys.readouterr().err
    assert code == 2 and message in err and "Traceback" not in err


@pytest.mark.ckplus
def test_real_ckplus_eye_crops_keep_subjects_and_labels_and_can_be_benchmarked(
        tmp_path, ckplus_root):
    from bench import evaluate

    subset = tmp_path / "ck" / "CK+"  # ten subjects, linked rather than copied
    files = sorted((ckplus_root / "CK+").glob("*/*.png"))
    subjects = sorted({f.name.split("_")[0] for f in files})[:10]
    for f in files:
        if f.name.split("_")[0] in subjects:
            (subset / f.parent.name).mkdir(parents=True, exist_ok=True)
            (subset / f.parent.name / f.name).symlink_to(f)
    out = tmp_path / "eyes"
    report = prepare_eyes("ckplus", tmp_path / "ck", out, progress=False)
    faces = load_dataset("ckplus", tmp_path / "ck", classes=7)
    assert report.written == len(faces)  # every usable image (contempt is outside the 7 classes)
    assert report.detection_rate > 0.8

    manifest = pd.read_csv(out / MANIFEST)
    assert sorted(manifest["file"]) == sorted(p.relative_to(out).as_posix()
                                              for p in out.rglob("*.png"))
    eyes = load_dataset("folder", out, classes=7)
    by_source = dict(zip(manifest["file"], zip(manifest["subject"], manifest["emotion"])))
    truth = {str(s): (subj, label) for s, subj, label in
             zip(faces.sources, faces.subjects, faces.label_names)}
    for file, (subject, emotion) in by_source.items():
        source = manifest.loc[manifest["file"] == file, "source"].iloc[0]
        assert truth[source] == (subject, emotion)
    assert sorted(eyes.class_counts().items()) == sorted(faces.class_counts().items())

    record = evaluate("shufflenet-v2", "folder", classes=7, seeds=[0], root=out, preset="smoke",
                      latency=False)[0]
    assert 0 <= record["accuracy"] <= 1 and record["n_test"] > 0


def test_crops_of_a_dataset_without_subjects_keep_its_official_split(tmp_path):
    lines = [f"train_{i:05d}.jpg {1 + i % 7}" for i in range(1, 15)] + \
            [f"test_{i:04d}.jpg {1 + i % 7}" for i in range(1, 8)]
    out = tmp_path / "eyes"
    prepare_eyes("rafdb", _rafdb_tree(tmp_path / "raf", lines), out, progress=False)
    crops = load_dataset("folder", out, classes=7)
    assert sorted(set(crops.split)) == ["test", "train"]
    assert all(s.startswith(f"{split}-") for s, split in zip(crops.subjects, crops.split))
    split = make_split(crops, 0, dataset_info("folder").split)
    np.testing.assert_array_equal(np.sort(split.test), np.flatnonzero(crops.split == "test"))
    manifest = pd.read_csv(out / MANIFEST, dtype=str, keep_default_na=False)
    manifest.loc[0, "split"] = ""  # an image the manifest does not place
    manifest.to_csv(out / MANIFEST, index=False)
    with pytest.warns(UserWarning, match="no official split .* split by subject instead"):
        assert load_dataset("folder", out, classes=7, cache=False).split is None


def test_crops_may_not_be_written_inside_the_data_root(tmp_path):
    src = face_folder(tmp_path / "faces", LAYOUT)
    with pytest.raises(DatasetError, match="inside the data root"):
        prepare_eyes("folder", src, src / "eyes", progress=False)
    assert not (src / "eyes").exists()


def test_crops_whose_face_set_moved_say_that_pre_training_is_off(tmp_path):
    import json
    import warnings

    from bench.errors import DataWarning
    from bench.protocol import RunSpec, estimator_params

    (tmp_path / "faces").mkdir()
    (tmp_path / "crops").mkdir()
    (tmp_path / "crops" / "source.json").write_text(json.dumps({"dataset": "ckplus",
                                                                "root": "../faces"}))
    spec = RunSpec("ours", "folder", 7, 0, str(tmp_path / "crops"), "quick")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert estimator_params(spec)["teacher_pretrain"] == "ckplus"
    (tmp_path / "faces").rename(tmp_path / "elsewhere")
    with pytest.warns(DataWarning, match="cut from ckplus faces at .*faces, which is not there"):
        assert estimator_params(spec).get("teacher_pretrain") is None
