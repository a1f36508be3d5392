"""``ConditionalGAN``: a ``keras.Model`` whose ``train_step`` implements the GAN objective.

Trained with plain ``model.fit(dataset_of_(image, label), callbacks=[...])``, so Keras
callbacks (TensorBoard, BackupAndRestore, ModelCheckpoint, TerminateOnNaN) work as usual.

Each step (Goodfellow et al., 2014, alternating updates):

1. discriminator: minimise ``L_D(D(x, y), D(G(z, y), y))`` (+ ``lambda * GP`` for WGAN-GP);
2. generator: minimise ``L_G(D(G(z', y), y))`` with fresh noise ``z'``;
   Both discriminator inputs first go through ``DiffAugment`` when ``config.diff_augment``
   names policies (Zhao et al., 2020; :mod:`augment`), in both steps;
3. EMA generator: ``w_ema <- d * w_ema + (1 - d) * w`` with the warm-up
   ``d = min(decay, (1 + t) / (10 + t))`` (Yazici et al., 2019, "The Unusual
   Effectiveness of Averaging in GAN Training").

Losses are per-example and averaged over the *global* batch
(:func:`losses.average_over_global_batch`), so the step stays correct under
``tf.distribute``. ``call(inputs)`` runs the EMA generator, so ``predict([z, y])``
returns samples.
"""

from __future__ import annotations

import dataclasses

import keras
import tensorflow as tf

from . import config as configs, losses
from .augment import diff_augment
from .config import GANConfig
from .training import PrebuiltModel, per_replica_seed, replica_mean


@keras.saving.register_keras_serializable(package="tfgan_compress")
class ConditionalGAN(PrebuiltModel):
    """``G(z, y)`` against ``D(x, y)``, trained by ``fit`` on ``(image, label)`` batches.
    (Long, as Keras models are: trackers, ``compile``, ``train_step`` and serialisation
    belong together.)

    ``config``: the ``gan`` section (loss family, EMA decay, learning rates for the default
    optimizers); ``gan_loss``: a :class:`losses.GANLoss` to use instead of ``config.loss``
    (such a model trains and checkpoints, but cannot be saved as ``.keras``).
    """

    def __init__(self, generator, discriminator, config: GANConfig | None = None, seed: int = 0,
                 gan_loss: losses.GANLoss | None = None, **kwargs):
        super().__init__(**kwargs)
        self.config = config or GANConfig()
        self.generator = generator
        self.discriminator = discriminator
        self.ema_generator = keras.models.clone_model(generator)
        self.ema_generator.set_weights(generator.get_weights())
        self.ema_generator.trainable = False
        self.noise_dim = int(generator.inputs[0].shape[-1])
        self.seed = seed
        self.custom_loss = gan_loss is not None
        self.gan_loss = gan_loss or losses.gan_loss(self.config.loss, self.config.gradient_penalty_weight)
        self.noise_seed = keras.random.SeedGenerator(seed)
        # Number of EMA updates so far (for the decay warm-up); saved with the model.
        self.ema_updates = self.add_weight(shape=(), initializer="zeros", dtype="float32",
                                           trainable=False, name="ema_updates")
        self.trackers = [keras.metrics.Mean(name=name) for name in ("d_loss", "g_loss", "d_real", "d_fake")]
        if self.gan_loss.penalty is not None:
            self.trackers.append(keras.metrics.Mean(name=self.gan_loss.penalty_name))
        # The functional sub-networks are built, so the GAN is too (BackupAndRestore needs it).
        self.built = True

    def compile(self, generator_optimizer=None, discriminator_optimizer=None, **kwargs):
        """Two optimizers (default: Adam with the config's learning rates and betas); every
        other keyword (``jit_compile``, ``steps_per_execution``...) goes to
        ``keras.Model.compile``."""
        c = self.config

        def adam(rate):
            return keras.optimizers.Adam(rate, beta_1=c.beta_1, beta_2=c.beta_2)

        self.compile_optimizers({
            "generator_optimizer": (generator_optimizer or adam(c.generator_learning_rate), self.generator),
            "discriminator_optimizer": (discriminator_optimizer or adam(c.discriminator_learning_rate),
                                        self.discriminator),
        }, **kwargs)

    @property
    def metrics(self):
        return self.trackers

    def call(self, inputs, training=False):
        return self.ema_generator(inputs, training=False)

    def sample_noise(self, batch_size):
        """Standard normal noise; a different stream on every replica of a strategy."""
        return tf.random.stateless_normal((batch_size, self.noise_dim), seed=per_replica_seed(self.noise_seed))

    def train_step(self, data):
        """``data`` is ``(images, labels)``, or ``(images, labels, noise)`` with ``noise`` of
        shape ``[batch, 2, noise_dim]`` (discriminator and generator step) for reproducible
        steps; otherwise the noise is drawn here."""
        if len(data) == 3:
            real_images, labels, given_noise = data
            d_noise, g_noise = given_noise[:, 0], given_noise[:, 1]
        else:
            real_images, labels = data
            batch = tf.shape(real_images)[0]
            d_noise, g_noise = self.sample_noise(batch), self.sample_noise(batch)
        labels = tf.cast(tf.reshape(labels, [-1]), tf.int32)
        loss = self.gan_loss
        augment = self.augment

        # 1. discriminator step
        with tf.GradientTape() as tape:
            fake_images = self.generator([d_noise, labels], training=True)
            real_logits = self.discriminator([augment(real_images), labels], training=True)
            fake_logits = self.discriminator([augment(fake_images), labels], training=True)
            per_example = loss.discriminator_loss(real_logits, fake_logits)
            if loss.penalty is not None:
                penalty = loss.penalty(lambda x, y: self.discriminator([x, y], training=True),
                                       real_images, fake_images, labels, per_replica_seed(self.noise_seed))
                per_example = per_example + loss.penalty_weight * penalty
            d_loss = losses.average_over_global_batch(per_example)
        grads = tape.gradient(d_loss, self.discriminator.trainable_variables)
        self.discriminator_optimizer.apply(grads, self.discriminator.trainable_variables)

        # 2. generator step, fresh noise
        with tf.GradientTape() as tape:
            g_images = augment(self.generator([g_noise, labels], training=True))
            g_logits = self.discriminator([g_images, labels], training=True)
            g_loss = losses.average_over_global_batch(loss.generator_loss(g_logits))
        grads = tape.gradient(g_loss, self.generator.trainable_variables)
        self.generator_optimizer.apply(grads, self.generator.trainable_variables)

        # 3. EMA of the generator weights (BatchNorm statistics included)
        self._update_ema()

        # Report per-replica values rescaled to the mean over the global batch.
        values = [replica_mean(d_loss), replica_mean(g_loss), tf.reduce_mean(real_logits), tf.reduce_mean(fake_logits)]
        if loss.penalty is not None:
            values.append(tf.reduce_mean(penalty))
        for tracker, value in zip(self.trackers, values):
            tracker.update_state(value)
        return self.step_logs()

    def augment(self, images):
        """DiffAugment of a discriminator input (identity without ``config.diff_augment``)."""
        if not self.config.diff_augment:
            return images
        return diff_augment(images, self.config.diff_augment, per_replica_seed(self.noise_seed))

    def _update_ema(self):
        step = self.ema_updates + 1.0
        decay = tf.minimum(self.config.ema_decay, (1.0 + step) / (10.0 + step))
        for ema_weight, weight in zip(self.ema_generator.weights, self.generator.weights):
            ema_weight.assign(decay * ema_weight + (1.0 - decay) * tf.cast(weight, ema_weight.dtype))
        self.ema_updates.assign(step)

    def get_config(self):
        if self.custom_loss:
            raise ValueError("a ConditionalGAN with a custom gan_loss cannot be saved as .keras; save its "
                             "generator and discriminator instead")
        return {
            **super().get_config(),
            "generator": keras.saving.serialize_keras_object(self.generator),
            "discriminator": keras.saving.serialize_keras_object(self.discriminator),
            "config": dataclasses.asdict(self.config),
            "seed": self.seed,
        }

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        config["generator"] = keras.saving.deserialize_keras_object(config["generator"])
        config["discriminator"] = keras.saving.deserialize_keras_object(config["discriminator"])
        config["config"] = configs.section_from_dict(GANConfig, config["config"], "gan")
        return cls(**config)
