"""Before Hydra composes the train config: the resolvers, and every registry's defaults as configs.

``conf/model/<name>.yaml``, ``conf/task/<name>.yaml`` and ``conf/method/<name>.yaml`` name a
registry entry and list only deliberate overrides; their defaults list pulls the rest from
``registry/model/<name>``, ``registry/task/<name>`` and ``registry/method/<kind>``, stored here
from the registries themselves (timm keeps defaults with the entrypoint; so do we). The trainer's
own keys (``registry/trainer/default``) and the timing and deployment settings
(``registry/benchmark/default``) come from the specs that read them. A key therefore exists in
the composed config exactly when the code has that field, with the code's default, so
``model.hidden_size=32`` needs no ``+`` and no default is written twice.

Nothing registers at import: every app that composes the train config (``src.train``,
``src.sensitivity``, ``src.search``, ``src.reproduce``, :func:`src.cli.jobs.compose_train`) calls
:func:`register_configs`; the leaderboard needs only :func:`src.cli.resolvers.register_resolvers`.
"""

from __future__ import annotations

import dataclasses

from hydra.core.config_store import ConfigStore

from src.cli.resolvers import register_resolvers
from src.cli.specs import benchmark_defaults
from src.methods import list_methods, method_defaults
from src.models import list_models, model_defaults
from src.pipeline.specs import TrainerSpec
from src.tasks import TASKS

_DONE: list[bool] = []


def register_configs() -> None:
    """Register the resolvers and the registry configs once per process."""
    register_resolvers()
    if _DONE:
        return
    store = ConfigStore.instance()
    for name in list_models():
        store.store(group="registry/model", name=name, node=model_defaults(name))
    for name in TASKS.names():
        store.store(group="registry/task", name=name, node=task_defaults(name))
    for kind in list_methods():
        store.store(group="registry/method", name=kind, node=method_defaults(kind))
    store.store(group="registry/trainer", name="default", node=TrainerSpec.defaults())
    store.store(group="registry/benchmark", name="default", node=benchmark_defaults())
    _DONE.append(True)


def task_defaults(name: str) -> dict:
    """Every setting of task ``name`` with its default value (plain Python types)."""
    return dataclasses.asdict(TASKS.get(name)())
