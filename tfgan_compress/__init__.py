"""tfgan_compress: compress a Keras image classifier into a tiny TFLite model.

A conditional GAN learns the training data; a small student is distilled from the teacher
on generator samples only; the student is exported to TFLite (float32, float16,
dynamic-range, int8 calibrated on generator samples) and measured on the real test set.
"""

import os as _os

# Keep TensorFlow's C++ start-up chatter out of the progress output unless asked for.
_os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

__version__ = "0.1.0"
