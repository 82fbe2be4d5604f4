"""Rebuild a published table from logged runs, training only the runs that are missing.

python -m src.reproduce table=dyad_dynamic          # fp32 vs dynamic int8, the DyAD seed's layout
python -m src.reproduce table=quant_summary         # FP32/dynamic/static/QAT summary, CNN + DyAD
python -m src.reproduce table=dyad_folds            # AUROC mean ± std over five folds, per method
python -m src.reproduce table=dyad_folds run=false  # render from the store only, train nothing

Any other ``key=value`` goes to every ``python -m src.train`` the table needs (``data.root=DIR``).
The table, its CSV and the ids of the runs it was read from land in ``out`` (default
``outputs/reproduce/<table>/``), each with the git commit and the exact command.
"""

from __future__ import annotations

import os
import shlex
import sys
from pathlib import Path

os.environ.setdefault("PROJECT_ROOT", str(Path(__file__).resolve().parents[1]))

import pandas as pd  # noqa: E402

from src.board.collect import ROOT, collect_block, load_spec  # noqa: E402
from src.board.meta import latency_setup  # noqa: E402
from src.board.tables import LAYOUTS, markdown, quant_summary_text  # noqa: E402
from src.errors import UserError  # noqa: E402
from src.tracking.mlflow_run import default_tracking_uri, git_commit  # noqa: E402

OPTIONS = {"table": None, "run": "true", "tracking_uri": None, "out": None}


def main(argv: list[str]) -> None:
    options, rest = parse_args(argv)
    spec, train_overrides = load_spec(options["table"], rest)
    uri = options["tracking_uri"] or default_tracking_uri()
    blocks = collect_runs(spec, uri, train_overrides, options["run"] == "true")
    table = LAYOUTS[spec.layout](spec, blocks)
    text = render(spec, table)
    provenance = provenance_lines(argv, uri, blocks)
    paths = write_outputs(options, spec, table, text, provenance, blocks)
    print("\n".join([spec.title, *provenance, "", text, ""]))
    print("written:", ", ".join(str(p) for p in paths))


def parse_args(argv: list[str]) -> tuple[dict, list[str]]:
    """This command's own options, and the rest (table spec keys and train overrides)."""
    options, rest = dict(OPTIONS), []
    for arg in argv:
        key, _, value = arg.partition("=")
        if key in options:
            options[key] = value
        else:
            rest.append(arg)
    if not options["table"]:
        tables = sorted(p.stem for p in (ROOT / "experiments").glob("*.yaml"))
        raise UserError(f"name the table: python -m src.reproduce table=NAME, one of {tables}")
    return options, rest


def collect_runs(spec, uri: str, overrides: list[str], run: bool) -> dict[str, pd.DataFrame]:
    return {block.name: collect_block(uri, block, overrides, run) for block in spec.blocks}


def render(spec, table: pd.DataFrame) -> str:
    if spec.layout == "quant_summary":
        return quant_summary_text(spec, table)
    notes = [f"- {line}" for line in spec.get("published_notes") or []]
    return "\n".join([markdown(table), *([""] + notes if notes else [])])


def provenance_lines(argv: list[str], uri: str, blocks: dict[str, pd.DataFrame]) -> list[str]:
    runs = pd.concat(blocks.values(), ignore_index=True)
    return [
        f"commit: {git_commit()}",
        f"command: python -m src.reproduce {shlex.join(argv)}",
        f"store: {uri} ({len(runs)} runs; ids in the _runs.csv)",
        "measured: every cell from a logged run; ± is the sample std over folds; latency setup "
        + latency_setup(runs),
    ]


def write_outputs(options, spec, table, text, provenance, blocks) -> list[Path]:
    """``<table>.md`` (provenance + table), ``<table>.csv`` and ``<table>_runs.csv``."""
    out = Path(options["out"] or ROOT / "outputs" / "reproduce" / options["table"])
    out.mkdir(parents=True, exist_ok=True)
    name = options["table"]
    fence = "```" if spec.layout == "quant_summary" else ""
    page = [f"# {spec.title}", "", *[f"- {p}" for p in provenance], "", fence, text, fence]
    runs = pd.concat(
        [frame.assign(block=block) for block, frame in blocks.items()], ignore_index=True
    )
    columns = ["block", "tags.method", "tags.fold", "run_id", "status"]
    paths = [out / f"{name}.md", out / f"{name}.csv", out / f"{name}_runs.csv"]
    paths[0].write_text("\n".join(page).replace("\n\n\n", "\n\n") + "\n")
    paths[1].write_text("".join(f"# {p}\n" for p in provenance) + table.to_csv(index=False))
    runs[[c for c in columns if c in runs]].to_csv(paths[2], index=False)
    return paths


if __name__ == "__main__":
    try:
        main(sys.argv[1:])
    except UserError as err:
        print(f"error: {err}", file=sys.stderr)
        sys.exit(2)
