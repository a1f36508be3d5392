"""Each data source on a tiny fixture written by the test, and each malformed input's error."""

import gzip
import struct

import numpy as np
import pytest
from PIL import Image

from tfgan_compress import data
from tfgan_compress.errors import DataError


def write_idx(path, array, gz=False, dtype_code=0x08):
    header = struct.pack(">HBB", 0, dtype_code, array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
    raw = header + array.astype(np.uint8).tobytes()
    path.write_bytes(gzip.compress(raw) if gz else raw)
    return path


def write_idx_dir(directory, arrays, gz=False):
    directory.mkdir(exist_ok=True)
    for key, stem in data.IDX_FILES.items():
        write_idx(directory / (stem + (".gz" if gz else "")), arrays[key], gz)
    return directory


def arrays_dict(tiny_arrays):
    return dict(zip(["x_train", "y_train", "x_test", "y_test"], tiny_arrays))


def test_digits_is_embedded_and_split_fixed():
    ds = data.load("digits")
    assert ds.x_train.shape == (1347, 8, 8, 1) and ds.x_test.shape == (450, 8, 8, 1)
    assert ds.x_train.dtype == np.float32 and 0.0 <= ds.x_train.min() and ds.x_train.max() == 1.0
    assert ds.num_classes == 10
    np.testing.assert_array_equal(data.load("digits").y_test, ds.y_test)  # same split every time


@pytest.mark.parametrize("gz", [False, True])
def test_idx_source(tmp_path, tiny_arrays, gz):
    directory = write_idx_dir(tmp_path / "idx", arrays_dict(tiny_arrays), gz)
    ds = data.load(f"idx:{directory}")
    assert ds.spec.image_shape == (8, 8, 1) and ds.num_classes == 3
    np.testing.assert_allclose(ds.x_train[..., 0] * 255, tiny_arrays[0], atol=1e-3)
    np.testing.assert_array_equal(ds.y_test, tiny_arrays[3])


def test_npz_source(tmp_path, tiny_arrays):
    path = tmp_path / "d.npz"
    np.savez(path, **arrays_dict(tiny_arrays), class_names=np.array(["h", "v", "dot"]))
    ds = data.load(f"npz:{path}")
    assert ds.class_names == ("h", "v", "dot") and len(ds.x_test) == 12


def test_npz_one_hot_labels_are_read_as_classes(tmp_path, tiny_arrays):
    arrays = arrays_dict(tiny_arrays)
    np.savez(tmp_path / "plain.npz", **arrays)
    one_hot = {**arrays, "y_train": np.eye(3, dtype=np.float32)[arrays["y_train"]],
               "y_test": np.eye(3, dtype=np.uint8)[arrays["y_test"]]}  # keras.utils.to_categorical
    np.savez(tmp_path / "one_hot.npz", **one_hot)
    expected, loaded = data.load(f"npz:{tmp_path / 'plain.npz'}"), data.load(f"npz:{tmp_path / 'one_hot.npz'}")
    np.testing.assert_array_equal(loaded.y_train, expected.y_train)
    np.testing.assert_array_equal(loaded.y_test, expected.y_test)
    two_hot = {**one_hot, "y_test": one_hot["y_test"] + np.eye(3, dtype=np.uint8)[(arrays["y_test"] + 1) % 3]}
    np.savez(tmp_path / "two_hot.npz", **two_hot)  # not one class per image: refused, not argmaxed
    expect_error(f"npz:{tmp_path / 'two_hot.npz'}", "two_hot.npz", "1-D array")


def test_npz_rgb_float(tmp_path):
    rng = np.random.default_rng(0)
    x = rng.random((20, 16, 12, 3)).astype(np.float32)
    y = np.arange(20) % 2
    np.savez(tmp_path / "rgb.npz", x_train=x, y_train=y, x_test=x[:4], y_test=y[:4])
    ds = data.load(f"npz:{tmp_path / 'rgb.npz'}")
    assert ds.spec.image_shape == (16, 12, 3)
    np.testing.assert_allclose(ds.x_train, x)


def test_folder_source(tmp_path, tiny_arrays):
    x, y = tiny_arrays[0], tiny_arrays[1]
    for i, (image, label) in enumerate(zip(x, y)):
        folder = tmp_path / "imgs" / ["bar", "column", "dot"][label]
        folder.mkdir(parents=True, exist_ok=True)
        Image.fromarray(image).save(folder / f"{i}.png")
    ds = data.load(f"folder:{tmp_path / 'imgs'}")
    assert ds.class_names == ("bar", "column", "dot")
    assert len(ds.x_train) + len(ds.x_test) == 30 and len(ds.x_test) == 6
    assert ds.spec.image_shape == (8, 8, 1)


def write_split_tree(root, size=8, mode="L", per_class=3, classes=("cat", "dog")):
    rng = np.random.default_rng(0)
    for split in ("train", "test"):
        for label, cls in enumerate(classes):
            (root / split / cls).mkdir(parents=True, exist_ok=True)
            for i in range(per_class if split == "train" else 1):
                shape = (size, size) if mode == "L" else (size, size, 3)
                pixels = rng.integers(0, 256, shape, dtype=np.uint8)
                Image.fromarray(pixels, mode).save(root / split / cls / f"{i}.png")
    return root


def test_folder_train_test_layout_keeps_the_split(tmp_path):
    root = write_split_tree(tmp_path / "photos", mode="RGB")
    ds = data.load(f"folder:{root}")
    assert ds.class_names == ("cat", "dog") and ds.spec.image_shape == (8, 8, 3)
    assert len(ds.x_train) == 6 and len(ds.x_test) == 2
    expected = np.asarray(Image.open(root / "test" / "dog" / "0.png"), np.float32) / 255
    np.testing.assert_allclose(ds.x_test[ds.y_test == 1][0], expected, atol=1e-6)


def test_folder_zip_equals_the_folder_it_holds(tmp_path):
    import shutil

    root = write_split_tree(tmp_path / "photos" / "wrapped")  # the zip holds wrapped/train/..., wrapped/test/...
    archive = shutil.make_archive(str(tmp_path / "photos"), "zip", root_dir=tmp_path / "photos")
    from_zip, from_dir = data.load(f"folder:{archive}"), data.load(f"folder:{root}")
    np.testing.assert_array_equal(from_zip.x_train, from_dir.x_train)
    np.testing.assert_array_equal(from_zip.y_test, from_dir.y_test)
    assert from_zip.class_names == from_dir.class_names


def test_16_bit_png_scales_like_8_bit(tmp_path):
    pixels8 = np.arange(64, dtype=np.uint8).reshape(8, 8) * 4
    for cls in ("a", "b"):
        (tmp_path / "d" / cls).mkdir(parents=True)
        for i in range(2):
            Image.fromarray(pixels8.astype(np.uint16) * 257).save(tmp_path / "d" / cls / f"{i}.png")  # 16-bit
    ds = data.load(f"folder:{tmp_path / 'd'}")
    assert ds.spec.image_shape == (8, 8, 1)
    np.testing.assert_allclose(ds.x_train[0, ..., 0], pixels8 / 255.0, atol=1e-6)  # not saturated at 1.0


def test_oversized_image_is_refused_before_decoding(tmp_path):
    root = write_split_tree(tmp_path / "d")
    Image.new("L", (3000, 20)).save(root / "train" / "cat" / "big.png")
    expect_error(f"folder:{root}", "big.png", "3000x20", "larger than")


@pytest.mark.parametrize("breaks, fragment", [
    (lambda root: (root / "train" / "emu").mkdir(), "holds no images"),
    (lambda root: (root / "test" / "owl").mkdir() or Image.new("L", (8, 8)).save(root / "test" / "owl" / "0.png"),
     "has no train/ folder"),
    (lambda root: (root / "train" / "loose.png").write_bytes((root / "train" / "cat" / "0.png").read_bytes()),
     "unexpected folder depth"),
])
def test_folder_layout_errors(tmp_path, breaks, fragment):
    root = write_split_tree(tmp_path / "d")
    breaks(root)
    expect_error(f"folder:{root}", fragment)


def test_zip_that_is_not_images(tmp_path):
    import zipfile

    with zipfile.ZipFile(tmp_path / "x.zip", "w") as archive:
        archive.writestr("a/readme.txt", "hello")
    expect_error(f"folder:{tmp_path / 'x.zip'}", "x.zip", "no image files")
    (tmp_path / "broken.zip").write_bytes(b"PK\x03\x04 not really")
    expect_error(f"folder:{tmp_path / 'broken.zip'}", "broken.zip")


@pytest.mark.parametrize("name", ["cat\ndog", "tab\there", "bell\x07", "  "])
def test_class_names_that_would_break_labels_txt_are_refused(tiny_arrays, name):
    with pytest.raises(DataError, match="class name"):
        data.make_dataset(*tiny_arrays, "t", "t", class_names=["ok", name, "fine"])


def test_training_pipeline_batches(tiny_arrays):
    ds = data.make_dataset(*tiny_arrays, "t", "t")
    x, y = next(iter(data.training_pipeline(ds.x_train, ds.y_train, 4, seed=0)))
    assert x.shape == (4, 8, 8, 1) and y.shape == (4,)


def test_class_balanced_batches_draw_a_rare_class_as_often_as_a_common_one():
    y = np.array([0] * 90 + [1] * 9 + [2] * 1)
    x = np.arange(100, dtype="float32")[:, None]
    seen = np.concatenate([b.numpy() for _, b in data.training_pipeline(x, y, 30, 0, class_balanced=True).take(60)])
    assert np.all(np.abs(np.bincount(seen) / len(seen) - 1 / 3) < 0.04)  # 1% of the split, a third of the draws
    first = np.concatenate([a.numpy()[:, 0] for a, _ in data.training_pipeline(x, y, 30, 0, class_balanced=True)
                            .take(3)])
    assert np.all(y[first.astype(int)] == np.concatenate([b.numpy() for _, b in data.training_pipeline(
        x, y, 30, 0, class_balanced=True).take(3)]))  # each image keeps its own label
    resumed = next(iter(data.training_pipeline(x, y, 30, 0, class_balanced=True, skip_batches=2)))[0].numpy()[:, 0]
    assert np.array_equal(resumed, first[60:90])  # a resumed GAN sees the batches it would have
    even = np.repeat([0, 1], 50)  # already balanced: the plain stream, batch for batch
    plain, balanced = (next(iter(data.training_pipeline(x, even, 30, 0, class_balanced=flag)))[0].numpy()
                       for flag in (False, True))
    assert np.array_equal(plain, balanced)


# ------------------------------------------------------------------ malformed input


def expect_error(source, *fragments):
    with pytest.raises(DataError) as info:
        data.load(source)
    message = str(info.value)
    assert "\n" not in message
    for fragment in fragments:
        assert fragment in message, message
    return message


def test_unknown_source():
    expect_error("mnist", "unknown data source")
    expect_error("ftp:x", "unknown data source kind")


def test_idx_missing_file(tmp_path, tiny_arrays):
    directory = write_idx_dir(tmp_path / "idx", arrays_dict(tiny_arrays))
    (directory / "t10k-labels-idx1-ubyte").unlink()
    expect_error(f"idx:{directory}", "t10k-labels-idx1-ubyte", "not found")


def test_idx_truncated(tmp_path, tiny_arrays):
    directory = write_idx_dir(tmp_path / "idx", arrays_dict(tiny_arrays))
    path = directory / "train-images-idx3-ubyte"
    path.write_bytes(path.read_bytes()[:100])
    expect_error(f"idx:{directory}", "train-images-idx3-ubyte", "truncated")


def test_idx_wrong_magic(tmp_path, tiny_arrays):
    directory = write_idx_dir(tmp_path / "idx", arrays_dict(tiny_arrays))
    (directory / "train-labels-idx1-ubyte").write_bytes(b"\x12\x34\x56\x78" + bytes(30))
    expect_error(f"idx:{directory}", "train-labels-idx1-ubyte", "magic")


def test_idx_header_claiming_too_many_images_is_refused(tmp_path):
    path = tmp_path / "huge"
    path.write_bytes(struct.pack(">HBBIII", 0, 8, 3, 10 ** 9, 28, 28) + bytes(1000))
    with pytest.raises(DataError, match="truncated"):
        data.read_idx(path)


def test_idx_count_mismatch(tmp_path, tiny_arrays):
    arrays = arrays_dict(tiny_arrays)
    arrays["y_train"] = arrays["y_train"][:-1]
    directory = write_idx_dir(tmp_path / "idx", arrays)
    expect_error(f"idx:{directory}", "train-labels-idx1-ubyte", "29 labels", "30 images")


def test_npz_missing_arrays(tmp_path, tiny_arrays):
    np.savez(tmp_path / "bad.npz", x_train=tiny_arrays[0], y_train=tiny_arrays[1])
    expect_error(f"npz:{tmp_path / 'bad.npz'}", "bad.npz", "missing", "x_test", "y_test")


def test_npz_object_arrays_refused(tmp_path, tiny_arrays):
    arrays = arrays_dict(tiny_arrays)
    arrays["y_train"] = np.array([object()] * 30, dtype=object)
    np.savez(tmp_path / "obj.npz", **arrays)
    expect_error(f"npz:{tmp_path / 'obj.npz'}", "obj.npz", "object arrays")


def test_npz_not_a_zip(tmp_path):
    (tmp_path / "junk.npz").write_bytes(b"not a zip file at all")
    expect_error(f"npz:{tmp_path / 'junk.npz'}", "junk.npz", "not a valid .npz")


@pytest.mark.parametrize("mutate, fragment", [
    (lambda a: a.update(y_train=a["y_train"].astype(np.float32) + 0.5), "integers"),
    (lambda a: a.update(y_test=-np.ones_like(a["y_test"], dtype=np.int64)), ">= 0"),
    (lambda a: a.update(x_train=np.zeros((30, 4, 4))), "outside the supported"),
    (lambda a: a.update(x_train=np.zeros((30, 8, 8, 2))), "channels"),
    (lambda a: a.update(x_train=np.zeros((30, 8))), "shape"),
    (lambda a: a.update(y_train=np.where(a["y_train"] == 1, 0, a["y_train"])), "no training images"),
    (lambda a: a.update(x_test=np.zeros((12, 9, 9))), "test images"),
])
def test_npz_bad_contents(tmp_path, tiny_arrays, mutate, fragment):
    arrays = arrays_dict(tiny_arrays)
    mutate(arrays)
    np.savez(tmp_path / "d.npz", **arrays)
    expect_error(f"npz:{tmp_path / 'd.npz'}", "d.npz", fragment)


def test_idx_corrupt_gzip_body_and_absurd_rank(tmp_path, tiny_arrays):
    directory = write_idx_dir(tmp_path / "idx", arrays_dict(tiny_arrays), gz=True)
    path = directory / "train-images-idx3-ubyte.gz"
    raw = bytearray(path.read_bytes())
    raw[12:40] = bytes(28)  # valid gzip header, corrupt deflate body
    path.write_bytes(bytes(raw))
    with pytest.raises(DataError, match="corrupt gzip|not an IDX|truncated"):
        data.read_idx(path)
    (tmp_path / "rank").write_bytes(struct.pack(">HBB", 0, 8, 255) + bytes(4 * 255 + 8))
    with pytest.raises(DataError, match="rank 255"):
        data.read_idx(tmp_path / "rank")


def test_folder_errors(tmp_path):
    expect_error(f"folder:{tmp_path / 'nope'}", "nope", "no such folder or .zip archive (folder:DIR")
    expect_error(f"audio:{tmp_path / 'nope.zip'}", "nope.zip", "no such folder or .zip archive (audio:DIR")
    (tmp_path / "one" / "a").mkdir(parents=True)
    expect_error(f"folder:{tmp_path / 'one'}", "no image files")
    root = tmp_path / "mixed"
    for cls in "ab":
        (root / cls).mkdir(parents=True)
        for i in range(2):
            Image.fromarray(np.zeros((8, 8), np.uint8)).save(root / cls / f"{i}.png")
    Image.fromarray(np.zeros((10, 10), np.uint8)).save(root / "b" / "2.png")
    expect_error(f"folder:{root}", "2.png", "10x10")
    (root / "b" / "2.png").write_bytes(b"garbage")
    expect_error(f"folder:{root}", "2.png", "not a readable image")


def test_unknown_tfds_name_is_a_clear_error():
    expect_error("tfds:no_such_dataset_xyz", "tfds:no_such_dataset_xyz", "cannot load")


def test_uint8_images_are_scaled_by_255(tiny_arrays):
    ds = data.make_dataset(*tiny_arrays, "t", "t")
    np.testing.assert_allclose(ds.x_train[..., 0], tiny_arrays[0] / 255.0, atol=1e-6)
    dark = np.zeros((4, 8, 8), np.uint8)
    dark[:, 0, 0] = 1  # integer pixels with max 1 are still 8-bit values
    assert data.make_dataset(dark, [0, 1, 0, 1], dark, [0, 1, 0, 1], "t", "t").x_train.max() == pytest.approx(1 / 255)


def test_splits_in_different_pixel_ranges_are_refused_naming_both(tiny_arrays):
    x_train, y_train, x_test, y_test = tiny_arrays
    unit_train, unit_test = x_train / 255.0, x_test / 255.0
    unit_test[0, 0, 0] = 1.0001  # one value past 1 used to divide the test split alone by 255
    with pytest.raises(DataError, match=r"x_train looks like 0\.\.1 pixels but x_test like 0\.\.255"):
        data.make_dataset(unit_train, y_train, unit_test, y_test, "t", "t")
    with pytest.raises(DataError, match="x_train looks like 0..255"):  # uint8 train, float [0, 1] test
        data.make_dataset(x_train, y_train, unit_test.clip(0, 1), y_test, "t", "t")
    both = data.make_dataset(unit_train, y_train, unit_test.clip(0, 1), y_test, "t", "t")
    assert both.x_test.max() == pytest.approx(1.0) and both.x_train.max() == pytest.approx(1.0)


def test_bytes_class_names_are_decoded_not_written_as_b_quotes(tmp_path, tiny_arrays):
    arrays = arrays_dict(tiny_arrays)
    np.savez(tmp_path / "d.npz", **arrays, class_names=np.array([b"one", b"two", b"three"]))
    assert data.load(f"npz:{tmp_path / 'd.npz'}").class_names == ("one", "two", "three")


@pytest.mark.parametrize("names, fragment", [
    (np.array([["a", "b"], ["c", "d"]]), "1-D"),
    (np.array("abc"), "1-D"),
    (np.array([b"\xff\xfe", b"b", b"c"]), "not UTF-8"),
])
def test_class_names_of_the_wrong_shape_or_encoding_are_refused(tmp_path, tiny_arrays, names, fragment):
    np.savez(tmp_path / "d.npz", **arrays_dict(tiny_arrays), class_names=names)
    expect_error(f"npz:{tmp_path / 'd.npz'}", "d.npz", fragment)


def test_complex_pixels_are_refused(tiny_arrays):
    x_train, y_train, x_test, y_test = tiny_arrays
    with pytest.raises(DataError, match="real numbers"):
        data.make_dataset(x_train.astype(np.complex64), y_train, x_test, y_test, "t", "t")


def test_fingerprint_tells_changed_labels_and_pixels_apart(tiny_arrays):
    x_train, y_train, x_test, y_test = tiny_arrays
    original = data.fingerprint(data.make_dataset(*tiny_arrays, "npz:d.npz", "t"))
    assert original == data.fingerprint(data.make_dataset(*tiny_arrays, "npz:d.npz", "t"))
    shifted = data.make_dataset(x_train, (y_train + 1) % 3, x_test, y_test, "npz:d.npz", "t")
    assert data.fingerprint(shifted)["fingerprint"] != original["fingerprint"]
    brighter = x_test.copy()
    brighter[0, 0, 0] += 1
    moved = data.make_dataset(x_train, y_train, brighter, y_test, "npz:d.npz", "t")
    assert data.fingerprint(moved)["fingerprint"] != original["fingerprint"]


def test_the_installed_tfds_path_imports_what_it_needs():
    # tfds' dataset builders import importlib_resources lazily: without it every tfds: source failed
    tfds = pytest.importorskip("tensorflow_datasets")
    assert tfds.builder_cls("mnist").code_path.name.endswith(".py")


def test_a_symlinked_class_folder_is_read(tmp_path):
    elsewhere, root = tmp_path / "elsewhere" / "b", tmp_path / "d"
    for folder in (root / "a", elsewhere):
        folder.mkdir(parents=True)
        for i in range(3):
            Image.fromarray(np.full((8, 8), 40 * i, np.uint8)).save(folder / f"{i}.png")
    (root / "b").symlink_to(elsewhere, target_is_directory=True)
    (root / "a" / "loop").symlink_to(root, target_is_directory=True)  # a link loop is not followed twice
    ds = data.load(f"folder:{root}")
    assert ds.class_names == ("a", "b") and len(ds.x_train) + len(ds.x_test) == 6


def test_a_train_folder_with_an_empty_test_folder_says_so(tmp_path):
    for cls in "ab":
        (tmp_path / "d" / "train" / cls).mkdir(parents=True)
        Image.fromarray(np.zeros((8, 8), np.uint8)).save(tmp_path / "d" / "train" / cls / "0.png")
    (tmp_path / "d" / "test").mkdir()
    expect_error(f"folder:{tmp_path / 'd'}", "test: holds no images")
