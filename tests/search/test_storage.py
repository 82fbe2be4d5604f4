"""Where a search's study lives: ``pytest tests/search/test_storage.py``."""

import optuna
import pytest
import sqlalchemy
from mlflow.tracking import MlflowClient

from src.core.errors import ConfigError
from src.search.storage import SCHEMA, open_storage, storage_url


def _study(url: str, name: str = "s") -> optuna.Study:
    return optuna.create_study(
        storage=open_storage(url), study_name=name, directions=["minimize"], load_if_exists=True
    )


def test_the_study_goes_beside_the_tracking_database_and_nowhere_a_user_must_name():
    assert storage_url("sqlite:////a/b/mlflow.db") == "sqlite:////a/b/mlflow-optuna.db"
    assert storage_url("postgresql://u@h:5/db") == "postgresql://u@h:5/db"
    assert storage_url("http://127.0.0.1:5000") is None  # an MLflow server: memory, said
    assert storage_url("http://127.0.0.1:5000", "sqlite:////x.db") == "sqlite:////x.db"
    assert storage_url("sqlite:////a/b/mlflow.db", "memory") is None


def test_a_sqlite_study_survives_its_process_and_leaves_mlflows_file_alone(tmp_path):
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    MlflowClient(uri).search_experiments()  # MLflow's tables and Alembic revision
    _study(storage_url(uri)).optimize(lambda t: t.suggest_float("x", 0, 1), n_trials=3)
    assert len(_study(storage_url(uri)).trials) == 3
    assert MlflowClient(uri).search_experiments()  # MLflow still opens its own file
    tables = sqlalchemy.inspect(sqlalchemy.create_engine(uri)).get_table_names()
    assert "runs" in tables and "trials" not in tables


def test_a_study_that_cannot_be_opened_is_one_line_naming_it(tmp_path):
    with pytest.raises(ConfigError, match="search.storage=memory"):
        open_storage(f"sqlite:///{tmp_path}/missing/dir/x.db")


@pytest.mark.slow
def test_on_postgresql_the_study_has_a_schema_of_its_own():
    from tests.servers import postgres

    with postgres() as database:
        MlflowClient(database.uri).search_experiments()
        url = storage_url(database.uri)
        _study(url).optimize(lambda t: t.suggest_float("x", 0, 1), n_trials=2)
        assert len(_study(url).trials) == 2
        engine = sqlalchemy.create_engine(database.uri)
        inspect = sqlalchemy.inspect(engine)
        assert "trials" in inspect.get_table_names(schema=SCHEMA)
        assert "trials" not in inspect.get_table_names() and "runs" in inspect.get_table_names()
        assert MlflowClient(database.uri).search_experiments()
        engine.dispose()
