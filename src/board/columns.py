"""The columns of the leaderboard's frames, declared once: every module that writes or reads a
board frame takes its column names from here.

The frames, in the order a board builds them:

- the run frame (:func:`src.board.runs.load_runs`): one row per run, :data:`RUN_COLUMNS` and
  every tag, param and metric under MLflow's ``search_runs`` names ``tags.<name>``,
  ``params.<name>``, ``metrics.<name>`` (:func:`tag`, :func:`param`, :func:`metric`);
- ``per_run`` (:func:`src.board.aggregate.prepare_runs`): the run frame plus plain labels
  (:data:`LABELS`: ``method``, ``fold``, ``variant`` ...) and the ratios against each run's own
  baseline as metrics (``metrics.vs_baseline/<name>``, :func:`vs_baseline`);
- ``rows`` (:func:`src.board.aggregate.aggregate`, one per data set, model and variant): the
  row's labels and counts (:data:`ROW_COUNTS`), ``<metric>:mean``/``:std``/``:n`` of every board
  metric (:func:`stat`), then the verdict's interval (:data:`DELTA_INTERVAL`), ``verdict``,
  ``speed`` and ``reason`` (:mod:`src.board.verdict`), then ``score``, ``rank`` and ``pareto``
  (:mod:`src.board.rank`);
- ``runtimes`` (:mod:`src.board.runtimes`): one row per variant and runtime,
  :data:`RUNTIME_COLUMNS`.

Tag and metric *names* (``method``, ``test/auroc``) belong to :mod:`src.core.schema`; this module
builds column names from them and never restates one.
"""

from __future__ import annotations

from src.core import schema

# ---- the run frame: MLflow's search_runs names -------------------------------------------
TAGS, PARAMS, METRICS = "tags.", "params.", "metrics."  # run frame: prefixes of its columns
RUN_ID = "run_id"  # run frame (and per_run): the MLflow run id
EXPERIMENT = "experiment"  # run frame: the experiment's name
STATUS = "status"  # run frame: MLflow's status (FINISHED, FAILED, KILLED, RUNNING)
START_TIME = "start_time"  # run frame: when the run started (UTC); the newest re-run counts
SELECTED_BY = "selected_by"  # run frame: "filter", or schema.BASELINE_RUN_ID for a baseline
RUN_COLUMNS = (RUN_ID, EXPERIMENT, STATUS, START_TIME, SELECTED_BY)
SELECTED_BY_FILTER = "filter"  # SELECTED_BY of a run the filters chose


def tag(name: str) -> str:
    """``method`` -> ``tags.method``: the run frame's column of tag ``name``."""
    return TAGS + name


def param(name: str) -> str:
    """``method.dtype`` -> ``params.method.dtype``: the run frame's column of param ``name``."""
    return PARAMS + name


def metric(name: str) -> str:
    """``test/auroc`` -> ``metrics.test/auroc``: the run frame's column of metric ``name``."""
    return METRICS + name


def metric_name(column: str) -> str | None:
    """``metrics.test/auroc`` -> ``test/auroc``; None for a column that holds no metric."""
    return column.removeprefix(METRICS) if column.startswith(METRICS) else None


# ---- plain labels: per_run (src.board.variants.label_runs), rows, runtimes ---------------
# The identity tags as text, under the tag's own name: tags.fold -> fold ("" when missing).
LABELS = (*schema.IDENTITY_TAGS, schema.DATA_FINGERPRINT)  # per_run: tags copied as labels
DATA = schema.DATA  # per_run, rows, runtimes: the data source
DATA_VARIANT = schema.DATA_VARIANT  # per_run, rows: its data set ("" when it has one)
DATA_FINGERPRINT = schema.DATA_FINGERPRINT  # per_run, rows: the data's content
MODEL = schema.MODEL  # per_run, rows, runtimes: the model, with its differing model.* params
METHOD = schema.METHOD  # per_run, rows: the method (schema.BASELINE for the fp32 model)
TASK = schema.TASK  # per_run, rows: the task family
FOLD = schema.FOLD  # per_run: the run's fold
SEED = schema.SEED  # per_run: the run's seed
VARIANT = "variant"  # per_run, rows, runtimes: the method with its differing settings
SETTINGS = "settings"  # per_run, rows: every method.* param, "key=value, ..."
CONTEXT = "context"  # per_run, rows: every model.* (and split_by) param, "key=value, ..."

# ---- rows: counts and statistics (src.board.aggregate.aggregate) -------------------------
N_RUNS = "n"  # rows: how many runs (folds x seeds) the row aggregates
FOLDS = "folds"  # rows: their folds, "0,1,2"
SEEDS = "seeds"  # rows: their seeds, "0,1"
RUN_IDS = "run_ids"  # rows: their run ids, space-separated
ROW_COUNTS = (N_RUNS, FOLDS, SEEDS, RUN_IDS)
MEAN, STD, COUNT = "mean", "std", "n"  # rows: the statistics of every board metric
MIN, MAX = "min", "max"  # rows: the widest ends of an interval's per-run bounds (_ci_low/_high)
STATS = (MEAN, STD, COUNT)


def stat(name: str, statistic: str = MEAN) -> str:
    """``test/auroc``, ``std`` -> ``test/auroc:std``: a statistic of a metric over a row's runs
    (``name`` a metric or a :func:`vs_baseline` ratio)."""
    return f"{name}:{statistic}"


# ---- ratios against each run's own baseline: per_run as metrics, rows as statistics -------
VS_BASELINE = schema.VS_BASELINE  # the area of these ratios (one of schema.BOARD_AREAS)


def vs_baseline(name: str) -> str:
    """``size_ratio`` -> ``vs_baseline/size_ratio`` (``metric()`` of it in per_run)."""
    return VS_BASELINE + name


VS_SIZE = vs_baseline("size_ratio")  # per_run, rows: size/ratio (or from size/mb); 1 for a base
VS_SPEEDUP_BS1 = vs_baseline("speedup_bs1")  # per_run, rows: latency/speedup_bs1; 1 for a base
VS_SPEEDUP_BSN = vs_baseline("speedup_bsN")  # per_run, rows: latency/speedup_bsN; 1 for a base
VS_DELTA = vs_baseline("delta")  # per_run, rows: delta/<ranking metric>; 0 for a base
VS_MS_BS1 = vs_baseline("ms_p50_bs1")  # rows, as MEAN only: the base's p50 ms / VS_SPEEDUP_BS1

# ---- rows: the verdict (src.board.verdict) and the ranking (src.board.rank) ---------------
DELTA_ESTIMATE = "delta:estimate"  # rows: the paired difference from the own baseline
DELTA_CI_LOW = "delta:ci_low"  # rows: its 95% interval's low end (NaN: none)
DELTA_CI_HIGH = "delta:ci_high"  # rows: its high end
DELTA_INTERVAL = (DELTA_ESTIMATE, DELTA_CI_LOW, DELTA_CI_HIGH)
INTERVAL = "interval"  # rows: how that interval was made (DeLong-t, joint bootstrap, ...)
P_NI = "p_ni"  # rows: one-sided p-value of "worse by the margin or more"
PAIRS_WORSE = "pairs worse"  # rows: cross-class pairs (or units) the variant made worse
PAIRS_BETTER = "pairs better"  # rows: ... made better
PAIRS_TOTAL = "pairs"  # rows: all cross-class pairs (or units) over the cells
UNITS_MOVED = "units moved"  # rows: distinct units in at least one changed pair
DISCORDANCE = (PAIRS_WORSE, PAIRS_BETTER, PAIRS_TOTAL, UNITS_MOVED)
N_UNITS = "units"  # rows: distinct units the interval rests on (vehicles, images)
N_POSITIVE = "positive units"  # rows: of them faulty (AUROC); NaN for accuracy
VERDICT = "verdict"  # rows, runtimes: baseline, superior, non-inferior, inconclusive, ...
FAMILY_K = "k judged"  # rows: the variants judged against the same baseline (multiplicity)
VERDICT_HOLM = "verdict (Holm)"  # rows: the verdict once the k claims are Holm-adjusted
POWER = "power"  # rows: what an inconclusive AUROC verdict would need to decide
FIDELITY = "fidelity"  # rows: behaves like its baseline / differs / not shown (label-free)
# rows: every column a verdict adds (src.board.verdict.judge, src.board.fidelity)
JUDGED = (
    *DELTA_INTERVAL,
    INTERVAL,
    P_NI,
    *DISCORDANCE,
    N_UNITS,
    N_POSITIVE,
    VERDICT,
    FAMILY_K,
    VERDICT_HOLM,
    POWER,
    FIDELITY,
)
SPEED = "speed"  # rows, runtimes: faster, same or slower at batch 1 (or "—": no interval)
SPEED_SOURCE = "speed_source"  # per_run: "fresh processes" (a timing pass) or "within one process"
REASON = "reason"  # rows: the verdict in one line a reader can act on
SCORE = "score"  # rows: the baseline's mean + the row's paired difference
RANK = "rank"  # rows: 1 = best within one data set and baseline
PARETO = "pareto"  # rows: on the Pareto front of its data set and baseline
COMPARE = (DATA, DATA_VARIANT, DATA_FINGERPRINT)  # rows: one data set
GROUP = (*COMPARE, MODEL, CONTEXT)  # rows: one baseline; ranks, fronts and families within it

# ---- runtimes: one row per variant and deployment runtime (src.board.runtimes) -----------
RUNTIME = "runtime"  # runtimes: eager, onnxruntime, ...
FORM = "form"  # runtimes: how the runtime ran the variant (tag runtime.<name>.form)
VS_EAGER_BS1 = "speedup bs1"  # runtimes: speedup against the fp32 model in eager, at batch 1
VS_EAGER_BSN = "speedup bsN"  # runtimes: the same at the largest batch
VS_FP32 = "vs fp32 same runtime"  # runtimes: against the fp32 model in the same runtime
VS_FP32_BEST = "vs fp32 best runtime"  # runtimes: against the fp32 model in its fastest one
PARITY_DELTA = "parity Δ"  # runtimes: how far the runtime moved the ranking metric
MAX_DIFF = "max |diff|"  # runtimes: largest output difference from eager
INT8_OPS = "int8 ops"  # runtimes: int8 operators the runtime ran
FILE_MB = "file MB"  # runtimes: the file the runtime ships (runtime/<name>/file_mb)
BEST = "best"  # runtimes: "*" on each variant's fastest runtime that kept parity
NOTE = "note"  # runtimes: why a runtime did not run or failed parity
RUNTIME_COLUMNS = (
    DATA,
    MODEL,
    VARIANT,
    RUNTIME,
    FORM,
    VERDICT,
    VS_EAGER_BS1,
    VS_EAGER_BSN,
    SPEED,
    VS_FP32,
    VS_FP32_BEST,
    PARITY_DELTA,
    MAX_DIFF,
    INT8_OPS,
    FILE_MB,
    BEST,
    NOTE,
)
