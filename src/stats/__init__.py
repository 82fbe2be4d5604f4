"""Paired statistics: how a variant differs from its own baseline on the same units (vehicles,
images), with intervals whose error rate is stated, and how closely it answers like its baseline.

- :mod:`~src.stats.paired`: :func:`paired_difference`, the estimate, its interval (DeLong-t on
  one AUROC cell, an adjusted Wald on one accuracy cell, the joint stratified bootstrap on
  several cells) and its one-sided non-inferiority p-value; :class:`PairedEstimate`.
- :mod:`~src.stats.discordance`: the pairs a variant made worse or better (:class:`Discordance`;
  ``identical`` when none changed) and the exact McNemar test.
- :mod:`~src.stats.delong`: DeLong's test and its structural components; t helpers.
- :mod:`~src.stats.bootstrap`: the joint bootstrap over cells that share units.
- :mod:`~src.stats.multiplicity`: Holm's step-down over variants that share a baseline.
- :mod:`~src.stats.power`: faulty vehicles or seeds a verdict would need (:class:`Projection`).
- :mod:`~src.stats.proportion`: Clopper-Pearson bounds of a proportion.
- :mod:`~src.stats.fidelity`: label-free fidelity (decision flips, rank agreement, margin and
  error shift) and its verdict.
- :mod:`~src.stats.cells`: :class:`PairedCell`, the input of all of them.

No torch, and scipy only inside functions (``scipy.special``): the leaderboard imports this.
"""

from src.stats.cells import PairedCell
from src.stats.delong import DeLong, delong_paired
from src.stats.discordance import Discordance, discordance, mcnemar_exact
from src.stats.fidelity import (
    FIDELITY_LIMIT,
    fidelity_verdict,
    output_fidelity,
    snippet_change,
    vehicle_fidelity,
)
from src.stats.multiplicity import holm
from src.stats.paired import PairedEstimate, paired_difference
from src.stats.power import Projection, power_projection

__all__ = [
    "FIDELITY_LIMIT",
    "DeLong",
    "Discordance",
    "PairedCell",
    "PairedEstimate",
    "Projection",
    "delong_paired",
    "discordance",
    "fidelity_verdict",
    "holm",
    "mcnemar_exact",
    "output_fidelity",
    "paired_difference",
    "power_projection",
    "snippet_change",
    "vehicle_fidelity",
]
