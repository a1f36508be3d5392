"""Stages as data: the declaration, the run folder's names, the runner's refusals."""

import re
from pathlib import Path

import pytest

from tfgan_compress import cli, pipeline
from tfgan_compress.commands import STAGE_COMMANDS
from tfgan_compress.config import Mode, choices
from tfgan_compress.run_folder import RunFolder

PACKAGE = Path(pipeline.__file__).resolve().parent


def test_sub_commands_come_from_the_stage_declaration():
    parser = cli.build_parser()
    commands = set(parser._subparsers._group_actions[0].choices)
    assert commands == {"run", "predict", "sample", *pipeline.STAGES} and "data-free" in commands
    # the parser is built from commands.STAGE_COMMANDS (no TensorFlow): the same help and modes
    for name, stage in pipeline.STAGES.items():
        assert STAGE_COMMANDS[name] == (stage.help, stage.modes)


def test_each_mode_runs_its_stages_in_order():
    assert [s.name for s in pipeline.stages_of("gan")] == ["teacher", "gan", "distill", "export", "evaluate"]
    assert [s.name for s in pipeline.stages_of("data-free")] == ["teacher", "data-free", "export", "evaluate"]


@pytest.mark.parametrize("mode", choices(Mode))
def test_every_need_is_made_by_an_earlier_stage_of_the_mode(mode):
    made = set()
    for stage in pipeline.stages_of(mode):
        assert set(stage.needs) <= made, (stage.name, stage.needs)
        for artifact in stage.needs + stage.uses + stage.makes:
            RunFolder("r").path(artifact)  # every artifact has a file
        made.update(stage.makes)


def test_file_names_live_in_the_run_folder_type_only():
    # a string literal that is a file name (f-strings included), or a sub-folder joined onto a path
    file_name = re.compile(r'"[\w/{}-][\w./{}-]*\.(keras|tflite|json|npy|png|md|txt)"')
    sub_folder = re.compile(r'/ "(checkpoints|tflite|logs|samples|below_bar|tmp)"')
    keras_archive_member = 'archive.read("config.json")'  # inside a .keras file: Keras's name, not the run's
    for path in PACKAGE.glob("*.py"):
        # predict.py and the modules beside it in export/ run alone on a device: they cannot import;
        # compat.py names Keras' own backup files; tflite_metadata.py names the metadata format's labels.txt
        if path.name in ("run_folder.py", "predict.py", "compat.py", "tflite_metadata.py", "audio_frontend.py"):
            continue
        code = re.sub(r'"""[\s\S]*?"""', "", path.read_text())  # docstrings may name files
        code = "\n".join(line.split("#")[0] for line in code.splitlines()).replace(keras_archive_member, "")
        found = file_name.search(code) or sub_folder.search(code)
        assert found is None, f"{path.name} names {found.group(0)}"


def test_a_stage_whose_inputs_are_missing_is_refused_before_anything_is_written(tmp_path, capsys):
    out = tmp_path / "run"
    assert cli.main(["distill", "--preset", "tiny", "--out", str(out)]) == 2
    assert "teacher.keras: not found; run the teacher stage first" in capsys.readouterr().err
    assert not out.exists()


def test_a_view_shift_the_images_cannot_take_is_refused_before_the_teacher_trains(tmp_path, capsys):
    out = tmp_path / "run"  # the tiny preset's images are 8x8: a shift of 4 leaves mostly zero fill
    assert cli.main(["run", "--preset", "tiny", "--set", "gan.bn_view_shift=4", "--out", str(out)]) == 2
    assert "gan.bn_view_shift 4 must be below half the images' smaller side (8 pixels)" in capsys.readouterr().err
    assert not out.exists()


def test_a_stage_of_the_other_mode_is_refused(tmp_path, capsys):
    out = tmp_path / "run"
    assert cli.main(["gan", "--mode", "data-free", "--teacher", "t.keras", "--out", str(out)]) == 2
    assert "the gan stage belongs to --mode gan" in capsys.readouterr().err
    assert not out.exists()


def test_data_free_command_needs_a_teacher(tmp_path, capsys):
    assert cli.main(["data-free", "--preset", "tiny", "--out", str(tmp_path / "r")]) == 2
    assert "--mode data-free needs --teacher" in capsys.readouterr().err


def test_a_file_below_its_bar_makes_check_exports_fail_with_exit_status_3(tmp_path):
    import json

    from tfgan_compress.errors import BelowAgreementBar
    from tfgan_compress.run_folder import RunFolder

    folder = RunFolder(tmp_path / "run")
    folder.model_card.parent.mkdir(parents=True)
    files = [{"file": "student_int8.tflite", "agreement_with_keras": 0.995, "agreement_bar": 0.99, "passed": True},
             {"file": "below_bar/student_dynamic.tflite", "agreement_with_keras": 0.986, "agreement_bar": 0.99,
              "passed": False}]
    folder.model_card.write_text(json.dumps({"files": files}))
    with pytest.raises(BelowAgreementBar, match="student_dynamic.tflite: agreement with Keras 98.60% < 99.00%") as info:
        pipeline.check_exports(folder)
    assert info.value.exit_status == 3
    files[1]["passed"] = True
    folder.model_card.write_text(json.dumps({"files": files}))
    pipeline.check_exports(folder)  # all passed: nothing to say


def test_temporary_files_go_under_the_run_folder_and_leftovers_are_removed(tmp_path):
    import tempfile

    folder = RunFolder(tmp_path / "run")
    (folder.scratch_dir / "tmpSavedModel").mkdir(parents=True)  # left by a run killed mid-export
    before = tempfile.gettempdir()
    with pipeline.scratch_space(folder) as scratch:
        assert not (scratch / "tmpSavedModel").exists()
        assert tempfile.mkdtemp().startswith(str(scratch))
    assert tempfile.gettempdir() == before and not scratch.exists()


def test_an_interrupted_stage_counts_its_earlier_time(tmp_path):
    folder = RunFolder(tmp_path / "run")
    folder.root.mkdir()
    folder.record_seconds("gan", 40.0, finished=False)  # epochs done before the interruption
    assert folder.seconds_so_far("gan") == 40.0
    folder.record_seconds("gan", 65.0)
    assert folder.stage_seconds() == {"gan": 65.0} and folder.seconds_so_far("gan") == 0.0


def test_an_output_folder_the_system_refuses_is_a_usage_error(tmp_path, monkeypatch):
    """Writable by its permission bits but refused by the system (/sys, a read-only mount):
    one line, exit 2, not a traceback."""
    import errno

    from tfgan_compress.errors import UsageError

    def refuse(self, *args, **kwargs):
        raise PermissionError(errno.EPERM, "Operation not permitted", str(self))

    monkeypatch.setattr(Path, "mkdir", refuse)
    with pytest.raises(UsageError, match="cannot create the output folder .Operation not permitted."):
        with RunFolder(tmp_path / "run").claimed():
            pass
