"""LiteRT (TFLite) model metadata inside a ``.tflite`` file: write and read, with
``flatbuffers`` and ``ai-edge-litert`` only (no TensorFlow; ``export/predict.py`` reads it).

The format is the one Android's task libraries, MediaPipe and the LiteRT metadata tools
read: a ``ModelMetadata`` flatbuffer (file identifier ``M001``, the tables of
``metadata_schema.fbs``) in a model buffer named ``TFLITE_METADATA``, and the associated
files (``labels.txt``) in a zip archive appended to the flatbuffer. What is written:

* model: name, description, version, ``min_parser_version`` 1.0.0;
* input: name, description, content (image properties with the colour space, or feature
  properties for a log-mel map), the normalisation ``x = (value - mean) / std`` that gives
  the model's input from 8-bit pixels (``mean = -offset * 255 / scale``,
  ``std = 255 / scale``; for feature maps in [0, 1], ``mean = -offset / scale``,
  ``std = 1 / scale``), and the input's range as stats; for audio, the front end's
  settings as JSON in the description (``frontend: {...}``);
* output: name, description ("probabilities"), range [0, 1], and ``labels.txt`` as its
  ``TENSOR_AXIS_LABELS`` file.

:func:`read` returns those fields as a dict.
"""

from __future__ import annotations

import io
import json
import zipfile

import numpy as np

METADATA_NAME = "TFLITE_METADATA"
IDENTIFIER = b"M001"
# metadata_schema.fbs enum values
TENSOR_AXIS_LABELS = 2
COLOR_SPACE = {"UNKNOWN": 0, "RGB": 1, "GRAYSCALE": 2}
FEATURE_PROPERTIES, IMAGE_PROPERTIES = 1, 2
NORMALIZATION_OPTIONS = 1


class MetadataError(ValueError):
    """A file whose metadata cannot be read."""


# ----------------------------------------------------------------------------- writing


def build(name: str, description: str, class_names, input_shape, scale: float, offset: float,
          frontend: dict | None = None, version: str = "1") -> bytes:
    """The ``ModelMetadata`` flatbuffer of a classifier (module docstring)."""
    import flatbuffers

    b = flatbuffers.Builder(1024)
    channels = int(input_shape[-1])
    if frontend is None:
        mean, std = 0.0 - offset * 255.0 / scale, 255.0 / scale
        kind = f"{'RGB' if channels == 3 else 'grey'} image, {input_shape[1]}x{input_shape[2]} pixels"
    else:
        mean, std = 0.0 - offset / scale, 1.0 / scale
        kind = (f"log-mel feature map, {input_shape[1]} frames x {input_shape[2]} mel bins; "
                f"frontend: {json.dumps(frontend, sort_keys=True)}")

    def string(text):
        return b.CreateString(text)

    def floats(values):
        return b.CreateNumpyVector(np.asarray(values, np.float32))

    def table_vector(offsets):
        b.StartVector(4, len(offsets), 4)
        for off in reversed(offsets):
            b.PrependUOffsetTRelative(off)
        return b.EndVector()

    def table(fields):  # fields: (slot, kind, value), kind: "offset" | "int8" | "uint8"
        b.StartObject(max(slot for slot, _, _ in fields) + 1)
        for slot, kind_, value in fields:
            if kind_ == "offset":
                b.PrependUOffsetTRelativeSlot(slot, value, 0)
            elif kind_ == "int8":
                b.PrependInt8Slot(slot, value, 0)
            else:
                b.PrependUint8Slot(slot, value, 0)
        return b.EndObject()

    # input tensor
    input_name, input_description = string("image" if frontend is None else "features"), string(kind)
    if frontend is None:
        properties = table([(0, "int8", COLOR_SPACE["RGB" if channels == 3 else "GRAYSCALE"])])  # ImageProperties
        properties_type = IMAGE_PROPERTIES
    else:
        properties = _empty_table(b)  # FeatureProperties: no fields
        properties_type = FEATURE_PROPERTIES
    content = table([(0, "uint8", properties_type), (1, "offset", properties)])
    normalization = table([(0, "offset", floats([mean])), (1, "offset", floats([std]))])
    unit = table([(0, "uint8", NORMALIZATION_OPTIONS), (1, "offset", normalization)])
    units = table_vector([unit])
    input_stats = table([(0, "offset", floats([offset + scale])), (1, "offset", floats([offset]))])
    input_meta = table([(0, "offset", input_name), (1, "offset", input_description), (3, "offset", content),
                        (4, "offset", units), (5, "offset", input_stats)])
    # output tensor
    label_file = table([(0, "offset", string("labels.txt")),
                        (1, "offset", string("class names, one per line, in output order")),
                        (2, "int8", TENSOR_AXIS_LABELS)])
    output_files = table_vector([label_file])
    output_stats = table([(0, "offset", floats([1.0])), (1, "offset", floats([0.0]))])
    output_content = table([(0, "uint8", FEATURE_PROPERTIES), (1, "offset", _empty_table(b))])
    output_meta = table([(0, "offset", string("probability")),
                         (1, "offset", string(f"probabilities of the {len(class_names)} classes (softmax)")),
                         (3, "offset", output_content), (5, "offset", output_stats), (6, "offset", output_files)])
    subgraph = table([(2, "offset", table_vector([input_meta])), (3, "offset", table_vector([output_meta]))])
    model = table([(0, "offset", string(name)), (1, "offset", string(description)), (2, "offset", string(version)),
                   (3, "offset", table_vector([subgraph])), (4, "offset", string("tfgan-compress")),
                   (7, "offset", string("1.0.0"))])
    b.Finish(model, file_identifier=IDENTIFIER)
    return bytes(b.Output())


def _empty_table(b) -> int:
    b.StartObject(0)
    return b.EndObject()


def attach(content: bytes, metadata: bytes, labels_text: str) -> bytes:
    """``content`` with ``metadata`` as its ``TFLITE_METADATA`` buffer and ``labels.txt``
    in a zip appended to it (any earlier metadata of that name is replaced)."""
    from ai_edge_litert import schema_py_generated as schema
    from ai_edge_litert.tools import flatbuffer_utils

    model = flatbuffer_utils.convert_bytearray_to_object(bytearray(content))
    model.metadata = [m for m in (model.metadata or []) if _text(m.name) != METADATA_NAME]
    buffer = schema.BufferT()
    buffer.data = np.frombuffer(metadata, np.uint8)
    model.buffers.append(buffer)
    entry = schema.MetadataT()
    entry.name, entry.buffer = METADATA_NAME, len(model.buffers) - 1
    model.metadata.append(entry)
    packed = io.BytesIO(bytes(flatbuffer_utils.convert_object_to_bytearray(model)))
    with zipfile.ZipFile(packed, "a", compression=zipfile.ZIP_STORED) as archive:
        archive.writestr("labels.txt", labels_text)
    return packed.getvalue()


def _text(value) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


# ----------------------------------------------------------------------------- reading


def metadata_buffer(content: bytes) -> bytes | None:
    """The ``TFLITE_METADATA`` buffer of a ``.tflite`` file, or None."""
    from ai_edge_litert import schema_py_generated as schema

    try:
        model = schema.Model.GetRootAs(content, 0)
        for i in range(model.MetadataLength()):
            entry = model.Metadata(i)
            if _text(entry.Name()) == METADATA_NAME:
                return model.Buffers(entry.Buffer()).DataAsNumpy().tobytes()
    except Exception as err:  # noqa: BLE001 - a file that is not a flatbuffer
        raise MetadataError(f"not a .tflite flatbuffer ({type(err).__name__})") from None
    return None


class _Table:
    """A flatbuffers table read by field slot."""

    def __init__(self, buf: bytes, pos: int):
        from flatbuffers.table import Table

        self.buf, self.table = buf, Table(bytearray(buf), pos)

    def _offset(self, slot: int) -> int:
        return self.table.Offset(4 + 2 * slot)

    def string(self, slot: int):
        o = self._offset(slot)
        return self.table.String(o + self.table.Pos).decode() if o else None

    def number(self, slot: int, flags):
        o = self._offset(slot)
        return self.table.Get(flags, o + self.table.Pos) if o else 0

    def floats(self, slot: int) -> list:
        from flatbuffers import number_types

        o = self._offset(slot)
        if not o:
            return []
        start = self.table.Vector(o)
        return [self.table.Get(number_types.Float32Flags, start + 4 * i) for i in range(self.table.VectorLen(o))]

    def tables(self, slot: int) -> list:
        o = self._offset(slot)
        if not o:
            return []
        start = self.table.Vector(o)
        return [_Table(self.buf, self.table.Indirect(start + 4 * i)) for i in range(self.table.VectorLen(o))]

    def child(self, slot: int):
        o = self._offset(slot)
        return _Table(self.buf, self.table.Indirect(o + self.table.Pos)) if o else None


def read(content: bytes) -> dict | None:
    """The metadata of a ``.tflite`` file as a dict (None when it has none)."""
    from flatbuffers import number_types, util

    raw = metadata_buffer(content)
    if raw is None:
        return None
    if not util.BufferHasIdentifier(raw, 0, IDENTIFIER):
        raise MetadataError("TFLITE_METADATA is not a ModelMetadata flatbuffer (identifier M001)")
    try:
        root = _Table(raw, int.from_bytes(raw[:4], "little"))  # the root table's offset
        subgraph = root.tables(3)[0]
        result = {"name": root.string(0), "description": root.string(1), "version": root.string(2),
                  "author": root.string(4), "min_parser_version": root.string(7)}
        tensors = {}
        for key, slot in (("input", 2), ("output", 3)):
            meta = subgraph.tables(slot)[0]
            content_table = meta.child(3)
            entry = {"name": meta.string(0), "description": meta.string(1),
                     "content_type": content_table.number(0, number_types.Uint8Flags) if content_table else None}
            if content_table is not None and entry["content_type"] == IMAGE_PROPERTIES:
                color = content_table.child(1).number(0, number_types.Int8Flags)
                entry["color_space"] = {v: k for k, v in COLOR_SPACE.items()}.get(color, "UNKNOWN")
            for unit in meta.tables(4):
                if unit.number(0, number_types.Uint8Flags) == NORMALIZATION_OPTIONS:
                    options = unit.child(1)
                    entry["normalization"] = {"mean": options.floats(0), "std": options.floats(1)}
            stats = meta.child(5)
            if stats is not None:
                entry["range"] = [min(stats.floats(1) or [0.0]), max(stats.floats(0) or [0.0])]
            entry["associated_files"] = [{"name": f.string(0), "description": f.string(1),
                                          "type": f.number(2, number_types.Int8Flags)} for f in meta.tables(6)]
            tensors[key] = entry
    except (IndexError, AttributeError, ValueError, TypeError) as err:
        raise MetadataError(f"unreadable ModelMetadata ({type(err).__name__}: {err})") from None
    result.update(tensors)
    result["labels"] = _associated_labels(content)
    description = result["input"].get("description") or ""
    if "frontend: " in description:
        try:
            result["frontend"] = json.loads(description.split("frontend: ", 1)[1])
        except ValueError:
            raise MetadataError("the input description's front end is not readable JSON") from None
        if not isinstance(result["frontend"], dict):
            raise MetadataError("the input description's front end is not a JSON object")
    return result


def _associated_labels(content: bytes):
    try:
        with zipfile.ZipFile(io.BytesIO(content)) as archive:
            return archive.read("labels.txt").decode("utf-8").splitlines()
    except (zipfile.BadZipFile, KeyError):
        return None


def input_scaling(metadata: dict) -> tuple | None:
    """(scale, offset) of ``x = value / 255 * scale + offset`` (images) or ``x = feature *
    scale + offset`` (feature maps) from the normalisation ``x = (value - mean) / std``;
    None when the metadata has no usable one-channel-alike normalisation (a file of other
    tools may have none, or one per channel)."""
    normalization = metadata["input"].get("normalization") or {}
    means, stds = normalization.get("mean") or [], normalization.get("std") or []
    if len(set(means)) != 1 or len(set(stds)) != 1 or not all(np.isfinite(means + stds)) or stds[0] == 0:
        return None
    mean, std = means[0], stds[0]
    if "frontend" in metadata:
        return 1.0 / std, -mean / std
    return 255.0 / std, -mean / std
