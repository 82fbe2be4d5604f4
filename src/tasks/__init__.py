"""Task families, each a registered :class:`Task` (``create_task({"name": ..., **settings})``).

Importing this package registers every family.
"""

from src.tasks import anomaly, classification  # noqa: F401  (registration)
from src.tasks.base import TASKS, EvalResult, OptimSpec, Task, create_task

__all__ = ["TASKS", "EvalResult", "OptimSpec", "Task", "create_task"]
