"""From the composed Hydra config to the typed specs a run takes: the one place that reads it.

Also computes ``baseline_key``, the hash that decides which fp32 baseline a variant is compared
with. It covers exactly what defines the trained baseline: the model, the data (but for how it is
loaded), the task's loss, the optimiser, the trainer (but for how it reports), and the seed.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from pathlib import Path

from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from src.cli.sweep import job_sweep
from src.core import schema
from src.core.errors import ConfigError
from src.core.paths import code_version
from src.measure.latency import LatencySpec
from src.methods import method_config
from src.models import model_family
from src.pipeline.specs import ConfigRecord, ModelSpec, RunSpec, TrackingSpec, TrainerSpec
from src.runtimes.base import RuntimeSpec
from src.tasks import OptimSpec, Task, create_task

# Settings of how a run is executed or reported, not of what the baseline model is.
RUNTIME_KEYS = {
    "data": {
        "num_workers",
        "cache_dir",
        "cache_workers",
        "eval_batch_size",
        "tags",
        "synthetic.dir",
    },
    "trainer": {
        "enable_progress_bar",
        "enable_model_summary",
        "log_every_n_steps",
        "accelerator",
        "devices",
        "resume",
        "baseline_wait_s",
    },  # not threads: another thread count sums floats in another order and trains other weights
    "task": {"evaluation"},  # how the trained model is scored, not what it is
}
BASELINE_GROUPS = ("model", "data", "task", "optim", "trainer", "seed")


def resolved(cfg: DictConfig) -> dict:
    """The job's config as plain values (no ``hydra`` node); an interpolation that does not
    resolve is one ConfigError naming the key."""
    try:
        values = OmegaConf.to_container(cfg, resolve=True)
    except OmegaConfBaseException as err:
        raise ConfigError(
            f"the config does not resolve: {str(err).splitlines()[0]} "
            f"(key {getattr(err, 'full_key', '?')})"
        ) from None
    values.pop("hydra", None)
    return values


def data_settings(values: dict, task: Task | None = None) -> dict:
    """The ``data`` group as the data module takes it: the config's, plus what the task asks
    of the split. The anomaly task's ``conformal`` rule holds normal training cars out of
    training to place its threshold (``task.evaluation.calibration_normals``); the data module
    must leave them out (``calibration_normals``), and the baseline key must tell such a
    baseline apart. Added only when the task holds some out, so every other config keeps its
    data settings and its baseline key."""
    data = dict(values["data"])
    if task is None and values.get("task") is None:
        return data
    task = task if task is not None else create_task(values["task"])
    held_out = getattr(task, "held_out_normals", 0)  # only tasks with a held-out rule have it
    if held_out:
        data["calibration_normals"] = held_out
    return data


def baseline_key(values: dict) -> str:
    """Hash of everything that defines the fp32 baseline, and nothing about how it is run,
    scored or which method follows (see :data:`RUNTIME_KEYS`); the cars it trains on included
    (:func:`data_settings`)."""
    values = {**values, "data": data_settings(values)} if values.get("data") else values
    defining = {group: _without(values.get(group), group) for group in BASELINE_GROUPS}
    text = json.dumps(defining, sort_keys=True, default=str)
    return hashlib.sha1(text.encode()).hexdigest()


def step_key(values: dict) -> str:
    """Hash of everything that, beside the method's own config, decides what a method computes
    from its baseline: the baseline's definition, the task whole (a method may tune on its
    scoring) and the distillation student (:mod:`src.pipeline.reuse`)."""
    deciding = {k: values.get(k) for k in ("task", "student")}
    text = json.dumps({"baseline": baseline_key(values), **deciding}, sort_keys=True, default=str)
    return hashlib.sha1(text.encode()).hexdigest()


def _without(value, group: str):
    if not isinstance(value, dict):
        return value
    flat = schema.flatten_params(value)
    skip = RUNTIME_KEYS.get(group, set())
    return {k: v for k, v in flat.items() if k not in skip and k.split(".")[0] not in skip}


def run_spec(cfg: DictConfig) -> RunSpec:
    """The :class:`RunSpec` of the job ``cfg`` composes.

    Raises:
        ConfigError: A value that does not resolve or is out of range (naming the key).
    """
    values = resolved(cfg)
    check_numbers(values)
    method = method_config(values.get("method"))
    task = create_task(values["task"])
    data, model = data_settings(values, task), values["model"]
    identity = schema.RunIdentity(
        method=method.name,
        model=model["name"],
        data=data["name"],
        data_variant=str(data.get("variant") or ""),
        task=task.name,
        seed=int(values["seed"]),
        fold=str(data.get("fold", schema.NO_FOLD)),
        model_family=model_family(model["name"]),
    )
    parent_run_id, sweep_id = job_sweep(values["logger"]["tracking_uri"])
    return RunSpec(
        identity=identity,
        seed=int(values["seed"]),
        model=ModelSpec(model["name"], {k: v for k, v in model.items() if k != "name"}),
        data=data,
        task=task,
        optim=OptimSpec(**values["optim"]),
        trainer=trainer_spec(values["trainer"]),
        latency=latency_spec(values["benchmark"]),
        runtimes=runtime_spec(values["benchmark"]),
        method=method,
        tracking=TrackingSpec(
            values["logger"]["tracking_uri"],
            values["logger"]["experiment_name"],
            values.get("run_name"),
        ),
        baseline_key=baseline_key(values),
        step_key=step_key(values),
        config=config_record(values),
        output_dir=Path(values["paths"]["output_dir"]),
        data_tags=dict(data.get("tags") or {}),
        parent_run_id=parent_run_id,
        sweep_id=sweep_id,
        code=code_version(),
        rerun=_flag(values.get("rerun", False), "rerun"),
    )


def _flag(value, key: str) -> bool:
    if not isinstance(value, bool):
        raise ConfigError(f"{key}={value!r} must be true or false")
    return value


# Numeric keys that no typed spec below owns (the data modules take them as they come), with the
# smallest value that works; None allowed where the key says "null: the default".
DATA_NUMBERS = {
    "fold": (0, False),  # the upper end is the source's (battery: 0..4, checked when it loads)
    "batch_size": (1, False),
    "eval_batch_size": (1, True),
    "num_workers": (0, False),
    "cache_workers": (0, True),
}
SEED_MAX = 2**32 - 1  # numpy's seed range, which Lightning's seed_everything feeds


def check_numbers(values: dict) -> None:
    """The numbers read here before any spec: ``seed`` and the data loader's sizes.

    Raises:
        ConfigError: Not an int, or out of range; the message names the key and the range.
    """
    seed = values.get("seed")
    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed <= SEED_MAX:
        raise ConfigError(f"seed={seed!r} must be an int in [0, {SEED_MAX}]")
    data = values.get("data") or {}
    for key, (low, nullable) in DATA_NUMBERS.items():
        if key not in data or (nullable and data[key] is None):
            continue
        value = data[key]
        if isinstance(value, bool) or not isinstance(value, int) or value < low:
            null = " or null" if nullable else ""
            raise ConfigError(f"data.{key}={value!r} must be an int >= {low}{null}")


def trainer_spec(values: dict) -> TrainerSpec:
    """The trainer's own keys (every one in the config: ``registry/trainer`` holds their
    defaults) and Lightning's keyword arguments (the rest)."""
    options = {k: v for k, v in values.items() if k not in TrainerSpec.OWN}
    return TrainerSpec(options=options, **{k: values[k] for k in TrainerSpec.OWN})


DEPLOY_KEYS = ("runtimes", "parity_tolerance")  # benchmark keys of the RuntimeSpec


def latency_spec(values: dict) -> LatencySpec:
    timing = {k: v for k, v in values.items() if k not in DEPLOY_KEYS}
    return LatencySpec(**{**timing, "batch_sizes": tuple(values["batch_sizes"])})


def runtime_spec(values: dict) -> RuntimeSpec:
    return RuntimeSpec(tuple(values["runtimes"] or ()), values["parity_tolerance"])


def benchmark_defaults() -> dict:
    """The ``benchmark`` node's defaults, from the specs that own them: the timing settings of
    :class:`LatencySpec` and the deployment keys (:data:`DEPLOY_KEYS`) of :class:`RuntimeSpec`."""
    timing, deploy = LatencySpec(), RuntimeSpec()
    values = {f.name: getattr(timing, f.name) for f in dataclasses.fields(LatencySpec)}
    values["batch_sizes"] = list(timing.batch_sizes)
    return {**values, "runtimes": list(deploy.names), "parity_tolerance": deploy.parity_tolerance}


def _identity_params(values: dict) -> dict:
    """The config as params, less what differs between invocations of one command
    (:data:`src.core.schema.INVOCATION_PARAMS`): a rerun that resumes a run logs the same."""
    flat = schema.flatten_params(values)
    return {k: v for k, v in flat.items() if k not in schema.INVOCATION_PARAMS}


def config_record(values: dict) -> ConfigRecord:
    """What the run logs of its config; the baseline's view leaves the method out."""
    base = {k: v for k, v in values.items() if k != "method"}
    hydra_dir = Path(values["paths"]["output_dir"]) / ".hydra"  # Hydra's record of the job
    return ConfigRecord(
        params=_identity_params(values),
        yaml=OmegaConf.to_yaml(values),
        baseline_params=_identity_params(base),
        baseline_yaml=OmegaConf.to_yaml(base),
        hydra_dir=hydra_dir,
    )
