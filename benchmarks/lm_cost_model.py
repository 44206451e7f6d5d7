"""Device-time cost model for the small LM's table (issue 30): what collecting a table
design costs on an H100 and on an H200, per shape and in total, before any lease.

    python benchmarks/lm_cost_model.py --design old --gpu both     # revision 1's 720 configs
    python benchmarks/lm_cost_model.py --design new --gpu both     # the task's table: <= 8 min
    python benchmarks/lm_cost_model.py --design my.json --fit-minutes 8   # solve tokens/epoch
    python benchmarks/lm_cost_model.py --validate                  # against the 109 H100 curves

Every time here is the GPU's wall time (lease seconds); with P packed workers a worker's
recorded `device_seconds` is P times its share. One epoch of one curve costs

    epoch(shape) = a[gpu, mode] * (sigma * (steps + eval batches) + FLOPs / R)

- FLOPs per epoch, from the task's code: training tokens x (6N + 6 L T d + 6 d V), evaluation
  tokens x a third of that (Kaplan et al. 2020, Table 1: a forward pass is 2N + 2 L T d per
  token; backward twice that). N = L (12 d^2 + 13 d), the blocks' parameters; d V is the
  tied output head; T the context, V the vocabulary.
- sigma and R (the shape law): fitted on the two shapes of the 109 curves recorded on an H100
  with 4 packed workers (results/tables/). FLOPs alone cannot explain them: scaled from the
  H200's measured anchor they give width 256 its recorded time but width 128 0.39x of it
  (--validate), as a model this small is launch-bound (benchmarks/fused_step_ops.py). So a
  cost per step (training step or evaluation batch), whatever the shape, is the second
  term; it is checked out of sample at the anchor shape (--validate).
- a[gpu, mode] puts the law on each GPU and collection mode through the anchor shape
  (width 256, depth 4, batch 64), where it was measured: the H200 in every mode
  (results/gpu-h200/fused_throughput.json), the H100 one at a time (results/foundation/). H100
  modes never measured are derived from the H200's ratios between modes (printed as such).
- Fixed costs, measured on the H100 table: each worker's first epoch in a chunk (CUDA
  start-up, kernel selection), and per curve what a chunk's wall time holds beyond its
  epochs (spawn, imports, model set-up, progress and table writes, the tail of a chunk).
"""

from __future__ import annotations

import argparse
import json
import math
import re
import statistics
import sys
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, replace
from functools import lru_cache
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from suite.errors import SuiteError  # noqa: E402
from suite.tables import grid_configs, read_table  # noqa: E402
from suite.tabulate import TabulateSpec  # noqa: E402
from tasks.small_lm import SCALES, SmallLM  # noqa: E402
from tasks.small_lm.training import load_corpus  # noqa: E402

RESULTS = ROOT / "results"
THROUGHPUT = RESULTS / "gpu-h200" / "fused_throughput.json"  # H200, every mode, anchor shape
FOUNDATION = RESULTS / "foundation" / "small_lm.json"  # H100, the default trained solo
TABLE = RESULTS / "tables" / "small_lm-r1.parquet"  # H100, 109 curves, 4 packed workers
PROGRESS = RESULTS / "tables" / "small_lm-r1.rows.jsonl"  # the same curves in recorded order
COLLECTION_LOG = RESULTS / "tables" / "collection.log"  # curves recorded after each chunk
# The two chunks' wall times on the H100 (s): issue 4's closing note (`issues show 4`, "two
# chunks of 170 s and 200 s"), rounded there to 10 s. The only lease-level H100 timing.
CHUNK_WALL_S = (170.0, 200.0)
# A cross-check, never a prediction's input: issue 9's text (`issues show 9`), measured on a
# lent H100 before this code existed: the anchor shape at 4.4 M tokens/s with 4 processes.
ISSUE9_H100_PACK4 = 4.4e6
EVAL_BATCH = 256  # windows per evaluation batch: `tasks.small_lm.training._Run.evaluate`
GPUS = ("h100", "h200")
# benchmarks/lm_table_lease.sh's default call: 480 s in chunks of at most 240 s, each chunk
# restarting its workers (a first epoch's warm-up each; their start-up and a chunk's tail are
# in the per-curve overhead fitted on revision 1's two chunks)
LEASE_CHUNKS = 2
NEW_BUDGET_MIN = 8.0  # issue 30: the whole collection in at most 8 device-minutes


@dataclass(frozen=True)
class Facts:
    """What the task's code fixes: context, vocabulary, full-pass steps, evaluation windows."""

    context: int
    vocab: int
    full_steps: Mapping[int, int]  # batch size -> steps of one pass (revision 1's epoch)
    eval_windows: Mapping[str, int]  # split -> windows `evaluate` reads

    def eval_tokens(self, *splits: str) -> int:
        return sum(self.eval_windows[s] for s in splits) * self.context


@lru_cache(maxsize=1)
def task_facts() -> Facts:
    task, corpus = SmallLM("full"), load_corpus("full")
    ctx = task.context
    windows = {name: len(range(0, len(ids) - ctx - 1, ctx))  # as `_Run.evaluate` cuts them
               for name, ids in (("val", corpus.val), ("test", corpus.test))}
    # revision 1's epoch: every whole window of one pass at the worst-case offset
    steps = {b: max(1, (len(corpus.train) - 1 - ctx) // ctx // b) for b in (32, 64, 128)}
    return Facts(ctx, len(corpus.vocab), steps, windows)


def block_params(width: int) -> int:
    """Parameters of one transformer block (qkv, proj, 4x MLP, two LayerNorms)."""
    return 12 * width * width + 13 * width


def flops_per_token(width: int, depth: int, facts: Facts, *, train: bool) -> float:
    """Kaplan et al.'s forward cost per token, 2N + 2 L T d, plus the output head's 2 d V;
    training (forward and backward) is three times it."""
    forward = (2 * depth * block_params(width) + 2 * depth * facts.context * width
               + 2 * width * facts.vocab)
    return 3 * forward if train else forward


@dataclass(frozen=True)
class Shape:
    width: int
    depth: int
    batch_size: int
    configs: int = 1

    @property
    def label(self) -> str:
        return f"{self.width}x{self.depth} b{self.batch_size}"


@dataclass(frozen=True)
class Mode:
    """How the curves share the GPU: `solo` (one at a time), `pack` (n processes) or `fused`
    (arrays of n members)."""

    kind: str
    n: int = 1

    @classmethod
    def parse(cls, text: str) -> Mode:
        match = re.fullmatch(r"(solo|pack|fused)(\d*)", text)
        if not match or (match[1] == "solo") != (match[2] == "") or match[2] == "0":
            raise SuiteError(f"mode {text!r}: solo, packN or fusedK (e.g. pack4, fused16)")
        mode = cls(match[1], int(match[2] or 1))
        return cls("solo") if mode == cls("pack", 1) else mode

    @property
    def label(self) -> str:
        return "solo" if self.kind == "solo" else f"{self.kind}{self.n}"

    @property
    def processes(self) -> int:
        return self.n if self.kind == "pack" else 1


@dataclass(frozen=True)
class Design:
    """A table design: shapes with their configuration counts, seeds, epochs, what an epoch
    reads, and how it is collected."""

    name: str
    shapes: tuple[Shape, ...]
    seeds: int
    epochs: int
    train_tokens: int | None  # per epoch; None: one pass (SmallLM.steps_per_epoch)
    eval_tokens: int  # per epoch: validation, plus test where the table records it
    mode: Mode
    chunks: int = 1

    @property
    def curves(self) -> int:
        return sum(s.configs for s in self.shapes) * self.seeds


@dataclass(frozen=True)
class Work:
    """One epoch of one curve: its steps, evaluation batches, tokens and FLOPs."""

    steps: int
    eval_batches: int
    train_tokens: int
    flops: float


def epoch_work(shape: Shape, design: Design, facts: Facts) -> Work:
    per_step = shape.batch_size * facts.context
    if design.train_tokens is None:
        steps = facts.full_steps[shape.batch_size]
    else:  # an epoch as a fixed number of training tokens: whole steps of them
        steps = max(1, design.train_tokens // per_step)
    tokens = steps * per_step
    batches = math.ceil(design.eval_tokens / (EVAL_BATCH * facts.context))
    flops = (tokens * flops_per_token(shape.width, shape.depth, facts, train=True)
             + design.eval_tokens * flops_per_token(shape.width, shape.depth, facts,
                                                    train=False))
    return Work(steps, batches, tokens, flops)


@dataclass(frozen=True)
class Law:
    """GPU seconds of an epoch on the H100 with 4 packed workers: sigma per step (training
    step or evaluation batch) plus the FLOPs at `rate`."""

    sigma: float
    rate: float

    def seconds(self, work: Work) -> float:
        return self.sigma * (work.steps + work.eval_batches) + work.flops / self.rate

    def flops_share(self, work: Work) -> float:
        return work.flops / self.rate / self.seconds(work)


# --- what was measured -------------------------------------------------------------------

@dataclass(frozen=True)
class Curve:
    """One recorded curve: its shape, each epoch's worker seconds, and whether it was among
    the first curves of its chunk (one per worker: its first epoch warms the worker up)."""

    shape: Shape
    seconds: tuple[float, ...]
    chunk: int
    starts_worker: bool


@dataclass(frozen=True)
class Recorded:
    workers: int
    curves: tuple[Curve, ...]


def chunk_sizes(log: Path = COLLECTION_LOG) -> list[int]:
    """Curves each chunk of the small LM's table recorded, from the collection log."""
    totals = [int(m[1]) for m in re.finditer(r"small_lm\.parquet: (\d+)/1440 curves",
                                              log.read_text())]
    return [b - a for a, b in zip([0, *totals], totals, strict=False)]


@lru_cache(maxsize=1)
def read_recorded() -> Recorded:
    """The H100 table's curves in the order they were recorded (the progress file's)."""
    table = read_table(TABLE)
    workers = int(table.meta["collection"]["workers"])
    lines = [json.loads(line) for line in PROGRESS.read_text().splitlines() if line.strip()]
    sizes = chunk_sizes()
    if sum(sizes) != len(lines):
        raise SuiteError(f"{COLLECTION_LOG} counts {sum(sizes)} curves, {PROGRESS} holds "
                         f"{len(lines)}")
    chunks = [c for c, size in enumerate(sizes) for _ in range(size)]
    curves = []
    for i, (line, chunk) in enumerate(zip(lines, chunks, strict=True)):
        config = table.configs[line["config_index"]]
        first = i - sum(sizes[:chunk]) < workers
        curves.append(Curve(Shape(config["width"], config["depth"], config["batch_size"]),
                            tuple(e["device_seconds"] for e in line["epochs"]), chunk, first))
    return Recorded(workers, tuple(curves))


def later_median(seconds: tuple[float, ...]) -> float:
    return statistics.median(seconds[1:])  # epoch 1 holds the warm-up


@dataclass(frozen=True)
class TableFit:
    """What the 109 H100 curves give the model."""

    law: Law
    medians: Mapping[Shape, float]  # worker seconds per epoch (epochs 2..), per shape
    warmup: float  # a worker's first epoch in a chunk beyond its later ones (worker-s)
    per_curve: float  # lease seconds per curve that no epoch holds
    design: Design  # how they were collected (one pass, validation only, packed)


def recorded_design(rec: Recorded, facts: Facts) -> Design:
    counts = Counter(c.shape for c in rec.curves)
    shapes = tuple(replace(s, configs=n) for s, n in sorted(counts.items(), key=str))
    return Design("recorded", shapes, 1, len(rec.curves[0].seconds), None,
                  facts.eval_tokens("val"), Mode("pack", rec.workers),
                  len({c.chunk for c in rec.curves}))


@lru_cache(maxsize=1)
def fit_table() -> TableFit:
    """sigma and R by least squares on the shapes' median GPU shares of an epoch (two shapes,
    two unknowns: an exact fit); the warm-up and per-curve costs as recorded."""
    rec, facts = read_recorded(), task_facts()
    design = recorded_design(rec, facts)
    shapes = [replace(s, configs=1) for s in design.shapes]
    medians = {s: statistics.median(x for c in rec.curves if c.shape == s
                                    for x in c.seconds[1:]) for s in shapes}
    works = [epoch_work(s, design, facts) for s in shapes]
    a = np.array([[w.steps + w.eval_batches, w.flops] for w in works])
    y = np.array(list(medians.values())) / rec.workers
    sigma, inverse_rate = np.linalg.lstsq(a, y, rcond=None)[0]
    warmup = statistics.mean(c.seconds[0] - later_median(c.seconds)
                             for c in rec.curves if c.starts_worker)
    shares = sum(sum(c.seconds) for c in rec.curves) / rec.workers
    per_curve = (sum(CHUNK_WALL_S) - shares) / len(rec.curves)
    return TableFit(Law(float(sigma), float(1 / inverse_rate)), medians, warmup, per_curve,
                    design)


# --- the model ---------------------------------------------------------------------------

@dataclass(frozen=True)
class Anchor:
    seconds: float  # GPU seconds of one epoch of one curve at the anchor shape
    source: str


@dataclass(frozen=True)
class Model:
    facts: Facts
    law: Law
    anchor: Shape
    anchors: Mapping[tuple[str, str], Anchor]  # (gpu, mode label) -> the anchor's epoch
    warmup: Mapping[str, float]  # "pack" (P workers) / "one" (process) -> lease s per chunk
    per_curve: float

    def anchor_for(self, gpu: str, mode: Mode) -> Anchor:
        try:
            return self.anchors[gpu, mode.label]
        except KeyError:
            known = sorted({m for g, m in self.anchors if g == gpu})
            raise SuiteError(f"no measurement for mode {mode.label} on the {gpu.upper()}; "
                             f"modes: {', '.join(known)}") from None

    def epoch_seconds(self, shape: Shape, design: Design, gpu: str) -> float:
        """The law, scaled to the GPU and mode by the anchor shape's measured epoch (as it
        was measured: one pass, validation only)."""
        measured = replace(design, train_tokens=None, eval_tokens=self.facts.eval_tokens("val"))
        scale = (self.anchor_for(gpu, design.mode).seconds
                 / self.law.seconds(epoch_work(self.anchor, measured, self.facts)))
        return scale * self.law.seconds(epoch_work(shape, design, self.facts))

    def fixed_seconds(self, design: Design) -> float:
        """Warm-up: each chunk starts its processes once (packed workers warm up together)."""
        return design.chunks * self.warmup["pack" if design.mode.kind == "pack" else "one"]


def h200_anchors(record: Mapping, work: int) -> dict[str, Anchor]:
    """Every mode measured on the H200 at the anchor shape; rates are training tokens per
    second of epochs that include their validation pass (benchmarks/fused_throughput.py)."""
    source = "measured (results/gpu-h200/fused_throughput.json)"
    out = {"solo": Anchor(work / record["one_at_a_time"], source)}
    out |= {f"pack{p}": Anchor(work / rate, source)
            for p, rate in record["packing"].items() if p != "1"}
    out |= {f"fused{row['k']}": Anchor(work / row["fused"], source)
            for row in record["fused"] if "fused" in row}
    return out


def h100_anchors(h200: Mapping[str, Anchor], solo: float, pack4: float) -> dict[str, Anchor]:
    """Solo measured, pack4 from the table's law; other modes derived from the H200's ratio
    to the nearest measured mode (packing to pack4, fused arrays, one process, to solo)."""
    out = {"solo": Anchor(solo, "measured (results/foundation/small_lm.json)"),
           "pack4": Anchor(pack4, "the law fitted on the 109 curves (results/tables/)")}
    for label, anchor in h200.items():
        ref = "pack4" if label.startswith("pack") else "solo"
        out.setdefault(label, Anchor(anchor.seconds * out[ref].seconds / h200[ref].seconds,
                                     f"derived: the H200's {label}/{ref} x the H100's {ref}"))
    return out


def foundation_solo() -> tuple[Shape, float, float]:
    """The H100's solo run of the default: shape, later epochs' median, first epoch's extra."""
    run = json.loads(FOUNDATION.read_text())["runs"]["default"]
    config, seconds = run["config"], tuple(e["device_seconds"] for e in run["curve"])
    shape = Shape(config["width"], config["depth"], config["batch_size"])
    return shape, later_median(seconds), seconds[0] - later_median(seconds)


@lru_cache(maxsize=1)
def build_model() -> Model:
    facts, fit = task_facts(), fit_table()
    record = json.loads(THROUGHPUT.read_text())["tasks"]["small_lm"]
    anchor = Shape(**record["shape"])
    solo_shape, solo, solo_warmup = foundation_solo()
    if solo_shape != anchor:
        raise SuiteError(f"{FOUNDATION} ran {solo_shape.label}, not the anchor {anchor.label}")
    work = epoch_work(anchor, replace(fit.design, mode=Mode("solo")), facts)
    h200 = h200_anchors(record, work.train_tokens)
    h100 = h100_anchors(h200, solo, fit.law.seconds(work))
    anchors = {("h200", m): a for m, a in h200.items()} | {("h100", m): a for m, a in h100.items()}
    # Warm-up measured on the H100 only; the H200 is charged the same.
    return Model(facts, fit.law, anchor, anchors, {"pack": fit.warmup, "one": solo_warmup},
                 fit.per_curve)


# --- designs -----------------------------------------------------------------------------

def _shapes(configs) -> tuple[Shape, ...]:
    counts = Counter((c["width"], c["depth"], c["batch_size"]) for c in configs)
    return tuple(Shape(w, d, b, n) for (w, d, b), n in sorted(counts.items()))


def old_design(facts: Facts) -> Design:
    """Revision 1's grid (720 configurations, as the 109 curves' table records it), an
    epoch one pass over the training split, collected as `suite tabulate` does by default
    (its seeds, test columns) with the 109 curves' 4 packed workers."""
    return Design("old", _shapes(read_table(TABLE).configs), TabulateSpec.seeds,
                  SmallLM.info.fidelity.max_epochs, None, facts.eval_tokens("val", "test"),
                  Mode("pack", 4))


def new_design(model: Model, minutes: float | None = None) -> Design:
    """The task's table as it trains now (`SmallLM.table_grid`, an epoch of the full
    scale's `epoch_chars`), 4 packed workers; with `minutes`, training tokens per epoch
    instead the most that fit `minutes` on the H100 and on the H200 alike (a lease gives
    either), which is how `epoch_chars` was chosen (8 minutes)."""
    space, fixed = SmallLM().table_grid()
    configs = [{**fixed, **c} for c in grid_configs(space)]
    design = Design("new", _shapes(configs), TabulateSpec.seeds,
                    SmallLM.info.fidelity.max_epochs, SCALES["full"].epoch_chars,
                    model.facts.eval_tokens("val", "test"), Mode("pack", 4),
                    chunks=LEASE_CHUNKS)
    return design if minutes is None else fit_tokens(model, design, minutes)


def load_design(path: Path, facts: Facts) -> Design:
    """A design from JSON: {"name", "shapes": [{"width", "depth", "batch_size", "configs"}],
    "seeds", "epochs", "train_tokens" (null: one pass), "eval_tokens" (default: validation
    and test), "mode" ("solo", "pack4", "fused16", ...), "chunks" (default 1)}."""
    try:
        raw = json.loads(Path(path).read_text())
        return Design(str(raw.get("name", Path(path).stem)),
                      tuple(Shape(**s) for s in raw["shapes"]), int(raw["seeds"]),
                      int(raw["epochs"]), _optional_int(raw.get("train_tokens")),
                      int(raw.get("eval_tokens", facts.eval_tokens("val", "test"))),
                      Mode.parse(raw["mode"]), int(raw.get("chunks", 1)))
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise SuiteError(f"design {path}: {type(exc).__name__}: {exc}") from None


def _optional_int(value) -> int | None:
    return None if value is None else int(value)


# --- predictions -------------------------------------------------------------------------

@dataclass(frozen=True)
class Prediction:
    design: Design
    rows: tuple[tuple[Shape, int, Mapping[str, float]], ...]  # shape, training tokens, gpu->s
    fixed: Mapping[str, float]
    total: Mapping[str, float]


def predict(model: Model, design: Design, gpus=GPUS) -> Prediction:
    """Per shape: its curves' epochs plus their per-curve cost; then the chunks' warm-up."""
    rows = []
    for shape in design.shapes:
        curves, work = shape.configs * design.seeds, epoch_work(shape, design, model.facts)
        seconds = {g: curves * (design.epochs * model.epoch_seconds(shape, design, g)
                                + model.per_curve) for g in gpus}
        rows.append((shape, curves * design.epochs * work.train_tokens, seconds))
    fixed = {g: model.fixed_seconds(design) for g in gpus}
    total = {g: sum(r[2][g] for r in rows) + fixed[g] for g in gpus}
    return Prediction(design, tuple(rows), fixed, total)


def fit_tokens(model: Model, design: Design, minutes: float, gpus=GPUS) -> Design:
    """The most training tokens per epoch, in whole steps of every shape, that keep the
    design within `minutes` on each of `gpus` (the cost grows with the tokens)."""
    facts = model.facts
    unit = math.lcm(*(s.batch_size * facts.context for s in design.shapes))
    ceiling = 4 * max(n * b for b, n in facts.full_steps.items()) * facts.context  # 4 passes
    best = None
    for tokens in range(unit, ceiling + 1, unit):
        trial = replace(design, train_tokens=tokens)
        if max(predict(model, trial, gpus).total.values()) > 60 * minutes:
            break
        best = trial
    if best is None:
        cost = max(predict(model, replace(design, train_tokens=unit), gpus).total.values())
        raise SuiteError(f"design {design.name}: one step per epoch already costs "
                         f"{cost / 60:.1f} device-minutes, over {minutes:g}")
    return best


# --- output ------------------------------------------------------------------------------

def describe(model: Model, design: Design) -> str:
    ctx, facts = model.facts.context, model.facts
    steps = sorted({(s.batch_size, epoch_work(s, design, facts).steps) for s in design.shapes})
    epoch = ", ".join(f"{n} steps x {b} x {ctx} = {n * b * ctx:,} tokens at batch {b}"
                      for b, n in steps)
    batches = math.ceil(design.eval_tokens / (EVAL_BATCH * ctx))
    configs = sum(s.configs for s in design.shapes)
    chunks = f"{design.chunks} chunk{'s' * (design.chunks > 1)}"
    return (f"design {design.name}: {configs} configurations x {design.seeds} seeds x "
            f"{design.epochs} epochs = {design.curves} curves in {len(design.shapes)} shapes, "
            f"collected {design.mode.label}, {chunks}\n"
            f"an epoch: {'one pass, ' if design.train_tokens is None else ''}{epoch}; "
            f"evaluation {design.eval_tokens:,} tokens ({batches} batches)")


def print_prediction(model: Model, p: Prediction) -> None:
    gpus = list(p.total)
    print(describe(model, p.design))
    print("| shape (width x depth, batch) | configs | training tokens | "
          + " | ".join(f"{g.upper()} device-s" for g in gpus) + " |")
    print("| --- | ---: | ---: |" + " ---: |" * len(gpus))
    for shape, tokens, seconds in p.rows:
        print(f"| {shape.label} | {shape.configs} | {tokens / 1e9:.3f} G | "
              + " | ".join(f"{seconds[g]:,.0f}" for g in gpus) + " |")
    print(f"| warm-up ({p.design.chunks} chunk start) | | | "
          + " | ".join(f"{p.fixed[g]:.1f}" for g in gpus) + " |")
    tokens = sum(r[1] for r in p.rows) / 1e9
    print(f"| **total, device-minutes** | {sum(s.configs for s in p.design.shapes)} | "
          f"{tokens:.2f} G | " + " | ".join(f"**{p.total[g] / 60:,.2f}**" for g in gpus) + " |")
    print(f"(= {' / '.join(f'{p.total[g] / 3600:.2f} h on the {g.upper()}' for g in gpus)})")
    for g in gpus:
        anchor = model.anchor_for(g, p.design.mode)
        print(f"{g.upper()} {p.design.mode.label}: anchor {model.anchor.label} at "
              f"{anchor.seconds:.3f} GPU-s per epoch, {anchor.source}")
    print(f"fixed costs (H100, results/tables/; the H200 charged the same): warm-up "
          f"{model.fixed_seconds(p.design) / p.design.chunks:.2f} s per chunk, "
          f"{model.per_curve:.3f} s per curve")


def flops_only(model: Model, shape: Shape, design: Design) -> float:
    """Issue 30's first guess: the H200's packed anchor scaled by FLOPs alone (GPU-s)."""
    anchor = model.anchor_for("h200", design.mode).seconds
    measured = replace(design, eval_tokens=model.facts.eval_tokens("val"))
    return anchor * (epoch_work(shape, design, model.facts).flops
                     / epoch_work(model.anchor, measured, model.facts).flops)


@dataclass(frozen=True)
class Check:
    """The model against the 109 H100 curves (worker seconds, as the table records them)."""

    shapes: tuple[tuple[Shape, int, float, float, float], ...]  # curves, recorded, model, FLOPs
    warmups: Mapping[int, float]  # chunk -> its workers' mean first-epoch extra
    curve_ratios: tuple[float, ...]  # per curve: predicted / recorded total
    chunk_walls: tuple[tuple[float, float], ...]  # (predicted, recorded) per chunk
    anchor: tuple[float, float, float]  # pack4 GPU-s per epoch: model, H200, issue 9's H100


def check(model: Model) -> Check:
    rec, fit = read_recorded(), fit_table()
    design, workers = fit.design, rec.workers
    shapes = tuple((s, s.configs, fit.medians[replace(s, configs=1)],
                    workers * model.epoch_seconds(s, design, "h100"),
                    workers * flops_only(model, s, design)) for s in design.shapes)
    share = {replace(s, configs=1): model.epoch_seconds(s, design, "h100") for s, *_ in shapes}
    ratios, walls = [], {}
    for c in rec.curves:
        gpu_s = len(c.seconds) * share[c.shape]  # its epochs' share of the GPU
        ratios.append((workers * gpu_s + fit.warmup * c.starts_worker) / sum(c.seconds))
        walls[c.chunk] = walls.get(c.chunk, model.warmup["pack"]) + gpu_s + model.per_curve
    warmups = {k: statistics.mean(c.seconds[0] - later_median(c.seconds) for c in rec.curves
                                  if c.chunk == k and c.starts_worker) for k in walls}
    tokens = epoch_work(model.anchor, design, model.facts).train_tokens
    anchor = (model.law.seconds(epoch_work(model.anchor, design, model.facts)),
              model.anchors["h200", "pack4"].seconds, tokens / ISSUE9_H100_PACK4)
    return Check(shapes, warmups, tuple(ratios),
                 tuple(zip(walls.values(), CHUNK_WALL_S, strict=True)), anchor)


def print_check(model: Model, c: Check) -> None:
    law, n = model.law, len(c.curve_ratios)
    print(f"check: the {n} curves recorded on an H100 (4 packed workers, one pass, validation "
          f"only; results/tables/small_lm.*)")
    print(f"shape law fitted on them: sigma {law.sigma * 1e3:.2f} ms per step, R "
          f"{law.rate / 1e12:.0f} TFLOP/s; FLOPs are " + ", ".join(
              f"{law.flops_share(epoch_work(s, fit_table().design, model.facts)):.0%} of "
              f"{s.label}'s epoch" for s, *_ in c.shapes))
    print("| shape | curves | worker s/epoch recorded (median, epochs 2-27) | model | "
          "FLOPs only, from the H200 anchor |\n| --- | ---: | ---: | ---: | ---: |")
    for shape, curves, recorded, modelled, flops in c.shapes:
        print(f"| {shape.label} | {curves} | {recorded:.3f} | {modelled:.3f} "
              f"({modelled / recorded:.2f}x, fitted) | {flops:.3f} ({flops / recorded:.2f}x) |")
    print("first epoch of each worker's first curve in a chunk, beyond its later epochs: "
          + ", ".join(f"chunk {k + 1} +{v:.2f} s" for k, v in c.warmups.items())
          + f"; the model charges their mean, +{statistics.mean(c.warmups.values()):.2f} s")
    q = np.quantile(c.curve_ratios, [0, 0.5, 1])
    print(f"each curve's device-seconds, predicted / recorded: min {q[0]:.2f}, median "
          f"{q[1]:.2f}, max {q[2]:.2f} (the extremes: a chunk's first curves, warming up, and "
          f"its last, when fewer workers shared the GPU)")
    print("chunk wall time (lease s), predicted vs recorded (issue 4's note): " + ", ".join(
        f"chunk {k + 1} {p:.0f} vs {r:.0f}" for k, (p, r) in enumerate(c.chunk_walls)))
    model_s, h200, issue9 = c.anchor
    print(f"out of sample, the anchor {model.anchor.label} packed 4 ways: the law predicts "
          f"{model_s:.3f} GPU-s per epoch on the H100; measured {h200:.3f} on the H200 "
          f"({model_s / h200:.2f}x), {issue9:.3f} on an H100 before this code (issue 9's "
          f"4.4 M tokens/s; {model_s / issue9:.2f}x)")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--design", default="new", help="old, new or a design's JSON file")
    parser.add_argument("--gpu", choices=[*GPUS, "both"], default="both")
    parser.add_argument("--mode", help="collect it so instead: solo, packN, fusedK")
    parser.add_argument("--fit-minutes", type=float, metavar="M",
                        help="set training tokens per epoch to the most that fit M minutes")
    parser.add_argument("--fit-gpu", choices=[*GPUS, "both"], default="both",
                        help="the GPU whose minutes --fit-minutes counts (both: the costlier)")
    parser.add_argument("--validate", action="store_true",
                        help="check the model against the 109 recorded H100 curves")
    args = parser.parse_args(argv)
    try:
        model = build_model()
        if args.validate:
            print_check(model, check(model))
            return 0
        design = {"old": lambda: old_design(model.facts), "new": lambda: new_design(model)}.get(
            args.design, lambda: load_design(Path(args.design), model.facts))()
        if args.mode:
            design = replace(design, mode=Mode.parse(args.mode))
        if args.fit_minutes is not None:
            gpus = GPUS if args.fit_gpu == "both" else (args.fit_gpu,)
            design = fit_tokens(model, design, args.fit_minutes, gpus)
        print_prediction(model, predict(model, design, GPUS if args.gpu == "both" else
                                        (args.gpu,)))
    except SuiteError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
