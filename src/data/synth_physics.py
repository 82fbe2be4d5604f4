"""Equivalent-circuit pack model behind the synthetic DyAD generator (:mod:`src.data.synth`).

Units: volts, amperes (negative while charging), percent SOC, degrees Celsius, seconds. Until
:func:`to_release_array` quantises them into the released column order, snippets are handled as
a dict of float arrays of shape ``(n_snippets, 128)`` ("windows") so that every step is vectorised
over the snippets of one car.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view
from scipy.interpolate import PchipInterpolator

WINDOW = 128
DT_S = 10.0
FAULT_MECHANISMS = ("short", "dip", "thermal", "fade", "overvolt")

# Tuned so that a 50 A charge warms the pack by ~1 degC per 21-minute snippet at most.
_HEAT_C_PER_S_A2 = 1.0 / (WINDOW * DT_S * 50.0**2)
_THERMAL_TAU_S = 5400.0
_POLARISATION_TAU_S = 60.0

# NCM open-circuit voltage; PCHIP keeps the curve smooth *and* monotone between the knots.
_OCV = PchipInterpolator(
    [0, 5, 10, 20, 30, 40, 50, 60, 70, 80, 90, 100],
    [3.30, 3.40, 3.45, 3.55, 3.61, 3.65, 3.70, 3.78, 3.87, 3.96, 4.06, 4.18],
)


@dataclass(frozen=True)
class BrandSpec:
    """Value scales and folder layout of one released brand.

    Attributes:
        first_car_id: Smallest car id of the brand; cars take the first N ids from here.
        max_cars: How many ids the brand's range holds.
        volt_a: Pack ``volt = volt_a * mean_cell + volt_b`` (the release's pack scaling).
        volt_b: See ``volt_a``.
        cell_quantum: Resolution of the single-cell voltages in volts.
        soc_quantum: Resolution of SOC in percent.
        temp_quantum: Resolution of the temperatures in degrees Celsius.
        capacity_ah: Nominal capacity of a car of this brand.
        per_snippet_clock: True if timestamps restart at 0 in every snippet (brand 2).
        split_folders: True for ``train/`` + ``test/`` (brands 1, 2), False for ``data/``.
    """

    first_car_id: int
    max_cars: int
    volt_a: float
    volt_b: float
    cell_quantum: float
    soc_quantum: float
    temp_quantum: float
    capacity_ah: float
    per_snippet_clock: bool
    split_folders: bool


BRANDS = {
    1: BrandSpec(1, 198, 1.0, -0.62, 1 / 1024, 1 / 256, 1.0, 150.0, False, True),
    2: BrandSpec(201, 50, 1.0, -0.66, 1 / 1024, 1 / 256, 1.0, 150.0, True, True),
    3: BrandSpec(401, 100, 11.0, -1.1, 1e-4, 1.0, 0.1, 40.0, False, False),
}


@dataclass
class Car:
    """Constants of one simulated vehicle (see :func:`draw_car`)."""

    car_id: int
    faulty: bool
    capacity_ah: float
    r_ohm: float
    r_pol_ohm: float
    cell_spread_v: float
    temp_spread_c: float
    ambient_c: float
    mileage_km: float
    first_session: int
    glitch_rate: float
    faults: dict[str, dict[str, float]] = field(default_factory=dict)


def ocv(soc: np.ndarray) -> np.ndarray:
    """NCM open-circuit cell voltage for SOC in percent (3.45 V at 10 %, 4.18 V at 100 %)."""
    return _OCV(np.clip(soc, 0.0, 100.0))


def draw_car(car_id: int, faulty: bool, spec: BrandSpec, rng: np.random.Generator) -> Car:
    """Draw the constants of one car; faulty cars also get 1-2 fault mechanisms."""
    car = Car(
        car_id=car_id,
        faulty=faulty,
        capacity_ah=spec.capacity_ah * rng.uniform(0.95, 1.05),
        # Normal resistance varies by +-30 %, so a mild resistance-rise fault hides in the crowd.
        r_ohm=rng.uniform(0.7e-3, 1.3e-3),
        r_pol_ohm=rng.uniform(0.3e-3, 0.6e-3),
        cell_spread_v=rng.uniform(5e-3, 15e-3),
        temp_spread_c=rng.uniform(2.0, 4.0),
        ambient_c=rng.uniform(7.0, 35.0),
        mileage_km=rng.uniform(2_000.0, 150_000.0),
        first_session=int(rng.integers(1, 300)),
        # Some healthy cars are simply glitchier than others (sensors, balancing, wiring).
        glitch_rate=float(np.clip(0.03 * np.exp(0.8 * rng.standard_normal()), 0.005, 0.2)),
    )
    if faulty:
        names = rng.choice(FAULT_MECHANISMS, size=1 if rng.random() < 0.6 else 2, replace=False)
        car.faults = {str(n): _draw_fault(str(n), rng) for n in names}
    return car


def _draw_fault(name: str, rng: np.random.Generator) -> dict[str, float]:
    """Full-onset magnitudes at strength 1 (early snippets show less, see :func:`apply_faults`)."""
    if name == "short":
        return {"extra_v": rng.uniform(0.02, 0.065)}  # spread 30-80 mV at the top of charge
    if name == "dip":
        return {"depth_v": rng.uniform(0.01, 0.05), "width": rng.uniform(2.0, 8.0)}
    if name == "thermal":
        return {"climb_c": rng.uniform(3.0, 8.0), "offset_c": rng.uniform(1.5, 3.5)}
    if name == "fade":
        return {"fade": rng.uniform(0.10, 0.25), "rise": rng.uniform(0.3, 1.0)}
    return {"excess_v": rng.uniform(0.04, 0.07)}


def simulate_session(car: Car, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """One constant-current charge from a random SOC up to 100 %, sampled every 10 s."""
    i_abs = rng.uniform(8.0, 50.0)
    soc_per_step = i_abs * DT_S / (36.0 * car.capacity_ah)
    # Start low enough that the session spans at least one window (matters for small packs).
    start = min(rng.uniform(10.0, 90.0), 100.0 - soc_per_step * (WINDOW + 8) * 1.1)
    n_max = int(np.ceil((100.0 - start) / soc_per_step * 1.1)) + WINDOW
    current = -i_abs * (1.0 + rng.normal(0.0, rng.uniform(0.005, 0.01), n_max))
    charged = np.concatenate(([0.0], np.cumsum(-current[:-1]))) * DT_S / (36.0 * car.capacity_ah)
    soc = start + charged
    n = int(np.argmax(soc >= 100.0)) + 1 if soc[-1] >= 100.0 else n_max
    t = np.arange(n) * DT_S
    polarisation = i_abs * car.r_pol_ohm * (1.0 - np.exp(-t / _POLARISATION_TAU_S))
    ambient = car.ambient_c + rng.uniform(-3.0, 3.0)
    t_start = ambient + rng.uniform(0.0, 2.0)
    t_eq = ambient + i_abs**2 * _HEAT_C_PER_S_A2 * _THERMAL_TAU_S
    return {
        "t": t,
        "current": current[:n],
        "soc": np.minimum(soc[:n], 100.0),
        "cell": ocv(soc[:n]) - current[:n] * car.r_ohm + polarisation,
        "temp": t_eq + (t_start - t_eq) * np.exp(-t / _THERMAL_TAU_S),
    }


def simulate_windows(
    car: Car, n_snippets: int, rng: np.random.Generator
) -> tuple[dict[str, np.ndarray], np.ndarray, np.ndarray]:
    """Cut overlapping 128-step windows from successive sessions until there are enough.

    Returns:
        ``(windows, session index per snippet, mileage per snippet)``.
    """
    chunks, sessions, mileages = [], [], []
    session, mileage, total = car.first_session, car.mileage_km, 0
    while total < n_snippets:
        series = simulate_session(car, rng)
        stride = int(rng.integers(10, 65))
        starts = np.arange(0, len(series["t"]) - WINDOW + 1, stride)[: n_snippets - total]
        chunks.append({k: sliding_window_view(v, WINDOW)[starts] for k, v in series.items()})
        sessions += [session] * len(starts)
        mileages += [round(mileage, 1)] * len(starts)
        total += len(starts)
        session += 1
        mileage += rng.uniform(20.0, 400.0)
    windows = {k: np.concatenate([c[k] for c in chunks]) for k in chunks[0]}
    return windows, np.array(sessions), np.array(mileages)


def add_cell_channels(w: dict[str, np.ndarray], car: Car, rng: np.random.Generator) -> None:
    """Derive max/min single-cell voltage and temperature from the pack mean, in place."""
    n = len(w["cell"])
    # Imbalance shows most at the flat-to-steep ends of the OCV curve.
    shape = 1.0 + 0.3 * ((w["soc"] - 55.0) / 45.0) ** 2
    spread = car.cell_spread_v * shape * rng.normal(1.0, 0.08, (n, 1))
    w["vmax"] = w["cell"] + spread / 2
    w["vmin"] = w["cell"] - spread / 2
    w["voff"] = np.zeros_like(w["cell"])  # pack-only offsets (a dip in one cell moves the pack)
    w["tmax"] = w["temp"].copy()
    w["tmin"] = w["temp"] - car.temp_spread_c


def add_benign_events(w: dict[str, np.ndarray], rng: np.random.Generator, rate: float) -> None:
    """Harmless look-alikes (balancing lag, load transients, sensor offsets) in every car.

    Their sizes are heavy-tailed on purpose: without an occasional large benign event the worst
    snippet of a healthy car would always be milder than any fault, and detection trivial.
    """
    for i in np.flatnonzero(rng.random(len(w["cell"])) < rate):
        kind, tail = int(rng.integers(4)), np.exp(0.6 * rng.standard_normal())
        if kind == 0:
            w["vmax"][i] += rng.uniform(3e-3, 12e-3) * tail
        elif kind == 1:
            _dip(w, i, rng.uniform(3e-3, 10e-3) * tail, rng.uniform(1.0, 3.0), rng)
        elif kind == 2:
            w["tmin"][i] -= rng.uniform(1.0, 3.0) * tail
        else:  # sun or a cooling-loop hiccup warms the whole pack, not one spot
            ramp = rng.uniform(1.0, 4.0) * tail * np.linspace(0.0, 1.0, WINDOW)
            w["tmax"][i] += ramp
            w["tmin"][i] += ramp


def _dip(w: dict[str, np.ndarray], i: int, depth: float, width: float, rng) -> None:
    """Gaussian dip of one cell; the pack voltage sees the same dip (scaled later by volt_a)."""
    centre = rng.uniform(8.0, WINDOW - 8.0)
    dip = depth * np.exp(-0.5 * ((np.arange(WINDOW) - centre) / width) ** 2)
    w["vmin"][i] -= dip
    w["voff"][i] -= dip


def apply_faults(w: dict[str, np.ndarray], car: Car, fraction: float, strength: float, rng) -> None:
    """Show the car's fault mechanisms in a growing share of its snippets, in place.

    Onset is progressive: a snippet at life fraction ``u`` (0 first, 1 last) shows the fault with
    probability ``fraction * (0.4 + 1.2 u)`` (mean ``fraction``) at ``0.4 + 0.6 u`` of full size.
    """
    n = len(w["cell"])
    life = np.linspace(0.0, 1.0, n)
    shows = rng.random(n) < np.clip(fraction * (0.4 + 1.2 * life), 0.0, 1.0)
    for i in np.flatnonzero(shows):
        scale = strength * (0.4 + 0.6 * life[i]) * rng.uniform(0.7, 1.0)
        for name, params in car.faults.items():
            _FAULT_APPLY[name](w, i, params, scale, car, rng)


def _short(w, i, p, s, car, rng) -> None:
    # Self-discharge makes one cell lag; the gap opens as the OCV curve steepens near full.
    w["vmin"][i] -= p["extra_v"] * s * (0.3 + 0.7 * (w["soc"][i] / 100.0) ** 2)


def _voltage_dip(w, i, p, s, car, rng) -> None:
    _dip(w, i, p["depth_v"] * s, p["width"], rng)


def _thermal(w, i, p, s, car, rng) -> None:
    w["tmax"][i] += s * (p["offset_c"] + p["climb_c"] * np.linspace(0.0, 1.0, WINDOW))


def _fade(w, i, p, s, car, rng) -> None:
    soc0 = w["soc"][i, 0]
    fade = min(p["fade"] * s, 0.6)
    w["soc"][i] = np.minimum(soc0 + (w["soc"][i] - soc0) / (1.0 - fade), 100.0)
    extra = -w["current"][i] * car.r_ohm * min(p["rise"] * s, 3.0)
    # The pack reads higher at the same SOC and current; the weakest cell leads the rise.
    w["cell"][i] += extra
    w["vmin"][i] += extra
    w["vmax"][i] += 2.0 * extra


def _overvolt(w, i, p, s, car, rng) -> None:
    top = np.clip((w["soc"][i] - 85.0) / 15.0, 0.0, 1.0)
    w["vmax"][i] += p["excess_v"] * s * top


_FAULT_APPLY = {
    "short": _short,
    "dip": _voltage_dip,
    "thermal": _thermal,
    "fade": _fade,
    "overvolt": _overvolt,
}


def _quantise(x: np.ndarray, step: float) -> np.ndarray:
    return np.round(x / step) * step


def to_release_array(w: dict[str, np.ndarray], spec: BrandSpec, rng) -> np.ndarray:
    """Add measurement noise, quantise like the brand's BMS, stack into ``(n, 128, 8)``."""
    n = len(w["cell"])

    def noise(sigma: float) -> np.ndarray:
        return rng.normal(0.0, sigma, (n, WINDOW))

    volt = spec.volt_a * (w["cell"] + w["voff"] + noise(0.5e-3)) + spec.volt_b
    current = np.minimum(np.round(w["current"] + noise(0.05), 1), 0.0)
    # No noise on SOC: the BMS integrates current, so it never steps backwards while charging.
    soc = _quantise(np.clip(w["soc"], 0.0, 100.0), spec.soc_quantum)
    vmin = _quantise(w["vmin"] + noise(0.4e-3), spec.cell_quantum)
    vmax = np.maximum(_quantise(w["vmax"] + noise(0.4e-3), spec.cell_quantum), vmin)
    tmax = _quantise(w["tmax"] + noise(0.08), spec.temp_quantum)
    tmin = np.minimum(_quantise(w["tmin"] + noise(0.08), spec.temp_quantum), tmax)
    if spec.per_snippet_clock:
        stamp = np.broadcast_to(np.arange(WINDOW) * DT_S, (n, WINDOW))
    else:
        stamp = w["t"] + 1.0  # seconds since the session started, as in brands 1 and 3
    return np.stack([volt, current, soc, vmax, vmin, tmax, tmin, stamp], axis=-1).astype(np.float64)


def simulate_car(
    car: Car, n_snippets: int, spec: BrandSpec, fraction: float, strength: float, rng
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """All snippets of one car as ``(arrays (n, 128, 8), session per snippet, mileage)``."""
    w, sessions, mileage = simulate_windows(car, n_snippets, rng)
    add_cell_channels(w, car, rng)
    add_benign_events(w, rng, car.glitch_rate)
    if car.faulty:
        apply_faults(w, car, fraction, strength, rng)
    return to_release_array(w, spec, rng), sessions, mileage
