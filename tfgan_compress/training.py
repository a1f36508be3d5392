"""Keras training code shared by every trainable algorithm (``gan``, ``distill``, ``datafree``).

* :class:`PrebuiltModel`: the ``keras.Model`` base of the GAN and the distillers (parts
  built before ``fit``; one optimizer per trained network, all of them seen by Keras'
  learning-rate callbacks; metrics with a direction; a compile config that reloads);
* :func:`directed_mean`, :class:`DirectedMetrics`: metrics that ``EarlyStopping`` and
  ``ModelCheckpoint`` can monitor without ``mode``;
* :func:`per_replica_seed`, :func:`replica_mean`: random draws and reported losses that stay
  right under ``tf.distribute``;
* :class:`TeacherAgreement`: how often the student's top-1 class is the teacher's;
* :func:`cosine_adam`: Adam with a cosine-decayed learning rate (Loshchilov & Hutter, 2017);
* :func:`label_batches`: the endless stream of class labels that generator-fed models fit on.
"""

from __future__ import annotations

import keras
import tensorflow as tf

from .compat import metrics_list_class, set_direction

__all__ = ["PrebuiltModel", "directed_mean", "DirectedMetrics", "OptimizerSet", "per_replica_seed", "replica_mean",
           "TeacherAgreement", "cosine_adam", "label_batches"]

#: ``compile`` arguments of ``keras.Model`` that these models do not use (each trains its
#: own networks with its own losses); refused rather than silently ignored
UNUSED_COMPILE_ARGUMENTS = ("loss", "metrics", "weighted_metrics", "loss_weights")
#: ``compile`` arguments kept in the compile config (the optimizers are kept by name)
KEPT_COMPILE_ARGUMENTS = ("steps_per_execution", "jit_compile", "run_eagerly")


def directed_mean(name: str, direction: str | None = None) -> keras.metrics.Mean:
    """A ``Mean`` tracker; ``direction`` ``"down"`` (a loss) or ``"up"`` (an accuracy) lets
    Keras' monitoring callbacks pick ``mode="min"``/``"max"`` on their own."""
    tracker = keras.metrics.Mean(name=name)
    if direction is not None:
        set_direction(tracker, direction)
    return tracker


class DirectedMetrics(metrics_list_class()):
    """The model's trackers in the one container whose metrics' directions Keras'
    ``MonitorCallback`` (EarlyStopping, ModelCheckpoint, ReduceLROnPlateau) inspects; its
    ``result()`` is ``{name: value}``, which ``Model.get_metrics_result`` flattens."""

    def result(self):
        return self.get_result()


class OptimizerSet:
    """``model.optimizer`` of a model with one optimizer per network: Keras'
    ``LearningRateScheduler``, ``ReduceLROnPlateau`` and ``TensorBoard`` act on (and log)
    every optimizer in ``optimizers`` (they look for that attribute). The optimizers
    themselves are the model's named attributes (``generator_optimizer``...)."""

    def __init__(self, optimizers: dict):
        self.named = dict(optimizers)

    @property
    def optimizers(self) -> list:
        return list(self.named.values())

    @property
    def built(self) -> bool:
        return all(optimizer.built for optimizer in self.optimizers)

    def build(self, variables=None) -> None:
        """Nothing to do: each optimizer was built for its own network in ``compile``
        (Keras calls this with all the model's variables, which no one optimizer takes)."""

    @property
    def iterations(self):
        """Training steps so far (the first optimizer's count; each steps once per step)."""
        return self.optimizers[0].iterations

    def __repr__(self) -> str:
        return f"OptimizerSet({', '.join(self.named)})"


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

    #: the trackers (a :class:`DirectedMetrics`), set by the subclass
    metric_list: DirectedMetrics

    @property
    def metrics(self):
        return [self.metric_list]

    def compile_optimizers(self, optimizers: dict, **kwargs) -> None:
        """``keras.Model.compile(**kwargs)`` with one optimizer per trained network:
        ``optimizers`` maps an attribute name (``generator_optimizer``) to ``(optimizer or
        its name, network)``. Each optimizer is built for its network here, so that all are
        saved with the model and restored by ``BackupAndRestore`` and ``load_model``. With
        several, ``model.optimizer`` is their :class:`OptimizerSet`.

        ``loss``, ``metrics``... are refused (:data:`UNUSED_COMPILE_ARGUMENTS`): the model
        computes its own losses, and nothing given there would be used.
        """
        cls = type(self).__name__
        for name in ("optimizer", *UNUSED_COMPILE_ARGUMENTS):
            if kwargs.get(name) is not None and not (name == "optimizer" and "optimizer" in optimizers):
                wanted = ", ".join(f"{n}=" for n in optimizers)
                raise ValueError(f"{cls}.compile: {name}= is not used by this model ("
                                 + (f"it has one optimizer per network; pass {wanted}" if name == "optimizer" else
                                    "it computes its own losses and metrics; see its docstring") + ")")
            kwargs.pop(name, None)
        self._kept_compile_arguments = {k: kwargs[k] for k in KEPT_COMPILE_ARGUMENTS if k in kwargs}
        super().compile(optimizer=None, **kwargs)
        built = {}
        for name, (optimizer, network) in optimizers.items():
            optimizer = keras.optimizers.get(optimizer) if isinstance(optimizer, (str, dict)) else optimizer
            if not isinstance(optimizer, keras.optimizers.Optimizer):
                raise ValueError(f"{cls}.compile: {name} must be a keras.optimizers.Optimizer or its name, got "
                                 f"{type(optimizer).__name__}")
            if any(optimizer is other for other in built.values()):
                raise ValueError(f"{cls}.compile: {name} is the same object as another optimizer; give each "
                                 f"network its own")
            setattr(self, name, optimizer)
            optimizer.build(network.trainable_variables)
            built[name] = optimizer
        if len(built) > 1:
            self.optimizer = OptimizerSet(built)
        self._optimizer_names = tuple(built)

    def get_compile_config(self) -> dict:
        """The optimizers (state is in the weights file) and kept arguments, for
        :meth:`compile_from_config`: ``load_model(path).fit(...)`` continues training."""
        if not self.compiled:
            return {}
        return {**{name: keras.saving.serialize_keras_object(getattr(self, name)) for name in self._optimizer_names},
                **self._kept_compile_arguments}

    def compile_from_config(self, config: dict) -> None:
        config = dict(config)
        for name, value in config.items():
            if name not in KEPT_COMPILE_ARGUMENTS:
                config[name] = keras.saving.deserialize_keras_object(value)
        self.compile(**config)

    def step_logs(self, trackers=None, **extra) -> dict:
        """``{name: result}`` of the ``trackers`` (default: all) and the ``extra`` values (such
        as the current learning rates), as ``train_step`` returns them.

        Under ``MultiWorkerMirroredStrategy`` Keras reduces step logs with
        ``strategy.reduce("MEAN", value, axis=0)``, which needs a leading axis; scalars get
        one there (and lose it again in the reduction).
        """
        logs = {**{m.name: m.result() for m in (trackers or self.metric_list.metrics)}, **extra}
        if isinstance(tf.distribute.get_strategy(), tf.distribute.MultiWorkerMirroredStrategy):
            logs = {name: tf.reshape(value, [1]) for name, value in logs.items()}
        return logs


class SerializableDistiller(PrebuiltModel):
    """``get_config`` / ``from_config`` for a distiller built as ``cls(teacher, generator,
    student, config, seed)`` (``config_class``: its config section's dataclass), so that
    ``model.save("x.keras")``, ``ModelCheckpoint("x.keras")`` and ``keras.models.load_model``
    work on it as on any Keras model (the three networks are saved inside)."""

    config_class: type = None  # set by the subclass
    config_section: str = ""

    def get_config(self):
        import dataclasses

        return {**super().get_config(), "seed": self.seed, "config": dataclasses.asdict(self.config),
                **{part: keras.saving.serialize_keras_object(getattr(self, part))
                   for part in ("teacher", "generator", "student")}}

    @classmethod
    def from_config(cls, config):
        from .config import section_from_dict

        config = dict(config)
        for part in ("teacher", "generator", "student"):
            config[part] = keras.saving.deserialize_keras_object(config[part])
        config["config"] = section_from_dict(cls.config_class, config["config"], cls.config_section)
        return cls(**config)


class TeacherAgreement(keras.metrics.Mean):
    """Mean of ``argmax(student_logits) == argmax(teacher_logits)`` over examples."""

    def __init__(self, name: str = "teacher_agreement", **kwargs):
        super().__init__(name=name, **kwargs)
        self._direction = "up"  # for Keras' monitoring callbacks

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
