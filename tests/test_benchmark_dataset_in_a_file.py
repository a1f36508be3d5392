"""benchmarks/dataset_in_a_file.py on the shared tiny run: the sampled set, the plain Keras
fits and their rows; a second run into the same folder and a folder that is no run refused."""

import json
import pytest


@pytest.mark.slow
def test_rows_from_a_sampled_set_and_refusals(tiny_run, tmp_path, capfd):
    from benchmarks import dataset_in_a_file as benchmark

    out = tmp_path / "out"
    args = ["--run", str(tiny_run), "--per-class", "2", "--epochs", "1", "--out", str(out)]
    assert benchmark.main(args) == 0
    result = json.loads((out / "dataset_in_a_file.json").read_text())
    rows = result["rows"]
    assert len(rows) == 3 and all(0.0 <= row["accuracy"] <= 1.0 for row in rows)
    assert rows[1]["examples"] == 2 * len((out / "set" / "labels.txt").read_text().split())
    assert len(list((out / "set").rglob("*.png"))) == rows[1]["examples"]
    before = sorted((out / "set").rglob("*"))
    capfd.readouterr()
    assert benchmark.main(args) == 2  # the written set is there: `sample` refuses it, nothing overwritten
    err = capfd.readouterr().err
    assert "already exists and is not empty" in err and "tfgan-compress sample stopped with exit status 2" in err
    assert sorted((out / "set").rglob("*")) == before
    assert benchmark.main(["--run", str(tmp_path), "--out", str(tmp_path / "x")]) == 2
