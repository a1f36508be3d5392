"""Network builders, all sized from the image shape and class count.

* :func:`build_classifier`: teacher and student; input float32 images in [0, 1], output
  logits. LeNet-style CNN (LeCun et al., 1998), ResNet-9 (Page, 2018) or a MobileNet-style
  depthwise-separable network (Howard et al., 2017).
* :func:`build_generator`: class-conditional generator, inputs ``[noise, label]``, output
  images in [0, 1]: DCGAN (Radford et al., 2016), or residual with class-conditional batch
  norm (SN-GAN / BigGAN style, for colour images).
* :func:`build_discriminator`: projection discriminator (Miyato & Koyama, 2018,
  "cGANs with Projection Discriminator") with optional spectral normalisation
  (Miyato et al., 2018), DCGAN-style or residual; inputs ``[image, label]``, output one
  logit per image.
"""

from __future__ import annotations

import math

import keras
from keras import layers

from .config import ClassifierConfig


def build_classifier(image_shape, num_classes: int, config: ClassifierConfig, name: str) -> keras.Model:
    """The classifier of ``config.architecture``: input float32 images in [0, 1], output logits."""
    builders = {"lenet": build_lenet, "resnet": build_resnet9, "mobilenet": build_mobilenet, "dscnn": build_dscnn}
    return builders[config.architecture](image_shape, num_classes, config, name)


def build_lenet(image_shape, num_classes: int, config: ClassifierConfig, name: str) -> keras.Model:
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


def _conv_bn_relu(x, filters: int, name: str, kernel_size: int = 3, strides: int = 1):
    x = layers.Conv2D(filters, kernel_size, strides=strides, padding="same", use_bias=False, name=name)(x)
    x = layers.BatchNormalization(momentum=0.9, name=f"{name}_bn")(x)
    return layers.ReLU(name=f"{name}_relu")(x)


def build_resnet9(image_shape, num_classes: int, config: ClassifierConfig, name: str) -> keras.Model:
    """ResNet-9 (Page, 2018, "How to train your ResNet"; the DAWNBench CIFAR-10 winner):

    prep conv(c1) -> [conv(c2), pool] + res(c2) -> [conv(c3), pool] -> [conv(c4), pool] + res(c4)
    -> global max pool -> dense logits (scaled by 1/8),

    every conv 3x3 - BN - ReLU, ``res(c)``: ``x + conv(c)(conv(c)(x))``. Pooling stops
    once the feature map is 2x2 or smaller (so 8x8 inputs work; 32x32 -> 4x4; 64x64 -> 8x8).
    """
    if len(config.conv_filters) != 4:
        raise ValueError(f"resnet needs 4 conv_filters (prep, stage 1, 2, 3), got {config.conv_filters}")
    c1, c2, c3, c4 = config.conv_filters
    inputs = keras.Input(shape=tuple(image_shape), name="image")
    x = layers.Rescaling(2.0, offset=-1.0, name="centred")(inputs)
    x = _conv_bn_relu(x, c1, "prep")
    for stage, filters in enumerate((c2, c3, c4), start=1):
        x = _conv_bn_relu(x, filters, f"stage{stage}")
        if min(x.shape[1], x.shape[2]) > 2:
            x = layers.MaxPooling2D(2, name=f"stage{stage}_pool")(x)
        if stage in (1, 3):
            shortcut = x
            x = _conv_bn_relu(x, filters, f"stage{stage}_res1")
            x = _conv_bn_relu(x, filters, f"stage{stage}_res2")
            x = layers.Add(name=f"stage{stage}_add")([shortcut, x])
    x = layers.GlobalMaxPooling2D(name="pool")(x)
    x = layers.Dense(num_classes, use_bias=False, name="dense")(x)
    logits = layers.Rescaling(0.125, name="logits")(x)
    return keras.Model(inputs, logits, name=name)


def build_mobilenet(image_shape, num_classes: int, config: ClassifierConfig, name: str) -> keras.Model:
    """A MobileNet-style network (Howard et al., 2017) for phones and microcontrollers:

    conv3x3(f0) - BN - ReLU, then per further filter count f: depthwise 3x3 (stride 2 when
    f grows and the map is larger than 4x4) - BN - ReLU - pointwise 1x1(f) - BN - ReLU;
    global average pool; dense logits. Every op is in TFLite Micro's int8 kernel set.
    """
    filters = config.conv_filters
    inputs = keras.Input(shape=tuple(image_shape), name="image")
    x = layers.Rescaling(2.0, offset=-1.0, name="centred")(inputs)
    x = _conv_bn_relu(x, filters[0], "stem")
    for i, f in enumerate(filters[1:], start=1):
        stride = 2 if f > filters[i - 1] and min(x.shape[1], x.shape[2]) > 4 else 1
        x = layers.DepthwiseConv2D(3, strides=stride, padding="same", use_bias=False, name=f"block{i}_dw")(x)
        x = layers.BatchNormalization(momentum=0.9, name=f"block{i}_dw_bn")(x)
        x = layers.ReLU(name=f"block{i}_dw_relu")(x)
        x = _conv_bn_relu(x, f, f"block{i}_pw", kernel_size=1)
    x = layers.GlobalAveragePooling2D(name="pool")(x)
    logits = layers.Dense(num_classes, name="logits")(x)
    return keras.Model(inputs, logits, name=name)


def build_dscnn(image_shape, num_classes: int, config: ClassifierConfig, name: str) -> keras.Model:
    """DS-CNN for keyword spotting (Zhang et al., 2017, "Hello Edge: Keyword Spotting on
    Microcontrollers"), on a feature map of (frames, mel bins, 1):

    conv 10x4 (``conv_filters[0]``, stride 2) - BN - ReLU, then per further filter count f:
    depthwise 3x3 - BN - ReLU - pointwise 1x1(f) - BN - ReLU; global average pool;
    ``dropout``; dense logits. The 10x4 stem spans 200 ms of 20 ms frames and 4 mel bins.
    The feature map in [0, 1] goes straight into the stem: no centring layer, whose MUL and
    ADD would be two more int8 ops for a microcontroller, for a rescaling the stem's batch
    norm takes up (all but at the zero-padded borders).
    Every op is in TFLite-Micro's int8 kernel set.
    """
    filters = config.conv_filters
    inputs = keras.Input(shape=tuple(image_shape), name="image")
    x = inputs
    stem = (min(10, image_shape[0]), min(4, image_shape[1]))
    x = layers.Conv2D(filters[0], stem, strides=2, padding="same", use_bias=False, name="stem")(x)
    x = layers.BatchNormalization(momentum=0.9, name="stem_bn")(x)
    x = layers.ReLU(name="stem_relu")(x)
    for i, f in enumerate(filters[1:], start=1):
        x = layers.DepthwiseConv2D(3, padding="same", use_bias=False, name=f"block{i}_dw")(x)
        x = layers.BatchNormalization(momentum=0.9, name=f"block{i}_dw_bn")(x)
        x = layers.ReLU(name=f"block{i}_dw_relu")(x)
        x = _conv_bn_relu(x, f, f"block{i}_pw", kernel_size=1)
    x = layers.GlobalAveragePooling2D(name="pool")(x)
    if config.dropout:
        x = layers.Dropout(config.dropout, name="dropout")(x)
    logits = layers.Dense(num_classes, name="logits")(x)
    return keras.Model(inputs, logits, name=name)


def upsampling_stages(height: int, width: int) -> int:
    """Number of x2 upsampling stages: 1 for 8x8, 2 for 16..31, 3 from 32 up."""
    return max(1, min(3, int(math.log2(min(height, width) / 4))))


def build_generator(image_shape, num_classes: int, noise_dim: int, width: int,
                    architecture: str = "dcgan") -> keras.Model:
    """The class-conditional generator of ``architecture`` (``dcgan`` or ``resnet``),
    inputs ``[noise, label]``, output images in [0, 1]."""
    if architecture == "resnet":
        return build_resnet_generator(image_shape, num_classes, noise_dim, width)
    return build_dcgan_generator(image_shape, num_classes, noise_dim, width)


def build_discriminator(image_shape, num_classes: int, width: int, spectral_norm: bool = True,
                        architecture: str = "dcgan", taps: keras.Model | None = None) -> keras.Model:
    """The projection discriminator of ``architecture`` (``dcgan`` or ``resnet``),
    inputs ``[image, label]``, output one logit per image; with ``taps`` (the teacher's
    feature maps), :func:`build_projected_discriminator` instead (one logit per head)."""
    if taps is not None:
        return build_projected_discriminator(image_shape, num_classes, width, taps, spectral_norm)
    if architecture == "resnet":
        return build_resnet_discriminator(image_shape, num_classes, width, spectral_norm)
    return build_dcgan_discriminator(image_shape, num_classes, width, spectral_norm)


def build_dcgan_generator(image_shape, num_classes: int, noise_dim: int, width: int) -> keras.Model:
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


def _discriminator_inputs(image_shape) -> tuple:
    """(down-stages, image input, label input, image mapped to [-1, 1]) of a discriminator."""
    stages = upsampling_stages(*image_shape[:2])
    image = keras.Input(shape=tuple(image_shape), name="image")
    label = keras.Input(shape=(), dtype="int32", name="label")
    return stages, image, label, layers.Rescaling(2.0, offset=-1.0, name="to_signed_range")(image)


def build_projected_discriminator(image_shape, num_classes: int, width: int, taps: keras.Model,
                                  spectral_norm: bool = True) -> keras.Model:
    """``D(x, y)`` that judges images through a frozen feature network (Sauer et al., 2021,
    "Projected GANs Converge Faster"; Kumari et al., 2022, "Ensembling Off-the-shelf Models
    for GAN Training"): one head per feature map of ``taps`` (the teacher's stages,
    :func:`teacher_taps.feature_taps`) and one small head on the pixels.

    Each head: ``conv1x1(w) - LeakyReLU - [conv3x3(w, stride 2) - LeakyReLU while larger than
    4x4] - global sum pool - projection head``, spectral norm on every layer. Output: the
    heads' logits side by side, ``[batch, heads]``; the GAN losses are per element, so each
    head gets its own hinge, summed (as Projected GANs' multi-scale discriminators). The
    ``taps`` are not trained here; the generator's gradient flows through them.
    """
    _, image, label, signed = _discriminator_inputs(image_shape)
    taps.trainable = False
    features = taps(image, training=False)
    features = features if isinstance(features, (list, tuple)) else [features]
    pixels = _maybe_sn(layers.Conv2D(max(1, width // 2), 3, strides=2, padding="same", name="pixel_conv"),
                       spectral_norm)(signed)
    heads = []
    for index, feature in enumerate([pixels, *features]):
        name = "pixel" if index == 0 else f"tap{index}"
        x = _maybe_sn(layers.Conv2D(width, 1, name=f"{name}_mix"), spectral_norm)(feature)
        x = layers.LeakyReLU(negative_slope=0.2, name=f"{name}_mix_lrelu")(x)
        level = 0
        while min(x.shape[1], x.shape[2]) > 4:
            level += 1
            x = _maybe_sn(layers.Conv2D(width, 3, strides=2, padding="same", name=f"{name}_down{level}"),
                          spectral_norm)(x)
            x = layers.LeakyReLU(negative_slope=0.2, name=f"{name}_down{level}_lrelu")(x)
        area = int(x.shape[1]) * int(x.shape[2])
        x = layers.GlobalAveragePooling2D(name=f"{name}_mean")(x)
        x = layers.Rescaling(float(area), name=f"{name}_sum")(x)  # sum pooling: see the residual discriminator
        heads.append(ProjectionHead(num_classes, spectral_norm, name=f"{name}_projection")([x, label]))
    logits = layers.Concatenate(name="head_logits")(heads)
    return keras.Model([image, label], logits, name="discriminator")


def build_dcgan_discriminator(image_shape, num_classes: int, width: int, spectral_norm: bool = True) -> keras.Model:
    """``D(x, y)``: (strided conv, LeakyReLU 0.2)* -> dense features h -> projection head."""
    stages, image, label, x = _discriminator_inputs(image_shape)
    for i in range(stages):
        x = _maybe_sn(layers.Conv2D(width * 2 ** i, 4, strides=2, padding="same", name=f"down{i + 1}"),
                      spectral_norm)(x)
        x = layers.LeakyReLU(negative_slope=0.2, name=f"down{i + 1}_lrelu")(x)
    x = layers.Flatten(name="flatten")(x)
    x = _maybe_sn(layers.Dense(width * 2 ** stages, name="features"), spectral_norm)(x)
    x = layers.LeakyReLU(negative_slope=0.2, name="features_lrelu")(x)
    logits = ProjectionHead(num_classes, spectral_norm, name="projection")([x, label])
    return keras.Model([image, label], logits, name="discriminator")



# ----------------------------------------------------------------------------- residual GAN


@keras.saving.register_keras_serializable(package="tfgan_compress")
class ConditionalBatchNorm(layers.Layer):
    """Class-conditional batch normalisation (de Vries et al., 2017; Miyato & Koyama, 2018;
    BigGAN's shared-embedding form, Brock et al., 2019):

    ``y = BN(x) * (1 + gamma(e)) + beta(e)``, ``e`` the class embedding, ``gamma`` and
    ``beta`` linear maps initialised to zero (so it starts as plain BN). The statistics are
    synchronised across replicas, as in the DCGAN generator.
    """

    def build(self, input_shape):
        features_shape, code_shape = input_shape
        channels = int(features_shape[-1])
        self.norm = layers.BatchNormalization(center=False, scale=False, synchronized=True, name="norm")
        self.norm.build(features_shape)
        self.gamma = layers.Dense(channels, kernel_initializer="zeros", name="gamma")
        self.gamma.build(code_shape)
        self.beta = layers.Dense(channels, kernel_initializer="zeros", name="beta")
        self.beta.build(code_shape)
        for part in (self.norm, self.gamma, self.beta):  # made after a loaded file set trainable = False
            part.trainable = self.trainable

    def call(self, inputs, training=False):
        features, code = inputs
        gamma = self.gamma(code)[:, None, None, :]
        beta = self.beta(code)[:, None, None, :]
        return self.norm(features, training=training) * (1.0 + gamma) + beta

    def compute_output_shape(self, input_shape):
        return input_shape[0]


def _upsample(x, name: str):
    """Nearest-neighbour x2 to a fixed size (``Resizing``: TFLite's RESIZE_NEAREST_NEIGHBOR;
    ``UpSampling2D`` left the next convolution's shape open, which the converter refused)."""
    return layers.Resizing(x.shape[1] * 2, x.shape[2] * 2, interpolation="nearest", name=name)(x)


def build_resnet_generator(image_shape, num_classes: int, noise_dim: int, width: int) -> keras.Model:
    """Residual class-conditional generator (Miyato et al., 2018, SN-GAN's ResNet generator,
    with BigGAN's class-conditional BN from a shared class embedding):

    ``[z, embed(y)] -> dense -> 4x4`` (or the smallest base), then per up-stage
    ``h = conv3(ReLU(CBN(conv3(up(ReLU(CBN(x)))))))``, ``x <- h + conv1(up(x))``, channels
    ``4w, 2w, w`` from coarse to fine; ``BN - ReLU - conv3 - tanh`` -> [0, 1].
    """
    height, width_px, channels = image_shape
    stages = upsampling_stages(height, width_px)
    base_h, base_w = math.ceil(height / 2 ** stages), math.ceil(width_px / 2 ** stages)
    noise = keras.Input(shape=(noise_dim,), name="noise")
    label = keras.Input(shape=(), dtype="int32", name="label")
    code = layers.Embedding(num_classes, noise_dim, name="label_embedding")(label)
    x = layers.Concatenate(name="condition")([noise, code])
    top = width * 2 ** (stages - 1)
    x = layers.Dense(base_h * base_w * top, name="project")(x)
    x = layers.Reshape((base_h, base_w, top), name="reshape")(x)
    for i in range(stages):
        filters = width * 2 ** (stages - 1 - i)
        h = ConditionalBatchNorm(name=f"block{i + 1}_cbn1")([x, code])
        h = layers.ReLU(name=f"block{i + 1}_relu1")(h)
        h = _upsample(h, f"block{i + 1}_up")
        h = layers.Conv2D(filters, 3, padding="same", name=f"block{i + 1}_conv1")(h)
        h = ConditionalBatchNorm(name=f"block{i + 1}_cbn2")([h, code])
        h = layers.ReLU(name=f"block{i + 1}_relu2")(h)
        h = layers.Conv2D(filters, 3, padding="same", name=f"block{i + 1}_conv2")(h)
        shortcut = _upsample(x, f"block{i + 1}_shortcut_up")
        shortcut = layers.Conv2D(filters, 1, name=f"block{i + 1}_shortcut")(shortcut)
        x = layers.Add(name=f"block{i + 1}_add")([h, shortcut])
    x = layers.BatchNormalization(synchronized=True, name="out_bn")(x)
    x = layers.ReLU(name="out_relu")(x)
    x = layers.Conv2D(channels, 3, padding="same", activation="tanh", name="to_image")(x)
    x = layers.Rescaling(0.5, offset=0.5, name="to_unit_range")(x)
    if x.shape[1] != height or x.shape[2] != width_px:
        x = layers.CenterCrop(height, width_px, name="crop")(x)
    return keras.Model([noise, label], x, name="generator")


def build_resnet_discriminator(image_shape, num_classes: int, width: int, spectral_norm: bool = True) -> keras.Model:
    """Residual projection discriminator (Miyato et al., 2018; Miyato & Koyama, 2018):

    per down-stage ``h = avgpool(conv3(ReLU(conv3(a(x)))))``, ``x <- h + avgpool(conv1(x))``
    (``a`` = ReLU except on the first block, which sees the image), channels ``w, 2w, 4w``;
    then ``ReLU``, global sum pooling and the projection head. Spectral norm on every layer.
    """
    stages, image, label, x = _discriminator_inputs(image_shape)
    for i in range(stages):
        filters = width * 2 ** i
        h = x if i == 0 else layers.ReLU(name=f"down{i + 1}_relu0")(x)
        h = _maybe_sn(layers.Conv2D(filters, 3, padding="same", name=f"down{i + 1}_conv1"), spectral_norm)(h)
        h = layers.ReLU(name=f"down{i + 1}_relu1")(h)
        h = _maybe_sn(layers.Conv2D(filters, 3, padding="same", name=f"down{i + 1}_conv2"), spectral_norm)(h)
        h = layers.AveragePooling2D(2, name=f"down{i + 1}_pool")(h)
        shortcut = _maybe_sn(layers.Conv2D(filters, 1, name=f"down{i + 1}_shortcut"), spectral_norm)(x)
        shortcut = layers.AveragePooling2D(2, name=f"down{i + 1}_shortcut_pool")(shortcut)
        x = layers.Add(name=f"down{i + 1}_add")([h, shortcut])
    x = layers.ReLU(name="features_relu")(x)
    # global SUM pooling, as SN-GAN: with every layer 1-Lipschitz, an average would shrink the
    # output H*W-fold, and the hinge loss could not reach its +-1 margins (measured: d_loss stuck at 2)
    area = int(x.shape[1]) * int(x.shape[2])
    x = layers.GlobalAveragePooling2D(name="features_mean")(x)
    x = layers.Rescaling(float(area), name="features")(x)
    logits = ProjectionHead(num_classes, spectral_norm, name="projection")([x, label])
    return keras.Model([image, label], logits, name="discriminator")
