"""The report's Markdown: class names that would break a table are escaped; the GAN's figures by epoch."""

import json

from tfgan_compress import report


def test_a_bar_in_a_class_name_does_not_split_the_report_table():
    measured = {"per_class": [0.5, 1.0], "samples": 4, "teacher_accuracy_on_samples": 0.75}
    lines = report.generator_quality_lines(measured, ["cat|dog", "bird"])
    header = next(line for line in lines if line.startswith("| class |"))
    cells = [cell.strip() for cell in header.replace("\\|", "").split("|") if cell.strip()]
    assert cells == ["class", "catdog", "bird"] and "cat\\|dog" in header


def test_report_shows_the_gans_figures_by_epoch_from_its_tensorboard_run(tiny_run):
    import json

    from tfgan_compress import config

    info = json.loads((tiny_run / "report.json").read_text())
    epochs = config.RunConfig.from_dict(json.loads((tiny_run / "config.json").read_text())).gan.epochs
    by_epoch = info["generator_by_epoch"]
    assert len(by_epoch["teacher_label_accuracy"]) == len(by_epoch["frechet_distance"]) == epochs
    assert all(0 <= v <= 1 for v in by_epoch["teacher_label_accuracy"])
    line = next(line for line in (tiny_run / "report.md").read_text().splitlines() if "Over the GAN's epochs" in line)
    assert ", ".join(f"{v:.3g}" for v in by_epoch["frechet_distance"]) in line


def test_by_epoch_lines_are_left_out_when_nothing_was_logged():
    assert report.by_epoch_lines({}) == [] and report.by_epoch_lines(None) == []


def test_teacher_stage_says_its_test_accuracy_as_the_report_does(tiny_run):
    console = (tiny_run.parent / "tiny_console.txt").read_text()
    report = json.loads((tiny_run / "report.json").read_text())
    teacher = next(row for row in report["models"] if row["name"] == "teacher")
    line = next(line for line in console.splitlines() if line.startswith("  teacher: "))
    assert line.startswith(f"  teacher: {teacher['accuracy']:.2%} on the ")
    assert line.endswith("real test images") and console.index(line) < console.index("[2/5] gan")


def test_report_gives_each_models_accuracy_per_class_matching_its_mean(tiny_run):
    info = json.loads((tiny_run / "report.json").read_text())
    lines = (tiny_run / "report.md").read_text().splitlines()
    start = lines.index("## Accuracy per class on the real test split")
    header = lines[start + 2]
    assert all(report.table_cell(name) in header for name in info["class_names"])
    for row in info["models"]:
        per_class = row["accuracy_per_class"]
        assert len(per_class) == info["num_classes"] and all(v is None or 0 <= v <= 1 for v in per_class)
        assert any(line.startswith(f"| {row['name']} | {row['format']} | ") for line in lines[start:])
    student = next(row for row in info["models"] if row["name"] == "student")
    # the mean accuracy lies between the worst and the best class's
    known = [v for v in student["accuracy_per_class"] if v is not None]
    assert min(known) - 1e-9 <= student["accuracy"] <= max(known) + 1e-9


def test_per_class_lines_leave_out_reports_without_the_figures():
    assert report.per_class_lines([{"name": "student", "format": "keras", "accuracy": 0.5}]) == []
    lines = report.per_class_lines([{"name": "student", "format": "keras", "accuracy_per_class": [0.5, None]}],
                                   ["a", "b"])
    assert "| student | keras | 50.0% |  |" in lines
