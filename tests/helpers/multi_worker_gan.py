"""One worker of a 2-worker MultiWorkerMirroredStrategy cluster (TF_CONFIG set by the test):
a tiny GAN epoch. Prints one JSON line with the epoch's metrics."""

import json

import keras
import numpy as np
import tensorflow as tf

from tfgan_compress import networks
from tfgan_compress.gan import ConditionalGAN

SHAPE, CLASSES, NOISE = (8, 8, 1), 3, 4

strategy = tf.distribute.MultiWorkerMirroredStrategy()
with strategy.scope():
    keras.utils.set_random_seed(0)
    model = ConditionalGAN(networks.build_generator(SHAPE, CLASSES, NOISE, width=4),
                           networks.build_discriminator(SHAPE, CLASSES, width=4))
    model.compile(keras.optimizers.Adam(1e-3), keras.optimizers.Adam(1e-3))
rng = np.random.default_rng(0)
x = rng.random((32, *SHAPE)).astype(np.float32)
y = (np.arange(32) % CLASSES).astype(np.int32)
dataset = tf.data.Dataset.from_tensor_slices((x, y)).batch(8)
history = model.fit(dataset, epochs=1, verbose=0).history
print(json.dumps({"replicas": strategy.num_replicas_in_sync,
                  "ema_updates": int(model.ema_updates.numpy()),
                  "metrics": {k: v[-1] for k, v in history.items()}}))
