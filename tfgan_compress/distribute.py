"""``tf.distribute`` strategies for every training stage.

* ``default``: the current (single-device) strategy;
* ``mirrored``: ``MirroredStrategy`` over all local GPUs (or the given devices);
* ``multi-worker``: ``MultiWorkerMirroredStrategy``; the cluster comes from the standard
  ``TF_CONFIG`` environment variable, and every worker runs the same command;
* ``tpu``: ``TPUStrategy`` on the TPU found by ``TPUClusterResolver``.

The batch sizes in the config are **global** batch sizes: each of N replicas gets 1/N of
every batch, losses are averaged over the global batch
(:func:`losses.average_over_global_batch`) and gradients summed across replicas, so a step
on N replicas equals a step on one device with the same global batch. When you scale a
run up, scale the batch size with the replicas and the learning rate with the batch size
(linear scaling rule; Goyal et al., 2017).
"""

from __future__ import annotations

import json
import os

import tensorflow as tf

from .config import Strategy, choices
from .errors import UsageError, first_line


def make_strategy(name: str) -> tf.distribute.Strategy:
    if name == "default":
        return tf.distribute.get_strategy()
    if name == "mirrored":
        return tf.distribute.MirroredStrategy()
    if name == "multi-worker":
        if "TF_CONFIG" not in os.environ:
            raise UsageError("--strategy multi-worker needs the TF_CONFIG environment variable (see README)")
        return tf.distribute.MultiWorkerMirroredStrategy()
    if name == "tpu":
        try:
            resolver = tf.distribute.cluster_resolver.TPUClusterResolver()
            tf.config.experimental_connect_to_cluster(resolver)
            tf.tpu.experimental.initialize_tpu_system(resolver)
        except (ValueError, RuntimeError) as err:
            raise UsageError(f"--strategy tpu: no TPU found ({first_line(err)})") from None
        return tf.distribute.TPUStrategy(resolver)
    raise UsageError(f"unknown strategy {name!r}; choose one of {', '.join(choices(Strategy))}")


def _tf_config() -> dict:
    try:
        return json.loads(os.environ.get("TF_CONFIG") or "{}")
    except json.JSONDecodeError:
        raise UsageError("TF_CONFIG is not valid JSON") from None


def task_name() -> str:
    """``worker-0``, ``chief-0``...: this process's task in ``TF_CONFIG`` (``local`` without one)."""
    task = _tf_config().get("task") or {}
    return f"{task['type']}-{task.get('index', 0)}" if task else "local"


def is_chief() -> bool:
    """Whether this process writes the run's artifacts: the chief, else worker 0, or no cluster."""
    config = _tf_config()
    task = config.get("task") or {}
    if not task:
        return True
    if "chief" in config.get("cluster", {}):
        return task.get("type") == "chief"
    return task.get("type") == "worker" and int(task.get("index", 0)) == 0


def replicate(model, strategy: tf.distribute.Strategy):
    """``model`` rebuilt under ``strategy``'s scope with the same weights (itself for the
    default strategy), so frozen models can be used inside replicated steps."""
    if not tf.distribute.has_strategy() and strategy is tf.distribute.get_strategy():
        return model
    import keras

    with strategy.scope():
        copy = keras.models.clone_model(model)
        copy.set_weights(model.get_weights())
    return copy
