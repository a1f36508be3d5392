"""``ConditionalGAN``: a ``keras.Model`` whose ``train_step`` implements the GAN objective.

Trained with plain ``model.fit(dataset_of_(image, label), callbacks=[...])``, so Keras
callbacks (TensorBoard, BackupAndRestore, ModelCheckpoint, TerminateOnNaN) work as usual.

Each step (Goodfellow et al., 2014, alternating updates):

1. discriminator: minimise ``L_D(D(x, y), D(G(z, y), y))`` (+ ``lambda * GP`` for WGAN-GP);
2. generator: minimise ``L_G(D(G(z', y), y))`` with fresh noise ``z'``;
3. EMA generator: ``w_ema <- d * w_ema + (1 - d) * w`` with the warm-up
   ``d = min(decay, (1 + t) / (10 + t))`` (Yazici et al., 2019, "The Unusual
   Effectiveness of Averaging in GAN Training").

Losses are per-example and averaged over the *global* batch
(:func:`losses.average_over_global_batch`), so the step stays correct under
``tf.distribute``. ``call(inputs)`` runs the EMA generator, so ``predict([z, y])``
returns samples.
"""

from __future__ import annotations

import keras
import tensorflow as tf

from . import losses


def per_replica_seed(seed_generator: keras.random.SeedGenerator):
    """Next ``[2]`` int64 seed for stateless random ops, offset by the replica id.

    Under ``tf.distribute`` every replica holds the same seed state; the offset gives each
    replica its own noise stream (outside a strategy the replica id is 0).
    """
    seed = tf.cast(seed_generator.next(), tf.int64)
    replica = tf.distribute.get_replica_context()
    if replica is not None:
        seed = seed + tf.stack([tf.cast(replica.replica_id_in_sync_group, tf.int64) * 1_000_003, 0])
    return seed


class PrebuiltModel(keras.Model):
    """A ``keras.Model`` whose parts are built before ``fit`` (functional sub-networks,
    optimizers built in ``compile``, metric trackers made in ``__init__``).

    Keras 3's ``fit`` otherwise runs a "symbolic build" that first reduces a distributed
    batch eagerly with ``strategy.reduce``, which fails under
    ``MultiWorkerMirroredStrategy`` (keras-team/keras#20585). Nothing here needs that build,
    so it is skipped; everything else in ``fit`` is unchanged.
    """

    def _maybe_symbolic_build(self, iterator=None, data_batch=None):
        return

    def step_logs(self) -> dict:
        """``{name: result}`` of the tracked metrics, as ``train_step`` returns them.

        Under ``MultiWorkerMirroredStrategy`` Keras reduces step logs with
        ``strategy.reduce("MEAN", value, axis=0)``, which needs a leading axis; scalars get
        one there (and lose it again in the reduction).
        """
        logs = {m.name: m.result() for m in self.metrics}
        if isinstance(tf.distribute.get_strategy(), tf.distribute.MultiWorkerMirroredStrategy):
            logs = {name: tf.reshape(value, [1]) for name, value in logs.items()}
        return logs


@keras.saving.register_keras_serializable(package="tfgan_compress")
class ConditionalGAN(PrebuiltModel):
    def __init__(self, generator, discriminator, num_classes: int, noise_dim: int,
                 loss: str = "hinge", gradient_penalty_weight: float = 10.0,
                 ema_decay: float = 0.999, seed: int = 0, **kwargs):
        super().__init__(**kwargs)
        if loss not in losses.GAN_LOSS_FUNCTIONS:
            raise ValueError(f"unknown GAN loss {loss!r}; choose from {sorted(losses.GAN_LOSS_FUNCTIONS)}")
        self.generator = generator
        self.discriminator = discriminator
        self.ema_generator = keras.models.clone_model(generator)
        self.ema_generator.set_weights(generator.get_weights())
        self.ema_generator.trainable = False
        self.num_classes = num_classes
        self.noise_dim = noise_dim
        self.loss_name = loss
        self.gradient_penalty_weight = gradient_penalty_weight
        self.ema_decay = ema_decay
        self.seed = seed
        self.generator_loss_fn, self.discriminator_loss_fn = losses.GAN_LOSS_FUNCTIONS[loss]
        self.noise_seed = keras.random.SeedGenerator(seed)
        # Number of EMA updates so far (for the decay warm-up); saved with the model.
        self.ema_updates = self.add_weight(shape=(), initializer="zeros", dtype="float32",
                                           trainable=False, name="ema_updates")
        self.d_loss_tracker = keras.metrics.Mean(name="d_loss")
        self.g_loss_tracker = keras.metrics.Mean(name="g_loss")
        self.real_logit_tracker = keras.metrics.Mean(name="d_real")
        self.fake_logit_tracker = keras.metrics.Mean(name="d_fake")
        self.gp_tracker = keras.metrics.Mean(name="gradient_penalty")
        # The functional sub-networks are built, so the GAN is too (BackupAndRestore needs it).
        self.built = True

    def compile(self, generator_optimizer=None, discriminator_optimizer=None, **kwargs):
        """Two optimizers; every other keyword (``jit_compile``, ``steps_per_execution``...)
        goes to ``keras.Model.compile``. ``Model.optimizer`` stays unset: the two below are
        the only ones, and both are saved with the model (and by BackupAndRestore)."""
        kwargs.setdefault("optimizer", None)
        super().compile(**kwargs)
        self.generator_optimizer = generator_optimizer or keras.optimizers.Adam(2e-4, beta_1=0.0, beta_2=0.9)
        self.discriminator_optimizer = discriminator_optimizer or keras.optimizers.Adam(2e-4, beta_1=0.0, beta_2=0.9)
        self.generator_optimizer.build(self.generator.trainable_variables)
        self.discriminator_optimizer.build(self.discriminator.trainable_variables)

    @property
    def metrics(self):
        tracked = [self.d_loss_tracker, self.g_loss_tracker, self.real_logit_tracker, self.fake_logit_tracker]
        if self.loss_name == "wasserstein_gp":
            tracked.append(self.gp_tracker)
        return tracked

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

        # 1. discriminator step
        noise = d_noise
        with tf.GradientTape() as tape:
            fake_images = self.generator([noise, labels], training=True)
            real_logits = self.discriminator([real_images, labels], training=True)
            fake_logits = self.discriminator([fake_images, labels], training=True)
            per_example = self.discriminator_loss_fn(real_logits, fake_logits)
            if self.loss_name == "wasserstein_gp":
                penalty = losses.gradient_penalty(
                    lambda x, y: self.discriminator([x, y], training=True),
                    real_images, fake_images, labels)
                per_example = per_example + self.gradient_penalty_weight * penalty
            d_loss = losses.average_over_global_batch(per_example)
        grads = tape.gradient(d_loss, self.discriminator.trainable_variables)
        self.discriminator_optimizer.apply(grads, self.discriminator.trainable_variables)

        # 2. generator step, fresh noise
        noise = g_noise
        with tf.GradientTape() as tape:
            fake_images = self.generator([noise, labels], training=True)
            g_logits = self.discriminator([fake_images, labels], training=True)
            g_loss = losses.average_over_global_batch(self.generator_loss_fn(g_logits))
        grads = tape.gradient(g_loss, self.generator.trainable_variables)
        self.generator_optimizer.apply(grads, self.generator.trainable_variables)

        # 3. EMA of the generator weights (BatchNorm statistics included)
        self._update_ema()

        # Report per-replica values rescaled to the mean over the global batch.
        self.d_loss_tracker.update_state(self._replica_mean(d_loss))
        self.g_loss_tracker.update_state(self._replica_mean(g_loss))
        self.real_logit_tracker.update_state(tf.reduce_mean(real_logits))
        self.fake_logit_tracker.update_state(tf.reduce_mean(fake_logits))
        if self.loss_name == "wasserstein_gp":
            self.gp_tracker.update_state(tf.reduce_mean(penalty))
        return self.step_logs()

    @staticmethod
    def _replica_mean(global_average):
        """A replica's share of the global-batch average, scaled back to its own mean."""
        replica = tf.distribute.get_replica_context()
        n = replica.num_replicas_in_sync if replica is not None else 1
        return global_average * n

    def _update_ema(self):
        step = self.ema_updates + 1.0
        decay = tf.minimum(self.ema_decay, (1.0 + step) / (10.0 + step))
        for ema_weight, weight in zip(self.ema_generator.weights, self.generator.weights):
            ema_weight.assign(decay * ema_weight + (1.0 - decay) * tf.cast(weight, ema_weight.dtype))
        self.ema_updates.assign(step)

    def generate(self, labels, noise=None, seed=None):
        """Images from the EMA generator for integer ``labels`` (numpy in, tensor out)."""
        labels = tf.convert_to_tensor(labels, tf.int32)
        if noise is None:
            noise = tf.random.stateless_normal((tf.shape(labels)[0], self.noise_dim), seed=[seed or 0, 0])
        return self.ema_generator([noise, labels], training=False)

    def get_config(self):
        return {
            **super().get_config(),
            "generator": keras.saving.serialize_keras_object(self.generator),
            "discriminator": keras.saving.serialize_keras_object(self.discriminator),
            "num_classes": self.num_classes,
            "noise_dim": self.noise_dim,
            "loss": self.loss_name,
            "gradient_penalty_weight": self.gradient_penalty_weight,
            "ema_decay": self.ema_decay,
            "seed": self.seed,
        }

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        config["generator"] = keras.saving.deserialize_keras_object(config["generator"])
        config["discriminator"] = keras.saving.deserialize_keras_object(config["discriminator"])
        return cls(**config)
