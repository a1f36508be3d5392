"""Data-free mode over several seeds: accuracy mean and spread, and wall-clock time.

    python benchmarks/datafree.py --data idx:../shared/data/mnist --out benchmarks/results/datafree-mnist

1. the preset's teacher is trained once on the real training split (seed 0), as
   ``tfgan-compress teacher`` would (or ``--teacher FILE`` is used as given);
2. for each seed, ``tfgan-compress run --mode data-free --teacher ...``: generator and
   student from the teacher alone, export, report. The real test split is used for the
   report only.

On the ``mnist`` preset the student is the papers' LeNet-5-half
(:func:`tfgan_compress.config.lenet5_half`), so that the figures compare with DAFL and DFAD
(the preset's own student is a little larger); ``--config`` with ``distill.network``
overrides it.

Writes ``datafree.json`` and ``datafree.md`` into ``--out``: per seed the float32 student,
the int8 TFLite student, the data-free stage's time and the whole data-free run's time;
then mean and sample standard deviation over the seeds.
"""

from __future__ import annotations

import dataclasses
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # run from a checkout without installing
    sys.path.insert(0, str(ROOT))

from benchmarks import common  # noqa: E402  (first: it chooses the CPU kernels before TensorFlow loads)

from tfgan_compress import artifacts, config as configs, data, pipeline  # noqa: E402
from tfgan_compress.errors import UsageError  # noqa: E402
from tfgan_compress.export import ModelCard  # noqa: E402
from tfgan_compress.run_folder import RunFolder  # noqa: E402
from tfgan_compress.report import markdown_table  # noqa: E402

COLUMNS = [
    ("seed", "seed", "{}"),
    ("teacher", "teacher", "{:.2%}"),
    ("student_float32", "student (Keras)", "{:.2%}"),
    ("student_int8", "student int8 TFLite", "{:.2%}"),
    ("int8_agreement", "int8 agrees with Keras", "{:.2%}"),
    ("int8_passed", "int8 passed its bar", "{}"),
    ("datafree_seconds", "data-free stage s", "{:.0f}"),
    ("run_seconds", "whole run s", "{:.0f}"),
]


def accuracy(report: dict, name: str) -> float:
    for row in report["models"]:
        if row["name"] == name:
            return row["accuracy"]
    raise KeyError(name)


def int8_check(run_dir: Path) -> tuple[float, bool]:
    """(top-1 agreement of the int8 file with the Keras student on the test images, whether
    it passed the export bar), from the run's model card."""
    card = ModelCard(RunFolder(run_dir).model_card).read()
    for entry in card["files"]:
        if Path(entry["file"]).name == "student_int8.tflite":
            return entry["agreement_with_keras"], entry["passed"]
    raise KeyError(f"{run_dir}: no int8 student in the model card")


def run_seeds(source: str, preset: str, out: Path, seeds, teacher_path: str | None = None,
              overrides: dict | None = None, progress=print) -> dict:
    if not seeds:
        raise UsageError("give at least one seed")
    base = configs.preset(preset)
    if preset == "mnist":  # the papers' pair, LeNet-5 -> LeNet-5-half
        base.distill.network = configs.lenet5_half()
    base = configs.merge(base, overrides or {})
    base.data = source
    base.validate()
    dataset = data.load(source)
    artifacts.check_writable_dir(out)
    if teacher_path is None:
        progress("== teacher (seed 0, real training split) ==")
        teacher_config = dataclasses.replace(base, seed=0)
        trained = pipeline.run_stages(teacher_config, out / "teacher", ["teacher"], progress, dataset=dataset)
        teacher_path = str(trained.folder.path("teacher"))
    rows = []
    for seed in seeds:
        progress(f"== data-free, seed {seed} ==")
        config = dataclasses.replace(base, seed=seed, mode="data-free", teacher_path=teacher_path)
        start = time.time()
        report = pipeline.run(config, out / f"seed{seed}", progress=progress, dataset=dataset)
        rows.append({"seed": seed, "teacher": accuracy(report, "teacher"),
                     "student_float32": accuracy(report, "student"),
                     "student_int8": accuracy(report, "student_int8"),
                     **dict(zip(("int8_agreement", "int8_passed"), int8_check(out / f"seed{seed}"))),
                     "datafree_seconds": report["stage_seconds"]["data-free"],
                     "run_seconds": round(time.time() - start, 1)})
    summary = {}
    for key in ("student_float32", "student_int8", "int8_agreement", "datafree_seconds", "run_seconds"):
        values = [row[key] for row in rows]
        summary[key] = {"mean": statistics.mean(values), "std": statistics.stdev(values) if len(values) > 1 else 0.0,
                        "min": min(values), "max": max(values)}
    result = {"data": source, "preset": preset, "teacher_path": teacher_path, "seeds": list(seeds), "rows": rows,
              "summary": summary, "test_images": len(dataset.x_test)}
    write_outputs(out, result)
    return result


def write_outputs(out: Path, result: dict) -> None:
    s = result["summary"]

    def spread(key, scale=100.0, unit="%"):
        return (f"{s[key]['mean'] * scale:.2f}{unit} +- {s[key]['std'] * scale:.2f} "
                f"(min {s[key]['min'] * scale:.2f}, max {s[key]['max'] * scale:.2f})")

    lines = [
        f"# Data-free mode on `{result['data']}`",
        "",
        f"Preset `{result['preset']}`, teacher `{result['teacher_path']}`, {result['test_images']} real test images.",
        "",
        markdown_table(result["rows"], COLUMNS),
        "",
        f"- student (Keras): {spread('student_float32')}",
        f"- student int8 TFLite: {spread('student_int8')}",
        f"- int8 file's top-1 agreement with the Keras student: {spread('int8_agreement')}",
        f"- data-free stage: {spread('datafree_seconds', 1.0, ' s')}; whole run: {spread('run_seconds', 1.0, ' s')}",
        "",
        "+- is the sample standard deviation over the seeds.",
    ]
    common.write_results(out, "datafree", result, "\n".join(lines))


def main(argv=None) -> int:
    parser = common.argument_parser(__doc__, "benchmarks/results/datafree")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--teacher", metavar="FILE", help="use this teacher instead of training the preset's")
    args = parser.parse_args(argv)
    return common.run_main("datafree", lambda: run_seeds(args.data, args.preset, Path(args.out), args.seeds,
                                                         args.teacher, common.overrides(args)),
                           one_op_at_a_time=False)  # as the CLI runs data-free

if __name__ == "__main__":
    sys.exit(main())
