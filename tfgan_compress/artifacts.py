"""Writing files so that a final name only ever holds a complete file.

Each writer writes to a temporary name in the destination folder, then renames it with
``os.replace`` (atomic on POSIX and Windows), so an interrupted run never leaves a
truncated file under its final name.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from pathlib import Path

from .errors import UsageError


@contextlib.contextmanager
def atomic_path(path, suffix: str = ""):
    """Yield a temporary path beside ``path``; rename it onto ``path`` if the block succeeds.

    ``suffix`` keeps an extension some writers insist on (Keras wants ``.keras``).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp" + suffix, dir=path.parent)
    os.close(fd)
    os.unlink(tmp)
    try:
        yield Path(tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def write_bytes(path, data: bytes) -> Path:
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)
    return Path(path)


def write_text(path, text: str) -> Path:
    return write_bytes(path, text.encode("utf-8"))


def write_json(path, value) -> Path:
    return write_text(path, json.dumps(value, indent=2, sort_keys=False) + "\n")


def save_keras(model, path) -> Path:
    """``model.save`` to a temporary file of the same extension (Keras wants ``.keras``),
    then rename onto ``path``."""
    with atomic_path(path, suffix=Path(path).suffix) as tmp:
        model.save(tmp)
    return Path(path)


def check_writable_dir(path) -> None:
    """Raise :class:`UsageError` when ``path`` (or its nearest existing parent) is not writable."""
    p = Path(path).resolve()
    if p.exists() and not p.is_dir():
        raise UsageError(f"{path}: exists and is not a folder (the output must be a folder)")
    while not p.exists():
        p = p.parent
    if not p.is_dir() or not os.access(p, os.W_OK):
        raise UsageError(f"{path}: output folder is not writable")
