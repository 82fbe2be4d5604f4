"""Loading never runs pickled code: ``python -m pytest tests/data/test_safe_load.py``."""

import os
import pickle

import numpy as np
import pytest
import torch

from src.data.safe_load import CorruptFileError, UnsafePickleError, load_snippet, safe_load


class _Exploit:
    """A pickle payload that would create a marker file if it were ever executed."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def _meta(**extra):
    return {"label": "00", "car": 401, "charge_segment": "1", "mileage": 10.0, **extra}


def test_real_format_loads_with_numpy_scalars(tmp_path):
    path = tmp_path / "1.pkl"
    meta = _meta(car=np.int64(401), mileage=np.float64(12.5))
    torch.save((np.random.rand(128, 8), meta), path)
    array, loaded = load_snippet(path)
    assert array.shape == (128, 8)
    assert int(loaded["car"]) == 401


def test_legacy_torch_format_and_plain_pickle(tmp_path):
    legacy = tmp_path / "legacy.pkl"
    torch.save((np.zeros((128, 8)), _meta()), legacy, _use_new_zipfile_serialization=False)
    assert load_snippet(legacy)[0].shape == (128, 8)
    plain = tmp_path / "column.pkl"
    plain.write_bytes(pickle.dumps(["volt", "current"]))
    assert safe_load(plain) == ["volt", "current"]


@pytest.mark.parametrize("writer", ["torch_zip", "torch_legacy", "pickle"])
def test_malicious_pickle_is_refused_and_never_runs(tmp_path, writer):
    marker = tmp_path / "pwned"
    path = tmp_path / "1.pkl"
    payload = (np.zeros((128, 8)), _meta(x=_Exploit(marker)))
    if writer == "pickle":
        path.write_bytes(pickle.dumps(payload))
    else:
        torch.save(payload, path, _use_new_zipfile_serialization=writer == "torch_zip")
    with pytest.raises(UnsafePickleError, match="refused to load.*system"):
        load_snippet(path)
    assert not marker.exists()


@pytest.mark.parametrize("content", [b"", b"not a pickle at all", b"PK\x03\x04broken zip"])
def test_corrupt_files_get_one_line_errors(tmp_path, content):
    path = tmp_path / "7.pkl"
    path.write_bytes(content)
    with pytest.raises(CorruptFileError) as err:
        load_snippet(path)
    assert "\n" not in str(err.value) and "7.pkl" in str(err.value)


def test_truncated_file(tmp_path):
    path = tmp_path / "3.pkl"
    torch.save((np.zeros((128, 8)), _meta()), path)
    path.write_bytes(path.read_bytes()[:300])
    with pytest.raises(CorruptFileError, match="truncated"):
        load_snippet(path)


def test_wrong_structure(tmp_path):
    path = tmp_path / "4.pkl"
    torch.save(np.zeros((128, 8)), path)
    with pytest.raises(CorruptFileError, match="expected a \\(array, metadata dict\\) pair"):
        load_snippet(path)
