"""MLflow tracking, light (no torch, Lightning or ONNX: reports import it): the one store API
(``store``), runs we own end to end (``mlflow_run``), liveness (heartbeats, orphans), claims (one
trainer per baseline, held in the store) and the store's health check (``health``). The model
artifact and Lightning's logger live with the pipeline (``src.pipeline.artifact``,
``src.pipeline.fit``)."""
