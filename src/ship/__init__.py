"""``python -m src.ship``: a board's variant registered in MLflow's Model Registry with its
verdict attached, servable with ``mlflow models serve`` (:mod:`src.ship.app`)."""
