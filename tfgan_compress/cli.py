"""``tfgan-compress``: a thin command line over :mod:`tfgan_compress.pipeline`.

Sub-commands: ``run``, one per declared stage (:data:`pipeline.STAGES`), and ``predict``
(:mod:`tfgan_compress.predict`, LiteRT only). Exit status: 0
on success; otherwise the status on the error's class (:mod:`tfgan_compress.errors`: 2 for
bad input, one line, no traceback unless ``--debug``; 1 for a run that stopped; 3 for a run
that finished with an exported file below its agreement bar), 1 for anything unexpected,
and 130 when interrupted (Ctrl-C, or SIGTERM as a job scheduler or ``timeout`` sends: it is
turned into the same interrupt, so that scratch files are removed on the way out).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
from pathlib import Path
from typing import Callable

from . import console
from .compat import sub_parsers
from .config import Mode, Strategy, TeacherInput, choices
from .errors import TfganCompressError, UsageError, first_line, one_line
from .run_folder import RunFolder

EXIT_OK, EXIT_FAILURE = 0, 1
EXIT_INTERRUPTED = 130  # 128 + SIGINT, as shells report an interrupted command


def build_parser() -> argparse.ArgumentParser:
    """``run`` and one sub-command per declared stage (:data:`pipeline.STAGES`)."""
    from .commands import STAGE_COMMANDS
    from .config import PRESETS

    parser = argparse.ArgumentParser(
        prog="tfgan-compress",
        description="Compress a Keras image classifier into a tiny TFLite model with a conditional GAN "
                    "and knowledge distillation.")
    from . import __version__

    parser.add_argument("--version", action="version", version=f"tfgan-compress {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    commands = {"run": "every stage of the mode, in order: " + "; ".join(
        f"{mode}: {', '.join(name for name, (_, modes) in STAGE_COMMANDS.items() if mode in modes)}"
        for mode in choices(Mode))}
    commands.update({name: help_text for name, (help_text, _) in STAGE_COMMANDS.items()})
    for name, help_text in commands.items():
        p = sub.add_parser(name, help=help_text, description=help_text)
        p.add_argument("--data", help="digits (default), tfds:NAME, idx:DIR, npz:FILE or folder:DIR")
        p.add_argument("--preset", help=f"named configuration: {', '.join(PRESETS)} (default: digits for "
                                        "images up to 16x16, color for RGB from 32x32, mnist otherwise)")
        p.add_argument("--config", metavar="FILE", help="JSON file of settings over the preset")
        p.add_argument("--set", metavar="SECTION.KEY=VALUE", action="append", default=[], dest="settings",
                       help="one setting over the preset and --config, e.g. --set gan.epochs=5 (VALUE in JSON: "
                            "numbers, true/false, [lists]; anything else is text; a list setting also takes a,b,c); repeatable")
        p.add_argument("--out", metavar="DIR",
                       help="run directory (run: default runs/<preset>-<timestamp>; other commands: required)")
        p.add_argument("--seed", type=int, help="random seed (default 0)")
        p.add_argument("--strategy", choices=choices(Strategy),
                       help="tf.distribute strategy for training (default: one device); multi-worker reads TF_CONFIG")
        p.add_argument("--mode", choices=choices(Mode),
                       help="gan (default): learn the data with a conditional GAN; data-free: from --teacher alone, "
                            "--data only for the test-split report")
        p.add_argument("--teacher", metavar="PATH", help="use this classifier (.keras, or a legacy .h5) as the teacher")
        p.add_argument("--teacher-input", choices=choices(TeacherInput),
                       help="pixel range the --teacher takes: 0-1, 0-255, -1-1 or standardized ((x - mean) / std "
                            "with the test split's pixel statistics) (default auto: measured on the test split); "
                            "the student takes the same")
        p.add_argument("--student", metavar="FILE", help="a student architecture (.keras or .h5) to train from scratch "
                                                          "(default: the preset's student network)")
        p.add_argument("--student-budget-kb", metavar="N", type=float,
                       help="pick the widest student of the preset's family whose int8 file fits in N KB "
                            "(1 KB = 1024 bytes)")
        p.add_argument("--unsafe-load", action="store_true",
                       help="allow --teacher/--student files that contain Python code (Lambda layers); only for files you "
                            "trust")
        p.add_argument("--quiet", action="store_true",
                       help="print nothing but errors (for scripts; the exit status says how it went)")
        p.add_argument("--debug", action="store_true",
                       help="show full tracebacks and every TensorFlow log line (unfiltered stderr)")
    predict_help = ("run an exported .tflite classifier with LiteRT on images (no TensorFlow); with the true "
                    "classes, print its accuracy")
    p = sub.add_parser("predict", help=predict_help, description=predict_help)
    from . import predict

    predict.add_arguments(p)
    p.add_argument("--debug", action="store_true", help="unfiltered stderr")
    sample_help = ("write class-balanced samples of a generator (.keras or .tflite) as <class>/NNNNN.png folders "
                   "(the layout keras.utils.image_dataset_from_directory reads) or one .npz: the dataset in a file")
    p = sub.add_parser("sample", help=sample_help, description=sample_help)
    p.add_argument("generator", help="generator.keras of a run folder, or tflite/generator_*.tflite")
    p.add_argument("--out", required=True, help="a new folder (PNG per class + labels.txt), or FILE.npz (x, y, "
                                                "class_names)")
    count = p.add_mutually_exclusive_group(required=True)
    count.add_argument("--per-class", type=int, metavar="N", help="samples of each class")
    count.add_argument("--total", type=int, metavar="N", help="samples in all, spread evenly over the classes")
    p.add_argument("--seed", type=int, default=0, help="noise seed: the same seed writes the same samples")
    p.add_argument("--labels", metavar="FILE", help="class names, one per line (default: labels.txt beside the "
                                                     "generator, or in tflite/ beside generator.keras)")
    p.add_argument("--wav", action="store_true", help="audio runs: also <class>/NNNNN.wav (Griffin-Lim)")
    p.add_argument("--quiet", action="store_true", help="print nothing but errors")
    p.add_argument("--debug", action="store_true", help="show full tracebacks")
    return parser


def read_config_file(path: Path):
    """The JSON value of a ``--config`` file; a missing, unreadable or malformed file is a
    :class:`UsageError` naming it (whether the value is a settings object, :func:`config.merge` checks)."""
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise UsageError(f"{path}: file not found") from None
    except IsADirectoryError:
        raise UsageError(f"{path}: is a folder; --config takes a JSON file") from None
    except UnicodeDecodeError as err:
        raise UsageError(f"{path}: not UTF-8 text ({err.reason} at byte {err.start}); --config takes a JSON "
                         f"file") from None
    except OSError as err:
        raise UsageError(f"{path}: cannot read ({err.strerror})") from None
    except json.JSONDecodeError as err:
        raise UsageError(f"{path}: not valid JSON ({err})") from None


def resolve_config(args, default_preset: Callable[[], str]):
    """Preset (or the run directory's config.json), then --config, then the flags.

    ``default_preset()`` names the preset when neither --preset nor a saved config says.
    """
    from . import config as cfg

    saved = RunFolder(args.out).config_json if args.out else None
    if args.command != "run" and saved is not None and saved.is_file() and not args.preset and not args.config:
        try:
            config = cfg.RunConfig.from_dict(json.loads(saved.read_text()))
        except json.JSONDecodeError as err:
            raise UsageError(f"{saved}: not valid JSON ({err})") from None
    else:
        config = cfg.preset(args.preset or default_preset())
    given: dict = {}  # the settings given over the preset, to refuse those this run never reads
    if args.config:
        path = Path(args.config)
        overrides = read_config_file(path)
        try:
            config = cfg.merge(config, overrides)
        except UsageError as err:
            raise UsageError(f"{path}: {err}") from None
        given = overrides if isinstance(overrides, dict) else {}
    if getattr(args, "settings", None):
        pairs = settings_from_pairs(args.settings)
        config = cfg.merge(config, pairs)
        for section, values in pairs.items():
            if isinstance(values, dict):
                given.setdefault(section, {}).update(values)
    if args.data:
        config.data = args.data
    if args.seed is not None:
        config.seed = args.seed
    if args.teacher:
        config.teacher_path = args.teacher
    if args.teacher_input:
        config.teacher_input = args.teacher_input
    if args.student:
        config.student_path = args.student
    if args.student_budget_kb is not None:
        config.student_budget_kb = args.student_budget_kb
    if args.strategy:
        config.strategy = args.strategy
    if args.mode:
        config.mode = args.mode
    else:  # a new run folder takes the mode of the stage it starts with (data-free)
        from .commands import STAGE_COMMANDS

        modes = STAGE_COMMANDS.get(args.command, (None, ()))[1]
        if len(modes) == 1 and not (saved is not None and saved.is_file()):
            config.mode = modes[0]
    config.validate()
    cfg.check_overrides_are_read(given, config)
    return config


def settings_from_pairs(pairs) -> dict:
    """``["gan.epochs=5", "distill.network.conv_filters=[8, 16]"]`` -> nested settings; each
    value is read as JSON when it parses (numbers, booleans, lists, null), else as text."""
    settings: dict = {}
    for pair in pairs:
        key, sep, raw = pair.partition("=")
        if not sep or not key.strip() or any(not part for part in key.strip().split(".")):
            raise UsageError(f"--set {pair!r}: expected SECTION.KEY=VALUE, e.g. --set gan.epochs=5")
        try:
            value = json.loads(raw)
        except json.JSONDecodeError:
            value = raw
        *sections, name = key.strip().split(".")
        target = settings
        for section in sections:
            target = target.setdefault(section, {})
            if not isinstance(target, dict):
                raise UsageError(f"--set {pair!r}: {section} is set to a value and used as a section")
        target[name] = value
    return settings


def execute(args) -> None:
    """Check the arguments, the config and the data (before TensorFlow is imported), then run."""
    from . import config as cfg, data

    loaded = {}

    def load(source: str, audio=None):
        key = (source, repr(audio))
        if key not in loaded:
            loaded[key] = data.load(source, audio=audio)
        return loaded[key]

    def preset_for_data() -> str:
        source = args.data or cfg.RunConfig.data
        return "speech" if data.is_audio(source) else cfg.preset_for(load(source).spec)

    if args.command != "run" and not args.out:
        raise UsageError(f"{args.command} needs --out DIR (the run directory)")
    config = resolve_config(args, preset_for_data)
    from .timing import prefer_onednn_kernels, use_all_cores_per_op

    audio = config.audio_settings()
    if args.command == "run" or (config.data, repr(audio)) in loaded:
        image_shape = load(config.data, audio).spec.image_shape
    else:  # a stage on a run folder, data not read yet: the presets for small images say
        image_shape = (8, 8) if config.preset in ("digits", "tiny") else None
    prefer_onednn_kernels(image_shape)
    from . import pipeline  # TensorFlow from here on

    if config.mode != "data-free" and args.command != "data-free":  # its graph runs faster with two op pools
        use_all_cores_per_op()
    safe_mode = not args.unsafe_load
    progress = (lambda line: None) if args.quiet else print
    verbose = 0 if args.quiet else None
    if args.command == "run":  # the Python API's one call, then the exit status of its exports
        from .api import compress

        result = compress(None, load(config.data, audio), args.out, config=config, unsafe_load=not safe_mode,
                          progress=progress, verbose=verbose)
        pipeline.check_exports(result.folder)
        return
    stage = pipeline.STAGES[args.command]
    dataset = load(config.data, audio) if stage.needs_data else None
    ctx = pipeline.run_stages(config, args.out, [args.command], progress=progress, safe_mode=safe_mode,
                              dataset=dataset, verbose=verbose)
    if args.command in ("export", "evaluate"):
        pipeline.check_exports(ctx.folder)


def report_failure(prog: str, err: TfganCompressError) -> int:
    """Print one line for a known failure and return its exit status (on the error's class)."""
    print(one_line(prog, err), file=sys.stderr)
    return err.exit_status


@contextlib.contextmanager
def interrupt_on_sigterm():
    """Within the block, SIGTERM raises KeyboardInterrupt, as Ctrl-C does: ``finally`` blocks
    remove scratch files (Python's default for SIGTERM is to die at once, leaving them)."""
    import signal
    import threading

    def interrupt(signum, frame):
        raise KeyboardInterrupt

    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def main(argv=None) -> int:
    parser = build_parser()
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv[:1] == ["predict"]:  # image paths and flags in any order (argparse cannot intermix under sub-commands)
        predict_parser = sub_parsers(parser)["predict"]
        args = predict_parser.parse_intermixed_args(argv[1:])
        args.command = "predict"
    else:
        args = parser.parse_args(argv)  # exits with status 2 on usage errors; TensorFlow not imported yet
    with console.filtered_stderr(enabled=not args.debug), interrupt_on_sigterm():
        if args.command == "predict":
            from . import predict

            return predict.run_checked(parser, args, "tfgan-compress predict")
        return run_command(args)


def sample(args) -> None:
    """``tfgan-compress sample``: :func:`sampling.write_samples`."""
    from . import sampling

    progress = (lambda line: None) if args.quiet else print
    done = sampling.write_samples(args.generator, args.out, args.per_class, args.total, args.seed, args.labels,
                                  args.wav, progress=progress)
    progress(f"{done['samples']:,} samples of {done['classes']} classes (seed {done['seed']}): {done['out']}")


def run_command(args) -> int:
    """``execute(args)`` (or ``sample(args)``); known failures as one line and their exit status."""
    try:
        sample(args) if args.command == "sample" else execute(args)
    except TfganCompressError as err:
        if args.debug:
            raise
        return report_failure("tfgan-compress", err)
    except KeyboardInterrupt:
        again = ("nothing was written; run the same command again" if args.command == "sample"
                 else "run the same command again to continue")
        print(f"tfgan-compress: interrupted; {again}", file=sys.stderr)
        return EXIT_INTERRUPTED
    except Exception as err:  # noqa: BLE001 - the CLI's last line of defence
        if args.debug:
            raise
        print(f"tfgan-compress: failed: {type(err).__name__}: {first_line(err)} (rerun with --debug for the "
              f"traceback)", file=sys.stderr)
        return EXIT_FAILURE
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
