"""Property-based fuzzing of the IDX and npz readers: valid arrays or the tool's own error."""

import io
import struct
import zipfile

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tfgan_compress import data
from tfgan_compress.errors import DataError

FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


def valid_idx() -> bytes:
    images = np.arange(2 * 8 * 8, dtype=np.uint8).reshape(2, 8, 8)
    return struct.pack(">HBBIII", 0, 8, 3, 2, 8, 8) + images.tobytes()


def read_idx_bytes(tmp_path, raw: bytes):
    path = tmp_path / "fuzz-idx"
    path.write_bytes(raw)
    try:
        array = data.read_idx(path)
    except DataError as err:
        assert str(err).startswith(str(path)) and "\n" not in str(err)
        return None
    assert isinstance(array, np.ndarray)
    assert array.nbytes <= len(raw)  # never more than the file could hold
    return array


@FUZZ
@given(raw=st.binary(max_size=300))
def test_random_bytes_to_the_idx_reader(tmp_path, raw):
    read_idx_bytes(tmp_path, raw)


@FUZZ
@given(position=st.integers(0, 4 + 12 + 127), value=st.integers(0, 255), cut=st.integers(0, 4 + 12 + 128))
def test_mutated_idx_files(tmp_path, position, value, cut):
    raw = bytearray(valid_idx())
    raw[position] = value
    read_idx_bytes(tmp_path, bytes(raw))
    read_idx_bytes(tmp_path, bytes(raw[:cut]))


@FUZZ
@given(count=st.integers(10 ** 6, 2 ** 32 - 1), rank=st.integers(1, 8))
def test_headers_claiming_huge_arrays_are_refused_before_allocation(tmp_path, count, rank):
    raw = struct.pack(">HBB", 0, 8, rank) + struct.pack(f">{rank}I", count, *([2 ** 31] * (rank - 1))) + bytes(1000)
    assert read_idx_bytes(tmp_path, raw) is None


def valid_npz() -> bytes:
    buffer = io.BytesIO()
    rng = np.random.default_rng(0)
    np.savez(buffer, x_train=rng.integers(0, 255, (6, 8, 8), dtype=np.uint8), y_train=np.arange(6) % 2,
             x_test=rng.integers(0, 255, (2, 8, 8), dtype=np.uint8), y_test=np.array([0, 1]))
    return buffer.getvalue()


def load_npz_bytes(tmp_path, raw: bytes):
    path = tmp_path / "fuzz.npz"
    path.write_bytes(raw)
    try:
        dataset = data.load(f"npz:{path}")
    except DataError as err:
        assert str(path) in str(err) and "\n" not in str(err)
        return None
    assert dataset.x_train.dtype == np.float32 and dataset.x_train.ndim == 4
    return dataset


@FUZZ
@given(raw=st.binary(max_size=400))
def test_random_bytes_to_the_npz_reader(tmp_path, raw):
    load_npz_bytes(tmp_path, raw)


@FUZZ
@given(data_=st.data())
def test_mutated_npz_files(tmp_path, data_):
    raw = bytearray(valid_npz())
    for _ in range(data_.draw(st.integers(1, 4))):
        position = data_.draw(st.integers(0, len(raw) - 1))
        raw[position] = data_.draw(st.integers(0, 255))
    load_npz_bytes(tmp_path, bytes(raw))
    load_npz_bytes(tmp_path, bytes(raw[:data_.draw(st.integers(0, len(raw)))]))


def test_the_unmutated_fixtures_load(tmp_path):
    assert read_idx_bytes(tmp_path, valid_idx()).shape == (2, 8, 8)
    assert load_npz_bytes(tmp_path, valid_npz()).num_classes == 2
    assert zipfile.is_zipfile(io.BytesIO(valid_npz()))
