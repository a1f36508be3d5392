"""Every use of a private API, in one place, each with a test (``tests/test_compat.py``)
that fails loudly when a Keras or Python release moves it.

* Keras: ``MetricsList`` (the container whose metrics' directions ``MonitorCallback``
  reads), a metric's ``_direction``, a symbolic tensor's producing layer and its inputs
  (``_keras_history``, ``_inbound_nodes``), and the file names ``BackupAndRestore`` writes.
* argparse: a parser's sub-parsers and options (no public accessor exists).

The Keras requirement in ``setup.cfg`` has an upper bound at the newest release these
tests have passed on.
"""

from __future__ import annotations

import argparse

__all__ = ["metrics_list_class", "set_direction", "producer_and_inputs", "BACKUP_WEIGHTS", "BACKUP_METADATA",
           "sub_parsers", "options_of", "sub_command_helps"]

#: the files ``keras.callbacks.BackupAndRestore`` writes in its folder (``.bkp`` beside each
#: with ``double_checkpoint=True``)
BACKUP_WEIGHTS, BACKUP_METADATA = "latest.weights.h5", "training_metadata.json"


def metrics_list_class() -> type:
    """Keras' ``MetricsList`` (imported here, not at module import: the command line reads
    this module before TensorFlow loads)."""
    from keras.src.trainers.compile_utils import MetricsList

    return MetricsList


def set_direction(metric, direction: str) -> None:
    """``"up"`` or ``"down"``: what ``keras.callbacks.MonitorCallback`` reads to pick ``mode``."""
    metric._direction = direction


def producer_and_inputs(tensor) -> tuple:
    """(the operation that produced a symbolic Keras tensor, the tensors it was called on)."""
    operation, node_index, _ = tensor._keras_history
    return operation, operation._inbound_nodes[node_index].input_tensors


def sub_parsers(parser: argparse.ArgumentParser) -> dict:
    """``{name: sub-parser}`` of a parser's sub-commands."""
    action = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return dict(action.choices)


def sub_command_helps(parser: argparse.ArgumentParser) -> dict:
    """``{name: help}`` of a parser's sub-commands."""
    action = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return {choice.dest: choice.help for choice in action._choices_actions}


def options_of(parser: argparse.ArgumentParser) -> list:
    """A parser's actions (options and positionals), ``--help`` left out."""
    return [a for a in parser._actions if not isinstance(a, argparse._HelpAction)]
