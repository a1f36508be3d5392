"""export/predict.py with the runner's own install: numpy, Pillow and ai-edge-litert (and what
they require), nothing else: no TensorFlow, no tfgan_compress, no site-packages."""

import re
import subprocess
import sys
from importlib import metadata
from pathlib import Path

import pytest

EXPORT = Path(__file__).resolve().parent.parent / "export"
RUNNER_INSTALL = ("numpy", "pillow", "ai-edge-litert")  # README: pip install numpy pillow ai-edge-litert


def dependency_closure(names) -> set:
    """The distributions ``pip install names`` brings, from the installed metadata."""
    seen, todo = set(), [n.lower() for n in names]
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        for requirement in metadata.requires(name) or []:
            if "extra ==" in requirement:
                continue
            if ";" in requirement and "python_version" in requirement and "< \"3" in requirement:
                continue
            todo.append(re.match(r"[A-Za-z0-9._-]+", requirement).group(0).lower().replace("_", "-"))
    return seen


@pytest.fixture(scope="module")
def light_site(tmp_path_factory):
    """A folder holding only the runner install's packages (symbolic links into site-packages)."""
    site = tmp_path_factory.mktemp("light-site")
    for name in dependency_closure(RUNNER_INSTALL):
        try:
            files = metadata.files(name) or []
        except metadata.PackageNotFoundError:
            continue
        for top in {f.parts[0] for f in files if not f.parts[0].endswith((".dist-info", ".egg-info", "..", "__pycache__"))}:
            source = Path(files[0].locate()).parents[len(files[0].parts) - 1] / top
            if source.exists() and not (site / top).exists():
                (site / top).symlink_to(source)
    assert not (site / "tensorflow").exists() and (site / "ai_edge_litert").exists()
    return site


def run_light(site: Path, *args):
    code = ("import runpy, sys; sys.path[:0] = [sys.argv[1]]; sys.argv = sys.argv[2:]; "
            "runpy.run_path(sys.argv[0], run_name='__main__')")
    return subprocess.run([sys.executable, "-S", "-c", code, str(site), str(EXPORT / "predict.py"), *map(str, args)],
                          capture_output=True, text=True, timeout=120, cwd=site)


def test_runner_install_has_no_tensorflow(light_site):
    result = run_light(light_site, "--help")
    assert result.returncode == 0, result.stderr
    probe = subprocess.run([sys.executable, "-S", "-c", f"import sys; sys.path[:0] = [{str(light_site)!r}]; "
                                                         "import tensorflow"], capture_output=True, text=True)
    assert "No module named 'tensorflow'" in probe.stderr


def test_runner_install_classifies_images_and_reads_metadata(light_site, tiny_run, tmp_path):
    import shutil

    import numpy as np
    from PIL import Image

    Image.fromarray(np.random.default_rng(0).integers(0, 256, (8, 8), dtype=np.uint8)).save(tmp_path / "x.png")
    with_card = run_light(light_site, tiny_run / "tflite" / "student_int8_io.tflite", tmp_path / "x.png")
    assert with_card.returncode == 0, with_card.stderr
    shutil.copy(tiny_run / "tflite" / "student_int8_io.tflite", tmp_path / "alone.tflite")
    alone = run_light(light_site, tmp_path / "alone.tflite", tmp_path / "x.png")
    assert alone.returncode == 0, alone.stderr
    assert alone.stdout.split("\t")[1:] == with_card.stdout.split("\t")[1:]
