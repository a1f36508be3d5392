#!/usr/bin/env python3
"""``--student-budget-kb`` on one teacher and generator: the student per int8 budget.

    python benchmarks/budget.py --data idx:../shared/data/mnist --budgets 16 32 64 --out benchmarks/results/budget

1. the preset's teacher and conditional GAN, once (the ``teacher`` and ``gan`` stages);
2. for each budget, a run folder holding those and the ``distill``, ``export`` and
   ``evaluate`` stages with ``student_budget_kb`` set: the widest student of the preset's
   family whose int8 file fits.

Writes ``budget.json`` and ``budget.md``: per budget the width found, the student's
parameters, its int8 file's bytes, whether it fits, and the real-test accuracy of the
float32 and int8 students.
"""

from __future__ import annotations

import dataclasses
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # run from a checkout without installing
    sys.path.insert(0, str(ROOT))

from benchmarks import common  # noqa: E402  (first: it chooses the CPU kernels before TensorFlow loads)

from tfgan_compress import artifacts, config as configs, data, pipeline  # noqa: E402
from tfgan_compress.errors import UsageError  # noqa: E402
from tfgan_compress.report import markdown_table  # noqa: E402
from tfgan_compress.run_folder import RunFolder  # noqa: E402
from tfgan_compress.student import KB  # noqa: E402

SHARED = ("teacher", "teacher_input", "generator")
COLUMNS = [("budget_kb", "budget KB", "{:g}"), ("conv_filters", "conv filters", "{}"),
           ("dense_units", "dense units", "{}"), ("params", "params", "{:,}"), ("int8_bytes", "int8 bytes", "{:,}"),
           ("fits", "fits", "{}"), ("student", "student (Keras)", "{:.2%}"), ("student_int8", "int8 TFLite", "{:.2%}"),
           ("distill_seconds", "distill s", "{:.0f}")]


def run_budgets(source: str, preset: str, out: Path, budgets, seed: int = 0, overrides: dict | None = None,
                progress=print) -> dict:
    if not budgets:
        raise UsageError("give at least one budget")
    config = configs.merge(configs.preset(preset), overrides or {})
    config.data, config.seed = source, seed
    dataset = data.load(source)
    artifacts.check_writable_dir(out)
    progress("== teacher and GAN, once ==")
    base = pipeline.run_stages(config, out / "base", ["teacher", "gan"], progress, dataset=dataset).folder
    rows = []
    for budget in budgets:
        progress(f"== student within {budget:g} KB ==")
        folder = RunFolder(out / f"budget-{budget:g}kb")
        folder.start_from(base, SHARED)
        budget_config = dataclasses.replace(config, student_budget_kb=float(budget))
        pipeline.run_stages(budget_config, folder.root, ["distill", "export", "evaluate"], progress, dataset=dataset)
        report = folder.load("report")
        models = {row["name"]: row for row in report["models"]}
        int8 = models["student_int8"]["bytes"]
        rows.append({"budget_kb": budget, **{k: tuple(v) for k, v in report["student_network"].items()
                                             if k in ("conv_filters", "dense_units")},
                     "params": models["student"]["params"], "int8_bytes": int8, "fits": int8 <= budget * KB,
                     "student": models["student"]["accuracy"], "student_int8": models["student_int8"]["accuracy"],
                     "distill_seconds": report["stage_seconds"]["distill"]})
    result = {"data": source, "preset": preset, "seed": seed, "rows": rows, "test_images": len(dataset.x_test)}
    text = "\n".join([f"# Student budgets on `{source}`", "",
                      f"Preset `{preset}`, seed {seed}, {len(dataset.x_test)} real test images; one teacher and "
                      f"generator for every row; 1 KB = {KB} bytes.", "", markdown_table(rows, COLUMNS)])
    common.write_results(out, "budget", result, text, progress)
    return result


def main(argv=None) -> int:
    parser = common.argument_parser(__doc__, "benchmarks/results/budget")
    parser.add_argument("--budgets", type=float, nargs="+", default=[16, 32, 64], help="int8 budgets in KB")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    return common.run_main("budget", lambda: run_budgets(args.data, args.preset, Path(args.out), args.budgets,
                                                         args.seed, common.overrides(args)))


if __name__ == "__main__":
    sys.exit(main())
