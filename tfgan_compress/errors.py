"""The tool's own exceptions. The CLI turns them into one-line messages and exit status 2."""


class TfganCompressError(Exception):
    """Base class: an error the user can fix, reported in one line without a traceback."""


class UsageError(TfganCompressError):
    """Bad command-line usage or configuration."""


class DataError(TfganCompressError):
    """A data source that is missing or malformed; the message names the file and the problem."""


class ModelError(TfganCompressError):
    """A model file that cannot be used (not a Keras model, wrong input shape or class count)."""


class ExportError(Exception):
    """A TFLite export that failed its checks (not a usage error: the CLI exits with 1)."""


class TrainingDiverged(Exception):
    """Training went wrong (NaN/Inf losses, a discriminator that wins outright); the message
    says which setting to change. Not a usage error: the CLI exits with status 1."""
