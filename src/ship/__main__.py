"""Register a variant of a board in MLflow's Model Registry, servable with ``mlflow models serve``.

python -m src.ship sweep_id=ID                  the board's choice, in its best runtime
python -m src.ship sweep_id=ID variant=static   a variant you name
python -m src.ship sweep_id=ID champion=force   make it champion whatever the rule says (recorded)

How: :mod:`src.ship.app`. Then: ``mlflow models serve -m models:/<name>@candidate -p 5001
--env-manager local`` (the name is printed).
"""

from __future__ import annotations

import hydra
from omegaconf import DictConfig

from src.cli import entry
from src.ship.app import job


@hydra.main(version_base="1.3", config_path=None, config_name="ship")
def main(cfg: DictConfig):
    return job(cfg)


if __name__ == "__main__":
    entry.run(main)
