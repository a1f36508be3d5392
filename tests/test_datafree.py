"""Data-free distillation: generator and student learn from the teacher alone."""

import inspect
import json

import keras
import numpy as np
import pytest
import tensorflow as tf

from tfgan_compress import cli, datafree, networks
from tfgan_compress.config import ClassifierConfig, DataFreeConfig, RunConfig
from tfgan_compress.errors import UsageError

SHAPE, CLASSES, NOISE = (8, 8, 1), 3, 4
SMALL = ClassifierConfig((2, 4), (8, 8))


def teacher_with_batchnorm():
    inputs = keras.Input(SHAPE)
    x = keras.layers.Conv2D(4, 3, padding="same")(inputs)
    x = keras.layers.BatchNormalization()(x)
    x = keras.layers.ReLU()(x)
    x = keras.layers.Flatten()(x)
    return keras.Model(inputs, keras.layers.Dense(CLASSES)(x))


@pytest.mark.parametrize("make_teacher", [lambda: networks.build_classifier(SHAPE, CLASSES, SMALL, "t"),
                                          teacher_with_batchnorm])
def test_one_epoch_trains_generator_and_student_not_teacher(make_teacher):
    keras.utils.set_random_seed(0)
    teacher = make_teacher()
    generator = networks.build_generator(SHAPE, CLASSES, NOISE, width=4)
    student = networks.build_classifier(SHAPE, CLASSES, SMALL, "student")
    snapshot = {name: [w.numpy().copy() for w in m.weights] for name, m in
                [("teacher", teacher), ("generator", generator), ("student", student)]}
    history = datafree.distill_data_free(
        teacher, generator, student, DataFreeConfig(epochs=2, steps_per_epoch=2, batch_size=8, student_batch_size=8,
                                                 student_steps=2, bank_size=32),
        verbose=0).history
    assert {"g_loss", "distill_loss", "g_disagreement", "teacher_label_accuracy", "teacher_agreement",
            "bank_images"} <= set(history)
    assert all(np.isfinite(v[-1]) for v in history.values())

    def changed(name, model):
        return any(not np.allclose(a, w.numpy()) for a, w in zip(snapshot[name], model.weights))

    assert changed("generator", generator) and changed("student", student)
    assert not changed("teacher", teacher)


@pytest.mark.parametrize("prior_views,elastic", [(True, 0.0), (False, 0.0), (False, 0.1)])
def test_student_learns_on_the_prior_views_when_asked(prior_views, elastic):
    keras.utils.set_random_seed(0)
    teacher = networks.build_classifier(SHAPE, CLASSES, SMALL, "t")
    generator = networks.build_generator(SHAPE, CLASSES, NOISE, width=4)
    student = networks.build_classifier(SHAPE, CLASSES, SMALL, "student")
    config = DataFreeConfig(batch_size=8, student_batch_size=8, bank_size=32, student_augment_shift=0.0,
                            student_prior_views=prior_views, student_elastic=elastic)
    model = datafree.DataFreeDistiller(teacher, generator, student, config)
    model.compile()
    bank = np.random.default_rng(0).uniform(size=(32,) + SHAPE).astype("float32")
    model.bank.assign(bank)
    model.bank_count.assign(32)
    seen = []
    teacher_call = model.teacher.call
    model.teacher.call = lambda images, *a, **k: (seen.append(images.numpy()), teacher_call(images, *a, **k))[1]
    model.student_step()
    banked_rows = [any(np.allclose(image, row) for row in bank) for image in seen[-1]]
    assert (not any(banked_rows)) if prior_views or elastic else all(banked_rows)


def test_student_optimizer_is_sgd_with_decay_or_adam_on_a_cosine():
    sgd = datafree.student_optimizer_for(
        DataFreeConfig(student_optimizer="sgd", student_learning_rate=0.05, student_weight_decay=5e-4), 100)
    assert isinstance(sgd, keras.optimizers.SGD)
    assert sgd.momentum == pytest.approx(0.9) and sgd.weight_decay == pytest.approx(5e-4)
    schedule = sgd._learning_rate  # the schedule itself (learning_rate is its current value)
    assert float(schedule(0)) == pytest.approx(0.05) and float(schedule(100)) == pytest.approx(0.0005)
    adam = datafree.student_optimizer_for(DataFreeConfig(), 10)  # the default
    assert isinstance(adam, keras.optimizers.Adam) and adam.weight_decay is None
    assert float(adam._learning_rate(0)) == pytest.approx(2e-3)


def test_student_optimizer_name_is_checked():
    with pytest.raises(UsageError, match="student_optimizer"):
        RunConfig.from_dict({"datafree": {"student_optimizer": "rmsprop"}}).validate()


def test_student_init_is_checked():
    with pytest.raises(UsageError, match="student_init.*auto.*teacher.*random"):
        RunConfig.from_dict({"datafree": {"student_init": "pruned"}}).validate()


def test_intensity_penalty_is_free_up_to_the_allowance():
    images = tf.stack([tf.fill(SHAPE, 0.1), tf.fill(SHAPE, 0.5), tf.zeros(SHAPE)])
    np.testing.assert_allclose(datafree.intensity_penalty(images, 0.2).numpy(), [0.0, 0.3, 0.0], atol=1e-6)


def test_logit_disagreement_is_mean_absolute_difference():
    t = tf.constant([[1.0, -1.0], [0.0, 2.0]])
    s = tf.constant([[0.0, 1.0], [0.0, 2.0]])
    np.testing.assert_allclose(datafree.logit_disagreement(t, s).numpy(), [1.5, 0.0])


def test_reinitialize_draws_new_seeded_weights():
    keras.utils.set_random_seed(0)
    generator = networks.build_generator(SHAPE, CLASSES, NOISE, width=4)
    before = [w.numpy().copy() for w in generator.weights]
    datafree.reinitialize(generator, seed=1)
    first = [w.numpy().copy() for w in generator.weights]
    datafree.reinitialize(generator, seed=1)
    again = [w.numpy().copy() for w in generator.weights]
    datafree.reinitialize(generator, seed=2)
    other = [w.numpy().copy() for w in generator.weights]
    kernels = [i for i, w in enumerate(generator.weights) if "kernel" in w.path or "embeddings" in w.path]
    assert kernels and all(not np.allclose(before[i], first[i]) for i in kernels)
    assert all(np.array_equal(a, b) for a, b in zip(first, again))
    assert all(not np.allclose(first[i], other[i]) for i in kernels)


def test_bank_keeps_the_second_half_of_each_round_but_all_of_the_first():
    keras.utils.set_random_seed(0)
    teacher = networks.build_classifier(SHAPE, CLASSES, SMALL, "t")
    generator = networks.build_generator(SHAPE, CLASSES, NOISE, width=4)
    student = networks.build_classifier(SHAPE, CLASSES, SMALL, "student")
    model = datafree.DataFreeDistiller(teacher, generator, student,
                                       DataFreeConfig(steps_per_epoch=4, student_steps=1, student_batch_size=4,
                                                      bank_size=100, bank_from=0.5))
    model.compile()
    assert any(w is model.bank for w in model.weights)  # saved with the model (resume)
    labels = tf.constant([0, 1, 2, 0, 1, 2])
    counts = []
    for _ in range(8):
        model.train_step(labels)
        counts.append(int(model.bank_count.numpy()))
    # round 0 (steps 0-3): every batch of 6; round 1: steps 6 and 7 only
    assert counts == [6, 12, 18, 24, 24, 24, 30, 36]
    assert np.abs(model.bank.numpy()[:36]).sum() > 0 and not model.bank.numpy()[36:].any()


def test_each_epoch_starts_with_a_fresh_generator(monkeypatch):
    rounds = []
    monkeypatch.setattr(datafree.DataFreeDistiller, "reset_generator", lambda self, r: rounds.append(r))
    teacher = networks.build_classifier(SHAPE, CLASSES, SMALL, "t")
    generator = networks.build_generator(SHAPE, CLASSES, NOISE, width=4)
    student = networks.build_classifier(SHAPE, CLASSES, SMALL, "student")
    datafree.distill_data_free(teacher, generator, student,
                               DataFreeConfig(epochs=3, steps_per_epoch=1, batch_size=4, student_batch_size=4,
                                              student_steps=1, bank_size=16), verbose=0)
    assert rounds == [1, 2]


def test_batchnorm_prior_only_for_teachers_with_batchnorm():
    assert datafree.batchnorm_statistics_model(networks.build_classifier(SHAPE, CLASSES, SMALL, "t"))[0] is None
    model, layers = datafree.batchnorm_statistics_model(teacher_with_batchnorm())
    assert len(layers) == 1
    features = model(tf.random.uniform((4, *SHAPE)))
    assert float(datafree.batchnorm_statistics_loss([features], layers)) > 0


def test_training_code_has_no_parameter_for_real_data():
    params = set(inspect.signature(datafree.distill_data_free).parameters)
    assert params == {"teacher", "generator", "student", "config", "seed", "callbacks", "verbose", "epochs_done"}


def test_cli_data_free_needs_a_teacher(tmp_path, capsys):
    assert cli.main(["run", "--mode", "data-free", "--preset", "tiny", "--out", str(tmp_path / "r")]) == 2
    assert "--mode data-free needs --teacher" in capsys.readouterr().err
    assert not (tmp_path / "r").exists()


@pytest.mark.slow
def test_cli_data_free_run(tmp_path, capsys, lean_export_config):
    # a teacher trained long enough to be well above chance (a near-chance teacher is refused)
    (tmp_path / "longer.json").write_text(json.dumps({"teacher": {"epochs": 15}}))
    assert cli.main(["teacher", "--preset", "tiny", "--config", str(tmp_path / "longer.json"),
                     "--out", str(tmp_path / "t")]) == 0
    out = tmp_path / "df"
    assert cli.main(["run", "--mode", "data-free", "--preset", "tiny", "--teacher", str(tmp_path / "t" / "teacher.keras"),
                     "--config", lean_export_config(), "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "[2/4] data-free" in printed and "[2/5] gan" not in printed
    for name in ["generator.keras", "student.keras", "report.json", "tflite/student_int8.tflite", "samples.png",
                 "calibration_bank.npy"]:
        assert (out / name).is_file(), name
    assert "int8 calibrated on 16 replay bank samples" in printed
    card = json.loads((out / "tflite" / "model_card.json").read_text())
    assert card["calibration"] == {"source": "replay bank", "samples": 16}
    assert "Data-free mode: the student and generator were trained from the teacher alone" in (
        out / "report.md").read_text()
    assert json.loads((out / "report.json").read_text())["mode"] == "data-free"
    # the tiny preset's student is its teacher made narrower: it starts from the teacher's largest units
    start = {"from": "teacher", "layers": [["conv1", 2, 4], ["conv2", 4, 8], ["dense1", 8, 16], ["dense2", 8, 16],
                                           ["logits", 10, 10]]}
    assert json.loads((out / "student_start.json").read_text()) == start
    assert json.loads((out / "report.json").read_text())["student_start"] == start
    assert "The student started from the teacher's largest filters and units" in (out / "report.md").read_text()
    assert "the student starts from the teacher's largest filters and units (L1 norm; conv1 2 of 4" in printed
    # the stage alone, as its own sub-command: copies the teacher in, then trains (from random weights, as asked)
    stage_out = tmp_path / "stage"
    (tmp_path / "random.json").write_text(json.dumps({"datafree": {"student_init": "random"}}))
    assert cli.main(["data-free", "--preset", "tiny", "--teacher", str(tmp_path / "t" / "teacher.keras"),
                     "--config", str(tmp_path / "random.json"), "--out", str(stage_out)]) == 0
    printed = capsys.readouterr().out
    assert "[1/4] teacher: loading the user's teacher" in printed and "[2/4] data-free: generator and" in printed
    assert json.loads((stage_out / "config.json").read_text())["mode"] == "data-free"
    assert (stage_out / "student.keras").is_file() and not (stage_out / "tflite").exists()
    assert json.loads((stage_out / "student_start.json").read_text())["from"] == "random"
    # asked to start from the teacher, a student that is not the teacher made narrower is refused in one line
    (tmp_path / "mobile.json").write_text(json.dumps({"datafree": {"student_init": "teacher"}, "distill": {
        "network": {"architecture": "mobilenet", "conv_filters": [4, 8], "dense_units": []}}}))
    assert cli.main(["data-free", "--preset", "tiny", "--teacher", str(tmp_path / "t" / "teacher.keras"),
                     "--config", str(tmp_path / "mobile.json"), "--out", str(tmp_path / "mobile")]) == 2
    error = capsys.readouterr().err
    assert "datafree.student_init is teacher, but the student is not the teacher made narrower" in error
    assert "Traceback" not in error and not (tmp_path / "mobile" / "student.keras").exists()


def test_an_interrupted_run_resumes_with_its_bank(tmp_path):
    config = DataFreeConfig(epochs=3, steps_per_epoch=2, batch_size=4, student_batch_size=4, student_steps=1,
                            bank_size=64)

    def parts():
        keras.utils.set_random_seed(0)
        return (networks.build_classifier(SHAPE, CLASSES, SMALL, "t"),
                networks.build_generator(SHAPE, CLASSES, NOISE, width=4),
                networks.build_classifier(SHAPE, CLASSES, SMALL, "student"))

    class CrashAfterFirstEpoch(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            raise RuntimeError("simulated crash")

    backup = str(tmp_path / "backup")
    with pytest.raises(RuntimeError, match="simulated crash"):
        datafree.distill_data_free(*parts(), config, verbose=0,
                                   callbacks=[keras.callbacks.BackupAndRestore(backup), CrashAfterFirstEpoch()])
    started, banked = [], []

    class Watch(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            started.append(epoch)
            banked.append(int(self.model.bank_count.numpy()))

    datafree.distill_data_free(*parts(), config, verbose=0,
                               callbacks=[keras.callbacks.BackupAndRestore(backup), Watch()])
    # epoch 0 (first round: both batches of 4 banked) came back from the backup
    assert started == [1, 2] and banked[0] == 8
