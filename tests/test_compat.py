"""One test per private hook of tfgan_compress.compat: each fails loudly when a Keras or
Python release moves what it reaches into."""

import argparse

import keras
import numpy as np

from tfgan_compress import compat


def test_metrics_list_is_the_container_whose_directions_keras_monitors_read():
    metrics_list = compat.metrics_list_class()
    tracker = keras.metrics.Mean(name="g_loss")
    compat.set_direction(tracker, "down")
    assert isinstance(metrics_list([tracker]), keras.metrics.Metric)
    callback = keras.callbacks.EarlyStopping("g_loss")
    model = keras.Sequential([keras.Input((1,)), keras.layers.Dense(1)])
    model.compile(loss="mse")
    model._metrics = [metrics_list([tracker])]  # what PrebuiltModel.metrics returns
    callback.set_model(model)
    callback._set_monitor_op()
    assert callback.monitor_op is not None and callback.monitor_op(0.0, 1.0)  # "down": smaller is better


def test_producer_and_inputs_walk_a_functional_graph_back():
    inputs = keras.Input((4,))
    hidden = keras.layers.Dense(3, name="hidden")(inputs)
    outputs = keras.layers.Dense(2, name="out")(hidden)
    operation, tensors = compat.producer_and_inputs(outputs)
    assert operation.name == "out" and tensors[0] is hidden


def test_backup_and_restore_writes_the_file_names_the_run_folder_reads(tmp_path):
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    model.compile(optimizer="adam", loss="mse")
    backup = keras.callbacks.BackupAndRestore(str(tmp_path), delete_checkpoint=False, double_checkpoint=True)
    model.fit(np.zeros((4, 2)), np.zeros((4, 1)), epochs=2, verbose=0, callbacks=[backup])
    names = {p.name for p in tmp_path.iterdir()}
    assert {compat.BACKUP_WEIGHTS, compat.BACKUP_METADATA, compat.BACKUP_WEIGHTS + ".bkp",
            compat.BACKUP_METADATA + ".bkp"} <= names


def test_argparse_sub_parsers_helps_and_options_are_read():
    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers(dest="command")
    run = sub.add_parser("run", help="run it")
    run.add_argument("--out", help="folder")
    assert compat.sub_parsers(parser) == {"run": run}
    assert compat.sub_command_helps(parser) == {"run": "run it"}
    assert [a.option_strings for a in compat.options_of(run)] == [["--out"]]
