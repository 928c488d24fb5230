import numpy as np
import pandas as pd
import pytest

from bench.data import dataset_info, list_datasets, load_dataset
from bench.errors import BenchError, DatasetError

from .conftest import random_face, write_image


def test_registry_lists_every_format():
    assert set(list_datasets()) >= {"synthetic", "reed", "emug", "folder", "ckplus", "jaffe",
                                    "rafdb", "fer2013"}
    with pytest.raises(BenchError, match="valid datasets: ckplus"):
        dataset_info("mnist")


# ---------------------------------------------------------------- REED layout: folder/reed/emug
def test_folder_layout_maps_synonyms_and_keeps_subjects(folder_dataset):
    root = folder_dataset({"s1": {"angry": 3, "happy": 2, "calm": 4, "surprise": 1},
                           "s2": {"Anger": 2, "neutral": 2, "surprised": 3, "happiness": 1}})
    d = load_dataset("folder", root, classes=4)
    assert len(d) == 18
    assert d.class_counts() == {"anger": 5, "happiness": 3, "surprise": 4, "neutral": 6}
    assert sorted(set(d.subjects)) == ["s1", "s2"]
    assert set(d.sequences) >= {"s1/angry", "s2/Anger"}
    assert d.images.shape == (18, 24, 32) and d.images.dtype == np.uint8


@pytest.mark.parametrize("name", ["reed", "emug"])
def test_reed_and_emug_read_the_same_layout(folder_dataset, name):
    root = folder_dataset({"p01": {"happy": 2, "sad": 2}, "p02": {"happy": 2, "sad": 1}})
    d = load_dataset(name, root, classes=7)
    assert d.class_counts()["sadness"] == 3 and d.name == name


def test_classes_outside_the_set_are_dropped_and_counted(folder_dataset):
    root = folder_dataset({"s1": {"happy": 2, "disgust": 3, "contempt": 2, "fear": 1}})
    d4 = load_dataset("folder", root, classes=4)
    assert len(d4) == 2 and d4.dropped == {"disgust": 3, "contempt": 2, "fear": 1}
    d7 = load_dataset("folder", root, classes=7)
    assert len(d7) == 6 and d7.dropped == {"contempt": 2}
    assert "dropped" in d4.summary()


def test_unknown_class_folder_lists_the_accepted_names(folder_dataset):
    root = folder_dataset({"s1": {"happy": 1, "grumpy": 1}})
    with pytest.raises(BenchError, match="'grumpy'.*accepted names.*s1.grumpy.0.png"):
        load_dataset("folder", root)


def test_frames_follow_natural_name_order_and_subfolders_are_sequences(tmp_path):
    for i, name in enumerate(["1.png", "2.png", "10.png"]):
        write_image(tmp_path / "s1" / "happy" / "take1" / name, np.full((8, 8), i * 50, np.uint8))
    write_image(tmp_path / "s1" / "happy" / "take2" / "1.png", np.full((8, 8), 200, np.uint8))
    d = load_dataset("folder", tmp_path)
    take1 = d.sequences == "s1/happy/take1"
    assert list(d.images[take1][:, 0, 0]) == [0, 50, 100]
    assert set(d.sequences) == {"s1/happy/take1", "s1/happy/take2"}


def test_mixed_image_modes_are_normalised(tmp_path):
    rng = np.random.default_rng(1)
    write_image(tmp_path / "a" / "happy" / "grey.png", random_face(rng))
    write_image(tmp_path / "a" / "happy" / "rgb.png", random_face(rng, channels=3))
    write_image(tmp_path / "a" / "calm" / "rgba.png", random_face(rng, channels=4))
    deep = (random_face(rng).astype(np.uint16) * 257)
    write_image(tmp_path / "a" / "calm" / "deep.png", deep)
    d = load_dataset("folder", tmp_path)
    assert d.images.shape == (4, 24, 32, 3)
    grey = d.images[d.sources == str(tmp_path / "a" / "calm" / "deep.png")][0]
    assert (grey[..., 0] == grey[..., 1]).all()  # 16-bit grey became 8-bit, repeated to RGB
    np.testing.assert_array_equal(grey[..., 0], (deep // 257).astype(np.uint8))


def test_grey_saved_as_rgb_stays_grey(tmp_path):
    grey = random_face(np.random.default_rng(2))
    write_image(tmp_path / "a" / "happy" / "0.png", np.repeat(grey[..., None], 3, axis=2))
    assert load_dataset("folder", tmp_path).images.shape == (1, 24, 32)


def test_image_size_resizes_and_mixed_sizes_need_it(tmp_path):
    write_image(tmp_path / "a" / "happy" / "0.png", np.zeros((20, 30), np.uint8))
    write_image(tmp_path / "a" / "happy" / "1.png", np.zeros((40, 50), np.uint8))
    with pytest.raises(DatasetError, match="different sizes"):
        load_dataset("folder", tmp_path)
    assert load_dataset("folder", tmp_path, image_size=16).images.shape == (2, 16, 16)


def test_unreadable_images_are_skipped_and_counted(tmp_path):
    rng = np.random.default_rng(3)
    write_image(tmp_path / "a" / "happy" / "ok.png", random_face(rng))
    (tmp_path / "a" / "happy" / "empty.png").write_bytes(b"")
    good = write_image(tmp_path / "a" / "happy" / "cut.png", random_face(rng)).read_bytes()
    (tmp_path / "a" / "happy" / "cut.png").write_bytes(good[: len(good) // 3])
    with pytest.warns(UserWarning, match="skipped 2 unreadable"):
        d = load_dataset("folder", tmp_path)
    assert len(d) == 1 and len(d.skipped) == 2
    assert "skipped 2 unreadable files" in d.summary()


# ------------------------------------------------------------------------- roots and messages
def test_missing_root_names_the_expected_layout(tmp_path):
    with pytest.raises(DatasetError, match=r"does not exist.*Expected layout: ROOT/<subject>/<emotion>"):
        load_dataset("reed", tmp_path / "nowhere")


def test_no_root_and_no_bench_data_explains_where_to_put_it(monkeypatch):
    monkeypatch.delenv("BENCH_DATA", raising=False)
    with pytest.raises(DatasetError, match=r"--data-root.*\$BENCH_DATA/reed.*Expected layout"):
        load_dataset("reed")


def test_bench_data_environment_variable_is_the_default_root(monkeypatch, tmp_path, folder_dataset):
    folder_dataset({"s1": {"happy": 2}}, root=tmp_path / "reed")
    monkeypatch.setenv("BENCH_DATA", str(tmp_path))
    assert len(load_dataset("reed")) == 2


def test_empty_root_and_wrong_layout_are_explained(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(DatasetError, match="is empty.*Expected layout"):
        load_dataset("folder", tmp_path / "empty")
    write_image(tmp_path / "flat" / "0.png", np.zeros((8, 8), np.uint8))
    with pytest.raises(DatasetError, match="no images in the subject/emotion layout.*Expected"):
        load_dataset("folder", tmp_path / "flat")


# --------------------------------------------------------------------------------------- CK+
def _ckplus_tree(root):
    rng = np.random.default_rng(4)
    files = {"anger": ["S010_004_00000019.png", "S011_004_00000021.png"],
             "neutral": ["S010_004_00000001.png", "S011_004_00000001.png", "S011_005_00000001.png"],
             "contempt": ["S012_001_00000008.png"], "happiness": ["S012_006_00000011.png"]}
    for cls, names in files.items():
        for name in names:
            write_image(root / "CK+" / cls / name, random_face(rng, (48, 48)))
    return root


def test_ckplus_reads_subjects_from_file_names(tmp_path):
    d = load_dataset("ckplus", _ckplus_tree(tmp_path), classes=7)
    assert len(d) == 6 and d.dropped == {"contempt": 1}
    assert sorted(set(d.subjects)) == ["S010", "S011", "S012"]
    assert set(d.sequences) == {"S010_004", "S011_004", "S011_005", "S012_006"}
    # the CK+ folder itself is accepted as the root too
    assert len(load_dataset("ckplus", tmp_path / "CK+", classes=7)) == 6


def test_ckplus_rejects_foreign_file_names(tmp_path):
    write_image(tmp_path / "CK+" / "anger" / "face1.png", np.zeros((8, 8), np.uint8))
    with pytest.raises(DatasetError, match="S<subject>_<seq>_<frame>"):
        load_dataset("ckplus", tmp_path)


def test_ckplus_above_its_parent_folder_says_what_it_found(tmp_path):
    _ckplus_tree(tmp_path / "faces")
    write_image(tmp_path / "jaffe" / "KA.AN1.39.tiff", np.zeros((8, 8), np.uint8))
    with pytest.raises(DatasetError, match="has no CK\\+ folder and its folder\\(s\\) faces, "
                                           "jaffe are not emotion classes"):
        load_dataset("ckplus", tmp_path)


@pytest.mark.ckplus
def test_real_ckplus_loads(ckplus_root):
    d7 = load_dataset("ckplus", ckplus_root, classes=7)
    assert len(d7) == 890 - 17 and d7.dropped == {"contempt": 17}
    assert len(set(d7.subjects)) == 123
    assert d7.class_counts()["neutral"] == 575 and d7.images.shape[1:] == (48, 48)
    d4 = load_dataset("ckplus", ckplus_root, classes=4)
    assert len(d4) == 43 + 66 + 80 + 575


# -------------------------------------------------------------------------------------- JAFFE
def test_jaffe_file_names(tmp_path):
    rng = np.random.default_rng(5)
    for name in ["KA.AN1.39", "KA.HA2.30", "KM.NE1.1", "KM.SU3.17", "KM.DI1.20"]:
        write_image(tmp_path / f"{name}.tiff", random_face(rng, (32, 32)))
    (tmp_path / "README").write_text("not an image")
    d = load_dataset("jaffe", tmp_path, classes=4)
    assert len(d) == 4 and d.dropped == {"disgust": 1}
    assert sorted(set(d.subjects)) == ["KA", "KM"]
    write_image(tmp_path / "S131.FE1.2.tiff", random_face(rng, (32, 32)))  # digits in a subject
    write_image(tmp_path / "sheet.tiff", random_face(rng, (32, 32)))
    with pytest.warns(UserWarning, match="skipping 1 image.*sheet.tiff"):
        d = load_dataset("jaffe", tmp_path, classes=7, cache=False)
    assert sorted(set(d.subjects)) == ["KA", "KM", "S131"]


def test_jaffe_leaves_out_eye_crops_prepared_beside_it(tmp_path):
    """``bench prepare eyes`` keeps JAFFE's names; crops beside the faces are not faces."""
    rng = np.random.default_rng(5)
    for name in ["KA.AN1.39", "KM.HA2.30", "KR.NE1.1"]:
        write_image(tmp_path / f"{name}.tiff", random_face(rng, (32, 32)))
        write_image(tmp_path / "eyes" / name[:2] / "anger" / f"{name}.png",
                    random_face(rng, (16, 32)))
    (tmp_path / "eyes" / "manifest.csv").write_text("file,split\n")
    with pytest.warns(UserWarning, match="skipping .*eyes: eye crops made by `bench prepare`"):
        d = load_dataset("jaffe", tmp_path, classes=7, cache=False)
    assert len(d) == 3


# ------------------------------------------------------------------------------------- RAF-DB
def _rafdb_tree(root, lines):
    rng = np.random.default_rng(6)
    (root / "EmoLabel").mkdir(parents=True)
    (root / "EmoLabel" / "list_patition_label.txt").write_text("\n".join(lines) + "\n")
    for line in lines:
        name = line.split()[0].rsplit(".", 1)[0]
        write_image(root / "Image" / "aligned" / f"{name}_aligned.jpg",
                    random_face(rng, (32, 32), channels=3), quality=95)
    return root


def test_rafdb_official_split_and_labels(tmp_path):
    lines = ["train_00001.jpg 1", "train_00002.jpg 4", "train_00003.jpg 6", "train_00004.jpg 7",
             "train_00005.jpg 3", "test_0001.jpg 4", "test_0002.jpg 7"]
    d = load_dataset("rafdb", _rafdb_tree(tmp_path, lines), classes=7)
    assert list(d.split) == ["train"] * 5 + ["test"] * 2
    assert list(d.label_names) == ["surprise", "happiness", "anger", "neutral", "disgust",
                                   "happiness", "neutral"]
    assert d.subjects is None and d.images.shape == (7, 32, 32, 3)
    assert load_dataset("rafdb", tmp_path, classes=4).dropped == {"disgust": 1}


def test_rafdb_names_the_missing_part(tmp_path):
    _rafdb_tree(tmp_path, ["train_00001.jpg 1"])
    (tmp_path / "EmoLabel" / "list_patition_label.txt").rename(tmp_path / "EmoLabel" / "list.txt")
    with pytest.raises(DatasetError, match="RAF-DB: no EmoLabel/list_patition_label.txt under"):
        load_dataset("rafdb", tmp_path)


@pytest.mark.parametrize("line, message", [
    ("train_00001.jpg 9", "label 1-7"), ("train_00001.jpg", "label 1-7"),
    ("val_00001.jpg 2", "neither train_ nor test_"),
])
def test_rafdb_malformed_label_file_names_the_line(tmp_path, line, message):
    _rafdb_tree(tmp_path, ["train_00002.jpg 1"])
    with open(tmp_path / "EmoLabel" / "list_patition_label.txt", "a") as fh:
        fh.write(line + "\n")
    with pytest.raises(DatasetError, match=f"list_patition_label.txt:2: .*{message}"):
        load_dataset("rafdb", tmp_path)


# ------------------------------------------------------------------------------------ FER2013
def _fer_csv(path, rows):
    pd.DataFrame(rows, columns=["emotion", "pixels", "Usage"]).to_csv(path, index=False)
    return path


def _pixels(value, n=2304):
    return " ".join([str(value)] * n)


def test_fer2013_csv_with_official_usage(tmp_path):
    rows = [(0, _pixels(10), "Training"), (3, _pixels(20), "Training"), (6, _pixels(30), "PublicTest"),
            (5, _pixels(40), "PrivateTest"), (1, _pixels(50), "Training")]
    _fer_csv(tmp_path / "fer2013.csv", rows)
    d = load_dataset("fer2013", tmp_path, classes=7)
    assert d.images.shape == (5, 48, 48)
    assert list(d.split) == ["train", "train", "val", "test", "train"]
    assert list(d.label_names) == ["anger", "happiness", "neutral", "surprise", "disgust"]
    assert d.images[2].max() == 30
    # the CSV path itself works as the root
    assert len(load_dataset("fer2013", tmp_path / "fer2013.csv", classes=4)) == 4


def test_fer2013_bad_pixel_rows_are_skipped_with_their_line(tmp_path):
    rows = [(0, _pixels(10), "Training"), (3, "1 2 3", "Training"), (6, _pixels(30), "PublicTest")]
    _fer_csv(tmp_path / "fer2013.csv", rows)
    with pytest.warns(UserWarning, match="row 3"):
        d = load_dataset("fer2013", tmp_path, classes=7)
    assert len(d) == 2


@pytest.mark.parametrize("rows, message", [
    ([(9, _pixels(1), "Training")], "emotion must be 0-6"),
    ([(1, _pixels(1), "Validation")], "Usage must be Training"),
])
def test_fer2013_malformed_values_name_the_line(tmp_path, rows, message):
    _fer_csv(tmp_path / "fer2013.csv", rows)
    with pytest.raises(DatasetError, match=f"fer2013.csv:2: {message}"):
        load_dataset("fer2013", tmp_path)


def test_fer2013_missing_columns(tmp_path):
    (tmp_path / "fer2013.csv").write_text("label,pixels\n1,2 3\n")
    with pytest.raises(DatasetError, match=r"lacks column\(s\) \['emotion', 'usage'\]"):
        load_dataset("fer2013", tmp_path)


def test_fer2013_without_its_header_line_says_so_briefly(tmp_path):
    (tmp_path / "fer2013.csv").write_text(f"0,{_pixels(4)},Training\n3,{_pixels(5)},Training\n")
    with pytest.raises(DatasetError) as error:
        load_dataset("fer2013", tmp_path)
    assert "(is its header line emotion,pixels,Usage missing?)" in str(error.value)
    assert len(str(error.value)) < 400


def test_a_data_root_one_level_off_names_what_it_read_as_subjects(tmp_path):
    from bench.protocol import RunSpec, train_on_split

    rng = np.random.default_rng(1)
    for emotion in ("happy", "neutral"):  # CK+'s <class>/<images> read as --dataset folder
        for n in range(3):
            write_image(tmp_path / "all" / emotion / f"S{n}.png", random_face(rng, (16, 16)))
    spec = RunSpec("shufflenet-v2", "folder", 4, 0, str(tmp_path), "smoke", latency=False)
    with pytest.raises(BenchError, match=r"the data has 1 \(all\); is the data root the folder"):
        train_on_split(spec)


def test_a_folder_dataset_is_named_after_its_folder(folder_dataset, tmp_path):
    from bench.data import dataset_label

    root = folder_dataset({"s1": {"happy": 2}}, root=tmp_path / "my eyes")
    assert dataset_label("folder", root) == "my-eyes"
    assert dataset_label("folder", folder_dataset({"s1": {"happy": 2}}, root=tmp_path / "ckplus")) \
        == "folder-ckplus"  # not to be mistaken for the registered dataset
    assert dataset_label("reed", root) == "reed" and dataset_label("folder") == "folder"
