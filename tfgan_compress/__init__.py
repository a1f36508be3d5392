"""tfgan_compress: compress a Keras image classifier into a tiny TFLite model.

A conditional GAN learns the training data; a small student is distilled from the teacher
on generator samples only; the student is exported to TFLite (float32, float16,
dynamic-range, int8 calibrated on generator samples) and measured on the real test set.

The whole tool is one call, :func:`compress` (``tfgan_compress.compress(teacher, data,
out)``); the public classes are attributes of the package (``tfgan_compress.ConditionalGAN``).

Importing the package does not import TensorFlow (the command line chooses TensorFlow's
CPU kernels first, from the data); the names below load on first use. The package's Keras
classes are registered with Keras as soon as Keras is imported, before or after this
package, so that ``keras.models.load_model`` reads every file the tool saves after
``import tfgan_compress`` alone.
"""

import importlib as _importlib
import importlib.abc as _importlib_abc
import os as _os
import sys as _sys

# Keep TensorFlow's C++ start-up chatter out of the progress output unless asked for.
_os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

__version__ = "0.1.0"

#: public name -> the module that defines it
_PUBLIC = {
    "compress": "api", "CompressResult": "api",
    "RunConfig": "config", "preset": "config", "PRESETS": "config",
    "ConditionalGAN": "gan", "GeneratorDistiller": "distill", "DataFreeDistiller": "datafree",
    "TfganCompressError": "errors", "InputError": "errors", "UsageError": "errors", "DataError": "errors",
    "ModelError": "errors",
}
__all__ = sorted(_PUBLIC)

#: the modules whose classes are registered as Keras serializables
_KERAS_MODULES = ("networks", "generator_mixture", "teacher", "gan", "distill", "datafree")


def __getattr__(name):
    if name in _PUBLIC:
        value = getattr(_importlib.import_module(f"{__name__}.{_PUBLIC[name]}"), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(_PUBLIC))


def _register_keras_classes() -> None:
    for module in _KERAS_MODULES:
        _importlib.import_module(f"{__name__}.{module}")


class _RegisterAfterKeras(_importlib_abc.MetaPathFinder):
    """Registers the package's Keras classes once ``keras`` has finished importing, and not
    before the import of this package's module that imported Keras has finished: importing
    ``tfgan_compress.networks`` first must not re-enter that half-run module."""

    def __init__(self):
        self.keras_loaded = False
        self.package_imports_running = 0

    def find_spec(self, name, path=None, target=None):
        if name == "keras" and not self.keras_loaded:
            after = self.keras_ready
        elif name.startswith(f"{__name__}."):
            self.package_imports_running += 1  # undone in exec_then, or below when there is nothing to run
            after = None
        else:
            return None
        spec = self.find_elsewhere(name, path, target)
        if spec is None or spec.loader is None or not hasattr(spec.loader, "exec_module"):
            if after is None:
                self.package_imports_running -= 1
            return spec
        exec_module = spec.loader.exec_module

        def exec_then(module):
            try:
                exec_module(module)
            finally:
                if after is None:
                    self.package_imports_running -= 1
            if after is not None:
                after()
            elif self.keras_loaded and not self.package_imports_running:
                self.register()

        spec.loader.exec_module = exec_then
        return spec

    def find_elsewhere(self, name, path, target):
        """The spec the finders after this one give (this one only wraps their loader)."""
        for finder in list(_sys.meta_path):
            find_spec = getattr(finder, "find_spec", None)
            if finder is not self and find_spec is not None:
                spec = find_spec(name, path, target)
                if spec is not None:
                    return spec
        return None

    def keras_ready(self):
        self.keras_loaded = True
        if not self.package_imports_running:
            self.register()

    def register(self):
        if self in _sys.meta_path:
            _sys.meta_path.remove(self)
            _register_keras_classes()


if "keras" in _sys.modules:
    _register_keras_classes()
elif not any(isinstance(finder, _RegisterAfterKeras) for finder in _sys.meta_path):
    _sys.meta_path.insert(0, _RegisterAfterKeras())
