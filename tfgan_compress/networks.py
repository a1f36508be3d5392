"""Network builders, all sized from the image shape and class count.

* :func:`build_classifier`: LeNet-style CNN (LeCun et al., 1998) used for teacher and
  student; input float32 images in [0, 1], output logits.
* :func:`build_generator`: class-conditional DCGAN generator (Radford et al., 2016);
  inputs ``[noise, label]``, output images in [0, 1].
* :func:`build_discriminator`: projection discriminator (Miyato & Koyama, 2018,
  "cGANs with Projection Discriminator") with optional spectral normalisation
  (Miyato et al., 2018); inputs ``[image, label]``, output one logit per image.
"""

from __future__ import annotations

import math

import keras
from keras import layers

from .config import ClassifierConfig


def build_classifier(image_shape, num_classes: int, config: ClassifierConfig, name: str) -> keras.Model:
    """conv(k, 'same') - ReLU - maxpool - conv(k) - ReLU - maxpool - dense - dense - logits.

    The second convolution is 'valid' when the feature map is large enough (as in
    LeNet-5 on 28x28: 28 -> 14 -> 10 -> 5), otherwise 'same' so that 8x8 inputs work.
    """
    f1, f2 = config.conv_filters
    k = config.kernel_size
    inputs = keras.Input(shape=tuple(image_shape), name="image")
    x = layers.Conv2D(f1, k, padding="same", activation="relu", name="conv1")(inputs)
    x = layers.MaxPooling2D(2, name="pool1")(x)
    padding = "valid" if min(x.shape[1], x.shape[2]) >= 2 * k else "same"
    x = layers.Conv2D(f2, k, padding=padding, activation="relu", name="conv2")(x)
    if min(x.shape[1], x.shape[2]) >= 2:
        x = layers.MaxPooling2D(2, name="pool2")(x)
    x = layers.Flatten(name="flatten")(x)
    for i, units in enumerate(config.dense_units):
        x = layers.Dense(units, activation="relu", name=f"dense{i + 1}")(x)
        if config.dropout:
            x = layers.Dropout(config.dropout, name=f"dropout{i + 1}")(x)
    logits = layers.Dense(num_classes, name="logits")(x)
    return keras.Model(inputs, logits, name=name)


def upsampling_stages(height: int, width: int) -> int:
    """Number of x2 upsampling stages: 1 for 8x8, 2 for 16..31, 3 from 32 up."""
    return max(1, min(3, int(math.log2(min(height, width) / 4))))


def build_generator(image_shape, num_classes: int, noise_dim: int, width: int) -> keras.Model:
    """``G(z, y)``: embed(y) ++ z -> dense -> (transposed conv x2, BN, ReLU)* -> tanh -> [0, 1].

    Batch normalisation is synchronised across replicas under ``tf.distribute`` (statistics
    of the global batch), so a step does not depend on how the batch is split.
    The last layer maps tanh's [-1, 1] to [0, 1], the pixel range every model here uses;
    a centre crop trims the output when the image size is not a multiple of the
    upsampling factor.
    """
    height, width_px, channels = image_shape
    stages = upsampling_stages(height, width_px)
    base_h = math.ceil(height / 2 ** stages)
    base_w = math.ceil(width_px / 2 ** stages)
    top = width * 2 ** (stages - 1)

    noise = keras.Input(shape=(noise_dim,), name="noise")
    label = keras.Input(shape=(), dtype="int32", name="label")
    embedded = layers.Embedding(num_classes, noise_dim, name="label_embedding")(label)
    x = layers.Concatenate(name="condition")([noise, embedded])
    x = layers.Dense(base_h * base_w * top, use_bias=False, name="project")(x)
    x = layers.BatchNormalization(synchronized=True, name="project_bn")(x)
    x = layers.ReLU(name="project_relu")(x)
    x = layers.Reshape((base_h, base_w, top), name="reshape")(x)
    for i in range(stages - 1):
        filters = top // 2 ** (i + 1)
        x = layers.Conv2DTranspose(filters, 4, strides=2, padding="same", use_bias=False, name=f"up{i + 1}")(x)
        x = layers.BatchNormalization(synchronized=True, name=f"up{i + 1}_bn")(x)
        x = layers.ReLU(name=f"up{i + 1}_relu")(x)
    x = layers.Conv2DTranspose(channels, 4, strides=2, padding="same", activation="tanh", name="to_image")(x)
    x = layers.Rescaling(0.5, offset=0.5, name="to_unit_range")(x)
    if x.shape[1] != height or x.shape[2] != width_px:
        x = layers.CenterCrop(height, width_px, name="crop")(x)
    return keras.Model([noise, label], x, name="generator")


@keras.saving.register_keras_serializable(package="tfgan_compress")
class ProjectionHead(layers.Layer):
    """``psi(h) + <embed(y), h>``: the projection discriminator's output layer."""

    def __init__(self, num_classes: int, spectral_norm: bool = True, **kwargs):
        super().__init__(**kwargs)
        self.num_classes = num_classes
        self.spectral_norm = spectral_norm

    def build(self, input_shape):
        features_shape, _ = input_shape
        features = int(features_shape[-1])
        self.linear = _maybe_sn(layers.Dense(1, name="linear"), self.spectral_norm)
        self.linear.build(features_shape)
        self.embedding = layers.Embedding(self.num_classes, features, name="class_embedding")
        self.embedding.build((None,))

    def call(self, inputs):
        features, label = inputs
        projection = keras.ops.sum(self.embedding(label) * features, axis=-1, keepdims=True)
        return self.linear(features) + projection

    def compute_output_shape(self, input_shape):
        return (input_shape[0][0], 1)

    def get_config(self):
        return {**super().get_config(), "num_classes": self.num_classes, "spectral_norm": self.spectral_norm}


def _maybe_sn(layer, spectral_norm: bool):
    return layers.SpectralNormalization(layer) if spectral_norm else layer


def build_discriminator(image_shape, num_classes: int, width: int, spectral_norm: bool = True) -> keras.Model:
    """``D(x, y)``: (strided conv, LeakyReLU 0.2)* -> dense features h -> projection head."""
    height, width_px, _ = image_shape
    stages = upsampling_stages(height, width_px)
    image = keras.Input(shape=tuple(image_shape), name="image")
    label = keras.Input(shape=(), dtype="int32", name="label")
    x = layers.Rescaling(2.0, offset=-1.0, name="to_signed_range")(image)
    for i in range(stages):
        x = _maybe_sn(layers.Conv2D(width * 2 ** i, 4, strides=2, padding="same", name=f"down{i + 1}"),
                      spectral_norm)(x)
        x = layers.LeakyReLU(negative_slope=0.2, name=f"down{i + 1}_lrelu")(x)
    x = layers.Flatten(name="flatten")(x)
    x = _maybe_sn(layers.Dense(width * 2 ** stages, name="features"), spectral_norm)(x)
    x = layers.LeakyReLU(negative_slope=0.2, name="features_lrelu")(x)
    logits = ProjectionHead(num_classes, spectral_norm, name="projection")([x, label])
    return keras.Model([image, label], logits, name="discriminator")

