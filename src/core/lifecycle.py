"""What a job is doing, and how it stops: the current phase, and stop signals as an exception.

A pre-empted job (SLURM's SIGTERM, Ctrl+C's SIGINT) must end as a recorded, correctly labelled
run and a non-zero exit, whatever it was doing. :func:`install_signal_handlers` (called by the
entry points for the whole process, not only inside Lightning's ``fit``) turns either signal into
:class:`Interrupted`, which unwinds through every ``with`` block, so the run is marked KILLED
with the signal and the :func:`phase` it interrupted, and the entry point exits 128 + signal
(130 for SIGINT, 143 for SIGTERM), as a shell reports a process killed by that signal.

Example:
    >>> install_signal_handlers()
    >>> with phase("training dyad for 3 epoch(s)"):
    ...     fit()
"""

from __future__ import annotations

import logging
import signal
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType

log = logging.getLogger(__name__)
STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)
_PHASES: list[str] = []


class Interrupted(BaseException):
    """A stop signal arrived. BaseException, like KeyboardInterrupt: no ``except Exception``
    (Hydra's job runner, Lightning's loops, ours) may swallow it.

    Attributes:
        signum: The signal's number.
        phase: The innermost :func:`phase` running when it arrived ("starting" if none).
    """

    def __init__(self, signum: int, phase: str) -> None:
        self.signum, self.phase = int(signum), phase
        super().__init__(f"stopped by {self.signal_name} while {phase}")

    @property
    def signal_name(self) -> str:
        return signal.Signals(self.signum).name

    @property
    def exit_code(self) -> int:
        """128 + the signal: what a shell reports for a process the signal killed."""
        return 128 + self.signum


def current_phase() -> str:
    """The innermost phase running now, "starting" before the first."""
    return _PHASES[-1] if _PHASES else "starting"


@contextmanager
def phase(name: str) -> Iterator[None]:
    """A named phase of the job: a log line when it starts and one with its duration when it
    ends (nothing runs silent for minutes), and what an interruption says it stopped."""
    log.info("%s ...", name)
    started = time.perf_counter()
    _PHASES.append(name)
    try:
        yield
    except BaseException as err:
        if phase_of(err) is None:  # the innermost phase names where it failed
            err._failed_in = name
        raise
    finally:
        _PHASES.pop()
    log.info("%s: done in %.1f s", name, time.perf_counter() - started)


def phase_of(err: BaseException) -> str | None:
    """The innermost :func:`phase` an exception left, or None if it was raised outside one."""
    return getattr(err, "_failed_in", None)


def install_signal_handlers() -> None:
    """SIGTERM and SIGINT raise :class:`Interrupted` from now on (main thread only; a no-op
    elsewhere, where Python cannot install handlers)."""
    if threading.current_thread() is not threading.main_thread():
        return
    for signum in STOP_SIGNALS:
        signal.signal(signum, _interrupt)


def _interrupt(signum: int, frame: FrameType | None) -> None:
    """Raise once; a second signal while the first unwinds (marking the run) is logged and
    ignored, so the run still gets its final status."""
    for other in STOP_SIGNALS:
        signal.signal(other, _already_stopping)
    raise Interrupted(signum, current_phase())


def _already_stopping(signum: int, frame: FrameType | None) -> None:
    log.warning("%s: already stopping, recording the run", signal.Signals(signum).name)
