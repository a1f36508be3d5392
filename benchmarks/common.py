"""What the benchmark scripts share: their command line, their result files, their errors."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Callable

from tfgan_compress import artifacts
from tfgan_compress.cli import read_config_file, report_failure
from tfgan_compress.errors import TfganCompressError
from tfgan_compress.timing import prefer_onednn_kernels

# The benchmarks measure MNIST-sized images and larger: oneDNN's CPU kernels, asked for before
# anything imports TensorFlow (each script imports this module first).
prefer_onednn_kernels()


def argument_parser(doc: str, default_out: str, default_preset: str | None = "mnist",
                    data_options: bool = True) -> argparse.ArgumentParser:
    """``--data`` and ``--preset`` (unless ``data_options`` is False; ``default_preset`` None:
    the data's own, as ``tfgan-compress run`` picks it), ``--out`` and ``--config``, as the
    benchmarks take them."""
    parser = argparse.ArgumentParser(description=doc.splitlines()[0])
    if data_options:
        parser.add_argument("--data", default="digits", help="data source (see tfgan-compress run --help)")
        parser.add_argument("--preset", default=default_preset,
                            help=f"configuration preset (default {default_preset or 'chosen from the data'})")
    parser.add_argument("--out", default=default_out, help="folder for the runs and the results")
    parser.add_argument("--config", metavar="FILE", help="JSON settings over the preset (as tfgan-compress --config)")
    return parser


def positive(text: str) -> int:
    """An argparse type: a whole number of at least 1."""
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def overrides(args) -> dict | None:
    """The ``--config`` file's settings, or None; read as ``tfgan-compress --config`` reads it."""
    return read_config_file(Path(args.config)) if args.config else None


def write_results(out: Path, name: str, result: dict, markdown: str, progress=print) -> None:
    """``<name>.json`` and ``<name>.md`` in ``out``; the markdown is also printed."""
    artifacts.write_json(out / f"{name}.json", result)
    artifacts.write_text(out / f"{name}.md", markdown + "\n")
    progress(markdown)


def run_main(prog: str, body: Callable[[], object], one_op_at_a_time: bool = True) -> int:
    """``body()``; a known failure as one line and tfgan-compress's exit status. TensorFlow
    runs one op at a time on every core (:func:`tfgan_compress.timing.use_all_cores_per_op`),
    as the CLI does, unless ``one_op_at_a_time`` is False (data-free runs, as in the CLI)."""
    from tfgan_compress.timing import use_all_cores_per_op

    if one_op_at_a_time:
        use_all_cores_per_op()
    try:
        body()
    except TfganCompressError as err:
        return report_failure(prog, err)
    return 0


def finished_gan_run(run: Path):
    """(the :class:`RunFolder`, its :class:`RunConfig`) of a GAN-mode run folder whose
    teacher takes [0, 1] input as the generator's samples are; :class:`UsageError` otherwise."""
    import json

    from tfgan_compress import config as configs
    from tfgan_compress.errors import UsageError
    from tfgan_compress.run_folder import RunFolder

    folder = RunFolder(run)
    if not all(path.is_file() for path in (folder.config_json, folder.teacher_input_json, folder.path("generator"))):
        raise UsageError(f"{run}: not a GAN-mode run folder with its config.json, teacher_input.json and "
                         f"generator.keras")
    if json.loads(folder.teacher_input_json.read_text())["convention"] != "0-1":
        raise UsageError(f"{run}: its teacher does not take [0, 1] input, as the generator's samples are")
    return folder, configs.RunConfig.from_dict(json.loads(folder.config_json.read_text()))

