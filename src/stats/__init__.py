"""Paired statistics: how a variant differs from its own baseline on the same units, with
intervals a reviewer accepts (DeLong, McNemar, paired and clustered bootstraps)."""

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
]
