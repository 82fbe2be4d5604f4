"""MLflow tracking: the one store API (``store``), runs we own end to end (``mlflow_run``), and
the model artifact (``artifacts``)."""
