"""The MLflow pyfunc model of a shipped variant, logged from code (MLflow's "models from code":
``mlflow.pyfunc.log_model(python_model=<this file>)``), so the logged model holds this file, the
weights and a plain ``model_config``, and no pickled object at all.

Loaded by ``mlflow.pyfunc.load_model("models:/<name>@candidate")`` or served by
``mlflow models serve -m models:/<name>@candidate --env-manager local``.
"""

from __future__ import annotations

import mlflow
import pandas as pd
from mlflow.exceptions import MlflowException
from mlflow.protos.databricks_pb2 import INVALID_PARAMETER_VALUE
from mlflow.pyfunc import PythonModel

from src.serve.anomaly import InputError
from src.serve.variant import open_variant


class RequestError(MlflowException):
    """A malformed request, answered 400 with its one line. MLflow's scoring server rewrites an
    MlflowException's message to start with the whole request frame echoed back; this message
    keeps the line that names the column or vehicle and the fix."""

    def __init__(self, line: str) -> None:
        self._line = line
        super().__init__(line, error_code=INVALID_PARAMETER_VALUE)

    @property
    def message(self) -> str:
        return self._line

    @message.setter
    def message(self, _value: str) -> None:  # the server's echo of the request: not kept
        pass


class ShippedVariant(PythonModel):
    """A registered variant: ``predict(frame)`` answers per vehicle (or image)."""

    def load_context(self, context) -> None:
        self.variant = open_variant(context.artifacts, dict(context.model_config))

    def predict(self, context, model_input: pd.DataFrame, params=None) -> pd.DataFrame:
        try:
            return self.variant.answer(model_input)
        except InputError as err:  # a 400 naming what to fix, not a server error
            raise RequestError(str(err)) from None


mlflow.models.set_model(ShippedVariant())
