"""The run schema: every tag and metric name a training run writes and a report reads.

Producers (``src.pipeline``, ``src.measure``, the sweep callback) and consumers (``src.board``,
``src.reproduce``, ``benchmarks``, the test fakes in ``tests/board/fakes.py``) import the names
from here; :func:`run_tags` builds the identity tags of a run for all of them, so a fake run and a
real one cannot drift apart (``tests/core/test_schema.py`` holds them against each other).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from src.core.metrics import MetricSpec, specs_to_json

# ---- tags of every training run ----------------------------------------------------------
METHOD = "method"  # method name; BASELINE for the fp32 model
MODEL = "model"  # registered model name
MODEL_FAMILY = "model_family"  # the family of that model (dyad for dyad_brand3, cnn for cnn_tiny)
DATA = "data"  # data source name
DATA_VARIANT = "data_variant"  # which data set of that source (battery: brand3); "" if one
DATA_FINGERPRINT = "data_fingerprint"  # the data's content identity (set once it is loaded)
TASK = "task"  # task family
SEED = "seed"
FOLD = "fold"  # "none" when the data has no folds
BASELINE_KEY = "baseline_key"  # hash of what defines the fp32 baseline
STEP_KEY = "step_key"  # hash of what, beside its own config, decides what a method computes
BASELINE_RUN_ID = "baseline_run_id"  # a method run's baseline
PRIMARY_METRIC = "primary_metric"  # the task's ranking metric
METRIC_SPECS = "metric_specs"  # JSON list of the task's MetricSpec
TORCH_VERSION = "torch_version"
ANALYSIS = "analysis"  # an analysis of a baseline (sensitivity), not a variant: never ranked
MOST_SENSITIVE = "sensitivity.most_sensitive"  # an analysis's worst layer and treatment
METHOD_SETTLED = "method.settled"  # JSON: the method config as settled on data (mixed: keep)
STEP_REUSED = "method.reused."  # + a chain step's label (1_prune): the run whose model it reused
ERROR = "error"  # why a run FAILED (or was KILLED)
ARTIFACT_BROKEN = "artifact.broken"  # a baseline whose model file does not load: skipped, why
CHECKPOINTS = "checkpoints"  # folder of the run's training checkpoints (last.ckpt)
RESUMED = "resumed"  # how many times the run was resumed from its checkpoint
RESUMED_FROM = "resumed.from"  # what the last interruption stopped (phase or error)
OUTPUT_DIRS = "output_dirs"  # where each attempt of the run wrote (a resumed run: several)
RESUME_REFUSED = "ResumeRefused"  # the error type of a resume that could not proceed
# Params that differ between invocations of one command (Hydra's dated output folder): where an
# attempt wrote, not what the run is, so they are not logged as params (tag OUTPUT_DIRS).
INVOCATION_PARAMS = ("paths.output_dir",)
JOB_KEY = "job_key"  # content hash of what decides a job's results (RunSpec.job_key)
JOINED = "joined."  # + a sweep's parent run id: an earlier identical run counted in that sweep
# Params that say where a job writes or how it is watched, not what it computes: outside the
# job key (a setting under one of these prefixes, or equal to one of these names).
NOT_JOB_IDENTITY = (
    "paths.",
    "logger.",
    "hydra.",
    "run_name",
    "rerun",
    "trainer.enable_progress_bar",
    "trainer.resume",
    "trainer.baseline_wait_s",
    "data.cache_dir",
    "data.cache_workers",
)
TIMING_KEY = "timing.key"  # a timing pass's settings, hashed: a rerun with the same ones skips
PROCESS = "process"  # host:pid running the run (src.tracking.liveness)
HEARTBEAT = "heartbeat"  # unix seconds of the running process's last beat
CLAIM_TOKEN = "claim.token"  # one try to take a claim (src.tracking.claims): a retried create
STOP_SIGNAL = "stop.signal"  # the signal that KILLED a run (SIGTERM, SIGINT)
STOP_PHASE = "stop.phase"  # what the run was doing then ("training dyad for 3 epoch(s)")
TRAIN_THREADS = "train.threads"  # torch threads while training
TRAIN_DEVICE = "train.device"  # where training ran (cpu, cuda:0) and in how many processes
SWEEP_ID = "sweep_id"  # the multirun a job (or its parent) belongs to
INTERVAL_METHOD = "interval_method"  # a method run's paired interval ("DeLong-t (df=9)")
PARENT_RUN_ID = "mlflow.parentRunId"
RUN_NAME = "mlflow.runName"
SOURCE_NAME = "mlflow.source.name"
GIT_COMMIT = "mlflow.source.git.commit"
IDENTITY_TAGS = (METHOD, MODEL, MODEL_FAMILY, DATA, DATA_VARIANT, TASK, SEED, FOLD)

# MLflow 3's UI opens an experiment without a kind in its GenAI view (traces, an assistant pane,
# the runs under "Evaluations"); marked for model training, the runs table opens.
EXPERIMENT_KIND = "mlflow.experimentKind"
MODEL_TRAINING = "custom_model_development"
DATASET_CONTEXT = "mlflow.data.context"  # an MLflow dataset input's role for the run

# ---- tags of a sweep's parent run --------------------------------------------------------
SWEEP_OVERRIDES = "sweep.overrides"
SWEEP_COMMAND = "sweep.command"
SWEEP_JOBS_FAILED = "sweep.jobs_failed"
SWEEP_JOBS_FINISHED = "sweep.jobs_finished"
SWEEP_JOB_PREFIX = "sweep.job."  # + the job's number: done | failed, set where the job ran
SEARCH_STUDY = "search.study"  # a search's Optuna study: a rerun of its command resumes it
SEARCH_RESUMED = "search.resumed"  # how many times a search's parent run was resumed
# The sweep callback hands its parent run to the jobs through these environment variables.
PARENT_ENV = "MLFLOW_PARENT_RUN_ID"
SWEEP_ENV = "SWEEP_ID"
SWEEP_ERROR_ENV = "COMPRESSLAB_SWEEP_ERROR"  # why the sweep has no parent run: its jobs refuse

# ---- how latency was measured (src.measure.environment writes them) -----------------------
LATENCY_THREADS = "latency.threads"
LATENCY_BATCH_SIZES = "latency.batch_sizes"
LATENCY_WARMUP = "latency.warmup"
LATENCY_ITERS = "latency.iters"
LATENCY_ROUNDS = "latency.rounds"
LATENCY_BLOCK_SECONDS = "latency.block_seconds"
LATENCY_CALLS = "latency.calls"  # rounds x timed calls per batch size, as measured
CPU_MODEL = "cpu_model"
CPU_ISA = "cpu_isa"
QUANTIZED_ENGINE = "quantized_engine"
# In display order, as the leaderboard's provenance lists them.
SETUP_TAGS = (
    LATENCY_THREADS,
    LATENCY_BATCH_SIZES,
    LATENCY_WARMUP,
    LATENCY_ITERS,
    LATENCY_ROUNDS,
    LATENCY_BLOCK_SECONDS,
    LATENCY_CALLS,
    CPU_MODEL,
    TORCH_VERSION,
    QUANTIZED_ENGINE,
)

# ---- tags of a timing pass (on its own run, and on every run it timed) ----------------------
TIMING_RUN_ID = "timing.run_id"  # on a timed run: the pass whose timing/* metrics it holds
TIMING_PROCESSES = "timing.processes"  # fresh processes that timed every model
TIMING_ROUNDS = "timing.rounds"  # rounds per process, each in a new random order
TIMING_THREADS = "timing.threads"  # torch / runtime intra-op threads in every process
TIMING_BATCH_SIZES = "timing.batch_sizes"  # batch sizes the pass timed (bsN: the largest)
TIMING_PREEMPTED = "timing.preempted_blocks"  # blocks whose CPU/wall showed preemption, of all
TIMING_SKIPPED = "timing.skipped"  # JSON: model -> why a runtime could not be timed

# ---- values -----------------------------------------------------------------------------
BASELINE = "baseline"  # METHOD of an fp32 baseline run
TIMING_KIND = "timing"  # ANALYSIS of a timing pass's run (src.timing): never ranked
EAGER = "eager"  # the reference runtime: the model itself in PyTorch (src.runtimes.eager)
RUNNING = "RUNNING"  # MLflow's status of an open run
STOPPED = ("KILLED", "FAILED")  # MLflow's statuses of a run that ended unfinished
NO_FOLD = "none"

# ---- artifacts --------------------------------------------------------------------------
# Where a run's files live in its artifact store; writers and readers (the pipeline, the search
# report, RunStore.read_table, the benchmarks) take the paths from here.
MODEL_ARTIFACT = "model/model.pt"  # the model file: weights + how to rebuild them
CHECKPOINT_DIR = "checkpoint"  # a baseline's last training state (last.ckpt)
CONFIG_ARTIFACT = "config/config.yaml"  # the resolved config
HYDRA_ARTIFACT = "config/.hydra"  # Hydra's own record of the job (its .hydra/ folder)
PLOTS_DIR = "plots"  # figures: a sensitivity heat map, a search's front
TABLES_DIR = "tables"  # CSV tables: tables/<name>.csv (table_artifact)
# tables/paired_units.csv of a method run: unit, label, baseline, variant (the same test units
# scored, or judged right/wrong, by both models in one process), recombined by the leaderboard.
PAIRED_TABLE = "paired_units"
# tables/units.csv of every run: unit, label, value (score, or 1/0 right/wrong) per test unit; a
# method run pairs its variant with its baseline's logged units instead of scoring it again.
UNITS_TABLE = "units"
# The inputs every run was timed on (a dict of tensors: {"x": batch of the largest size}), so a
# timing pass in fresh processes (src.timing) times the same inputs without loading the data.
TIMING_INPUTS = "timing/inputs.pt"
# A timing pass's own run (kind "timing", under the sweep's parent): tables/timing_blocks.csv
# (every timed block of every process) and tables/timing_speedups.csv (the estimates).
TIMING_BLOCKS = "timing_blocks"
TIMING_SPEEDUPS = "timing_speedups"
TIMING_FACTS = "timing_processes"  # per process: pid, affinity, load, CPU MHz, threads


def runtime_paired_table(runtime: str) -> str:
    """``paired_units_onnxruntime``: the paired table of the variant run in ``runtime`` against
    the fp32 baseline in eager (a method run logs one per deployment runtime)."""
    return f"{PAIRED_TABLE}_{runtime}"


def table_artifact(name: str) -> str:
    """The artifact path of table ``name``: ``tables/<name>.csv``."""
    return f"{TABLES_DIR}/{name}.csv"


# ---- metric names -----------------------------------------------------------------------
TEST = "test/"
TUNING = "tuning/"  # figures on the tuning split (vehicles / validation images): what may select
TUNING_LOSS = "tuning/loss"  # the task's scoring loss on the tuning split (lower is better)
# A smooth separation of the tuning split's classes that does not saturate where its AUROC does
# (soft AUROC of the vehicles; mean probability of the true class of the images): on the
# primary metric's scale, higher is better. What a search's accuracy goal is judged on.
TUNING_SEPARATION = "tuning/separation"
# A variant's label-free distance from its baseline's answers on the tuning split, 0 for the
# baseline itself (the median shift of a vehicle's log score against its model's median; the
# mean KL of the images' outputs): what a search minimises.
TUNING_SHIFT = "tuning/fidelity_shift"
TUNING_RANK_CHANGE = "tuning/rank_change"  # 1 - Spearman of the tuning vehicles' scores
DELTA = "delta/"  # delta/<name>: test/<name> minus the baseline's, in the same process
REFERENCE = "baseline/"  # baseline/<metric>: the baseline's own figure, logged on a method run
CHAIN = "chain/"  # chain/<i>_<step>/<metric>: a chain's intermediate model
SIZE = "size/"
LATENCY = "latency/"
QUANT = "quant/"
THROUGHPUT_AREA = "throughput/"
FIDELITY = "fidelity/"  # fidelity/<name>: does a variant answer like its baseline (below)
VS_BASELINE = "vs_baseline/"  # vs_baseline/<metric>: a board's ratio to the baseline's figure
SIZE_MB = "size/mb"
SIZE_MB_GZIP = "size/mb_gzip"
SIZE_MB_SPARSE = "size/mb_sparse"
SIZE_PARAMS = "size/params"
SIZE_NONZERO = "size/nonzero"
SIZE_RATIO = "size/ratio"
SIZE_ONNX_MB = "size/onnx_mb"  # the ONNX file ONNX Runtime runs (int8 variants: ORT's int8 form)
RUNTIME_FILE_MB = "file_mb"  # runtime/<name>/file_mb: the file any runtime ships, in MB
SPEEDUP = "latency/speedup"
SPEEDUP_BS1 = "latency/speedup_bs1"
SPEEDUP_BSN = "latency/speedup_bsN"
TIMING = "timing/"  # timing/<runtime>/speedup_bs1 ...: a timing pass over fresh processes
RUNTIME = "runtime/"  # runtime/<name>/max_abs_diff, .../parity, .../test/<metric>: parity
INT8_FRACTION = "quant/int8_fraction"
FIT_SECONDS = "time/fit_s"
EVAL_SECONDS = "time/eval_s"
TRAIN_THROUGHPUT = "throughput/train_samples_s"
# Areas a report aggregates; train/*, val/*, time/* stay in MLflow.
BOARD_AREAS = (
    TEST,
    DELTA,
    FIDELITY,
    SIZE,
    LATENCY,
    THROUGHPUT_AREA,
    QUANT,
    VS_BASELINE,
    RUNTIME,
    TIMING,
)
# Areas ``python -m src.train`` prints when a run ends.
SUMMARY_AREAS = (TEST, SIZE, LATENCY, DELTA, FIDELITY, QUANT)


CI_LOW, CI_HIGH = "_ci_low", "_ci_high"  # suffixes of an interval's ends

# ---- fidelity/<name>: does a variant answer like its baseline, unit by unit (label-free) ----
FIDELITY_FLIPS = "fidelity/flips"  # units whose decision flips, each model at its own threshold
FIDELITY_N_UNITS = "fidelity/n_units"  # the units those flips are counted on
FIDELITY_FLIP_RATE = "fidelity/flip_rate"  # flips / n_units
# The variant's scores at the baseline's threshold: how far its scores moved, not its threshold.
FIDELITY_FLIPS_AT_BASELINE = "fidelity/flips_at_baseline_threshold"
FIDELITY_KENDALL = "fidelity/kendall_tau"  # Kendall tau-b of the two models' unit scores
FIDELITY_SPEARMAN = "fidelity/spearman"
FIDELITY_MARGIN_SHIFT = "fidelity/margin_shift_max"  # max |log(s_v/thr_v) - log(s_b/thr_b)|
FIDELITY_MARGIN_MIN = "fidelity/margin_min_baseline"  # min |log(s_b/thr_b)| (off the threshold)
FIDELITY_SNIPPET_MEDIAN = "fidelity/snippet_change_median"  # of |e_v - e_b| / e_b per snippet
FIDELITY_SNIPPET_P99 = "fidelity/snippet_change_p99"
FIDELITY_MCNEMAR = "fidelity/mcnemar_p"  # exact McNemar on the labelled test units' correctness
FIDELITY_AGREEMENT = "fidelity/agreement"  # share of images given the same class
FIDELITY_KL = "fidelity/kl"  # mean KL(baseline || variant) of the output distributions
# Tables a task's fidelity reads, logged with every run (a reused baseline reads them back).
SNIPPET_ERRORS_TABLE = "snippet_errors"  # row, car, error: every scored snippet
IMAGE_OUTPUTS_TABLE = "image_outputs"  # unit, pred, logp_<class>...: every test image
TUNING_OUTPUTS_TABLE = "tuning_outputs"  # the same of every validation image
VEHICLE_SCORES_TABLE = "vehicle_scores"  # car, label, role, robust_score, ...: every vehicle


def flips_bound(flips: str) -> str:
    """``fidelity/flips`` -> ``fidelity/flips_ci_high``: the one-sided 97.5 % Clopper-Pearson
    bound of the share of units that flip (``flips / n_units``), logged beside the count."""
    return interval(flips)[1]


def interval(name: str) -> tuple[str, str]:
    """``delta/auroc`` -> (``delta/auroc_ci_low``, ``delta/auroc_ci_high``): the names under
    which the interval of figure ``name`` is logged (and read)."""
    return f"{name}{CI_LOW}", f"{name}{CI_HIGH}"


# Paired statistics of a method run, beside delta/<m>_ci_low/_ci_high (Task.paired):
# p: two-sided superiority p-value of no difference (DeLong, exact McNemar);
# p_ni: one-sided non-inferiority p-value at the metric's margin (nan when no pair changed);
# pairs_worse / pairs_better / pairs_total: cross-class pairs (auroc; a tie change counts 1/2)
# or units (accuracy) the variant made worse / better, and all compared; units_moved: units in
# at least one changed pair. delta = (pairs_better - pairs_worse) / pairs_total on one run.
PAIRED_STATS = ("p", "p_ni", "pairs_worse", "pairs_better", "pairs_total", "units_moved")


def paired_metric(delta: str, key: str) -> str:
    """``(delta/auroc, p_ni)`` -> ``delta/auroc_p_ni``: a paired statistic of ``delta``.

    Raises:
        ValueError: ``key`` is not one of :data:`PAIRED_STATS`.
    """
    if key not in PAIRED_STATS:
        raise ValueError(f"paired statistic {key!r} is not one of {PAIRED_STATS}")
    return f"{delta}_{key}"


def tuning_of(metric: str) -> str:
    """``test/auroc`` -> ``tuning/auroc``: the same figure on the tuning split."""
    return TUNING + (metric.partition("/")[2] or metric)


def latency_p50(batch: int) -> str:
    """``latency/ms_p50_bs<batch>``: median milliseconds per call at that batch size."""
    return f"latency/ms_p50_bs{batch}"


def latency_p90(batch: int) -> str:
    return f"latency/ms_p90_bs{batch}"


THROUGHPUT = "throughput/samples_s_bs"


def throughput(batch: int) -> str:
    """``throughput/samples_s_bs<batch>``: samples per second at that batch size."""
    return f"{THROUGHPUT}{batch}"


LATENCY_BS1 = latency_p50(1)


def runtime_metric(runtime: str, key: str) -> str:
    """``latency/ms_p50_bs1`` -> ``latency/onnxruntime/ms_p50_bs1``: a latency figure of the
    variant as ``runtime`` runs it (``throughput/...`` likewise)."""
    area, _, rest = key.partition("/")
    return f"{area}/{runtime}/{rest}"


def runtime_speedup(runtime: str) -> str:
    """``latency/<runtime>/speedup``: + ``_bs1`` / ``_bsN`` (and ``_ci_low``/``_ci_high``), the
    variant in ``runtime`` against the fp32 model in eager."""
    return f"latency/{runtime}/speedup"


def runtime_vs_fp32(runtime: str) -> str:
    """``latency/<runtime>/vs_fp32``: + ``_bs1`` / ``_bsN``, the variant against the fp32 model
    in the same runtime."""
    return f"latency/{runtime}/vs_fp32"


def runtime_vs_fp32_best(runtime: str) -> str:
    """``latency/<runtime>/vs_fp32_best``: + ``_bs1`` / ``_bsN``, the variant against the fp32
    model in the fp32 model's fastest runtime at that batch size (a timing pass's figure)."""
    return f"latency/{runtime}/vs_fp32_best"


def timing_metric(runtime: str, name: str) -> str:
    """``timing/<runtime>/<name>``: a timing pass's figure of the variant in ``runtime``:
    ``speedup_bs1`` / ``_bsN`` (against the fp32 model in eager, with ``_ci_low``/``_ci_high``),
    ``vs_fp32_*`` (against the fp32 model in ``runtime``), ``sd_between_*`` / ``sd_within_*``
    (of the log speedup: between processes, and round to round within one)."""
    return f"{TIMING}{runtime}/{name}"


def runtime_check(runtime: str, name: str) -> str:
    """``runtime/<runtime>/<name>``: parity figures (``max_abs_diff``, ``parity``,
    ``test/auroc``, ``int8_ops``)."""
    return f"{RUNTIME}{runtime}/{name}"


def runtime_tag(runtime: str, name: str) -> str:
    """``runtime.<runtime>.<name>`` tags: ``form`` (how it ran), ``skipped`` (why not)."""
    return f"runtime.{runtime}.{name}"


def delta_of(metric: str) -> str:
    """``test/auroc`` -> ``delta/auroc``: where a method run logs its change of ``metric``."""
    return DELTA + (metric.partition("/")[2] or metric)


@dataclass(frozen=True)
class RunIdentity:
    """What a training run is: the leaderboard's filters and row identity.

    Attributes:
        method: Method name (``baseline`` for the fp32 model).
        model: Registered model name.
        data: Data source name.
        data_variant: Which data set of that source (``brand3``); ``""`` when there is one.
        task: Task family.
        seed: Training seed.
        fold: Cross-validation fold, ``"none"`` without folds.
        model_family: The model's family (``dyad``, ``cnn``): what ``model=dyad`` filters on.
    """

    method: str
    model: str
    data: str
    data_variant: str
    task: str
    seed: int
    fold: str = NO_FOLD
    model_family: str = ""


def run_tags(
    identity: RunIdentity,
    *,
    primary_metric: str,
    metric_specs: Iterable[MetricSpec],
    baseline_key: str,
    baseline_run_id: str | None = None,
    parent_run_id: str | None = None,
    sweep_id: str | None = None,
    extra: Mapping[str, object] | None = None,
) -> dict[str, str]:
    """The tags of one training run (string values; ``None`` ones left out).

    Args:
        identity: The run's identity tags.
        primary_metric: Its task's ranking metric.
        metric_specs: Its task's metric specs (direction, format, headline).
        baseline_key: Hash of what defines its fp32 baseline.
        baseline_run_id: A method run's baseline.
        parent_run_id: The sweep's parent run, for a sweep job.
        sweep_id: The sweep's id, for a sweep job.
        extra: Further tags (the data's own, e.g. ``brand``), never overriding the above.
    """
    tags = {key: str(value) for key, value in (extra or {}).items()}
    tags.update({key: str(getattr(identity, key)) for key in IDENTITY_TAGS})
    tags.update(
        {
            PRIMARY_METRIC: primary_metric,
            METRIC_SPECS: specs_to_json(metric_specs),
            BASELINE_KEY: baseline_key,
        }
    )
    optional = {BASELINE_RUN_ID: baseline_run_id, PARENT_RUN_ID: parent_run_id, SWEEP_ID: sweep_id}
    tags.update({key: str(value) for key, value in optional.items() if value})
    return tags


def flatten_params(tree: Mapping, prefix: str = "") -> dict:
    """``{a: {b: 1}}`` -> ``{"a.b": 1}``: the param names a run logs for its config."""
    flat = {}
    for key, value in tree.items():
        if isinstance(value, Mapping):
            flat.update(flatten_params(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat
