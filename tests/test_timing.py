"""The CPU kernel choice made before TensorFlow loads (timing.prefer_onednn_kernels), checked
in fresh interpreters: in this one TensorFlow is already imported."""

import json
import os
import subprocess
import sys

import pytest

PROBE = """
import json, os, sys
from tfgan_compress import timing
made = timing.prefer_onednn_kernels({shape})
print(json.dumps([made, os.environ.get("TF_ENABLE_ONEDNN_OPTS"), "tensorflow" in sys.modules]))
"""


def probe(shape, environment=None, before=""):
    env = {k: v for k, v in os.environ.items() if k != "TF_ENABLE_ONEDNN_OPTS"}
    env.update(environment or {})
    out = subprocess.run([sys.executable, "-c", before + PROBE.format(shape=shape)], env=env, check=True,
                         capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


@pytest.mark.parametrize("shape, expected", [((28, 28, 1), "1"), ((32, 32, 3), "1"), (None, "1"), ((8, 8, 1), None),
                                             ((27, 28, 1), None)])
def test_onednn_asked_for_from_mnist_sized_images_up_without_loading_tensorflow(shape, expected):
    made, setting, tensorflow_loaded = probe(shape)
    assert (made, setting) == (expected is not None, expected)
    assert not tensorflow_loaded


def test_a_users_own_setting_is_kept():
    assert probe((32, 32, 3), {"TF_ENABLE_ONEDNN_OPTS": "0"})[:2] == [False, "0"]


def test_too_late_once_tensorflow_is_loaded():
    assert probe((32, 32, 3), before="import tensorflow\n")[:2] == [False, None]
