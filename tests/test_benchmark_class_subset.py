"""benchmarks/class_subset.py: the named classes, a geometric imbalance, the test split whole."""

import zipfile

import pytest


def _source(path):
    with zipfile.ZipFile(path, "w") as archive:
        for split, count in (("train", 20), ("test", 3)):
            for name in ("a", "b", "c", "d"):
                for i in range(count):
                    archive.writestr(f"{split}/{name}/{i:03d}.jpg", f"{split}{name}{i}")
    return path


def test_training_counts_decay_geometrically_from_largest_to_largest_over_imbalance():
    from benchmarks.class_subset import training_counts

    assert training_counts(4000, 8, 4) == [4000, 2000, 1000, 500]
    assert training_counts(100, 1, 3) == [100, 100, 100]


def test_subset_keeps_named_classes_cuts_training_and_copies_bytes(tmp_path):
    from benchmarks.class_subset import main

    source = _source(tmp_path / "src.zip")
    out = tmp_path / "subset.zip"
    assert main(["--source", str(source), "--classes", "c,a,b", "--largest", "16", "--imbalance", "4",
                 "--out", str(out)]) == 0
    with zipfile.ZipFile(out) as archive:
        names = archive.namelist()
        folders = {}
        for name in names:
            split, label, _ = name.split("/")
            folders[(split, label)] = folders.get((split, label), 0) + 1
        assert folders == {("train", "c"): 16, ("train", "a"): 8, ("train", "b"): 4,
                           ("test", "c"): 3, ("test", "a"): 3, ("test", "b"): 3}
        assert archive.read("test/a/001.jpg") == b"testa1"
    assert not (tmp_path / "subset.zip.partial").exists()


def test_missing_class_or_too_few_files_is_refused_and_nothing_written(tmp_path):
    from benchmarks.class_subset import main

    source = _source(tmp_path / "src.zip")
    with pytest.raises(SystemExit, match="zebra"):
        main(["--source", str(source), "--classes", "a,zebra", "--out", str(tmp_path / "x.zip")])
    with pytest.raises(SystemExit, match="fewer than"):
        main(["--source", str(source), "--classes", "a,b", "--largest", "50", "--out", str(tmp_path / "x.zip")])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["src.zip"]
