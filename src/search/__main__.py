"""Search for the best variant under an accuracy budget: Optuna over methods and parameters.

python -m src.search                                       20 trials toward conf/search.yaml's goals
python -m src.search search.trials=40 search.goals.max_auroc_drop=0.005 search.sampler=nsga2
python -m src.search search.runtime=onnxruntime hydra/launcher=joblib search.parallel=2

The trials, their Pareto front and the chosen candidate as a ready command are logged to the
sweep's parent run and printed (:mod:`src.search.app`); ``python -m src.leaderboard
sweep_id=<id>`` ranks the trials.
"""

from __future__ import annotations

from typing import Any

import hydra
from omegaconf import DictConfig

from src.cli import entry
from src.search.app import job


# conf/search.yaml names the job (hydra.job.name: search): Hydra would call it after this file
@hydra.main(version_base="1.3", config_path="../../conf", config_name="search")
def main(cfg: DictConfig) -> Any:
    return job(cfg)


if __name__ == "__main__":
    entry.run(main)
