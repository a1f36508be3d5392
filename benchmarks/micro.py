#!/usr/bin/env python3
"""Microcontroller figures of finished run folders: int8 bytes, tensor arena, TFLite-Micro
accuracy beside LiteRT's, on each run's real test split.

    python benchmarks/micro.py --runs runs/digits,benchmarks/results/color-screen/baseline \\
        --out benchmarks/results/micro

For every ``student_int8*.tflite`` of each run (the files as the run wrote them): the arena
measured by :func:`tfgan_compress.micro.measure_arena` (the smallest that loads and runs in
the TFLite-Micro interpreter), the test accuracy in TFLite-Micro and in LiteRT (its default
XNNPACK path, as on a phone), and their difference (the issue's bar: at most 0.1 points);
beside them LiteRT's built-in kernels (no delegate), whose arithmetic TFLite-Micro
follows, and the share of examples to which TFLite-Micro gives the class of each LiteRT path. Works on run folders of earlier versions
too (it does not need their kit). Writes ``micro.json`` and ``micro.md``.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks import common  # noqa: E402

from tfgan_compress import config as configs, data, micro, pipeline  # noqa: E402,F401  (pipeline first: the import order)
from tfgan_compress.errors import UsageError  # noqa: E402
from tfgan_compress.report import markdown_table  # noqa: E402
from tfgan_compress.run_folder import RunFolder  # noqa: E402
from tfgan_compress.teacher import to_convention  # noqa: E402

COLUMNS = [("run", "run", "{}"), ("file", "file", "{}"), ("bytes", "bytes", "{:,}"),
           ("arena_bytes", "arena bytes (measured)", "{:,}"), ("litert_accuracy", "LiteRT int8", "{:.2%}"),
           ("micro_accuracy", "TFLite-Micro", "{:.2%}"), ("difference_points", "difference (points)", "{:+.2f}"),
           ("litert_builtin_accuracy", "LiteRT int8, built-in kernels", "{:.2%}"),
           ("same_class_as_litert_builtin", "TFLite-Micro class = built-in kernels' class", "{:.2%}"),
           ("same_class_as_litert", "TFLite-Micro class = XNNPACK's class", "{:.2%}"),
           ("test_examples", "test examples", "{:,}")]


def run_rows(run: Path, progress=print) -> list[dict]:
    folder = RunFolder(run)
    if not folder.config_json.is_file():
        raise UsageError(f"{run}: not a run folder (no config.json)")
    config = configs.RunConfig.from_dict(json.loads(folder.config_json.read_text()))
    dataset = data.load(config.data, audio=config.audio_settings())
    x = to_convention(dataset.x_test, folder.load("teacher_input"))
    rows = []
    for variant in ("int8", "int8_io"):
        path = folder.tflite("student", variant)
        if not path.is_file():
            continue
        content = path.read_bytes()
        arena = micro.measure_arena(content)
        progress(f"{run}: {path.name}, arena {arena:,} bytes; {len(x):,} test examples in TFLite-Micro")
        compared = micro.compare_with_litert(content, x, dataset.y_test, micro.recommended_arena(arena))
        compared.pop("probabilities")
        rows.append({"run": str(run), "file": path.name, "bytes": len(content), "arena_bytes": arena, **compared,
                     "difference_points": 100 * (compared["micro_accuracy"] - compared["litert_accuracy"]),
                     "test_examples": len(x)})
    return rows


def main(argv=None) -> int:
    parser = common.argument_parser(__doc__, "benchmarks/results/micro", data_options=False)
    parser.add_argument("--runs", required=True, help="comma-separated run folders")
    args = parser.parse_args(argv)

    def body():
        rows = [row for run in args.runs.split(",") if run for row in run_rows(Path(run))]
        common.write_results(Path(args.out), "micro", {"rows": rows},
                             "# Microcontroller figures\n\n" + markdown_table(rows, COLUMNS))

    return common.run_main("micro.py", body)


if __name__ == "__main__":
    sys.exit(main())
