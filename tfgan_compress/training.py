"""Keras training code shared by every trainable algorithm (``gan``, ``distill``, ``datafree``).

* :class:`PrebuiltModel`: the ``keras.Model`` base of the GAN and the distillers (parts
  built before ``fit``; one optimizer per trained network);
* :func:`per_replica_seed`, :func:`replica_mean`: random draws and reported losses that stay
  right under ``tf.distribute``;
* :class:`TeacherAgreement`: how often the student's top-1 class is the teacher's;
* :func:`cosine_adam`: Adam with a cosine-decayed learning rate (Loshchilov & Hutter, 2017);
* :func:`label_batches`: the endless stream of class labels that generator-fed models fit on.
"""

from __future__ import annotations

import keras
import tensorflow as tf

__all__ = ["PrebuiltModel", "per_replica_seed", "replica_mean", "TeacherAgreement", "cosine_adam", "label_batches"]


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


def replica_mean(global_average):
    """A replica's share of a global-batch average (:func:`losses.average_over_global_batch`),
    scaled back to the mean over its own examples, for reporting."""
    replica = tf.distribute.get_replica_context()
    n = replica.num_replicas_in_sync if replica is not None else 1
    return global_average * n


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

    def compile_optimizers(self, optimizers: dict, **kwargs) -> None:
        """``keras.Model.compile(**kwargs)`` with ``Model.optimizer`` unset, and one optimizer
        per trained network: ``optimizers`` maps an attribute name (``generator_optimizer``)
        to ``(optimizer, network)``. Each optimizer is built for its network here, so that
        both are saved with the model and restored by ``BackupAndRestore``."""
        kwargs.setdefault("optimizer", None)
        super().compile(**kwargs)
        for name, (optimizer, network) in optimizers.items():
            setattr(self, name, optimizer)
            optimizer.build(network.trainable_variables)

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


class TeacherAgreement(keras.metrics.Mean):
    """Mean of ``argmax(student_logits) == argmax(teacher_logits)`` over examples."""

    def __init__(self, name: str = "teacher_agreement", **kwargs):
        super().__init__(name=name, **kwargs)

    def update_state(self, teacher_logits, student_logits, sample_weight=None):
        same = tf.equal(tf.argmax(student_logits, axis=-1, output_type=tf.int32),
                        tf.argmax(teacher_logits, axis=-1, output_type=tf.int32))
        return super().update_state(tf.cast(same, tf.float32), sample_weight=sample_weight)


def cosine_adam(learning_rate: float, total_steps: int, **adam_kwargs) -> keras.optimizers.Adam:
    """Adam whose learning rate decays along a cosine to 1% of ``learning_rate`` over
    ``total_steps`` (Loshchilov & Hutter, 2017, "SGDR")."""
    schedule = keras.optimizers.schedules.CosineDecay(learning_rate, total_steps, alpha=0.01)
    return keras.optimizers.Adam(schedule, **adam_kwargs)


def warmup_cosine(peak: float, total_steps: int, warmup_fraction: float = 0.0):
    """Learning rate rising linearly from 0 to ``peak`` over ``warmup_fraction`` of the steps,
    then decaying along a cosine to 1% of it (a one-cycle shape: Smith & Topin, 2017;
    Goyal et al., 2017 for the warm-up; Loshchilov & Hutter, 2017 for the cosine)."""
    warmup = int(total_steps * warmup_fraction)
    if not warmup:
        return keras.optimizers.schedules.CosineDecay(peak, max(1, total_steps), alpha=0.01)
    return keras.optimizers.schedules.CosineDecay(0.0, max(1, total_steps - warmup), alpha=0.01,
                                                  warmup_target=peak, warmup_steps=warmup)


def label_batches(num_classes: int, batch_size: int, seed: int, skip_batches: int = 0):
    """Endless ``tf.data`` stream of uniform random class labels: the only ``fit`` input of
    the models that learn from generator samples; ``skip_batches``: those an interrupted
    run already used (a resumed run goes on with the same stream)."""
    ds = tf.data.Dataset.random(seed=seed).map(lambda v: tf.cast(v % num_classes, tf.int32))
    ds = ds.batch(batch_size, drop_remainder=True)
    return (ds.skip(skip_batches) if skip_batches else ds).prefetch(tf.data.AUTOTUNE)
