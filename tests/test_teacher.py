"""Teacher training: shift augmentation through the data pipeline, reproducible per seed."""

import keras
import numpy as np
import pytest

from tfgan_compress import data, teacher
from tfgan_compress.config import ClassifierConfig, TeacherConfig

CONFIG = TeacherConfig(network=ClassifierConfig((2, 4), (8, 8)), epochs=2, batch_size=8, augment_shift=1)


def test_training_with_shift_augmentation_is_reproducible(tiny_arrays):
    x_train, y_train, x_test, y_test = tiny_arrays
    dataset = data.make_dataset(x_train, y_train, x_test, y_test, "tiny", "fixture")
    weights = []
    for _ in range(2):
        keras.utils.set_random_seed(0)
        weights.append(teacher.train_teacher(dataset, CONFIG, seed=0, verbose=0).get_weights())
    assert all(np.array_equal(a, b) for a, b in zip(*weights))


def test_shift_moves_images_by_whole_pixels_with_zero_fill():
    images = np.zeros((64, 8, 8, 1), np.float32)
    images[:, 3, 3, 0] = 1.0
    pipeline = data.training_pipeline(images, np.zeros(64, np.int32), 64, seed=0,
                                      augment=keras.layers.RandomTranslation(1 / 8, 1 / 8, fill_mode="constant",
                                                                             interpolation="nearest", seed=0))
    shifted = next(iter(pipeline))[0].numpy()
    assert set(np.unique(shifted)) <= {0.0, 1.0} and np.all(shifted.sum(axis=(1, 2, 3)) == 1.0)
    rows, cols = np.nonzero(shifted[..., 0])[1:]
    assert set(rows) <= {2, 3, 4} and set(cols) <= {2, 3, 4} and len(set(zip(rows, cols))) > 1


@pytest.mark.parametrize("head", ["dense", "activation", "nested"])
def test_a_sigmoid_multi_label_teacher_is_refused(head):
    import keras

    from tfgan_compress.data import ImageSpec
    from tfgan_compress.errors import ModelError
    from tfgan_compress.teacher import check_classifier

    spec = ImageSpec((8, 8, 1), ("a", "b", "c"))
    layers = [keras.Input((8, 8, 1)), keras.layers.Flatten()]
    if head == "dense":
        model = keras.Sequential(layers + [keras.layers.Dense(3, activation="sigmoid")])
    else:
        model = keras.Sequential(layers + [keras.layers.Dense(3), keras.layers.Activation("sigmoid")])
    if head == "nested":
        model = keras.Sequential([keras.Input((8, 8, 1)), model])
    with pytest.raises(ModelError, match="ends in a sigmoid .*multi-label"):
        check_classifier(model, spec, "t.keras")
    softmax = keras.Sequential(layers + [keras.layers.Dense(3, activation="softmax")])
    check_classifier(softmax, spec, "t.keras")  # a softmax classifier passes


@pytest.mark.parametrize("channels", [1, 3])
def test_zoom_and_colour_augmentation_change_images_within_the_unit_range(channels):
    rng = np.random.default_rng(0)
    images = rng.uniform(0.2, 0.8, (64, 8, 8, channels)).astype(np.float32)
    assert teacher.image_augmenter(images.shape[1:], 0, False, seed=0) is None
    for zoom, color in ((0.3, 0.0), (0.0, 0.6)):
        augment = teacher.image_augmenter(images.shape[1:], 0, False, seed=0, zoom=zoom, color=color)
        out = np.asarray(augment(images, training=True))
        assert out.shape == images.shape and out.min() >= 0.0 and out.max() <= 1.0
        changed = np.abs(out - images).mean(axis=(1, 2, 3)) > 1e-3
        assert changed.mean() > 0.5, (zoom, color)  # most images changed, each by its own draw
        assert np.array_equal(np.asarray(augment(images, training=False)), images)
