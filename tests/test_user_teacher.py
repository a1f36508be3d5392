"""A user's own teacher: its input convention is found (or the teacher refused), and the
student takes the same input. Teachers built the usual Keras ways, tiny, trained here."""

import json
import subprocess
import sys
from pathlib import Path

import keras
import numpy as np
import pytest

from tfgan_compress import cli, data, teacher
from tfgan_compress.errors import ModelError

SHAPE, CLASSES = (8, 8, 1), 3
RUNNER = Path(__file__).resolve().parent.parent / "export" / "predict.py"


@keras.saving.register_keras_serializable(package="user_code")
class UserNet(keras.Model):
    """A subclassed classifier, as users write them (takes [0, 1] images)."""

    def __init__(self, classes=CLASSES, **kwargs):
        super().__init__(**kwargs)
        self.classes = classes
        self.conv = keras.layers.Conv2D(4, 3, padding="same", activation="relu")
        self.pool = keras.layers.GlobalMaxPooling2D()
        self.head = keras.layers.Dense(classes)

    def call(self, images):
        return self.head(self.pool(self.conv(images)))

    def get_config(self):
        return {**super().get_config(), "classes": self.classes}


@pytest.fixture(scope="module")
def dataset(tiny_arrays):
    return data.make_dataset(*tiny_arrays, source="tiny", where="fixture")


@pytest.fixture(scope="module")
def base(dataset):
    """A small trained classifier of [0, 1] images, any image size, logits out."""
    keras.utils.set_random_seed(0)
    net = UserNet()
    net.compile(keras.optimizers.Adam(0.05), keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    net.fit(dataset.x_train, dataset.y_train, epochs=40, batch_size=10, verbose=0)
    assert np.mean(np.argmax(net.predict(dataset.x_test, verbose=0), -1) == dataset.y_test) > 0.9
    return net


def user_teachers(base):
    """name -> (model, the convention it takes)."""
    image = keras.Input(SHAPE)
    signed = keras.Input(SHAPE)
    open_size = keras.Input((None, None, 1))
    normalised = keras.Input(SHAPE)
    return {
        "sequential_rescaling_0_255": (keras.Sequential([keras.Input(SHAPE), keras.layers.Rescaling(1 / 255), base]),
                                       "0-255"),
        "functional_minus1_1": (keras.Model(signed, base(keras.layers.Rescaling(0.5, 0.5)(signed))), "-1-1"),
        "softmax_output": (keras.Model(image, keras.layers.Softmax()(base(image))), "0-1"),
        "batch_norm": (keras.Model(normalised, base(keras.layers.BatchNormalization()(normalised))), "0-1"),
        "no_fixed_input_size": (keras.Model(open_size, base(open_size)), "0-1"),
        "subclassed": (base, "0-1"),
    }


def test_each_teacher_kind_is_loaded_and_its_convention_found(base, dataset, tmp_path):
    for name, (model, convention) in user_teachers(base).items():
        path = tmp_path / f"{name}.keras"
        model.save(path)
        loaded = teacher.load_classifier(path, dataset.spec)
        found, accuracies = teacher.find_input_convention(loaded, dataset.x_test, dataset.y_test, CLASSES)
        assert found == convention, (name, accuracies)
        scale, offset = teacher.scale_and_offset(found, dataset.x_test)
        unit = teacher.taking_unit_range(loaded, SHAPE, {"scale": scale, "offset": offset})
        predictions = np.argmax(unit.predict(dataset.x_test, verbose=0), -1)
        assert np.mean(predictions == dataset.y_test) > 0.9, name
        assert teacher.outputs_probabilities(unit) == (name == "softmax_output")
        logits = teacher.without_softmax(loaded)
        assert (logits is not None) == (name == "softmax_output")
        if logits is not None:  # the layer under the softmax: the logits themselves, not log(p)
            np.testing.assert_allclose(logits.predict(dataset.x_test, verbose=0),
                                       base.predict(dataset.x_test, verbose=0), rtol=1e-5, atol=1e-5)


def test_the_logits_under_a_dense_softmax_layer_are_recovered():
    inputs = keras.Input(SHAPE)
    hidden = keras.layers.Flatten()(inputs)
    model = keras.Model(inputs, keras.layers.Dense(CLASSES, activation="softmax")(hidden))
    model.layers[-1].set_weights([np.full((64, CLASSES), 0.5), np.array([30.0, 0.0, -30.0])])
    x = np.random.default_rng(0).random((4, *SHAPE)).astype(np.float32)
    logits = teacher.without_softmax(model).predict(x, verbose=0)
    np.testing.assert_allclose(logits[:, 0] - logits[:, 2], 60.0, rtol=1e-5)  # log(p) would say 16 (1e-7 floor)
    assert teacher.without_softmax(keras.Model(inputs, keras.layers.Dense(CLASSES)(hidden))) is None


def test_a_teacher_near_chance_under_every_convention_is_refused(dataset, tmp_path, capsys):
    inputs = keras.Input(SHAPE)
    constant = keras.Model(inputs, keras.layers.Dense(CLASSES, kernel_initializer="zeros")(
        keras.layers.Flatten()(inputs)))
    with pytest.raises(ModelError, match=r"near chance \(33%\).*0-1 33.33%, 0-255 33.33%, -1-1 33.33%"):
        teacher.find_input_convention(constant, dataset.x_test, dataset.y_test, CLASSES)
    np.savez(tmp_path / "tiny.npz", x_train=dataset.x_train, y_train=dataset.y_train, x_test=dataset.x_test,
             y_test=dataset.y_test)
    constant.save(tmp_path / "constant.keras")
    out = tmp_path / "run"
    assert cli.main(["run", "--preset", "tiny", "--data", f"npz:{tmp_path / 'tiny.npz'}", "--teacher",
                     str(tmp_path / "constant.keras"), "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "near chance" in err and "--teacher-input" in err
    assert not out.exists()


def test_a_stated_convention_is_the_only_one_tried(base, dataset):
    model = keras.Sequential([keras.Input(SHAPE), keras.layers.Rescaling(1 / 255), base])
    found, accuracies = teacher.find_input_convention(model, dataset.x_test, dataset.y_test, CLASSES, "0-255")
    assert found == "0-255" and list(accuracies) == ["0-255"]
    with pytest.raises(ModelError, match="near chance"):
        teacher.find_input_convention(model, dataset.x_test, dataset.y_test, CLASSES, "-1-1")


@pytest.mark.slow
def test_a_0_255_teacher_gives_a_0_255_student(base, dataset, tmp_path, capsys, lean_export_config):
    np.savez(tmp_path / "tiny.npz", x_train=(dataset.x_train * 255).astype(np.uint8),
             y_train=dataset.y_train, x_test=(dataset.x_test * 255).astype(np.uint8), y_test=dataset.y_test)
    model = keras.Sequential([keras.Input(SHAPE), keras.layers.Rescaling(1 / 255), base])
    model.save(tmp_path / "user.keras")
    out = tmp_path / "run"
    assert cli.main(["run", "--preset", "tiny", "--data", f"npz:{tmp_path / 'tiny.npz'}", "--teacher",
                     str(tmp_path / "user.keras"), "--config", lean_export_config(export={"variants": ["float32"]}),
                     "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "it takes 0-255 input" in printed and "output logits" in printed
    assert "The teacher takes 0-255 input (found on the test split" in (out / "report.md").read_text()
    report = json.loads((out / "report.json").read_text())
    assert report["teacher_input"]["convention"] == "0-255"
    assert report["models"][0]["accuracy"] > 0.9  # the run's teacher is fed as it expects
    card = json.loads((out / "tflite" / "model_card.json").read_text())
    assert card["input"]["convention"] == "0-255" and card["input"]["range"] == [0.0, 255.0]
    # the student is a drop-in: Keras and TFLite take 0-255 pixels, as the teacher did
    student = keras.models.load_model(out / "student.keras", compile=False)
    pixels = dataset.x_test * 255.0
    from tfgan_compress.litert import TFLiteClassifier

    keras_classes = np.argmax(student.predict(pixels, verbose=0), -1)
    tflite = TFLiteClassifier(model_path=out / "tflite" / "student_float32.tflite")
    assert np.array_equal(np.argmax(tflite.predict(pixels), -1), keras_classes)
    rows = {row["name"]: row for row in report["models"]}
    assert rows["student"]["accuracy"] == pytest.approx(np.mean(keras_classes == dataset.y_test))
    # the stand-alone runner reads the convention from the model card
    np.savez(tmp_path / "x.npz", x_test=(dataset.x_test[..., 0] * 255).astype(np.uint8))
    result = subprocess.run([sys.executable, str(RUNNER), str(out / "tflite" / "student_float32.tflite"),
                             "--npz", str(tmp_path / "x.npz"), "--limit", "12"], capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0, result.stderr
    names = [line.split("\t")[1] for line in result.stdout.strip().splitlines()]
    assert names == [card["class_names"][c] for c in keras_classes]


def test_a_lambda_wrapping_a_named_function_is_named_in_one_short_line(tmp_path):
    import keras

    from tfgan_compress.errors import ModelError
    from tfgan_compress.teacher import load_classifier

    model = keras.Sequential([keras.Input((8, 8, 1)), keras.layers.Lambda(_double), keras.layers.Flatten(),
                              keras.layers.Dense(10)])
    model.save(tmp_path / "named.keras")
    with pytest.raises(ModelError, match="Lambda layer.*--unsafe-load") as info:
        load_classifier(tmp_path / "named.keras")
    assert "\n" not in str(info.value) and len(str(info.value)) < 300


def _double(x):
    return x * 2


def test_a_subclassed_model_from_the_users_own_code_is_refused_with_what_to_do(tmp_path):
    class NotRegistered(keras.Model):  # as in a user's script: never registered with Keras
        def __init__(self, **kwargs):
            super().__init__(**kwargs)
            self.head = keras.layers.Dense(CLASSES)

        def call(self, images):
            return self.head(keras.ops.reshape(images, (-1, 64)))

    model = NotRegistered()
    model(np.zeros((1, *SHAPE), np.float32))
    model.save(tmp_path / "mine.keras")
    with pytest.raises(ModelError, match="uses 'NotRegistered', a class from your own code.*Sequential or functional"):
        teacher.load_classifier(tmp_path / "mine.keras")


def _sequential_softmax_teacher(base):
    """The usual Keras-2-era model: Sequential layers, softmax on a Dense, saved as .h5."""
    model = keras.Sequential([keras.Input(SHAPE), keras.layers.Conv2D(4, 3, padding="same", activation="relu"),
                              keras.layers.GlobalMaxPooling2D(), keras.layers.Dense(CLASSES, activation="softmax")])
    model.layers[0].set_weights(base.conv.get_weights())
    model.layers[2].set_weights(base.head.get_weights())
    return model


def test_a_legacy_h5_teacher_is_loaded_with_its_logits(base, dataset, tmp_path):
    model = _sequential_softmax_teacher(base)
    model.save(tmp_path / "teacher.h5")
    loaded = teacher.load_classifier(tmp_path / "teacher.h5", dataset.spec)
    run_teacher, record = teacher.as_run_teacher(loaded, dataset)
    assert record["convention"] == "0-1" and record["output"].startswith("softmax: the logits under it")
    np.testing.assert_allclose(run_teacher.predict(dataset.x_test, verbose=0),
                               base.predict(dataset.x_test, verbose=0), rtol=1e-4, atol=1e-4)


def test_model_files_keras_cannot_read_are_refused_saying_why(base, tmp_path):
    model = _sequential_softmax_teacher(base)
    model.save(tmp_path / "teacher.h5")
    (tmp_path / "teacher.keras").write_bytes((tmp_path / "teacher.h5").read_bytes())  # HDF5 under a .keras name
    with pytest.raises(ModelError, match="legacy HDF5 model file; Keras reads it only under a name ending in .h5"):
        teacher.load_classifier(tmp_path / "teacher.keras")
    model.save_weights(tmp_path / "only.weights.h5")
    with pytest.raises(ModelError, match=r"holds weights only, no model \(save_weights\)"):
        teacher.load_classifier(tmp_path / "only.weights.h5")
    (tmp_path / "notes.h5").write_text("not a model")
    with pytest.raises(ModelError, match="not a Keras model file .*this is neither"):
        teacher.load_classifier(tmp_path / "notes.h5")
    lambda_model = keras.Sequential([keras.Input(SHAPE), keras.layers.Lambda(_double), keras.layers.Flatten(),
                                     keras.layers.Dense(CLASSES)])
    lambda_model.save(tmp_path / "code.h5")
    with pytest.raises(ModelError, match="Lambda layer.*--unsafe-load"):
        teacher.load_classifier(tmp_path / "code.h5")


def test_a_custom_layer_in_an_h5_file_is_named_as_the_users_own_code(tmp_path):
    @keras.saving.register_keras_serializable(package="user_script")
    class Doubling(keras.layers.Layer):
        def call(self, images):
            return images * 2.0

    model = keras.Sequential([keras.Input(SHAPE), Doubling(), keras.layers.Flatten(), keras.layers.Dense(CLASSES)])
    model.save(tmp_path / "custom.h5")
    keras.saving.get_custom_objects().pop("user_script>Doubling")  # a fresh process, without the user's script
    with pytest.raises(ModelError, match="uses 'Doubling', a class from your own code"):
        teacher.load_classifier(tmp_path / "custom.h5")


def test_a_grey_image_teacher_without_a_channel_axis_is_given_one(dataset, tmp_path):
    """The usual Keras MNIST model takes (28, 28): the run feeds it (H, W, 1) images through a
    Reshape, keeps the logits under its softmax, and says that the student takes (H, W, 1)."""
    from tfgan_compress import report, student

    keras.utils.set_random_seed(0)
    flat = keras.Sequential([keras.Input(SHAPE[:2]), keras.layers.Flatten(),
                             keras.layers.Dense(CLASSES, activation="softmax")])
    flat.compile(keras.optimizers.Adam(0.05), "sparse_categorical_crossentropy")
    flat.fit(dataset.x_train[..., 0], dataset.y_train, epochs=30, batch_size=10, verbose=0)
    flat.save(tmp_path / "flat.keras")
    loaded = teacher.load_classifier(tmp_path / "flat.keras", dataset.spec)  # was refused: shape (8, 8)
    run_teacher, record = teacher.as_run_teacher(loaded, dataset)
    assert record["teacher_image_shape"] == [8, 8] and record["output"].startswith("softmax: the logits under it")
    assert tuple(run_teacher.inputs[0].shape[1:]) == SHAPE
    probabilities = flat.predict(dataset.x_test[..., 0], verbose=0)
    logits = run_teacher.predict(dataset.x_test, verbose=0)
    np.testing.assert_allclose(keras.ops.softmax(logits).numpy(), probabilities, rtol=1e-4, atol=1e-5)
    assert np.mean(np.argmax(logits, -1) == dataset.y_test) > 0.9
    assert "student and its files take them with the axis, (8, 8, 1)" in report.teacher_input_line(record)
    fresh = student.user_architecture(loaded, SHAPE, CLASSES, "flat.keras")  # the same layout as a --student
    assert tuple(fresh.inputs[0].shape[1:]) == SHAPE and fresh.count_params() == flat.count_params()
    with pytest.raises(ModelError, match=r"takes images of shape \(8, 7\)"):  # a wrong size is still refused
        teacher.check_classifier(keras.Sequential([keras.Input((8, 7)), keras.layers.Flatten(),
                                                   keras.layers.Dense(CLASSES)]), dataset.spec, "w")


def test_a_mixed_precision_teacher_computes_in_float32(base, dataset, tmp_path):
    """Saved under keras.mixed_precision (float16 compute, a float32 softmax at the end, as the
    Keras guide has it): rebuilt in float32 with its weights, so that teacher and student
    outputs can be compared and its TFLite file made."""
    from tfgan_compress import report, student

    half = keras.Sequential([keras.Input(SHAPE),
                             keras.layers.Conv2D(4, 3, padding="same", activation="relu", dtype="mixed_float16"),
                             keras.layers.GlobalMaxPooling2D(dtype="mixed_float16"),
                             keras.layers.Dense(CLASSES, dtype="mixed_float16"),
                             keras.layers.Activation("softmax", dtype="float32")])
    half.layers[0].set_weights(base.conv.get_weights())
    half.layers[2].set_weights(base.head.get_weights())
    half.save(tmp_path / "half.keras")
    loaded = teacher.load_classifier(tmp_path / "half.keras", dataset.spec)
    assert teacher.low_precision_policies(loaded) == ["mixed_float16"]
    run_teacher, record = teacher.as_run_teacher(loaded, dataset)
    assert record["teacher_dtype_policies"] == ["mixed_float16"] and record["output"].startswith("softmax: the logits")
    assert teacher.low_precision_policies(run_teacher) == []
    logits = run_teacher(dataset.x_test, training=False)
    assert logits.dtype == "float32"  # float16 logits broke the data-free losses (float16 - float32)
    np.testing.assert_allclose(logits, base.predict(dataset.x_test, verbose=0), rtol=1e-2, atol=1e-2)
    assert "mixed_float16 dtype policy; the run computes it in float32" in report.teacher_input_line(record)
    fresh = student.user_architecture(loaded, SHAPE, CLASSES, "half.keras")  # the same model as a --student
    assert teacher.low_precision_policies(fresh) == []


def test_a_teacher_of_standardized_pixels_gets_them(tmp_path):
    """Trained on (x - mean) / std (PyTorch's Normalize habit) with the digits' own statistics:
    found, and fed the test split's standardized pixels, not the nearest fixed range."""
    from tfgan_compress import report

    digits = data.load("digits")
    mean, std = float(digits.x_train.mean()), float(digits.x_train.std())
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input(digits.spec.image_shape), keras.layers.Conv2D(16, 3, activation="relu"),
                              keras.layers.Flatten(), keras.layers.Dense(10)])
    model.compile("adam", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    model.fit((digits.x_train - mean) / std, digits.y_train, epochs=30, batch_size=32, verbose=0)
    run_teacher, record = teacher.as_run_teacher(model, digits)
    accuracies = record["test_accuracy_by_convention"]
    assert record["convention"] == "standardized", accuracies
    assert accuracies["standardized"] > max(accuracies["0-1"], accuracies["-1-1"]) + 0.01
    assert abs(record["pixel_mean"] - digits.x_test.mean()) < 1e-6 and abs(record["pixel_std"] - digits.x_test.std()) < 1e-6
    np.testing.assert_allclose(run_teacher.predict(digits.x_test, verbose=0),
                               model.predict((digits.x_test - record["pixel_mean"]) / record["pixel_std"], verbose=0),
                               rtol=1e-4, atol=1e-4)
    assert "standardized ((x - 0.3" in report.teacher_input_line(record)
    found, tried = teacher.find_input_convention(model, digits.x_test, digits.y_test, 10, "standardized")
    assert found == "standardized" and list(tried) == ["standardized"]


def test_a_colour_teacher_of_grey_images_gets_them_repeated_to_rgb(base, dataset):
    """A colour network trained on grayscale_to_rgb copies of grey images takes (H, W, 3):
    fed the grey channel three times, it computes what it did on those copies."""
    from tfgan_compress import report

    rgb = keras.Sequential([keras.Input((*SHAPE[:2], 3)), keras.layers.Conv2D(4, 3, padding="same", activation="relu"),
                            keras.layers.GlobalMaxPooling2D(), keras.layers.Dense(CLASSES)])
    kernel, bias = base.conv.get_weights()
    rgb.layers[0].set_weights([np.repeat(kernel, 3, axis=2) / 3.0, bias])  # the same function of grey copies
    rgb.layers[2].set_weights(base.head.get_weights())
    run_teacher, record = teacher.as_run_teacher(rgb, dataset)
    assert record["teacher_image_shape"] == [8, 8, 3] and tuple(run_teacher.inputs[0].shape[1:]) == SHAPE
    np.testing.assert_allclose(run_teacher.predict(dataset.x_test, verbose=0), base.predict(dataset.x_test, verbose=0),
                               rtol=1e-4, atol=1e-4)
    assert "repeated three times, and the student and its files take them grey, (8, 8, 1)" in \
        report.teacher_input_line(record)
    with pytest.raises(ModelError, match=r"takes images of shape \(8, 8, 2\)"):  # other channel counts: refused
        teacher.check_classifier(keras.Sequential([keras.Input((8, 8, 2)), keras.layers.Flatten(),
                                                   keras.layers.Dense(CLASSES)]), dataset.spec, "w")


def test_conventions_the_test_split_cannot_tell_apart_go_to_the_common_one(dataset, tmp_path):
    """A linear teacher without bias ranks classes alike on [0, 1] and [0, 255] pixels: equal
    accuracies, so 0-1 (the common convention) is taken and the report says 0-255 was close."""
    from tfgan_compress import report

    keras.utils.set_random_seed(0)
    linear = keras.Sequential([keras.Input(SHAPE), keras.layers.Flatten(), keras.layers.Dense(CLASSES, use_bias=False)])
    linear.compile(keras.optimizers.Adam(0.05), keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    linear.fit(dataset.x_train, dataset.y_train, epochs=30, batch_size=10, verbose=0)
    _, record = teacher.as_run_teacher(linear, dataset)
    accuracies = record["test_accuracy_by_convention"]
    assert accuracies["0-1"] == accuracies["0-255"] > 0.9
    assert record["convention"] == "0-1" and "0-255" in record["close_conventions"]
    assert "about as accurate with 0-255" in report.teacher_input_line(record)
    assert "--teacher-input" in report.teacher_input_line(record)
    assert teacher.accuracy_margin(0.99, 10_000) == 0.005  # MNIST: half a point
    assert abs(teacher.accuracy_margin(0.9, 100) - 0.06) < 1e-12  # two standard errors
