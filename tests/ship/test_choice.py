"""Which variant ships: the board's choice (the fastest non-inferior variant on the Pareto
front, in its best servable runtime), a named one, and every refusal in one line."""

from __future__ import annotations

import pandas as pd
import pytest

from src.board import Board
from src.board import columns as col
from src.core.errors import UserError
from src.ship.choice import BOARD_CHOICE, FORCED, NAMED, choose

GROUP = {
    col.DATA: "battery",
    col.DATA_VARIANT: "brand3",
    col.DATA_FINGERPRINT: "f",
    col.MODEL: "dyad",
    col.CONTEXT: "",
}


def row(variant, verdict, pareto=True, fidelity="", run_ids=None, method=None):
    return {
        **GROUP,
        col.VARIANT: variant,
        col.METHOD: method or variant,
        col.PARETO: pareto,
        col.VERDICT: verdict,
        col.VERDICT_HOLM: verdict,
        col.FIDELITY: fidelity,
        col.RUN_IDS: run_ids or f"run-{variant}",
        col.FOLDS: "0",
        col.SEEDS: "0",
        col.DELTA_ESTIMATE: -0.1,
        col.DELTA_CI_LOW: -0.2,
        col.DELTA_CI_HIGH: -0.05,
    }


def runtime(variant, name, speedup, verdict="non-inferior", best=""):
    return {
        col.DATA: "battery",
        col.MODEL: "dyad",
        col.VARIANT: variant,
        col.RUNTIME: name,
        col.VERDICT: verdict,
        col.VS_EAGER_BS1: speedup,
        col.BEST: best,
        col.NOTE: "",
    }


def board(rows, runtimes) -> Board:
    return Board(
        pd.DataFrame(),
        pd.DataFrame(rows),
        "test/auroc",
        True,
        [],
        0.02,
        runtimes=pd.DataFrame(runtimes),
    )


ROWS = [
    row("baseline", "baseline", method="baseline"),
    row("dynamic", "non-inferior"),
    row("static", "non-inferior"),
    row("qat", "inconclusive", fidelity="behaves like its baseline"),
    row("distill", "non-inferior", pareto=False),
    row("prune", "inferior"),
]
RUNTIMES = [
    runtime("dynamic", "eager", 1.9, best="*"),
    runtime("dynamic", "onnxruntime", 1.2),
    runtime("static", "eager", 0.5),
    runtime("static", "onnxruntime", 2.5, best="*"),
    runtime("static", "compile", 9.0),  # faster, but not servable by a pyfunc model
    runtime("qat", "eager", 0.5),
    runtime("qat", "onnxruntime", 2.0, verdict="failed parity", best=""),
    runtime("distill", "eager", 9.9, best="*"),
    runtime("prune", "eager", 3.0, best="*"),
]


def test_the_board_chooses_the_fastest_shown_variant_on_the_front_in_its_best_runtime():
    pick = choose(board(ROWS, RUNTIMES))
    assert (pick.variant, pick.runtime_name, pick.chosen_by) == (
        "static",
        "onnxruntime",
        BOARD_CHOICE,
    )
    assert pick.run_id == "run-static"


def test_a_named_variant_ships_in_its_fastest_runtime_that_kept_parity():
    pick = choose(board(ROWS, RUNTIMES), "qat")
    assert (pick.runtime_name, pick.chosen_by) == ("eager", NAMED)
    assert choose(board(ROWS, RUNTIMES), "static", "eager").runtime_name == "eager"


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (("fp16",), "variant=fp16 is not on this board"),
        (("prune",), "is inferior to its baseline (Δ -0.100 [-0.200, -0.050]); ship it anyway"),
        (("qat", "onnxruntime"), "qat failed parity in onnxruntime"),
        (("static", "compile"), "runtime=compile cannot serve static"),
    ],
)
def test_refusals_are_one_line(args, words):
    with pytest.raises(UserError) as err:
        choose(board(ROWS, RUNTIMES), *args)
    assert words in str(err.value) and "\n" not in str(err.value)


def test_an_inferior_variant_ships_only_when_forced_and_says_so():
    assert choose(board(ROWS, RUNTIMES), "prune", force=True).chosen_by == FORCED


def test_no_qualifying_variant_and_several_runs_are_refused():
    weak = [r for r in ROWS if r[col.VARIANT] in ("baseline", "prune", "distill")]
    with pytest.raises(UserError, match="no variant on this board's Pareto front is shown"):
        choose(board(weak, RUNTIMES))
    folds = [row("dynamic", "non-inferior", run_ids="a b")]
    with pytest.raises(UserError, match=r"aggregates 2 runs .* \+tags.fold=N"):
        choose(board(folds, RUNTIMES))
    two = [*ROWS, {**row("dynamic", "non-inferior"), col.MODEL: "other"}]
    with pytest.raises(UserError, match="holds 2 baselines"):
        choose(board(two, RUNTIMES))
