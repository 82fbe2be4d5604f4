"""The runs a published table needs: found in the store by the exact baseline config, or trained.

A table block names train overrides, methods and folds. For each fold the train config is composed
(exactly as ``python -m src.train`` would) and its ``baseline_key`` identifies the runs that belong
to it; the newest FINISHED run per method is reused, and only missing methods are run, as one
``python -m src.train -m +method=...`` sweep per fold.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
from omegaconf import ListConfig, OmegaConf

from src.board.runs import load_runs
from src.errors import UserError
from src.tracking.run_info import baseline_key

ROOT = Path(__file__).resolve().parents[2]


def flat_overrides(values) -> list[str]:
    """Block overrides may nest lists (``[experiment=x, ${extra}]``): flatten, drop empties."""
    if isinstance(values, ListConfig):
        values = OmegaConf.to_container(values, resolve=True)
    out = []
    for value in values or []:
        out += flat_overrides(value) if isinstance(value, list | tuple) else [str(value)]
    return [v for v in out if v]


def fold_overrides(overrides: list[str], fold) -> list[str]:
    return overrides + ([] if fold is None else [f"data.fold={fold}"])


def compose_key(overrides: list[str]) -> str:
    """``baseline_key`` of the train config these overrides compose."""
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra

    os.environ.setdefault("PROJECT_ROOT", str(ROOT))
    GlobalHydra.instance().clear()
    with initialize_config_dir(str(ROOT / "conf"), version_base="1.3"):
        try:
            cfg = compose("train", overrides=overrides)
        except Exception as err:  # Hydra's override errors are several classes deep
            raise UserError(f"table overrides {overrides} do not compose: {err}") from err
    return baseline_key(cfg)


def newest_by_method(uri: str, key: str, methods: list[str]) -> dict[str, pd.Series]:
    """The newest FINISHED run of each method among the runs of baseline config ``key``."""
    runs = load_runs(uri, filters={"baseline_key": key}, include_baselines=False)
    if runs.empty:
        return {}
    runs = runs[(runs["status"] == "FINISHED") & runs["tags.method"].isin(methods)]
    runs = runs.sort_values("start_time", ascending=False)
    return {method: group.iloc[0] for method, group in runs.groupby("tags.method")}


def train_missing(uri: str, overrides: list[str], missing: list[str]) -> None:
    """One sweep for the missing methods (the baseline first, so the others reuse it)."""
    ordered = sorted(missing, key=lambda m: m != "baseline")
    cmd = [sys.executable, "-m", "src.train", "-m", f"+method={','.join(ordered)}", *overrides]
    print("running:", " ".join(cmd[1:]), flush=True)
    env = {**os.environ, "MLFLOW_TRACKING_URI": uri}
    subprocess.run(cmd, cwd=ROOT, env=env, check=False)


def collect_block(uri: str, block, extra: list[str], run_missing: bool) -> pd.DataFrame:
    """One row per (method, fold) of ``block``: the run's tags and metrics."""
    rows = []
    for fold in block.folds:
        overrides = fold_overrides(flat_overrides(block.overrides) + extra, fold)
        key = compose_key(overrides)
        found = newest_by_method(uri, key, list(block.methods))
        missing = [m for m in block.methods if m not in found]
        if missing and run_missing:
            train_missing(uri, overrides, missing)
            found = newest_by_method(uri, key, list(block.methods))
            missing = [m for m in block.methods if m not in found]
        if missing:
            why = "the sweep did not finish them (see its FAILED runs in MLflow)"
            raise UserError(
                f"no FINISHED {missing} run(s) for block {block.name!r} with overrides "
                f"{overrides} in {uri}: " + (why if run_missing else "drop run=false to train them")
            )
        rows += [found[m].rename(None) for m in block.methods]
    return pd.DataFrame(rows).reset_index(drop=True)


def load_spec(name: str, args: list[str]) -> tuple:
    """The table spec ``experiments/<name>.yaml`` with the spec's own keys overridden from
    ``args``; every other ``key=value`` is returned as a train override."""
    path = ROOT / "experiments" / f"{name}.yaml"
    if not path.is_file():
        tables = sorted(p.stem for p in (ROOT / "experiments").glob("*.yaml"))
        raise UserError(f"no table {name!r}; choose table=one of {tables}")
    spec = OmegaConf.load(path)
    own = [a for a in args if a.split("=", 1)[0].split(".", 1)[0] in spec]
    spec = OmegaConf.merge(spec, OmegaConf.from_dotlist(own))
    return spec, [a for a in args if a not in own]
