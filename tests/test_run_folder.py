"""The run folder touches only what the tool made: refusals of folders of the user's, the
data's own folder, changed data under the same path, and a second process on one folder."""

import numpy as np
import pytest

from tfgan_compress import cli
from tfgan_compress.run_folder import RunFolder


def files_in(folder):
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*"))


def test_a_folder_of_the_users_is_refused_and_left_untouched(tmp_path, capsys):
    out = tmp_path / "F"
    (out / "tmp").mkdir(parents=True)
    (out / "tmp" / "important.txt").write_text("notes")
    (out / "report.md").write_text("mine")
    before = files_in(out)
    assert cli.main(["run", "--preset", "tiny", "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "holds files tfgan-compress did not make (report.md, tmp)" in err and len(err.strip().splitlines()) == 1
    assert files_in(out) == before and (out / "report.md").read_text() == "mine"


def test_a_teacher_of_the_users_in_out_is_not_adopted(tmp_path, capsys):
    out = tmp_path / "F"
    out.mkdir()
    (out / "teacher.keras").write_bytes(b"the user's model")
    assert cli.main(["evaluate", "--preset", "tiny", "--out", str(out)]) == 2
    assert "did not make (teacher.keras)" in capsys.readouterr().err
    assert files_in(out) == ["teacher.keras"]


def test_out_equal_to_or_inside_the_data_folder_is_refused(tmp_path, tiny_arrays, capsys):
    from PIL import Image

    x_train = tiny_arrays[0]
    data_dir = tmp_path / "D"
    for cls in ("a", "tmp"):
        (data_dir / cls).mkdir(parents=True)
        for i in range(3):
            Image.fromarray(x_train[i]).save(data_dir / cls / f"{i}.png")
    before = files_in(data_dir)
    for out in (data_dir, data_dir / "runs" / "r", data_dir / "tmp"):
        assert cli.main(["run", "--preset", "tiny", "--data", f"folder:{data_dir}", "--out", str(out)]) == 2
        assert "inside the data folder" in capsys.readouterr().err
    assert files_in(data_dir) == before


def test_an_empty_out_is_refused(capsys):
    assert cli.main(["run", "--preset", "tiny", "--out", ""]) == 2
    assert "--out is empty" in capsys.readouterr().err


def test_scratch_space_is_a_folder_of_the_tools_own(tmp_path):
    folder = RunFolder(tmp_path / "r")
    (tmp_path / "r").mkdir()
    (tmp_path / "r" / "tmp").mkdir()
    (tmp_path / "r" / "tmp" / "keep.txt").write_text("x")
    with folder.claimed(), folder.scratch_space() as scratch:
        assert scratch.is_dir() and scratch.parent.parent == folder.root and scratch.name != "tmp"
        (scratch / "converter").mkdir()
    assert not folder.scratch_dir.exists() and (tmp_path / "r" / "tmp" / "keep.txt").read_text() == "x"
    assert folder.marker.is_file()


def test_a_second_process_on_the_same_folder_is_refused(tmp_path, capsys):
    out = tmp_path / "r"
    with RunFolder(out).claimed():  # another run holds the folder (flock: per open file, so this process counts)
        assert cli.main(["run", "--preset", "tiny", "--out", str(out)]) == 2
        assert "in use by another tfgan-compress process" in capsys.readouterr().err
    assert files_in(out) == [".tfgan-compress"]


def test_changed_data_under_the_same_path_is_refused(tmp_path, tiny_arrays, capsys):
    x_train, y_train, x_test, y_test = tiny_arrays
    npz, out = tmp_path / "d.npz", tmp_path / "run"
    np.savez(npz, x_train=x_train, y_train=y_train, x_test=x_test, y_test=y_test)
    args = ["teacher", "--preset", "tiny", "--data", f"npz:{npz}", "--out", str(out)]
    assert cli.main(args) == 0
    made = {name: (out / name).read_bytes() for name in ("teacher.keras", "config.json", "data.json")}
    np.savez(npz, x_train=x_train, y_train=(y_train + 1) % 3, x_test=x_test, y_test=y_test)  # labels shifted
    capsys.readouterr()
    assert cli.main(args) == 2
    err = capsys.readouterr().err
    assert "was made from other data" in err and "use another --out" in err
    assert {name: (out / name).read_bytes() for name in made} == made
    np.savez(npz, x_train=x_train, y_train=y_train, x_test=x_test, y_test=y_test)  # the same data again: reused
    assert cli.main(args) == 0
    assert "using" in capsys.readouterr().out


def write_backup(backup, epoch, suffix=""):
    import json

    import h5py

    backup.mkdir(parents=True, exist_ok=True)
    with h5py.File(backup / f"latest.weights.h5{suffix}", "w") as h5:
        h5["layers/dense/vars/0"] = np.arange(2000, dtype=np.float32)
    (backup / f"training_metadata.json{suffix}").write_text(json.dumps({"epoch": epoch}))


def truncate(path):
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def test_an_unreadable_backup_with_a_readable_one_before_it_resumes_from_that_one_and_says_so(tmp_path):
    folder, lines = RunFolder(tmp_path / "r"), []
    write_backup(folder.checkpoint("gan"), 3)
    write_backup(folder.checkpoint("gan"), 2, ".bkp")
    truncate(folder.checkpoint("gan") / "latest.weights.h5")
    folder.check_backup("gan", lines.append)
    assert folder.epochs_backed_up("gan") == 2 and "resuming from the one before it (epoch 2)" in lines[0]
    folder.check_backup("gan", lines.append)  # now readable: nothing more to say
    assert len(lines) == 1


def test_an_unreadable_backup_is_set_aside_and_the_stage_starts_again(tmp_path):
    folder, lines = RunFolder(tmp_path / "r"), []
    write_backup(folder.checkpoint("gan"), 3)
    (folder.checkpoint("gan") / "latest.weights.h5").write_bytes(b"")  # written on a full disk
    folder.record_seconds("gan", 50.0, finished=False)
    folder.check_backup("gan", lines.append)
    assert folder.epochs_backed_up("gan") is None and folder.seconds_so_far("gan") == 0.0
    assert (folder.root / "checkpoints" / "gan.unreadable" / "training_metadata.json").is_file()
    assert len(lines) == 1 and "set aside" in lines[0] and "starts again from its start" in lines[0]


def test_a_full_disk_stops_training_in_one_line_before_the_backup_is_written(tmp_path, monkeypatch):
    import shutil
    from collections import namedtuple

    import keras

    from tfgan_compress.callbacks import DiskSpaceGuard
    from tfgan_compress.errors import DiskFull

    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2)])
    model.compile(optimizer="adam", loss="mse")
    usage = namedtuple("usage", "total used free")
    monkeypatch.setattr(shutil, "disk_usage", lambda path: usage(10**9, 10**9 - 4096, 4096))
    backup = tmp_path / "checkpoints" / "gan"
    with pytest.raises(DiskFull, match=r"0\.0 MB free, but the backup of this stage needs about 16\.0 MB"):
        model.fit(np.zeros((4, 4)), np.zeros((4, 2)), epochs=1, verbose=0,
                  callbacks=[DiskSpaceGuard(backup), keras.callbacks.BackupAndRestore(str(backup))])
    assert not backup.exists()


def test_export_settings_may_change_until_the_export_stage_has_finished(tmp_path):
    """A run whose int8 files could not be made can be finished without them; once the files
    exist (or the data-free bank is drawn, for the calibration count) a change is refused."""
    from tfgan_compress import config
    from tfgan_compress.errors import UsageError

    folder = RunFolder(tmp_path / "F")
    folder.root.mkdir()
    folder.create(config.preset("tiny"))
    fewer_files = config.merge(config.preset("tiny"), {"export": {"variants": ["float32", "dynamic"]}})
    more_calibration = config.merge(config.preset("tiny"), {"export": {"calibration_samples": 99}})
    folder.check_same_settings(fewer_files)
    folder.check_same_settings(more_calibration)
    with pytest.raises(UsageError, match="other settings .distill.epochs"):
        folder.check_same_settings(config.merge(config.preset("tiny"), {"distill": {"epochs": 9}}))
    np.save(folder.calibration_bank, np.zeros((1, 2)))
    folder.check_same_settings(fewer_files)
    with pytest.raises(UsageError, match="other settings .export.calibration_samples"):
        folder.check_same_settings(more_calibration)
    folder.model_card.parent.mkdir()
    folder.model_card.write_text("{}")
    with pytest.raises(UsageError, match="other settings .export.variants"):
        folder.check_same_settings(fewer_files)


def test_an_export_removes_the_files_of_variants_it_no_longer_makes(tmp_path):
    """An export stopped after writing some files, rerun with fewer variants: the files and
    microcontroller kits of the dropped variants go, so tflite/ holds only what the card lists."""
    from tfgan_compress import config
    from tfgan_compress.stages import remove_files_of_other_variants

    folder = RunFolder(tmp_path / "F")
    names = ["student_float32.tflite", "student_int8.tflite", "student_int8_io.tflite", "generator_float16.tflite",
             "generator_float32.tflite", "below_bar/student_int8.tflite", "micro/student_int8_model_data.cc",
             "micro/student_int8_model_data.h", "micro/student_int8_op_resolver.h",
             "micro/student_int8_io_model_data.cc", "labels.txt"]
    for name in names:
        (folder.tflite_dir / name).parent.mkdir(parents=True, exist_ok=True)
        (folder.tflite_dir / name).write_text("x")
    cfg = config.merge(config.preset("tiny"), {"export": {"variants": ["float32", "int8_io"],
                                                          "generator_variants": ["float16"]}}).export
    remove_files_of_other_variants(folder, cfg)
    assert files_in(folder.tflite_dir) == sorted(
        ["below_bar", "generator_float16.tflite", "labels.txt", "micro", "micro/student_int8_io_model_data.cc",
         "student_float32.tflite", "student_int8_io.tflite"])
