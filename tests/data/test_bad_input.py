"""Bad input, systematically (hypothesis): damaged snippet files, label files that disagree with
the data, and numeric config keys outside their range. Each must end in one line that names the
file or key and the fix, leave no run RUNNING, and write nothing to the cache that a later run
would trust. The counts tried are printed (``pytest -s``)."""

from __future__ import annotations

import pickle
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from src.cli.specs import run_spec
from src.core.errors import UserError
from src.data.safe_load import load_snippet
from src.data.sources import build_datamodule
from tests.conftest import compose_cfg

SETTINGS = settings(
    max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
TRIED: dict[str, int] = {}


def data_settings(root: Path, cache: Path) -> dict:
    return {
        "name": "battery", "root": str(root), "brand": 3, "fold": 0,
        "channels": ["soc", "current", "min_temp", "max_single_volt", "max_temp",
                     "min_single_volt", "volt"],
        "cache_dir": str(cache), "normalizer": "global", "split_seed": 0, "batch_size": 16,
        "eval_batch_size": 64, "num_workers": 0, "cache_workers": 1,
    }  # fmt: skip


def one_line(err: BaseException) -> str:
    text = str(err)
    assert "\n" not in text and "Traceback" not in text, text
    return text


def trusted_caches(cache: Path) -> list[Path]:
    """Cache folders a later run would open (a finished build writes manifest.json last)."""
    return sorted(cache.rglob("manifest.json"))


CORRUPTIONS = {
    "truncated": lambda raw, arr, meta: raw[: max(1, len(raw) // 3)],
    "random bytes": lambda raw, arr, meta: bytes(range(256))[: 50 + len(raw) % 150],
    "not a pair": lambda raw, arr, meta: pickle.dumps({"volt": 1.0}),
    # (numbers written as text, "3.71", are read as the numbers they spell)
    "text values": lambda raw, arr, meta: pickle.dumps((np.full(arr.shape, "n/a"), meta)),
    "wrong shape": lambda raw, arr, meta: pickle.dumps((arr[:, :3], meta)),
    "no car id": lambda raw, arr, meta: pickle.dumps(
        (arr, {k: v for k, v in meta.items() if k != "car"})
    ),
    "a code object": lambda raw, arr, meta: pickle.dumps((arr, meta, print)),
}


@pytest.mark.slow  # each case copies the data and builds its cache: seconds each
@SETTINGS
@given(index=st.integers(0, 10_000), kind=st.sampled_from(sorted(CORRUPTIONS)))
def test_a_damaged_snippet_file_is_one_line_naming_it(tiny_root, tmp_path_factory, index, kind):
    root = tmp_path_factory.mktemp("data")
    shutil.copytree(tiny_root, root, dirs_exist_ok=True)
    files = sorted((root / "battery_brand3" / "data").glob("*.pkl"))
    path = files[index % len(files)]
    raw = path.read_bytes()
    array, meta = load_snippet(path)
    path.write_bytes(CORRUPTIONS[kind](raw, np.asarray(array), meta))
    cache = root / "cache"
    with pytest.raises(UserError) as err:
        build_datamodule(data_settings(root, cache))
    assert path.name in one_line(err.value), (kind, str(err.value))
    assert trusted_caches(cache) == []  # the failed build left nothing to trust
    TRIED["damaged snippet files"] = TRIED.get("damaged snippet files", 0) + 1


@pytest.mark.slow
@SETTINGS
@given(
    index=st.integers(0, 10_000),
    value=st.sampled_from([np.nan, np.inf, -np.inf]),
    whole=st.booleans(),
)
def test_non_finite_snippets_are_skipped_and_counted(
    tiny_root, tmp_path_factory, index, value, whole
):
    root = tmp_path_factory.mktemp("data")
    shutil.copytree(tiny_root, root, dirs_exist_ok=True)
    files = sorted((root / "battery_brand3" / "data").glob("*.pkl"))
    path = files[index % len(files)]
    array, meta = load_snippet(path)
    array = np.array(array, dtype=float)
    if whole:
        array[:, 0] = value  # a whole channel
    else:
        array[index % 128, index % array.shape[1]] = value
    path.write_bytes(pickle.dumps((array, meta)))
    data = build_datamodule(data_settings(root, root / "cache"))
    assert data.describe()["n_skipped_nonfinite"] == 1
    assert np.isfinite(np.asarray(data.store.snippets)).all()
    TRIED["non-finite snippets"] = TRIED.get("non-finite snippets", 0) + 1


LABEL_DAMAGE = {
    "a car with both labels": lambda f: pd.concat([f, f.head(1).assign(label=1 - f.label.iloc[0])]),
    "labels that disagree with the files": lambda f: f.assign(label=1 - f.label),
    "a car without any snippet": lambda f: pd.concat(
        [f, pd.DataFrame({"car": [499], "label": [0]})]
    ),
    "a label other than 0/1": lambda f: f.assign(label=f.label.where(f.index != 0, 7)),
    "no car column": lambda f: f.rename(columns={"car": "vehicle"}),
    "an unlabelled car": lambda f: f.iloc[1:],
}


@pytest.mark.slow
@SETTINGS
@given(kind=st.sampled_from(sorted(LABEL_DAMAGE)))
def test_labels_that_do_not_fit_the_data_are_one_line(tiny_root, tmp_path_factory, kind):
    root = tmp_path_factory.mktemp("data")
    shutil.copytree(tiny_root, root, dirs_exist_ok=True)
    labels = root / "battery_brand3" / "label" / "all_label.csv"
    LABEL_DAMAGE[kind](pd.read_csv(labels)).to_csv(labels, index=False)
    with pytest.raises(UserError) as err:
        build_datamodule(data_settings(root, root / "cache"))
    assert "label" in one_line(err.value), (kind, str(err.value))
    TRIED["label files"] = TRIED.get("label files", 0) + 1


def test_duplicate_label_rows_that_agree_are_accepted(tiny_root, tmp_path):
    shutil.copytree(tiny_root, tmp_path / "data")
    labels = tmp_path / "data" / "battery_brand3" / "label" / "all_label.csv"
    frame = pd.read_csv(labels)
    pd.concat([frame, frame.head(3)]).to_csv(labels, index=False)
    data = build_datamodule(data_settings(tmp_path / "data", tmp_path / "cache"))
    assert len(data.car_labels) == frame.car.nunique()


# Every numeric key a user sets, and values outside its range.
NUMERIC_KEYS = {
    "seed": st.sampled_from([-1, 2**40, 1.5, "x"]),
    "trainer.max_epochs": st.sampled_from([0, -3, 1.5, "x"]),
    "optim.lr": st.sampled_from([0, -0.1, "x", float("nan"), float("inf")]),
    "optim.weight_decay": st.sampled_from([-1.0, "x", float("nan")]),
    "data.fold": st.sampled_from([-1, 1.5, "x"]),  # 5: refused when the data loads (below)
    "data.batch_size": st.sampled_from([0, -8, 2.5, "x"]),
    "data.eval_batch_size": st.sampled_from([0, -8, "x"]),
    "data.num_workers": st.sampled_from([-1, "x"]),
    "task.evaluation.n_boot": st.sampled_from([-5, 1.5, "x"]),
    "task.evaluation.alpha": st.sampled_from([0, 1, -0.1, 1.5, "x"]),
    "benchmark.iters": st.sampled_from([0, -1, "x"]),
    "benchmark.rounds": st.sampled_from([0, -2, "x"]),
    "benchmark.warmup": st.sampled_from([-1, "x"]),
}


@settings(max_examples=30, deadline=None, suppress_health_check=list(HealthCheck))
@given(key=st.sampled_from(sorted(NUMERIC_KEYS)), data=st.data())
def test_a_number_out_of_range_is_one_line_naming_its_key(tmp_path_factory, key, data):
    value = data.draw(NUMERIC_KEYS[key])
    text = f"'{value}'" if isinstance(value, str) else repr(value)
    tmp = tmp_path_factory.mktemp("cfg")
    with pytest.raises(UserError) as err:
        spec = run_spec(compose_cfg("model=dyad_tiny", f"{key}={text}", tmp=tmp))
        spec.task.evaluation  # noqa: B018 (built: the task validated its own settings)
    assert key.split(".")[-1] in one_line(err.value), (key, value, str(err.value))
    TRIED["config keys"] = TRIED.get("config keys", 0) + 1


def test_a_fold_beyond_the_sources_folds_is_refused_before_any_run(tiny_root, tmp_path):
    settings_ = {**data_settings(tiny_root, tmp_path / "cache"), "fold": 5}
    with pytest.raises(UserError, match=r"data.fold=5 is out of range; choose 0..4"):
        build_datamodule(settings_)


def test_report_how_many_cases_were_tried():
    print(f"bad-input cases tried and passed: {TRIED} ({sum(TRIED.values())} in all)")
