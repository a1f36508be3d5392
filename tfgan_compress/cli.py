"""``tfgan-compress``: a thin command line over :mod:`tfgan_compress.pipeline`.

Exit status: 0 on success, 2 on bad input or usage (one-line message, no traceback unless
``--debug``), 1 on any other failure.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Callable

from .errors import ExportError, TfganCompressError, TrainingDiverged, UsageError

EXIT_OK, EXIT_FAILURE, EXIT_USAGE = 0, 1, 2

STAGE_HELP = {
    "run": "all stages: teacher, gan, distill, export, evaluate",
    "teacher": "train the teacher on the real training split (or copy --teacher into the run)",
    "gan": "train the conditional GAN; writes generator.keras and sample grids",
    "distill": "distil the student on generator samples only; writes student.keras",
    "export": "convert the student to TFLite (float32, float16, dynamic, int8)",
    "evaluate": "measure every model on the real test split; writes report.md/json",
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="tfgan-compress",
        description="Compress a Keras image classifier into a tiny TFLite model with a conditional GAN "
                    "and knowledge distillation.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name, help_text in STAGE_HELP.items():
        p = sub.add_parser(name, help=help_text, description=help_text)
        p.add_argument("--data", help="digits (default), tfds:NAME, idx:DIR, npz:FILE or folder:DIR")
        p.add_argument("--preset", help="named configuration: digits, mnist or tiny (default: digits for "
                                        "images up to 16x16, mnist above)")
        p.add_argument("--config", metavar="FILE", help="JSON file of settings over the preset")
        p.add_argument("--out", metavar="DIR",
                       help="run directory (run: default runs/<preset>-<timestamp>; other stages: required)")
        p.add_argument("--seed", type=int, help="random seed (default 0)")
        p.add_argument("--strategy", choices=["default", "mirrored", "multi-worker", "tpu"],
                       help="tf.distribute strategy for training (default: one device); multi-worker reads TF_CONFIG")
        p.add_argument("--mode", choices=["gan", "data-free"],
                       help="gan (default): learn the data with a conditional GAN; data-free: from --teacher alone, "
                            "--data only for the test-split report")
        p.add_argument("--teacher", metavar="PATH", help="use this .keras classifier as the teacher")
        p.add_argument("--unsafe-load", action="store_true",
                       help="allow --teacher files that contain Python code (Lambda layers); only for files you trust")
        p.add_argument("--debug", action="store_true", help="show full tracebacks")
    return parser


def resolve_config(args, default_preset: Callable[[], str]):
    """Preset (or the run directory's config.json), then --config, then the flags.

    ``default_preset()`` names the preset when neither --preset nor a saved config says.
    """
    from . import config as cfg

    saved = Path(args.out) / "config.json" if args.out else None
    if args.command != "run" and saved is not None and saved.is_file() and not args.preset and not args.config:
        try:
            config = cfg.RunConfig.from_dict(json.loads(saved.read_text()))
        except json.JSONDecodeError as err:
            raise UsageError(f"{saved}: not valid JSON ({err})") from None
    else:
        config = cfg.preset(args.preset or default_preset())
    if args.config:
        path = Path(args.config)
        try:
            overrides = json.loads(path.read_text())
        except FileNotFoundError:
            raise UsageError(f"{path}: file not found") from None
        except json.JSONDecodeError as err:
            raise UsageError(f"{path}: not valid JSON ({err})") from None
        try:
            config = cfg.merge(config, overrides)
        except UsageError as err:
            raise UsageError(f"{path}: {err}") from None
    if args.data:
        config.data = args.data
    if args.seed is not None:
        config.seed = args.seed
    if args.teacher:
        config.teacher_path = args.teacher
    if args.strategy:
        config.strategy = args.strategy
    if args.mode:
        config.mode = args.mode
    return config.validate()


def execute(args) -> None:
    from . import config as cfg, data, pipeline

    loaded = {}

    def load(source: str):
        if source not in loaded:
            loaded[source] = data.load(source)
        return loaded[source]

    def preset_for_data() -> str:
        return cfg.preset_for(load(args.data or cfg.RunConfig.data).spec)

    config = resolve_config(args, preset_for_data)
    safe_mode = not args.unsafe_load
    if args.command == "run":
        pipeline.run(config, args.out, safe_mode=safe_mode, dataset=load(config.data))
        return
    if not args.out:
        raise UsageError(f"{args.command} needs --out DIR (the run directory)")
    needs_data = args.command in ("teacher", "gan", "export", "evaluate")
    dataset = load(config.data) if needs_data else None
    run = pipeline.Run.create(config, args.out, safe_mode=safe_mode)
    if args.command == "teacher":
        run.teacher(dataset)
    elif args.command == "gan":
        teacher = run.teacher(None) if run.teacher_path.is_file() else None
        run.gan(dataset, teacher)
    elif args.command == "distill":
        teacher, generator = _require(run, "teacher"), _require(run, "generator")
        run.distill(teacher, generator)
    elif args.command == "export":
        student, generator = _require(run, "student"), _require(run, "generator")
        teacher = _require(run, "teacher") if run.teacher_path.is_file() else None  # for teacher_float32.tflite
        run.export(student, generator, dataset.class_names, dataset.x_test, dataset, teacher)
    elif args.command == "evaluate":
        _required_path(run, "teacher"), _required_path(run, "student")  # evaluate loads them itself
        run.evaluate(dataset)


def _required_path(run, what: str) -> Path:
    """The run's ``<what>.keras``, or a usage error naming the stage that makes it."""
    path = getattr(run, f"{what}_path")
    if not path.is_file():
        raise UsageError(f"{path}: not found; run the {what if what != 'generator' else 'gan'} stage first")
    return path


def _require(run, what: str):
    import keras

    return keras.models.load_model(_required_path(run, what), compile=False, safe_mode=run.safe_mode)


KNOWN_FAILURES = (TfganCompressError, TrainingDiverged, ExportError)


def report_failure(prog: str, err: Exception) -> int:
    """Print one line for a known failure and return its exit status: 2 for bad input
    (usage, data, model), 1 for a run that stopped (diverged training, failed export)."""
    if isinstance(err, TfganCompressError):
        print(f"{prog}: error: {err}", file=sys.stderr)
        return EXIT_USAGE
    what = "training stopped" if isinstance(err, TrainingDiverged) else "export failed"
    print(f"{prog}: {what}: {err}", file=sys.stderr)
    return EXIT_FAILURE


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)  # exits with status 2 on usage errors
    try:
        execute(args)
    except KNOWN_FAILURES as err:
        if args.debug:
            raise
        return report_failure("tfgan-compress", err)
    except KeyboardInterrupt:
        print("tfgan-compress: interrupted; run the same command again to continue", file=sys.stderr)
        return EXIT_FAILURE
    except Exception as err:  # noqa: BLE001 - the CLI's last line of defence
        if args.debug:
            raise
        message = str(err).strip().splitlines()[0] if str(err).strip() else ""
        print(f"tfgan-compress: failed: {type(err).__name__}: {message} (rerun with --debug for the traceback)",
              file=sys.stderr)
        return EXIT_FAILURE
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
