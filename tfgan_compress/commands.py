"""The stages' names, help texts and modes: what the command line needs to build its
sub-commands, in a module that imports nothing heavy (so that arguments are checked before
TensorFlow is imported). :data:`pipeline.STAGES` declares the rest of each stage.
"""

from __future__ import annotations

BOTH_MODES = ("gan", "data-free")

#: name -> (help, modes), in run order
STAGE_COMMANDS: dict[str, tuple[str, tuple[str, ...]]] = {
    "teacher": ("train the teacher on the real training split (or copy --teacher into the run)", BOTH_MODES),
    "gan": ("train the conditional GAN; writes generator.keras and sample grids", ("gan",)),
    "distill": ("distil the student on generator samples only; writes student.keras", ("gan",)),
    "data-free": ("generator and student from the teacher alone (no real training image)", ("data-free",)),
    "export": ("convert the student to TFLite (float32, float16, dynamic, int8, int8_io)", BOTH_MODES),
    "evaluate": ("measure every model on the real test split; writes report.md/json", BOTH_MODES),
}
