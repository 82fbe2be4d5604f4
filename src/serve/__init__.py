"""Shipped variants, answering: the scoring a registered model serves (``mlflow models serve``)
without Hydra, ``src.train`` or any pickled code. :mod:`src.serve.model` is the MLflow pyfunc
model (logged from code), :mod:`src.serve.variant` opens a variant in its runtime, and each task
family's answer has its module (:mod:`src.serve.anomaly`, :mod:`src.serve.images`)."""
