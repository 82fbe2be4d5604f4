"""``python -m src.ship``: the board's choice (or a named variant) registered in MLflow's Model
Registry as a pyfunc model that answers per vehicle, with its verdict attached.

1) build the board of the selection exactly as the leaderboard does; 2) choose the variant and
its runtime (:mod:`src.ship.choice`); 3) package the run's model as a pyfunc model and check on
two of the run's own test vehicles that it answers as the run's evaluation did
(:mod:`src.ship.package`, :mod:`src.ship.example`); 4) register it with its facts as tags and
description (:mod:`src.ship.facts`); 5) alias it ``candidate``, and ``champion`` by the rule of
:mod:`src.ship.registry`. Nothing is registered unless every step before succeeded.
"""

from __future__ import annotations

import tempfile
import warnings
from pathlib import Path

from hydra.core.config_store import ConfigStore
from omegaconf import DictConfig, OmegaConf

from src.board import Board
from src.board.aggregate import metric_specs
from src.cli import entry
from src.cli.resolvers import register_resolvers
from src.cli.selection import board_config, selected_boards
from src.core import schema
from src.core.errors import UserError
from src.core.paths import ROOT
from src.serve.variant import open_variant
from src.ship import choice as choosing
from src.ship import facts, package, registry
from src.ship.example import build_example, run_figures
from src.tracking.store import RunStore

register_resolvers()  # before Hydra composes: ${project_root:} and ${default_store:}
CONFIG = ROOT / "conf" / "ship.yaml"
ConfigStore.instance().store(
    name="ship", node=OmegaConf.merge(board_config(), OmegaConf.load(CONFIG))
)
CHAMPION_MODES = ("auto", "force", "never")


@entry.guard
def job(cfg: DictConfig) -> dict:
    """Choose, package, check, register, alias; print what was registered. Returns the
    version's name, number, tags and the champion decision."""
    if cfg.champion not in CHAMPION_MODES:
        raise UserError(f"champion={cfg.champion} is unknown; choose one of {CHAMPION_MODES}")
    store = RunStore.open(cfg.tracking_uri)
    registry.check_registry(store)
    board = _one_board(*selected_boards(cfg, store)[:1])
    pick = choosing.choose(board, cfg.variant, cfg.runtime, bool(cfg.force))
    run = store.get(pick.run_id)
    figures = run_figures(run, pick.runtime_name)
    name = cfg.name or default_name(run.data.tags)
    command = facts.train_command(store, run.info.run_id)
    tags = facts.version_tags(board, pick, run, _parent(run), command)
    with tempfile.TemporaryDirectory() as tmp, warnings.catch_warnings():
        # MLflow's hints on integer columns and predict's type hints concern models it cannot
        # check; this one's input is checked by its signature and by src.serve, in one line.
        warnings.simplefilter("ignore", UserWarning)
        files = package.files(store, pick.run_id, pick.runtime_name, Path(tmp))
        example = build_example(store, run, pick.runtime_name, figures, files, cfg.data_root)
        version, check = _register(store, name, pick, figures, files, example, tags)
    decision = _promote(store, name, version, pick, board, cfg.champion)
    _say(name, version, tags, check, decision)
    return {"name": name, "version": version, "tags": tags, "champion": decision.why}


def _one_board(boards: list[Board]) -> Board:
    if len(boards) != 1:
        raise UserError(f"the selection holds {len(boards)} boards; narrow it (data=, model=)")
    return boards[0]


def _parent(run) -> str | None:
    return run.data.tags.get(schema.PARENT_RUN_ID)


def default_name(tags: dict) -> str:
    """``<model>-<data>-<data_variant>`` (``dyad_brand3-battery-brand3``)."""
    parts = (tags.get(schema.MODEL), tags.get(schema.DATA), tags.get(schema.DATA_VARIANT))
    return "-".join(p for p in parts if p)


def _register(store, name, pick, figures, files, example, tags) -> tuple[str, package.Check]:
    """Check, log and register. The model states its version number, so the number is guessed
    first (the newest visible version + 1) and checked against the one the registry gave: a
    deleted version or a concurrent registration takes numbers search does not show, and then
    the version is withdrawn and logged again under the next number. The model is opened and
    checked once: only its stated version differs between tries."""
    client = store.client
    expected = registry.next_version(client, name)
    config = {
        "name": name,
        "version": str(expected),
        "variant": pick.variant,
        "runtime": pick.runtime_name,
        "run_id": pick.run_id,
        **figures,
    }
    variant = open_variant(files, config)
    check = package.check_answers(variant, example)
    tags = {**tags, **check.tags()}
    signature = package.signature_of(example, variant.answer(example.kept))
    for _ in range(registry.TRIES):
        config["version"] = str(expected)
        model_id = package.log_pyfunc(store, pick.run_id, name, files, config, example, signature)
        version = registry.register(client, name, model_id, tags, facts.description(tags))
        if str(version.version) == str(expected):
            return str(version.version), check
        client.delete_model_version(name, str(version.version))
        expected = int(version.version) + 1
    raise UserError(f"{name}: other registrations kept taking the next version; try again")


def _promote(store, name, version, pick, board, mode) -> registry.Promotion:
    spec = next((s for s in metric_specs(board.per_run) if s.name == board.metric), None)
    rule = {
        "statistic": spec.paired if spec else "auroc",
        "margin": board.margin if board.margin is not None else (spec.margin if spec else 0.0),
        "higher_is_better": board.higher_is_better,
    }
    if mode == "never":
        store.client.set_registered_model_alias(name, registry.CANDIDATE, version)
        return registry.Promotion(False, "champion=never: the champion did not move")
    return registry.promote(
        store,
        name,
        version,
        pick.run_id,
        pick.runtime_name,
        rule,
        override=mode == "force",
        shown=pick.chosen_by == choosing.BOARD_CHOICE,
    )


def _say(name: str, version: str, tags: dict, check: package.Check, decision) -> None:
    t = tags
    print(f"registered {name} version {version} ({t['variant']}, {t['runtime']}; {t['chosen_by']})")
    print(f"reason: {t['reason']}")
    print(
        f"verdict {t['verdict']} (Holm: {t['verdict.holm']}), Δ {t['verdict.estimate']} "
        f"{t['verdict.interval']}, α {t['verdict.alpha']} per side, k {t['verdict.k']}"
    )
    print(f"served answer checked on 2 of the run's test units: {check.words()}")
    print(f"aliases: candidate -> {version}; champion: {decision.why}")
    print(f"serve: mlflow models serve -m 'models:/{name}@candidate' -p 5001 --env-manager local")
