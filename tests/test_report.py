"""The report's Markdown: class names that would break a table are escaped."""

from tfgan_compress import report


def test_a_bar_in_a_class_name_does_not_split_the_report_table():
    measured = {"per_class": [0.5, 1.0], "samples": 4, "teacher_accuracy_on_samples": 0.75}
    lines = report.generator_quality_lines(measured, ["cat|dog", "bird"])
    header = next(line for line in lines if line.startswith("| class |"))
    cells = [cell.strip() for cell in header.replace("\\|", "").split("|") if cell.strip()]
    assert cells == ["class", "catdog", "bird"] and "cat\\|dog" in header
