"""tfgan_compress.compress: the whole tool as one Python call; what it saves loads after
``import tfgan_compress`` alone."""

import subprocess
import sys

import keras
import numpy as np
import pytest
import tensorflow as tf

import tfgan_compress
from tfgan_compress.errors import DataError, UsageError

LEAN = {"export": {"variants": ["int8"], "generator_variants": []},
        "evaluate": {"latency_runs": 2, "latency_warmup": 0}}


class EpochCounter(keras.callbacks.Callback):
    """A user's own callback: counts the epochs of every fit it is attached to."""

    def __init__(self):
        super().__init__()
        self.fits, self.epochs = 0, 0

    def on_train_begin(self, logs=None):
        self.fits += 1

    def on_epoch_end(self, epoch, logs=None):
        self.epochs += 1


def users_teacher(x_train, y_train):
    """A teacher built and trained the usual Keras way, softmax output."""
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((8, 8, 1)), keras.layers.Conv2D(8, 3, activation="relu"),
                              keras.layers.Flatten(), keras.layers.Dense(3, activation="softmax")])
    model.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
    model.fit(x_train[..., None] / 255.0, y_train, epochs=30, verbose=0)
    return model


@pytest.fixture(scope="module")
def compressed(tmp_path_factory, tiny_arrays):
    x_train, y_train, x_test, y_test = tiny_arrays
    teacher = users_teacher(x_train, y_train)
    counter = EpochCounter()
    out = tmp_path_factory.mktemp("api") / "run"
    result = tfgan_compress.compress(teacher, ((x_train, y_train), (x_test, y_test)), out, preset="tiny",
                                     config=LEAN, callbacks=[counter], teacher_input="0-1",
                                     progress=lambda line: None, verbose=0)
    return result, counter, teacher, out


def test_compress_takes_an_in_memory_model_and_arrays_and_returns_models_files_and_report(compressed):
    result, counter, teacher, out = compressed
    assert isinstance(result.student, keras.Model) and isinstance(result.generator, keras.Model)
    assert set(result.files) == {"int8"} and result.files["int8"].is_file()
    assert result.folder.root == out and result.report == result.folder.load("report")
    assert {"teacher", "student", "student_int8"} <= set(result.accuracy)
    assert result.report["teacher_input"]["convention"] == "0-1"
    assert counter.fits == 2 and counter.epochs == 2 + 2  # the GAN's 2 epochs and the distillation's 2 (tiny)


def test_compress_again_resumes_the_same_folder_and_a_changed_teacher_is_refused(compressed, tiny_arrays):
    result, _, teacher, out = compressed
    x_train, y_train, x_test, y_test = tiny_arrays
    lines = []
    again = tfgan_compress.compress(teacher, ((x_train, y_train), (x_test, y_test)), out, preset="tiny",
                                    config=LEAN, teacher_input="0-1", progress=lines.append, verbose=0)
    assert any("gan: using" in line for line in lines) and again.accuracy == result.accuracy
    other = keras.models.clone_model(teacher)  # same architecture, other weights
    with pytest.raises(UsageError, match="made with other settings .teacher_path"):
        tfgan_compress.compress(other, ((x_train, y_train), (x_test, y_test)), out, preset="tiny", config=LEAN,
                                teacher_input="0-1", progress=lambda line: None)


def test_tf_data_splits_batched_or_not_read_as_the_arrays(tiny_arrays):
    from tfgan_compress.api import _as_dataset

    x_train, y_train, x_test, y_test = tiny_arrays
    arrays = _as_dataset(((x_train, y_train), (x_test, y_test)))
    train = tf.data.Dataset.from_tensor_slices((x_train, y_train))
    for split in (train, train.batch(7)):
        loaded = _as_dataset((split, tf.data.Dataset.from_tensor_slices((x_test, y_test)).batch(5)))
        np.testing.assert_array_equal(loaded.x_train, arrays.x_train)
        np.testing.assert_array_equal(loaded.y_test, arrays.y_test)
    with pytest.raises(DataError, match="train split must be a tf.data.Dataset or an .images, labels. pair"):
        _as_dataset((x_train, (x_test, y_test)))


def test_bad_arguments_are_refused_before_anything_is_written(tmp_path):
    with pytest.raises(UsageError, match="teacher must be a keras.Model or a path"):
        tfgan_compress.compress(42, "digits", tmp_path / "r")
    with pytest.raises(UsageError, match="unknown key: gann"):
        tfgan_compress.compress(None, "digits", tmp_path / "r", config={"gann": {}})
    assert not (tmp_path / "r").exists()


def test_a_saved_gan_and_distiller_load_after_import_tfgan_compress_alone(tmp_path):
    from tfgan_compress import networks
    from tfgan_compress.config import ClassifierConfig, DistillConfig
    from tfgan_compress.distill import GeneratorDistiller
    from tfgan_compress.gan import ConditionalGAN

    shape, classes = (8, 8, 1), 3
    generator = networks.build_generator(shape, classes, 4, width=4)
    gan = ConditionalGAN(generator, networks.build_discriminator(shape, classes, width=4))
    gan.compile()
    gan.save(tmp_path / "gan.keras")
    teacher = networks.build_classifier(shape, classes, ClassifierConfig((2, 4), (8,)), "teacher")
    student = networks.build_classifier(shape, classes, ClassifierConfig((2, 2), (4,)), "student")
    distiller = GeneratorDistiller(teacher, generator, student, DistillConfig(epochs=1, steps_per_epoch=1,
                                                                                 batch_size=4))
    distiller.compile()
    checkpoint = keras.callbacks.ModelCheckpoint(str(tmp_path / "distiller.keras"))
    distiller.fit(tf.data.Dataset.from_tensors(tf.constant([0, 1, 2, 0])).repeat(), epochs=1, steps_per_epoch=1,
                  callbacks=[checkpoint], verbose=0)
    load = ("import keras, sys; "
            "gan = keras.models.load_model(sys.argv[1]); d = keras.models.load_model(sys.argv[2]); "
            "print(type(gan).__name__, type(d).__name__, d.config.batch_size)")
    # the package alone; or first one of its modules that imports Keras itself (which must not
    # re-enter that half-imported module to register the others)
    for first in ("import tfgan_compress", "from tfgan_compress.teacher import image_augmenter"):
        result = subprocess.run([sys.executable, "-c", f"{first}; {load}", str(tmp_path / "gan.keras"),
                                 str(tmp_path / "distiller.keras")], capture_output=True, text=True, timeout=120)
        assert result.returncode == 0, (first, result.stderr[-1500:])
        assert result.stdout.split() == ["ConditionalGAN", "GeneratorDistiller", "4"], first


def test_importing_the_package_does_not_import_tensorflow():
    code = "import sys, tfgan_compress; print('tensorflow' in sys.modules, sorted(tfgan_compress.__all__)[:2])"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.stdout.strip() == "False ['CompressResult', 'ConditionalGAN']", result.stderr[-800:]
