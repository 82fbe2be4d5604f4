"""The one store API: ``python -m pytest tests/tracking/test_store.py``."""

import pytest

from src.core.errors import UserError
from src.tracking.mlflow_run import tracked_run
from src.tracking.store import RunStore, TrackingConfigError, clause, resolve_tracking_uri


def test_find_gives_the_newest_finished_run_with_the_tags(tmp_path):
    store = RunStore(f"sqlite:///{tmp_path}/mlflow.db")
    assert store.find("exp", method="baseline", baseline_key="k1") is None  # no experiment yet
    tags = {"method": "baseline", "baseline_key": "k1"}
    with tracked_run(store, "exp", "b", tags) as old:
        pass
    with tracked_run(store, "exp", "b", tags) as new:
        pass
    with pytest.raises(RuntimeError):
        with tracked_run(store, "exp", "b", tags):
            raise RuntimeError("crashed")  # a FAILED baseline is never reused
    with tracked_run(store, "exp", "d", {"method": "dynamic", "baseline_key": "k1"}) as dynamic:
        pass
    found = store.find("exp", method="baseline", baseline_key="k1")
    assert found.info.run_id == new.run_id != old.run_id
    assert store.find("exp", method="baseline", baseline_key="k2") is None
    assert store.find(None, method="baseline", baseline_key="k1").info.run_id == new.run_id
    assert store.baseline_run(new.run_id).info.run_id == new.run_id
    by_method = store.newest_by_method("k1", ["baseline", "dynamic", "static"])
    assert {m: r.info.run_id for m, r in by_method.items()} == {
        "baseline": new.run_id,
        "dynamic": dynamic.run_id,
    }


def test_named_baseline_must_be_a_finished_baseline(tmp_path):
    store = RunStore(f"sqlite:///{tmp_path}/mlflow.db")
    with tracked_run(store, "exp", "d", {"method": "dynamic"}) as other:
        pass
    with pytest.raises(UserError, match="not a FINISHED baseline run"):
        store.baseline_run(other.run_id)
    with pytest.raises(UserError, match="is not in sqlite:///"):
        store.baseline_run("0" * 32)


def test_search_pages_through_every_run_and_quotes_names(tmp_path, monkeypatch):
    monkeypatch.setattr("src.tracking.store._PAGE", 2)
    store = RunStore(f"sqlite:///{tmp_path}/mlflow.db")
    for i in range(5):
        with tracked_run(store, "exp", f"r{i}", {"method": "m", "odd name": str(i % 2)}):
            pass
    assert len(store.search([clause("tags.method", "m")])) == 5
    assert len(store.search([clause("tags.odd name", "1")], "exp")) == 2
    assert len(store.search([], "exp", max_results=3)) == 3
    with pytest.raises(UserError, match="experiment_name='nope' is not in the store"):
        store.search([], "nope")


def test_readers_never_create_a_store(tmp_path):
    with pytest.raises(UserError, match="no MLflow store at"):
        RunStore.open(f"sqlite:///{tmp_path}/absent/mlflow.db")
    assert not (tmp_path / "absent").exists()


@pytest.mark.parametrize("uri", ["mlruns", "./mlruns", "file:///tmp/mlruns", ""])
def test_file_stores_are_refused(uri):
    with pytest.raises(TrackingConfigError, match="sqlite:///"):
        resolve_tracking_uri(uri)


def test_read_table_returns_what_log_table_wrote_or_none(tmp_path):
    import pandas as pd

    store = RunStore(f"sqlite:///{tmp_path}/mlflow.db")
    units = pd.DataFrame({"unit": ["007", "12"], "label": [1, 0], "value": [0.5, 0.25]})
    with tracked_run(store, "exp", "b", {"method": "baseline"}) as run:
        run.log_table("units", units)
    back = store.read_table(run.run_id, "units")
    pd.testing.assert_frame_equal(back, units)  # "007" stays text, not 7
    assert store.read_table(run.run_id, "paired_units") is None


def test_a_table_of_a_searched_run_is_read_without_loading_the_run_again(tmp_path, monkeypatch):
    """A board reads hundreds of tables: the run's artifact location comes from the search."""
    import pandas as pd

    store = RunStore(f"sqlite:///{tmp_path}/mlflow.db")
    units = pd.DataFrame({"unit": ["a"], "label": [1], "value": [0.5]})
    with tracked_run(store, "exp", "b", {"method": "baseline"}) as run:
        run.log_table("units", units)
    reader = RunStore.open(store.uri)
    (found,) = reader.search()
    from mlflow.store.tracking.sqlalchemy_store import SqlAlchemyStore

    monkeypatch.setattr(SqlAlchemyStore, "get_run", lambda *_: pytest.fail("the run was reloaded"))
    pd.testing.assert_frame_equal(reader.read_table(found.info.run_id, "units"), units)


def test_unreachable_store_is_one_line_in_seconds(tmp_path):
    import socket
    import time

    from src.tracking.health import StoreUnreachable

    with socket.socket() as free:  # a port nothing listens on
        free.bind(("127.0.0.1", 0))
        port = free.getsockname()[1]
    (tmp_path / "afile").write_text("not a folder")
    for uri, says in [
        (f"http://127.0.0.1:{port}", "no MLflow server answers"),
        (f"postgresql://u:secret@127.0.0.1:{port}/db", "does not answer"),
        (f"sqlite:///{tmp_path}/afile/mlflow.db", "cannot be written"),
    ]:
        started = time.monotonic()
        with pytest.raises(StoreUnreachable, match=says) as err:
            RunStore(uri)
        assert time.monotonic() - started < 10
        message = str(err.value)
        assert "\n" not in message and "MLFLOW_TRACKING_URI" in message
        assert "secret" not in message  # a password in the URI is never printed
