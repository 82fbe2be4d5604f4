"""What every entry point does with bad input: one ``error:`` line, exit code 2, sweeps go on;
and with a stop signal: the run KILLED, exit 128 + signal (:mod:`src.core.lifecycle`).

A job's :class:`~src.core.errors.UserError` (bad config, missing file, empty store) is logged as
one line and recorded; the job returns NaN, which the sweep callback counts as a failed job (its
run is already FAILED in MLflow) while Hydra goes on with the others. When the process ends,
:func:`run` prints the last failure as ``error: ...`` and exits 2, so a sweep with a failed job
never counts as a success. Anything else is a bug and keeps its traceback.

Example (the entry points' shape, lightning-hydra-template's ``task_wrapper``):
    >>> @entry.guard
    ... def job(cfg): ...
    >>> @hydra.main(version_base="1.3", config_path="../conf", config_name="train")
    ... def main(cfg): return job(cfg)
    >>> if __name__ == "__main__":
    ...     entry.run(main)
"""

from __future__ import annotations

import functools
import logging
import shlex
import sys
from collections.abc import Callable
from typing import Any

from hydra.core.hydra_config import HydraConfig

from src.core.errors import UserError
from src.core.lifecycle import Interrupted, install_signal_handlers

log = logging.getLogger(__name__)
_FAILURES: list[str] = []


def guard(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Wrap a job so that a UserError becomes one logged line, a recorded failure and NaN."""

    @functools.wraps(fn)
    def guarded(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except UserError as err:
            if logging.getLogger().hasHandlers():  # the job's log (a sweep's other jobs go on);
                log.error("%s", err)  # without handlers, run()'s one line is all there is
            _FAILURES.append(str(err))
            return float("nan")

    return guarded


def failures() -> list[str]:
    """The failures recorded in this process, oldest first."""
    return list(_FAILURES)


def clear() -> None:
    """Forget recorded failures (tests running several jobs in one process)."""
    _FAILURES.clear()


def run(main: Callable[[], Any]) -> None:
    """Call a ``@hydra.main`` function; exit 2 with the last failure's one line if any job
    failed on bad input, 128 + the signal if SIGTERM / SIGINT stopped it (its run is KILLED)."""
    install_signal_handlers()
    try:
        main()
    except Interrupted as stop:
        print(f"error: {stop}; the run is recorded as KILLED", file=sys.stderr)
        sys.exit(stop.exit_code)
    if _FAILURES:
        print(f"error: {_FAILURES[-1]}", file=sys.stderr)
        sys.exit(2)


def command_line(module: str, argv: list[str] | None = None) -> str:
    """The command as a user types it: ``python -m <module> <arguments>``; the arguments are
    ``argv``, else the running Hydra app's overrides, else ``sys.argv``."""
    if argv is None:
        argv = list(HydraConfig.get().overrides.task) if HydraConfig.initialized() else None
    args = sys.argv[1:] if argv is None else argv
    return shlex.join(["python", "-m", module, *args])
