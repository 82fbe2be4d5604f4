"""What it would take to decide: how many faulty vehicles (or seeds) a non-inferiority verdict
at margin ``m`` needs, from the paired data at hand (audit I7).

Model. For AUROC, each unit's paired change is its DeLong structural-component difference
(variant minus baseline: ``V10`` of a positive, ``V01`` of a negative), per cell; for accuracy,
its change of correctness. Centred within its cell and class (as DeLong's variance centres it),
it is ``d[u, c] = a[u] + e[u, c]``: a persistent per-unit part (variance ``sigma_u2``: the vehicle
itself) and a cell-specific part (``sigma_e2``: the model trained in that fold x seed), fitted per
class by one-way random-effects ANOVA on the units (method of moments, unbalanced: Searle's
``k0``). First-order (Hajek) variance of the mean over cells of the per-cell difference, with
``w[u, c] = 1 / (K * P_c)`` for a positive (``1 / (K * N_c)`` for a negative):
``sum_u sigma_u2 * (sum_c w[u, c])**2 + sigma_e2 * sum_c w[u, c]**2``; its root is ``se_now``.

Projection. A balanced design of ``n`` faulty and ``r * n`` normal units, each scored in ``K``
cells (``r`` = normals per faulty unit now), has
``SE(n, K) = sqrt(sigma_u2 / n + sigma_e2 / (n * K))`` with
``sigma_u2 = sigma_u2[faulty] + sigma_u2[normal] / r`` and likewise ``sigma_e2`` (the fields of
:class:`Projection`). The non-inferiority test at one-sided ``alpha`` has power ``power`` at a
true difference of 0 when ``SE <= m / (z[1 - alpha] + z[power])``. A true difference of 0, not
the observed one: the observed one is as noisy as the verdict it would size, and a negative one
would make every design look hopeless. Seeds shrink only ``sigma_e2``. Where no unit of a
class recurs in two cells (normal vehicles across folds) the two parts of that class cannot be
told apart: all of it counts as persistent, which seeds cannot shrink; where no unit of any class
recurs, more seeds are not shown to help. The model has no cell-wide shift (a whole fold's model
better or worse).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from statistics import NormalDist

import numpy as np

from src.stats.cells import PairedCell, check_statistic
from src.stats.delong import component_differences


@dataclass(frozen=True)
class Projection:
    """How far the data are from a decision, and what would close the gap.

    Attributes:
        sigma_u2: Persistent per-unit variance (per faulty unit, normals folded in).
        sigma_e2: Cell-specific variance, likewise.
        se_now: Standard error of the mean difference in the design at hand.
        faulty_needed: Faulty units (test units for accuracy) for ``power`` at the current
            cells per unit; None when no estimate is possible.
        seeds_needed: Cells per unit (seeds) at the current units; ``math.inf`` when seeds
            alone cannot reach it; None when no estimate is possible.
        text: One line for the report.
        n_units: Distinct faulty units now (all units for accuracy).
        cells_per_unit: Mean number of cells a faulty unit is scored in now.
    """

    sigma_u2: float
    sigma_e2: float
    se_now: float
    faulty_needed: float | None
    seeds_needed: float | None
    text: str
    n_units: int = 0
    cells_per_unit: float = 0.0


def variance_components(values: np.ndarray, groups: np.ndarray) -> tuple[float, float, bool]:
    """One-way random-effects ANOVA: ``(sigma_u2, sigma_e2, separable)`` of ``values`` grouped
    by unit, by the method of moments (``sigma_u2`` clipped at 0).

    ``separable`` is False when no group holds two values: everything is then ``sigma_u2``.
    """
    values = np.asarray(values, float)
    _, inverse, sizes = np.unique(groups, return_inverse=True, return_counts=True)
    g, total = sizes.size, values.size
    if total == 0:
        return math.nan, math.nan, False
    if total == g:
        return float(values.var(ddof=1)) if g > 1 else 0.0, 0.0, False
    means = np.bincount(inverse, weights=values) / sizes
    within = float(((values - means[inverse]) ** 2).sum() / (total - g))
    if g < 2:
        return 0.0, within, True
    between = float((sizes * (means - values.mean()) ** 2).sum() / (g - 1))
    k0 = (total - (sizes**2).sum() / total) / (g - 1)
    return max(0.0, (between - within) / k0), within, True


def _changes(cell: PairedCell, statistic: str, cells: int) -> list[tuple]:
    """Per class: (unit ids, centred changes, weights 1 / (K * class size)) of one cell."""
    ids = np.asarray(cell.units).astype(str)
    if statistic == "accuracy":
        d = np.asarray(cell.variant, float) - np.asarray(cell.baseline, float)
        return [(ids, d - d.mean(), np.full(d.size, 1 / (cells * d.size)))]
    y = np.asarray(cell.labels).astype(bool)
    d10, d01 = component_differences(y, cell.baseline, cell.variant)
    return [
        (ids[m], d - d.mean(), np.full(d.size, 1 / (cells * d.size)))
        for m, d in ((y, d10), (~y, d01))
    ]


def _fit(cells: Sequence[PairedCell], statistic: str) -> list[dict]:
    """Per class: its variance components, its current variance share, and its unit count."""
    parts = [_changes(cell, statistic, len(cells)) for cell in cells]
    out = []
    for k in range(len(parts[0])):
        ids = np.concatenate([p[k][0] for p in parts])
        d, w = (np.concatenate([p[k][j] for p in parts]) for j in (1, 2))
        s_u, s_e, separable = variance_components(d, ids)
        _, inverse = np.unique(ids, return_inverse=True)
        var = s_u * (np.bincount(inverse, weights=w) ** 2).sum() + s_e * (w**2).sum()
        out.append(
            {
                "u": s_u,
                "e": s_e,
                "sep": separable,
                "var": var,
                "n": inverse.max() + 1,
                "per_cell": np.mean([len(p[k][0]) for p in parts]),
                "rows": ids.size,
            }
        )
    return out


def power_projection(
    cells: Sequence[PairedCell],
    margin: float,
    alpha: float = 0.025,
    power: float = 0.8,
    statistic: str = "auroc",
) -> Projection:
    """Faulty units or seeds needed for ``power`` of the non-inferiority test at ``margin``
    (one-sided ``alpha``) at a true difference of 0; the module docstring gives the model.

    Raises:
        ValueError: No cells, an unknown statistic, or a cell without both classes (auroc).
    """
    check_statistic(cells, statistic)
    classes = _fit(cells, statistic)
    ratio = classes[-1]["per_cell"] / classes[0]["per_cell"]  # normals per faulty unit
    fold = [1.0, 1 / ratio][: len(classes)]
    s_u = sum(c["u"] * f for c, f in zip(classes, fold, strict=True))
    s_e = sum(c["e"] * f for c, f in zip(classes, fold, strict=True))
    se_now = math.sqrt(sum(c["var"] for c in classes))
    n, per_unit = int(classes[0]["n"]), classes[0]["rows"] / classes[0]["n"]
    z = NormalDist().inv_cdf
    target = margin / (z(1 - alpha) + z(power))
    if not (math.isfinite(s_u) and math.isfinite(s_e)):
        text = f"no projection: too few units to estimate their variance ({n})"
        return Projection(s_u, s_e, se_now, None, None, text, n, per_unit)
    if not target > 0:  # margin 0: no finite sample shows "no worse at all"
        text = f"no projection: at margin {margin:g} no finite number of units decides"
        return Projection(s_u, s_e, se_now, None, None, text, n, per_unit)
    faulty = math.ceil((s_u + s_e / per_unit) / target**2)
    names = _CLASSES[statistic]
    unseparated = [name for c, name in zip(classes, names, strict=True) if not c["sep"]]
    seeds = _seeds(s_u, s_e, n, target) if len(unseparated) < len(classes) else math.inf
    text = _text(statistic, margin, se_now, target, faulty, seeds, n, unseparated, len(classes))
    return Projection(float(s_u), float(s_e), se_now, faulty, seeds, text, n, float(per_unit))


def _seeds(s_u: float, s_e: float, n: int, target: float) -> float:
    """Smallest K with ``s_u / n + s_e / (n K) <= target**2``; inf when none."""
    room = n * target**2 - s_u
    if room <= 0:
        return math.inf
    return float(max(1, math.ceil(s_e / room)))


_CLASSES = {"auroc": ("faulty", "normal"), "accuracy": ("test",)}


def _text(statistic, margin, se_now, target, faulty, seeds, n, unseparated, n_classes) -> str:
    what = "AUROC" if statistic == "auroc" else "accuracy"
    units = "faulty vehicles" if statistic == "auroc" else "test units"
    head = f"an {what} verdict at margin {margin:g}"
    if se_now <= target:
        return f"{head} is within reach of these {n} {units} (SE {se_now:.4f} <= {target:.4f})"
    if len(unseparated) == n_classes:
        why = " (no unit recurs across cells: seeds are not shown to help)"
    elif unseparated:  # e.g. folds share faulty vehicles but not normal ones
        kinds = " and ".join(unseparated)
        why = f" ({kinds} units never recur across cells: their part counts as persistent)"
    else:
        why = ""
    if math.isinf(seeds):
        alone = "it cannot be reached with more seeds alone"
        return f"{head} would need about {faulty} {units}; {alone}{why}"
    per = f"{seeds:.0f} seeds per vehicle at {n}"
    return f"{head} would need about {faulty} {units} (or {per}){why}"
