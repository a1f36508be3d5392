"""``report.json``, ``report.md`` and ``frontier.png`` (test accuracy against bytes on disk)."""

from __future__ import annotations

from pathlib import Path

from . import artifacts

COLUMNS = [
    ("name", "model", "{}"),
    ("format", "format", "{}"),
    ("accuracy", "accuracy", "{:.2%}"),
    ("bits_per_example", "bits/example", "{:.3f}"),
    ("agreement_with_teacher", "agrees w/ teacher", "{:.2%}"),
    ("params", "params", "{:,}"),
    ("bytes", "bytes", "{:,}"),
    ("latency_ms", "latency ms (median, 1 thread)", "{:.3f}"),
    ("latency_p90_ms", "p90 ms", "{:.3f}"),
    ("throughput_images_per_s", "images/s (batch 64)", "{:,.0f}"),
    ("speedup_vs_teacher_float32", "speed-up vs teacher TFLite", "{:.2f}x"),
]


def microcontroller_lines(kits, rows=()) -> list[str]:
    """The microcontroller kit of each int8 file: its ops, the measured tensor arena, where it
    is; and how its TFLite-Micro outputs compare with LiteRT's built-in kernels."""
    if not kits:
        return []
    micro_rows = {row["name"]: row for row in rows if row.get("format") == "tflite-micro"}
    lines = ["## Microcontrollers (TFLite-Micro)", ""]
    for variant, kit in kits.items():
        line = (f"- `{kit['file']}`: tensor arena {kit['arena_bytes_measured']:,} bytes measured in the "
                f"TFLite-Micro interpreter, {kit['arena_bytes_recommended']:,} recommended "
                f"({kit['arena_margin']}); `{kit['resolver']}` with {', '.join(kit['ops'])}; C source and op "
                f"resolver in `tflite/micro/`.")
        row = micro_rows.get(f"student_{variant} (TFLite-Micro)", {})
        if "same_class_as_litert_builtin" in row:
            line += (f" In TFLite-Micro it gives the class that LiteRT's built-in kernels give on "
                     f"{row['same_class_as_litert_builtin']:.2%} of the test examples (identical outputs on "
                     f"{row['identical_to_litert_builtin']:.2%}; their accuracy {row['litert_builtin_accuracy']:.2%}), "
                     f"and the class of LiteRT's default path on {row['same_class_as_litert']:.2%}.")
        lines.append(line)
    if any("same_class_as_litert_builtin" in row for row in micro_rows.values()):
        lines += ["", "LiteRT's rows above run its default CPU path, the XNNPACK delegate, which requantises int8 "
                  "results its own way, so an example near a class boundary may change class between a phone and "
                  "a microcontroller; TFLite-Micro follows the arithmetic of LiteRT's built-in kernels "
                  "(`OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES`)."]
    return [*lines, ""]


def markdown_table(rows: list[dict], columns=COLUMNS) -> str:
    header = "| " + " | ".join(title for _, title, _ in columns) + " |"
    rule = "|" + "|".join("---" for _ in columns) + "|"
    lines = [header, rule]
    for row in rows:
        cells = [fmt.format(row[key]) if row.get(key) is not None else "" for key, _, fmt in columns]
        if row.get("below_agreement_bar"):
            cells[0] += " (below its agreement bar: tflite/below_bar/)"
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def plot_accuracy_against_bytes(points: list[tuple], path, title: str,
                                xlabel: str = "bytes on disk (log scale)", budget_bytes: int | None = None) -> Path:
    """Scatter of test accuracy against size (log scale), one labelled point per
    ``(label, bytes, accuracy, marker)``, and a vertical line at ``budget_bytes``; the plot
    of the report and of the benchmarks."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from matplotlib.ticker import FuncFormatter, NullFormatter

    fig, ax = plt.subplots(figsize=(7.5, 4.5))
    for label, size, accuracy, marker in points:
        ax.scatter(size, accuracy * 100, marker=marker, s=50, alpha=0.85, label=label)
    if budget_bytes:
        ax.axvline(budget_bytes, color="grey", linestyle="--", label=f"student budget {budget_bytes:,} bytes")
    ax.set_xscale("log")
    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v / 1000:g} kB"))
    ax.xaxis.set_minor_formatter(NullFormatter())
    ax.legend(fontsize=8, loc="lower right")
    ax.set_xlabel(xlabel)
    ax.set_ylabel("test accuracy (%)")
    ax.set_title(title)
    ax.grid(True, alpha=0.3)
    fig.tight_layout()
    with artifacts.atomic_path(path, suffix=".png") as tmp:
        fig.savefig(tmp, dpi=120)
    plt.close(fig)
    return Path(path)


def describe_convention(record: dict) -> str:
    """The ``teacher_input`` record's convention in words: its name, and for ``standardized``
    the mean and deviation it uses."""
    if record["convention"] != "standardized":
        return record["convention"]
    return (f"standardized ((x - {record['pixel_mean']:.4g}) / {record['pixel_std']:.4g} for pixels x in [0, 1], "
            f"the test split's mean and deviation)")


def teacher_input_line(record: dict | None, recordings: bool = False) -> str:
    """How the teacher takes its images, and how that was found."""
    if not record:
        return ""
    if not record.get("test_accuracy_by_convention"):
        examples = "log-mel feature maps" if recordings else "images"
        return f"The teacher was trained here on {examples} in [0, 1]; the student takes the same."
    measured = ", ".join(f"{name} {accuracy:.2%}" for name, accuracy in record["test_accuracy_by_convention"].items())
    how = "as given by --teacher-input" if record.get("requested") not in (None, "auto") else "found on the test split"
    return (f"The teacher takes {describe_convention(record)} input ({how}; test accuracy by input convention: "
            f"{measured}); the student's Keras model and TFLite files take the same. Teacher output: "
            f"{record.get('output', 'logits')}." + close_conventions_sentence(record) + grey_layout_sentence(record)
            + precision_sentence(record))


def close_conventions_sentence(record: dict) -> str:
    """When the test split cannot rule out other input conventions: which, and what to do."""
    close = record.get("close_conventions")
    if not close:
        return ""
    return (f" The teacher is about as accurate with {' and '.join(close)} input (within the test split's noise);"
            f" {record['convention']}, the more common, was taken: if your teacher takes"
            f" {'one of them' if len(close) > 1 else 'that'}, say so with --teacher-input, as the student will"
            f" take the same.")


def precision_sentence(record: dict) -> str:
    """For a teacher saved under mixed precision: that the run computed it in float32."""
    policies = record.get("teacher_dtype_policies")
    if not policies:
        return ""
    return (f" The teacher was saved with the {', '.join(policies)} dtype policy; the run computes it in float32"
            f" (same weights).")


def grey_layout_sentence(record: dict) -> str:
    """For a teacher of grey images taking ``(H, W)`` or ``(H, W, 3)``: what the student takes instead."""
    shape = record.get("teacher_image_shape")
    if not shape:
        return ""
    if len(shape) == 2:
        return (f" The teacher takes images of shape {tuple(shape)}, without a channel axis; the run gives it its"
                f" images through a Reshape, and the student and its files take them with the axis, "
                f"{(*shape, 1)} (x[..., None] in NumPy).")
    return (f" The teacher takes images of shape {tuple(shape)}; the run gives it the grey images with their one"
            f" channel repeated three times, and the student and its files take them grey, {(*shape[:2], 1)}.")


def student_line(network: dict | None, rows: list[dict]) -> str:
    """Which student was trained: the user's file, or the preset's network (within a budget)."""
    if not network:
        return ""
    shape = f"conv filters {tuple(network['conv_filters'])}, dense units {tuple(network['dense_units'])}"
    if network.get("file"):
        return f"Student: the architecture of `{network['file']}` ({shape}), trained from scratch here."
    if not network.get("budget_bytes"):
        return f"Student: the preset's network ({shape})."
    int8 = next((row["bytes"] for row in rows if row["name"] == "student_int8"), None)
    landed = (f"its int8 file is {int8:,} bytes ({'within' if int8 <= network['budget_bytes'] else 'OVER'} "
              f"the budget)" if int8 is not None else "no int8 file was exported")
    return (f"Student budget: {network['budget_bytes']:,} bytes for the int8 file; the widest student of the preset's "
            f"family that fits: {shape}; {landed}.")


def student_start_line(start: dict | None) -> str:
    """Data-free mode: whether the student started from the teacher's weights (:mod:`slimming`)."""
    if not start:
        return ""
    if start.get("from") == "teacher":
        kept = ", ".join(f"{name} {count} of {total}" for name, count, total in start.get("layers", []))
        return (f"The student started from the teacher's largest filters and units (L1 norm, Li et al., 2017: "
                f"{kept}); `datafree.student_init` random starts it from random weights.")
    return f"The student started from random weights ({start.get('reason', 'datafree.student_init')})."


def size_ratio_line(ratio: float | None) -> str:
    """Student parameters over the teacher's, and a plain word when that is not below 1."""
    if ratio is None:
        return "Student parameters / teacher parameters: not measured."
    bigger = " (the student is not smaller than the teacher)" if ratio >= 1 else ""
    return f"Student parameters / teacher parameters: {ratio:.3f}{bigger}."


def environment_line(env: dict | None) -> str:
    """Where the latencies were measured, and how."""
    if not env:
        return ""
    return (f"Measured on {env.get('cpu')} ({env.get('cores')} cores), {env.get('date')}: TensorFlow "
            f"{env.get('tensorflow')}, Keras {env.get('keras')}, LiteRT (ai-edge-litert) {env.get('ai_edge_litert')}, "
            f"tfgan_compress {env.get('tfgan_compress')}. Latency: {env.get('latency_method')}.")


def table_cell(value) -> str:
    """``value`` as the text of a Markdown table cell: a ``|`` in a class name would split the cell."""
    return str(value).replace("\\", "\\\\").replace("|", "\\|")


def by_epoch_lines(by_epoch: dict | None, recordings: bool = False) -> list[str]:
    """The GAN's per-epoch figures (its TensorBoard scalars): did the samples get better?"""
    by_epoch = by_epoch or {}
    parts = []
    if by_epoch.get("teacher_label_accuracy"):
        parts.append("samples taken for their class " + ", ".join(f"{v:.1%}" for v in by_epoch["teacher_label_accuracy"]))
    if by_epoch.get("frechet_distance"):
        real = "the training recordings' maps" if recordings else "training images"
        parts.append(f"Fréchet distance to {real} " + ", ".join(f"{v:.3g}" for v in by_epoch["frechet_distance"]))
    if not parts:
        return []
    return ["Over the GAN's epochs, first to last (the stage's own measure on fixed noise; TensorBoard `logs/gan`, "
            "`epoch_teacher_label_accuracy` and `epoch_frechet_distance`): " + "; ".join(parts) + ".", ""]


def per_class_lines(rows: list[dict], class_names=None) -> list[str]:
    """The report's section on each model's accuracy per class of the real test split (the
    recall of each class): on imbalanced data the classes the student loses are here, not in
    the mean. One column per class; models without the figures (older reports) are left out."""
    measured = [row for row in rows if row.get("accuracy_per_class")]
    if not measured:
        return []
    names = class_names or list(range(len(measured[0]["accuracy_per_class"])))
    lines = ["## Accuracy per class on the real test split", "",
             "| model | format | " + " | ".join(table_cell(n) for n in names) + " |",
             "|---|---|" + "---|" * len(names)]
    for row in measured:
        cells = ["" if value is None else f"{value:.1%}" for value in row["accuracy_per_class"]]
        lines.append(f"| {row['name']} | {row['format']} | " + " | ".join(cells) + " |")
    return [*lines, ""]


def generator_quality_lines(measured: dict | None, class_names=None, recordings: bool = False,
                            by_epoch: dict | None = None) -> list[str]:
    """The report's section on the generator's samples (:func:`quality.generator_quality`),
    with the figures of each GAN epoch (:func:`by_epoch_lines`)."""
    real = "feature maps of real test recordings" if recordings else "real test images"
    halves = "the real recordings' maps" if recordings else "the real images"
    if not measured:
        return []
    names = class_names or list(range(len(measured["per_class"])))
    distance = measured.get("frechet_distance_teacher_features")
    lines = ["## Generator samples, judged by the teacher", "",
             f"On {measured['samples']:,} class-balanced samples, the teacher takes "
             f"{measured['teacher_accuracy_on_samples']:.2%} for the class they were drawn for.",
             ""]
    if distance is not None:
        lines += [f"Fréchet distance between {real} and samples in the teacher's penultimate features: "
                  f"{distance:.3g} (between two halves of {halves}: {measured['frechet_distance_real_vs_real']:.3g}, "
                  f"a reference for the noise at half this sample size; distances compare runs with the same "
                  f"teacher only).", ""]
    lines += ["| class | " + " | ".join(table_cell(n) for n in names) + " |",
              "|---|" + "---|" * len(names),
              "| teacher accuracy on samples | " + " | ".join(f"{v:.0%}" for v in measured["per_class"]) + " |", ""]
    return lines + by_epoch_lines(by_epoch, recordings)


def write_report(folder, rows: list[dict], info: dict) -> dict:
    """Write the run folder's ``report.json`` (``{"models": rows, **info}``), ``report.md``
    and ``frontier.png``."""
    report = {"models": rows, **info}
    artifacts.write_json(folder.report_json, report)
    plot_accuracy_against_bytes(
        [(f"{row['name']} ({row['format']})", row["bytes"], row["accuracy"], "s" if row["format"] == "keras" else "o")
         for row in rows],
        folder.frontier_png, f"Compression frontier on {info.get('data', 'the test split')}",
        budget_bytes=(info.get("student_network") or {}).get("budget_bytes"))
    generator_files = ", ".join(f"`{name}` {size:,} bytes" for name, size in info.get("generator_files", {}).items())
    recordings = bool(info.get("recordings"))
    if info.get("mode") == "data-free":
        provenance = ("Data-free mode: the student and generator were trained from the teacher alone (no real "
                      "training image); every figure below is measured on the real test split.")
        generator_line = f"The last synthesis round's generator as TFLite: {generator_files}."
    else:
        provenance = ("The student was trained on generator samples only; every figure below is measured on the "
                      "real test split.")
        training = "log-mel feature maps of the training recordings" if recordings else "training images"
        generator_line = (f"The dataset in a file: the generator as TFLite {generator_files}, against "
                          f"{info.get('training_set_bytes', 0):,} bytes of {training} and labels (8-bit).")
    lines = [
        f"# tfgan_compress report: {folder.root.name}",
        "",
        f"Data: `{info.get('data')}` ({info.get('test_images')} real test {'recordings' if recordings else 'images'}, "
        f"{info.get('num_classes')} classes). Preset `{info.get('preset')}`, seed {info.get('seed')}.",
        provenance,
        teacher_input_line(info.get("teacher_input"), recordings),
        environment_line(info.get("environment")),
        student_line(info.get("student_network"), rows),
        student_start_line(info.get("student_start")),
        "",
        markdown_table(rows),
        "",
        "bits/example: test cross-entropy in bits, the code length of the test labels under the model.",
        "",
        size_ratio_line(info.get("student_teacher_param_ratio")),
        "",
        generator_line,
        "",
        *per_class_lines(rows, info.get("class_names")),
        *generator_quality_lines(info.get("generator_quality"), info.get("class_names"), recordings,
                                 info.get("generator_by_epoch")),
        *microcontroller_lines(info.get("microcontroller"), rows),
        f"![accuracy against size]({folder.frontier_png.name})",
        "",
        "## Stage timings (seconds)",
        "",
    ]
    lines += [f"- {stage}: {seconds:.1f}" for stage, seconds in info.get("stage_seconds", {}).items()]
    artifacts.write_text(folder.report_md, "\n".join(lines) + "\n")
    return report


def flat_settings(config: dict, prefix: str = "") -> dict:
    """A nested config dict as ``{"gan.teacher_weight": value}``; lists become text, unset
    values ``"none"`` (HParams takes numbers, booleans and strings only)."""
    flat = {}
    for key, value in config.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            flat.update(flat_settings(value, f"{name}."))
        elif isinstance(value, (bool, int, float, str)):
            flat[name] = value
        else:
            flat[name] = "none" if value is None else str(list(value) if isinstance(value, tuple) else value)
    return flat


def write_hparams(log_dir, run_name: str, config: dict, figures: dict) -> None:
    """TensorBoard's HParams dashboard entry of a run: its resolved settings and its final
    figures (``{"test_accuracy/student_int8": 0.98, ...}``), so runs compare side by side."""
    import tensorflow as tf
    from tensorboard.plugins.hparams import api as hparams

    writer = tf.summary.create_file_writer(str(log_dir))
    with writer.as_default():
        hparams.hparams(flat_settings(config), trial_id=run_name)
        for name, value in figures.items():
            if value is not None:
                tf.summary.scalar(name, float(value), step=0)
    writer.close()
