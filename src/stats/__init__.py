"""Paired statistics: how a variant differs from its own baseline on the same units, with
intervals a reviewer accepts (DeLong, McNemar, paired and clustered bootstraps), and how
closely it answers like its baseline (fidelity: flips, rank agreement, margin and error shift)."""

from src.stats.fidelity import (
    FIDELITY_LIMIT,
    fidelity_verdict,
    output_fidelity,
    snippet_change,
    vehicle_fidelity,
)
from src.stats.paired import (
    DeLong,
    PairedCell,
    PairedEstimate,
    delong_paired,
    mcnemar_exact,
    paired_difference,
)

__all__ = [
    "DeLong",
    "PairedCell",
    "PairedEstimate",
    "delong_paired",
    "mcnemar_exact",
    "paired_difference",
    "FIDELITY_LIMIT",
    "fidelity_verdict",
    "output_fidelity",
    "snippet_change",
    "vehicle_fidelity",
]
