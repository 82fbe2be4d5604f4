"""Rebuild a published table from logged runs, training only the runs that are missing.

python -m src.reproduce table=dyad_dynamic          # fp32 vs dynamic int8, the DyAD seed's layout
python -m src.reproduce table=quant_summary         # FP32/dynamic/static/QAT summary, CNN + DyAD
python -m src.reproduce table=dyad_folds            # AUROC mean ± std over five folds, per method
python -m src.reproduce table=dyad_folds run=false  # render from the store only, train nothing

How: :mod:`src.reproduce.app`; the layouts: :mod:`src.reproduce.tables`.
"""

from __future__ import annotations

import hydra
from omegaconf import DictConfig

from src.cli import entry
from src.reproduce.app import job


# conf/reproduce.yaml names the job (hydra.job.name: reproduce): Hydra would call it after this file
@hydra.main(version_base="1.3", config_path="../../conf", config_name="reproduce")
def main(cfg: DictConfig):
    return job(cfg)


if __name__ == "__main__":
    entry.run(main)
