"""Jobs of ``python -m src.train`` run in this process: what ``src.reproduce`` and the benchmarks
use to train what they need, through the same config and pipeline as the command line."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from pathlib import Path

from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from omegaconf import DictConfig, open_dict

from src.cli.hydra_setup import register_configs
from src.cli.specs import run_spec
from src.core import schema
from src.core.errors import UserError
from src.core.paths import ROOT
from src.pipeline import Outcome, run

log = logging.getLogger(__name__)


def compose_train(overrides: list[str], config: str = "train") -> DictConfig:
    """The train config ``python -m src.train <overrides>`` would run, composed in process
    (inside a Hydra app, or on its own); ``config``: another app's config built on it
    (``sensitivity``).

    Raises:
        UserError: The overrides do not compose (Hydra's reason in one line).
    """
    register_configs()
    try:
        if GlobalHydra.instance().is_initialized():
            return compose(config, overrides=overrides)
        with initialize_config_dir(str(ROOT / "conf"), version_base="1.3"):
            return compose(config, overrides=overrides)
    except Exception as err:  # Hydra's override errors are several classes deep
        reason = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise UserError(f"train overrides {overrides} do not compose: {reason}") from None


def composed(overrides: list[str], output_dir: str | Path, config: str = "train") -> DictConfig:
    """:func:`compose_train` with Lightning's folder set: in process, Hydra makes no job folder."""
    cfg = compose_train(overrides, config)
    with open_dict(cfg):
        cfg.paths.output_dir = str(output_dir)
    return cfg


def train_methods(
    overrides: list[str], methods: Iterable[str], output_dir: str | Path
) -> dict[str, Outcome]:
    """Run ``python -m src.train [+method=M] <overrides>`` for each method in this process, the
    baseline first so that the others reuse it. A method that fails on bad input is logged (its
    run is FAILED in MLflow) and the others go on; the finished ones are returned."""
    done = {}
    for method in sorted(methods, key=lambda m: m != schema.BASELINE):
        extra = [] if method == schema.BASELINE else [f"+method={method}"]
        print("training:", " ".join(["python -m src.train", *extra, *overrides]), flush=True)
        try:
            done[method] = run(run_spec(composed(overrides + extra, output_dir)))
        except UserError as err:
            log.error("%s: %s", method, err)
    return done
