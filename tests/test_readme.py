"""The README's Python examples run as written (the compress call on the tiny preset, to stay
fast) and print what the README quotes; the README stays a short read."""

import re
import subprocess
import sys
from pathlib import Path

import pytest

README = Path(__file__).resolve().parent.parent / "README.md"


def python_blocks() -> list[str]:
    return re.findall(r"```python\n(.*?)```", README.read_text(encoding="utf-8"), flags=re.S)


def test_the_readme_is_short():
    assert len(README.read_text(encoding="utf-8").splitlines()) <= 300


@pytest.mark.slow
def test_the_readme_python_examples_run_and_print_what_it_quotes(tmp_path):
    make_teacher, from_python = python_blocks()
    assert "tfgan_compress.compress(" in from_python
    quick = from_python.replace('"runs/from-python",', '"runs/from-python", preset="tiny",')
    assert quick != from_python
    (tmp_path / "make_teacher.py").write_text(make_teacher)
    (tmp_path / "from_python.py").write_text(quick)
    for script in ("make_teacher.py", "from_python.py"):
        result = subprocess.run([sys.executable, script], cwd=tmp_path, capture_output=True, text=True, timeout=600)
        assert result.returncode == 0, result.stderr[-2000:]
    lines = result.stdout.splitlines()
    quoted = re.findall(r"# (runs/from-python/\S+)", from_python)
    assert quoted and quoted[0] in lines  # print(result.files["int8"])
    assert any(re.fullmatch(r"0\.\d+|1\.0", line) for line in lines)  # print(result.accuracy["student_int8"])
    assert 'Model: "student' in result.stdout or "student" in result.stdout  # result.student.summary()
