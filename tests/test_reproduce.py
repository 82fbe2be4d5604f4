"""Published tables from a hand-built store: ``pytest tests/test_reproduce.py``.

The runs are logged with the ``baseline_key`` the table's own config composes to, exactly as
``src.train`` would tag them, so ``run=false`` renders without training anything.
"""

import subprocess
import sys

import pandas as pd
from hydra import compose, initialize_config_dir
from hydra.core.hydra_config import HydraConfig
from omegaconf import OmegaConf

from src.cli import entry
from src.reproduce.app import (
    collect_block,
    compose_key,
    flat_overrides,
    fold_overrides,
    job,
    load_spec,
    train_overrides,
)
from src.tracking.store import RunStore
from tests.board.fakes import new_store
from tests.conftest import FAST, ROOT, private

LATENCY = {"latency.threads": "2", "cpu_model": "Fake CPU"}


def _log(store, spec, block_name, metrics_of, task="anomaly", model="dyad", data="battery"):
    block = next(b for b in spec.blocks if b.name == block_name)
    for fold in block.folds:
        key = compose_key(fold_overrides(block, [], fold), ROOT / "outputs" / "runs")
        base = None
        for method in block.methods:
            run_id = store.run(
                method=method,
                fold="none" if fold is None else fold,
                task=task,
                model=model,
                data=data,
                metrics=metrics_of(method, fold),
                baseline_run_id=base,
                tags={"baseline_key": key, **LATENCY},
            )
            base = base or run_id


def main(args: list[str]) -> str | None:
    """``python -m src.reproduce <args>`` in this process; the error line, if any."""
    with initialize_config_dir(str(ROOT / "conf"), version_base="1.3"):
        cfg = compose("reproduce", overrides=args, return_hydra_config=True)
        HydraConfig().set_config(cfg)
        entry.clear()
        job(cfg)
    error = entry.failures()[-1] if entry.failures() else None
    entry.clear()
    return error


def _dyad_metrics(method, fold):
    auroc = {"baseline": 0.80, "dynamic": 0.78}.get(method, 0.7) + 0.01 * (fold or 0)
    return {
        "test/auroc": auroc,
        "test/recall": 0.5,
        "test/false_alarm_rate": 0.1,
        "test/f1": 0.6,
        "size/mb": 4.0 if method == "baseline" else 1.0,
        "latency/ms_p50_bs1": 2.0,
        "latency/ms_p50_bs128": 40.0 if method == "baseline" else 20.0,
        "latency/speedup_bsN": 2.0,
    }


def test_dyad_dynamic_renders_ours_beside_published(tmp_path, capsys):
    store = new_store(tmp_path / "s")
    spec = load_spec("dyad_dynamic")
    _log(store, spec, "dyad", _dyad_metrics)
    assert (
        main(
            [
                "table=dyad_dynamic",
                "run=false",
                f"logger.tracking_uri={store.uri}",
                f"out_dir={tmp_path}/o",
            ]
        )
        is None
    )
    table = pd.read_csv(tmp_path / "o" / "dyad_dynamic.csv", comment="#")
    ours = table[table.Source.str.startswith("ours")].set_index("Model")
    assert ours.loc["Dynamic int8", "AUC"] == 0.78 and ours.loc["FP32", "Model size (MB)"] == 4.0
    published = table[table.Source == "published"].set_index("Model")
    assert published.loc["Dynamic int8", "Model size (MB)"] == 12.94
    text = capsys.readouterr().out
    assert "commit:" in text and "command: python -m src.reproduce table=dyad_dynamic" in text
    runs = pd.read_csv(tmp_path / "o" / "dyad_dynamic_runs.csv")
    assert len(runs) == 2 and set(runs["status"]) == {"FINISHED"}


def test_quant_summary_prints_the_seed_layout_per_family(tmp_path, capsys):
    store = new_store(tmp_path / "s")
    spec = load_spec("quant_summary")
    _log(store, spec, "dyad", _dyad_metrics)

    def cnn(method, fold):
        return {
            "test/accuracy": 0.9,
            "size/mb": 18.31 if method == "baseline" else 4.6,
            "latency/ms_p50_bs64": 30.0,
            "latency/speedup_bsN": 1.9,
        }

    _log(store, spec, "cnn", cnn, task="classification", model="cnn", data="digits")
    main(
        [
            "table=quant_summary",
            "run=false",
            f"logger.tracking_uri={store.uri}",
            f"out_dir={tmp_path}/o",
        ]
    )
    text = capsys.readouterr().out
    assert "QUANTIZATION COMPARISON SUMMARY (cnn, ours; latency/ms_p50_bs64)" in text
    assert "QUANTIZATION COMPARISON SUMMARY (dyad, ours; latency/ms_p50_bs128)" in text
    assert "Original FP32 (CPU)       18.31           0.9000          30.00           1.00" in text
    assert "Static Quantization       4.59            0.5255" in text  # the published block
    header = [line for line in text.splitlines() if line.startswith("Model Type")]
    assert any("AUROC" in h for h in header) and any("Accuracy" in h for h in header)


def test_dyad_folds_gives_mean_and_std_over_folds(tmp_path):
    store = new_store(tmp_path / "s")
    spec = load_spec("dyad_folds")
    _log(store, spec, "dyad", _dyad_metrics)
    main(
        [
            "table=dyad_folds",
            "run=false",
            f"logger.tracking_uri={store.uri}",
            f"out_dir={tmp_path}/o",
        ]
    )
    table = pd.read_csv(tmp_path / "o" / "dyad_folds.csv", comment="#").set_index("Method")
    folds = [0.80 + 0.01 * k for k in range(5)]
    expected = f"{100 * pd.Series(folds).mean():.1f} ± {100 * pd.Series(folds).std():.1f}"
    assert table.loc["DyAD fp32", "AUROC (%)"] == expected
    assert table.loc["DyAD fp32", "n folds"] == 5 and table.loc["DyAD fp32", "fold 4"] == 0.84


def test_missing_runs_and_unknown_tables_are_one_line_errors(tmp_path):
    store = new_store(tmp_path / "s")
    error = main(["table=dyad_dynamic", "run=false", f"logger.tracking_uri={store.uri}"])
    assert "no FINISHED ['baseline', 'dynamic'] run(s)" in error and "drop run=false" in error
    proc = subprocess.run(
        [sys.executable, "-m", "src.reproduce", "table=nope"],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 2 and proc.stderr.startswith("error: no table 'nope'")


def test_spec_keys_are_overridable_and_the_rest_goes_to_training():
    args = ["table=quant_summary", "+spec.cnn.experiment=cnn_cifar10", "data.root=/x", "run=false"]
    with initialize_config_dir(str(ROOT / "conf"), version_base="1.3"):
        cfg = compose("reproduce", overrides=args, return_hydra_config=True)
        HydraConfig().set_config(cfg)
        assert train_overrides() == ["data.root=/x"]
    spec = load_spec("quant_summary", OmegaConf.to_container(cfg.spec))
    overrides = flat_overrides(OmegaConf.to_container(spec.blocks[0].overrides, resolve=True))
    assert overrides == ["experiment=cnn_cifar10"]


def test_missing_runs_are_trained_in_process_baseline_first(tiny_root, tmp_path):
    block = OmegaConf.create(
        {
            "name": "tiny",
            "overrides": ["model=dyad_tiny", f"data.root={tiny_root}", "trainer.max_epochs=1"],
            "methods": ["dynamic", "baseline"],
            "folds": [0],
        }
    )
    extra = [*private(tmp_path), "task.evaluation.n_boot=20", *FAST]
    store = RunStore(f"sqlite:///{tmp_path}/mlflow.db")
    rows = collect_block(store, block, extra, train=True, out=tmp_path / "out")
    assert list(rows["tags.method"]) == ["dynamic", "baseline"]  # the block's order
    base = rows.set_index("tags.method").loc["baseline", "run_id"]
    assert rows.set_index("tags.method").loc["dynamic", "tags.baseline_run_id"] == base
    again = collect_block(store, block, extra, train=False, out=tmp_path / "out")
    assert list(again["run_id"]) == list(rows["run_id"])  # found by baseline_key, not retrained


def test_every_table_spec_starts_with_its_command():
    for path in sorted((ROOT / "experiments").glob("*.yaml")):
        first = path.read_text().splitlines()[0]
        assert first.startswith(f"# python -m src.reproduce table={path.stem}"), path.name
