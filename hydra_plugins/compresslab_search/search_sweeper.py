"""``hydra/sweeper=search`` (conf/hydra/sweeper/search.yaml): the sweeper of ``src.search``.

Hydra instantiates sweepers only from the ``hydra_plugins`` package, and imports every module
here whenever any Hydra app starts; so this module stays a thin shell and the search itself
(Optuna, the trial loop, the report) is imported only when a search runs:
:func:`src.search.app.sweep`.
"""

from __future__ import annotations

from typing import Any

from hydra.core.plugins import Plugins
from hydra.plugins.sweeper import Sweeper


class SearchSweeper(Sweeper):
    """Optuna asks for trials; the configured launcher runs each batch as ordinary jobs."""

    def __init__(self) -> None:
        self.config = None
        self.hydra_context = None
        self.launcher = None

    def setup(self, *, hydra_context: Any, task_function: Any, config: Any) -> None:
        self.config, self.hydra_context = config, hydra_context
        self.launcher = Plugins.instance().instantiate_launcher(
            hydra_context=hydra_context, task_function=task_function, config=config
        )

    def sweep(self, arguments: list[str]) -> Any:
        from src.search.app import sweep

        return sweep(self.config, arguments, self.launcher)
