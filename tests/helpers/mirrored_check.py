"""Run in a fresh process (logical devices must be set before TensorFlow starts), with the
GAN losses to check as arguments: for each, one GAN step on 2 replicas x half batch against
1 replica x full batch; then, under MirroredStrategy, one GAN epoch (the first loss) and one
distillation epoch. Prints one JSON line of results (one process for all: TensorFlow starts once)."""

import json
import sys

import tensorflow as tf

cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)

import keras  # noqa: E402
import numpy as np  # noqa: E402

from tfgan_compress import distill, networks  # noqa: E402
from tfgan_compress.config import ClassifierConfig, DistillConfig, GANConfig  # noqa: E402
from tfgan_compress.gan import ConditionalGAN  # noqa: E402

SHAPE, CLASSES, NOISE, BATCH = (8, 8, 1), 3, 4, 8
LOSSES = sys.argv[1:] or ["hinge"]


def make_gan(strategy, loss, weights=None):
    with strategy.scope():
        keras.utils.set_random_seed(0)
        generator = networks.build_generator(SHAPE, CLASSES, NOISE, width=4)
        discriminator = networks.build_discriminator(SHAPE, CLASSES, width=4)
        model = ConditionalGAN(generator, discriminator, GANConfig(loss=loss))
        model.compile(keras.optimizers.Adam(1e-2), keras.optimizers.Adam(1e-2))
    if weights is not None:
        model.generator.set_weights(weights[0])
        model.discriminator.set_weights(weights[1])
        model.ema_generator.set_weights(weights[0])
    return model


def weights_of(model):
    return [model.generator.get_weights(), model.discriminator.get_weights(), model.ema_generator.get_weights()]


rng = np.random.default_rng(0)
x = rng.random((BATCH, *SHAPE)).astype(np.float32)
y = (np.arange(BATCH) % CLASSES).astype(np.int32)
noise = rng.standard_normal((BATCH, 2, NOISE)).astype(np.float32)
one_step = tf.data.Dataset.from_tensor_slices((x, y, noise)).batch(BATCH)

one = tf.distribute.OneDeviceStrategy("/cpu:0")
two = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
per_loss = {}
for loss in LOSSES:
    reference = make_gan(one, loss)
    initial = weights_of(reference)[:2]
    reference.fit(one_step, epochs=1, verbose=0)
    mirrored = make_gan(two, loss, initial)
    mirrored.fit(one_step, epochs=1, verbose=0)
    differences = {}
    for part, a, b in zip(["generator", "discriminator", "ema_generator"], weights_of(reference), weights_of(mirrored)):
        differences[part] = max(float(np.max(np.abs(u - v))) for u, v in zip(a, b))
    per_loss[loss] = {
        "max_weight_difference": differences,
        "weights_moved_by": max(float(np.max(np.abs(u - v))) for u, v in zip(initial[1], weights_of(reference)[1])),
    }

# One GAN epoch with noise drawn per replica, and one distillation epoch, under the 2 replicas.
epoch = tf.data.Dataset.from_tensor_slices((np.concatenate([x] * 4), np.concatenate([y] * 4))).batch(BATCH)
gan_history = make_gan(two, LOSSES[0]).fit(epoch, epochs=1, verbose=0).history
with two.scope():
    keras.utils.set_random_seed(1)
    small = ClassifierConfig((2, 4), (8, 8))
    teacher = networks.build_classifier(SHAPE, CLASSES, small, "teacher")
    generator = networks.build_generator(SHAPE, CLASSES, NOISE, width=4)
    student = networks.build_classifier(SHAPE, CLASSES, small, "student")
    distill_history = distill.distill_on_generator(
        teacher, generator, student, DistillConfig(network=small, epochs=1, steps_per_epoch=3, batch_size=8),
        verbose=0).history

print(json.dumps({
    "replicas": two.num_replicas_in_sync,
    "losses": per_loss,
    "gan_epoch": {k: v[-1] for k, v in gan_history.items()},
    "distill_epoch": {k: v[-1] for k, v in distill_history.items()},
}))
