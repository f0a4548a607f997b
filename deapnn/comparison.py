"""The tuned final comparison of the loss searches (``deapnn nlfs``, ``deapnn evomal``,
``deapnn compare``): does a found loss beat the baselines when *every* loss gets its own tuned
learning rate?

Neither paper tunes its baseline (Morgan & Hougen 2024 §4 and Raymond et al. 2023 §5 train
cross-entropy / MSE at the one learning rate of the search); a found loss that is ``k × CE``
then "wins" by being a learning-rate change (``docs/results.md``). The protocol here, for every
loss of the comparison (the baseline, the reference baselines and every found loss):

1. **tune** — train at every learning rate of the grid (multipliers of the configured learning
   rate, default ×{1/8, 1/4, 1/2, 1, 2, 4, 8}) with ``tune_seeds`` tuning seeds
   (:func:`tuning_seed`), scoring on the **validation** split only; the learning rate with the
   best mean validation metric is chosen (ties: the one nearest the configured learning rate);
2. **final** — train at the chosen and at the configured learning rate with ``seeds`` fresh
   final seeds (:func:`final_seed`, disjoint from the tuning seeds) and score on the **test**
   split: the tuned and the untuned result;
3. **paired** — per final seed, each loss minus the tuned baseline (seed ``s`` gives every loss
   the same initial network and batch order): mean ± std, wins/ties/losses, paired t-test and
   Wilcoxon signed-rank p-values (:func:`deapnn.paired.paired_stats`); the untuned pairs too
   (the protocol before tuning).

The method supplies the training: ``trainer(context, spec, lr, seed, split) -> {"metric": …}``,
a picklable module-level function that trains one network with the loss ``spec`` at learning
rate ``lr`` from ``seed`` (through :func:`deapnn.loss_training.train_with_loss`, with the
method's own recipe) and scores it on ``split`` (``"val"`` while tuning, ``"test"`` in the final
phase — the tuning phase never asks for the test split); on a classification test split it
also returns the per-class metrics, which each row summarises and pairs as ``"classes"``
(issue 25, :mod:`deapnn.comparison_classes`). Every training's result is stored in
the state given to ``checkpoint`` after each chunk, so a killed comparison resumes without
redoing them. Cost: ``len(grid) × tune_seeds + seeds`` trainings per loss (``+ seeds`` more when
the chosen learning rate is not the configured one), against ``seeds`` untuned.
"""
from __future__ import annotations

import hashlib
import json
import math
import statistics
from dataclasses import dataclass, field
from fractions import Fraction

from .config import (FLOAT32_MAX, Check, Config, ConfigError, parse_list, parse_seed_indices,
                     seed_indices, seed_list, setting)
from .paired import metric_score, paired_stats, paired_text, seed_summary, worst_score
from .progress import no_progress
from .runtime import derive_seed

DEFAULT_LR_GRID = (0.125, 0.25, 0.5, 1.0, 2.0, 4.0, 8.0)
DEFAULT_TUNE_SEEDS = 1


def _loss_names(value) -> bool:
    return isinstance(value, (list, tuple)) and all(isinstance(v, str) and v for v in value)


@dataclass
class TuningSettings(Config):
    """The tuned final comparison of a loss search (NLFS and EvoMAL run configurations derive
    from it; issue 16, ``docs/faithfulness.md``): every loss gets its learning rate from
    ``lr_grid`` (multipliers of the configured lr) chosen on the validation split with
    ``tune_seeds`` tuning seeds, then is trained on the final seeds and scored on test;
    ``baselines`` adds losses of the library; ``final_model`` trains the comparison on another
    network (the transfer check)."""
    final_model: str | None = setting(
        None, "network of the final comparison, e.g. cnn for losses found on the mlp "
              "(the transfer check), or your factory package.module:function [default: the "
              "search's model]", parse=str,
        metavar="NAME", group="final comparison")
    tune: bool = setting(True, "final comparison at the configured learning rate only (the "
                               "protocol before tuning) instead of the tuned comparison",
                         flag="--no-tune", group="final comparison")
    lr_grid: list = setting(
        factory=lambda: list(DEFAULT_LR_GRID), group="final comparison", metavar="M,M,...",
        parse=lambda text: parse_grid(text),
        show=lambda grid: ",".join(multiplier_text(m) for m in grid),
        help="learning-rate multipliers of the tuned comparison, e.g. 1/4,1,4")
    seeds: list = setting(
        factory=lambda: list(range(5)), parse=parse_seed_indices, metavar="SEEDS",
        group="final comparison",
        help="seeds of the final comparison, e.g. 0-4 or 0,1,2 (each an index the training's "
             "seed is derived from with the run seed; none: no final comparison)")
    tune_seeds: list = setting(
        factory=lambda: list(range(DEFAULT_TUNE_SEEDS)), parse=parse_seed_indices,
        metavar="SEEDS", group="final comparison",
        help="tuning seeds per grid point, on the validation split (as --seeds)")
    baselines: list = setting(
        factory=list, group="final comparison", metavar="NAME,...",
        parse=parse_list(str, "loss names", nonempty=True),
        help="extra baselines from the loss library (deapnn.losses.get names, e.g. "
             "focal,baikal), tuned the same way")

    _parameter_constraints = {
        "final_model": [str, None],
        "tune": [bool],
        "lr_grid": [Check(lambda v: grid_ok(v), "a non-empty list of distinct positive "
                                                "learning-rate multipliers")],
        "seeds": [seed_list(), Check(lambda v: v == [], "an empty list (none)")],
        "tune_seeds": [seed_list()],
        "baselines": [Check(_loss_names, "a list of loss names (deapnn.losses.get)")],
    }

    def __post_init__(self) -> None:
        owner = type(self).__name__
        self.seeds = seed_indices(self.seeds, "seeds", owner)
        self.tune_seeds = seed_indices(self.tune_seeds, "tune_seeds", owner)
        super().__post_init__()

    def _check(self) -> None:
        """``final_model`` names a network; every baseline is a loss of the library."""
        super()._check()
        from .models import USER_MODEL, is_user_model, model_names
        if self.final_model is not None and self.final_model not in model_names() \
                and not is_user_model(self.final_model):
            raise ConfigError(f"unknown model {self.final_model!r}; valid: "
                              f"{', '.join(sorted(model_names()))}, or {USER_MODEL}",
                              "final_model")
        from .losses.library import get
        for name in self.baselines:
            try:
                get(name)
            except ValueError as exc:
                raise ConfigError(f"baseline {exc}", "baselines") from None
        lr = getattr(self, "lr", None)          # the configured lr the grid multiplies
        if isinstance(lr, (int, float)) and self.tune and lr * max(self.lr_grid) > FLOAT32_MAX:
            raise ConfigError(f"lr_grid must hold multipliers <= {FLOAT32_MAX / lr:.4g} with "
                              f"lr {lr} (the learning rate must stay a float32), got "
                              f"{max(self.lr_grid):g}", "lr_grid")


@dataclass
class Arm:
    """One loss of the comparison: printed ``name``, the trainer's ``spec`` (plain data),
    ``role``: ``"baseline"`` (the paired differences are against it; the first arm),
    ``"reference"`` (another baseline) or ``"found"`` (a searched loss)."""
    name: str
    spec: object
    role: str = "found"


@dataclass
class Protocol:
    """The settings of a tuned comparison: configured ``lr``, multipliers ``grid``,
    ``tune_seeds``, final ``seeds``, the run's seed (``run_seed``) the tuning and final seeds
    derive from, and the test metric (``metric``, ``higher_is_better``)."""
    lr: float
    seeds: tuple
    run_seed: int
    metric: str
    higher_is_better: bool
    grid: tuple = DEFAULT_LR_GRID
    tune_seeds: tuple = tuple(range(DEFAULT_TUNE_SEEDS))
    extra: dict = field(default_factory=dict)    # shown settings: model, steps, ...

    def lrs(self) -> list[float]:
        """The learning rates of the grid: ``lr`` times each multiplier of ``grid``."""
        return [self.lr * m for m in self.grid]


def tuning_seed(run_seed: int, i: int) -> int:
    """The ``i``-th tuning seed of a run (disjoint from :func:`final_seed`'s)."""
    return derive_seed(run_seed, "tune", i)


def final_seed(run_seed: int, s: int) -> int:
    """The ``s``-th final seed of a run (the seed of the untuned final comparison too)."""
    return derive_seed(run_seed, "final", s)


def parse_grid(text: str) -> list[float]:
    """``"1/8,1/4,1,2"`` → multipliers; raises ``ValueError`` for anything but positive
    numbers or fractions, or a repeated one."""
    out = []
    for part in str(text).split(","):
        part = part.strip()
        if not part:
            continue
        try:
            value = float(Fraction(part))
        except (ValueError, ZeroDivisionError):
            raise ValueError(f"not a number or fraction: {part[:40]!r}") from None
        except OverflowError:           # 1e400: no float holds it
            value = math.inf
        if not value > 0 or not value <= FLOAT32_MAX:
            raise ValueError(f"learning-rate multipliers must be positive and at most "
                             f"{FLOAT32_MAX:.4g} (the largest float32), got {part[:40]!r}")
        out.append(value)
    if not out:
        raise ValueError("no learning-rate multiplier given")
    if len(set(out)) != len(out):
        raise ValueError(f"repeated learning-rate multiplier in {text!r}")
    return out


def grid_ok(value) -> bool:
    """A valid stored grid: a non-empty list of distinct positive finite numbers."""
    return (isinstance(value, (list, tuple)) and len(value) > 0
            and all(isinstance(v, (int, float)) and not isinstance(v, bool)
                    and math.isfinite(v) and v > 0 for v in value)
            and len(set(value)) == len(value))


def multiplier_text(m: float) -> str:
    """A learning-rate multiplier as text: a fraction (``1/8``, ``2``) when one with a
    denominator up to 64 equals it, else the number."""
    f = Fraction(m).limit_denominator(64)
    return str(f) if abs(float(f) - m) < 1e-12 else f"{m:g}"


def _spec_id(spec) -> str:
    text = spec if isinstance(spec, str) else json.dumps(spec, sort_keys=True)
    return hashlib.sha1(text.encode()).hexdigest()[:16]


def job_key(arm: Arm, lr: float, seed: int, split: str) -> str:
    """The stored key of one training (its result is reused on resume)."""
    return f"{arm.name}|{_spec_id(arm.spec)}|{lr!r}|{seed}|{split}"


def _call(job):
    trainer, context, spec, lr, seed, split = job
    return trainer(context, spec, lr, seed, split)


def choose_lr(protocol: Protocol, val: dict) -> tuple[float, float]:
    """``(multiplier, lr)`` with the best mean validation metric; ``val`` maps a multiplier to
    its tuning seeds' validation metrics. Ties: the multiplier nearest 1, then the smaller."""
    higher = protocol.higher_is_better

    def mean(m):
        vals = [metric_score(v, higher) for v in val[m]]
        finite = all(math.isfinite(v) for v in vals)
        return statistics.fmean(vals) if finite else worst_score(higher)
    best = sorted(protocol.grid, key=lambda m: ((-mean(m) if higher else mean(m)),
                                                abs(math.log(m)), m))[0]
    return best, protocol.lr * best


def _run(jobs: list, trainer, context, results: dict, *, map_fn, chunk: int, bar,
         checkpoint) -> None:
    """Train every job ``(key, arm, lr, seed, split)`` whose key has no result yet."""
    todo = [j for j in jobs if j[0] not in results]
    bar.update(len(jobs) - len(todo))
    for start in range(0, len(todo), chunk):
        part = todo[start:start + chunk]
        out = list(map_fn(_call, [(trainer, context, arm.spec, lr, seed, split)
                                  for _, arm, lr, seed, split in part]))
        for (key, *_), res in zip(part, out):
            results[key] = {k: (float(v) if isinstance(v, float) else v)
                            for k, v in dict(res).items()}
        bar.update(len(part))
        if checkpoint is not None:
            checkpoint(results)
    bar.close()


def check_state(state) -> dict:
    """``state`` if it is a stored state of :func:`tuned_comparison` (``{"ident": ...,
    "results": {key: {"metric": ..., ...}}}``); else ``ValueError`` saying what does not fit."""
    if not isinstance(state, dict) or set(state) != {"ident", "results"} \
            or not isinstance(state["results"], dict):
        raise ValueError('not a comparison state {"ident": ..., "results": {...}}')
    if not all(isinstance(r, dict) and "metric" in r for r in state["results"].values()):
        raise ValueError("a stored training of the comparison has no metric")
    return state


def tuned_comparison(arms: list, protocol: Protocol, trainer, context, *, map_fn=map,
                     state: dict | None = None, checkpoint=None, progress=no_progress,
                     chunk: int = 1, ident=None, log=None) -> dict:
    """Run the tuned comparison (module docstring) of ``arms`` (the baseline first) and
    return its record (plain data, what ``results.json`` and ``deapnn compare``
    store). ``state``: a stored state (``{"ident", "results"}``) to resume from when its
    ``ident`` equals ``ident`` (the caller's description of the trainings); ``checkpoint(state)``
    after every ``chunk`` trainings; ``progress(total, desc, unit=...)``: one bar per phase."""
    note = log or (lambda *a: None)
    results = dict(state["results"]) if state and state.get("ident") == ident else {}
    if state and state.get("ident") != ident:
        note("stored comparison trainings belong to other settings: retraining")
    save = (lambda r: checkpoint({"ident": ident, "results": dict(r)})) if checkpoint else None
    higher = protocol.higher_is_better
    tune = [(job_key(arm, protocol.lr * m, tuning_seed(protocol.run_seed, i), "val"), arm,
             protocol.lr * m, tuning_seed(protocol.run_seed, i), "val")
            for arm in arms for m in protocol.grid for i in protocol.tune_seeds]
    _run(tune, trainer, context, results, map_fn=map_fn, chunk=chunk,
         bar=progress(len(tune), "tune lr", unit="training"), checkpoint=save)
    chosen = {}
    for arm in arms:
        val = {m: [results[job_key(arm, protocol.lr * m, tuning_seed(protocol.run_seed, i),
                                   "val")]["metric"] for i in protocol.tune_seeds]
               for m in protocol.grid}
        chosen[arm.name] = (*choose_lr(protocol, val), val)
    finals = []
    for arm in arms:
        for lr in dict.fromkeys([chosen[arm.name][1], protocol.lr]):
            finals += [(job_key(arm, lr, final_seed(protocol.run_seed, s), "test"), arm, lr,
                        final_seed(protocol.run_seed, s), "test") for s in protocol.seeds]
    _run(finals, trainer, context, results, map_fn=map_fn, chunk=chunk,
         bar=progress(len(finals), "final", unit="training"), checkpoint=save)

    def test_values(arm, lr):
        return [metric_score(results[job_key(arm, lr, final_seed(protocol.run_seed, s), "test")]
                       ["metric"], higher) for s in protocol.seeds]
    rows = []
    for arm in arms:
        m, lr, val = chosen[arm.name]
        rows.append({"loss": arm.name, "role": arm.role, "lr": lr, "multiplier": m,
                     "val": {multiplier_text(k):
                             statistics.fmean(metric_score(x, higher) for x in v)
                             for k, v in val.items()},
                     "untuned": seed_summary(test_values(arm, protocol.lr), higher),
                     "tuned": seed_summary(test_values(arm, lr), higher)})
    base = rows[0]
    for row in rows[1:]:
        row["paired"] = paired_stats(row["tuned"]["test"], base["tuned"]["test"],
                                     higher_is_better=higher, of=f"{row['loss']} - {base['loss']}")
        row["paired_untuned"] = paired_stats(row["untuned"]["test"], base["untuned"]["test"],
                                             higher_is_better=higher,
                                             of=f"{row['loss']} - {base['loss']} (untuned)")
    # issue 25: the per-class test metrics the trainers return (classification), per arm
    from .comparison_classes import class_entries
    finals = [[results[job_key(arm, row["lr"], final_seed(protocol.run_seed, s), "test")]
               for s in protocol.seeds] for arm, row in zip(arms, rows)]
    for row, entry in zip(rows, class_entries(finals, [r["loss"] for r in rows])):
        if entry:
            row["classes"] = entry
    return {"protocol": "tuned", "metric": protocol.metric, "higher_is_better": higher,
            "lr": protocol.lr, "grid": list(protocol.grid), "tune_seeds": list(protocol.tune_seeds),
            "seeds": list(protocol.seeds), "baseline": base["loss"], **protocol.extra,
            "losses": rows}


def seed_count(seeds) -> int:
    """How many seeds a comparison record lists (a ``comparison.json`` that ``deapnn
    compare`` wrote before version 1 stores the count itself)."""
    return len(seeds) if isinstance(seeds, (list, tuple)) else int(seeds)


def table_lines(record: dict, scale: dict | None = None) -> list[str]:
    """The printed tuned comparison: per loss the chosen lr, untuned and tuned test metric, the
    paired difference against the tuned baseline; the per-class test metrics when the record
    has them (:mod:`deapnn.comparison_classes`); then the scale report of the found losses."""
    grid = ",".join(multiplier_text(m) for m in record["grid"])
    better = "higher" if record["higher_is_better"] else "lower"
    extra = ", ".join(f"{k} {record[k]}" for k in ("model", "steps") if record.get(k) is not None)
    lines = [f"tuned comparison: {record['metric']} ({better} is better), "
             f"{seed_count(record['seeds'])} final seeds; lr chosen on validation from "
             f"×{{{grid}}} × {record['lr']:g} ({seed_count(record['tune_seeds'])} tuning seed(s) "
             f"each)" + (f"; {extra}" if extra else ""),
             f"  {'loss':<22}{'lr':>9}  {'untuned':>16}  {'tuned':>16}  tuned − tuned "
             f"{record['baseline']} (paired)"]
    for row in record["losses"]:
        u, t = row["untuned"], row["tuned"]
        pair = row.get("paired")
        lines.append(f"  {row['loss']:<22}{row['lr']:>9.4g}  {u['mean']:>8.4f} ± {u['std']:<5.4f}"
                     f"  {t['mean']:>8.4f} ± {t['std']:<5.4f}  "
                     + ("(baseline)" if row is record["losses"][0] else
                        paired_text(pair) if pair else "no finite pair"))
    for row in record["losses"][1:]:
        if row.get("paired_untuned"):
            lines.append(f"  untuned {row['loss']} − untuned {record['baseline']}: "
                         + paired_text(row["paired_untuned"]))
    from .comparison_classes import class_lines
    lines += class_lines(record)        # issue 25; none for a record without them
    if scale:
        from .losses.scale import scale_line
        lines.append("scale report (gradient on random outputs vs the baseline's):")
        lines += [scale_line(name, rep) for name, rep in scale.items()]
    return lines


__all__ = ["Arm", "Protocol", "DEFAULT_LR_GRID", "DEFAULT_TUNE_SEEDS", "tuning_seed",
           "final_seed", "parse_grid", "grid_ok", "multiplier_text", "job_key", "choose_lr",
           "check_state", "tuned_comparison", "table_lines"]
