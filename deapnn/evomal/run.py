"""The ``deapnn evomal`` run: search, checkpoint/resume, best formulas, final comparison
(Raymond et al. 2023, TPAMI §5 "Experimental design": loss search on the training/validation
splits, then meta-testing on the disjoint test split, :mod:`deapnn.evomal.compare`).

:func:`run_evomal` is the runner; its phases are :func:`search` (the GP search with a checkpoint
after every generation), :func:`best_formulas`, the final comparison (tuned by default,
:func:`~deapnn.evomal.compare.tuned_phase`; untuned, :func:`~deapnn.evomal.compare.compare_final`)
and :func:`write_outputs`. Nothing here prints: progress lines go to ``log``.
"""
from __future__ import annotations

import dataclasses
import math
import time
from dataclasses import dataclass

from deap import tools

from deapnn.algorithms.evomal import eaEvoMAL
from deapnn.checkpoint import StateError, restoring
from deapnn.data import cache_dataset
from deapnn.evomal.compare import (_quiet, compare_final, comparison_table, final_summary,
                                   paired_comparison, plot_learning_curves, scale_reports,
                                   tuned_phase)
from deapnn.evomal.config import EvoMALRunConfig
from deapnn.evomal.evaluator import guarded_evaluator
from deapnn.evomal.toolbox import fitness_stats, make_toolbox
from deapnn.losses.archive import LossArchive, to_sympy
from deapnn.progress import no_progress
from deapnn.results import SCHEMA_VERSION, training_failures, tuned_trainings, without_version

CKPT_KEY = "evomal"
PLOT_FILE = "learning_curve.png"


@dataclass
class SearchResult:
    """What :func:`search` returns: the final population, logbook, hall of fame (5 distinct
    best), the archive of every evaluated tree, and the search seconds accumulated over every
    invocation of the run (time lost to a kill not counted)."""
    population: list
    logbook: tools.Logbook
    halloffame: tools.HallOfFame
    archive: LossArchive
    seconds: float


@dataclass
class EvoMALSummary:
    """The outcome of a run, a :class:`deapnn.results.Summary` (``results.json`` is
    :meth:`to_dict`). ``final``, ``paired`` and ``paired_early_stopped`` are None when no
    candidate passed the rejection protocol (no final comparison). The jobs are the search
    (failed when no candidate passed) and every final training on the test split (failed when
    it gave no finite test value)."""
    dataset: str
    task: str
    best: list
    archive_size: int
    rejected: int
    evaluations: int
    archive_hits: int
    timing: dict
    final: dict | None = None
    paired: dict | None = None
    paired_early_stopped: dict | None = None
    tuned: dict | None = None      # the tuned comparison (deapnn.comparison; default protocol)
    scale: dict | None = None      # scale report of the best losses (deapnn.losses.scale)

    @property
    def metric(self) -> str:
        return "error" if self.task == "classification" else "MSE"

    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        if self.final is None:
            for key in ("final", "paired", "paired_early_stopped"):
                d.pop(key)
        for key in ("tuned", "scale"):
            if d[key] is None:
                d.pop(key)
        return {"schema_version": SCHEMA_VERSION, **d}

    @classmethod
    def from_dict(cls, data: dict) -> EvoMALSummary:
        """The summary :meth:`to_dict` stored."""
        return cls(**without_version(data))

    def found_loss(self) -> bool:
        """Whether a candidate passed the rejection protocol (the best has a finite fitness)."""
        return bool(self.best) and math.isfinite(self.best[0]["fitness"])

    def _trainings(self) -> list[tuple[str, float]]:
        if self.tuned is not None:
            return tuned_trainings(self.tuned)
        return [(f"final {name} seed {s}", v) for name, r in (self.final or {}).items()
                for s, v in enumerate(r["test"])]

    @property
    def jobs(self) -> int:
        """The search and the final trainings on the test split."""
        return 1 + len(self._trainings())

    @property
    def failures(self) -> list[str]:
        """The search when no candidate passed, and each final training without a finite test
        value."""
        search = [] if self.found_loss() else \
            ["search: no candidate loss passed the rejection protocol"]
        return search + training_failures(self._trainings())

    def render(self) -> str:
        """``deapnn evomal``'s printed result: the tuned comparison, or the final comparison's
        tables and scale report, and the wall times."""
        timing = self.timing
        if self.tuned is not None:
            from deapnn.comparison import table_lines
            return ("\n" + "\n".join(table_lines(self.tuned, self.scale)) + "\n"
                    f"wall time: search {timing['search_seconds']:.0f} s, tuned comparison "
                    f"{timing.get('final_seconds_this_invocation', 0):.0f} s (this invocation)")
        if self.final is None:
            return "no candidate loss passed the rejection protocol; no final comparison"
        lines = ["\n" + comparison_table(self.final, self.metric, self.paired,
                                         self.paired_early_stopped)]
        if self.scale:
            from deapnn.losses.scale import scale_line
            lines.append("scale report (gradient on random outputs vs the baseline's):")
            lines += [scale_line(name, rep) for name, rep in self.scale.items()]
        lines.append(f"wall time: search {timing['search_seconds']:.0f} s, final training "
                     f"{timing['final_seconds']:.0f} s")
        return "\n".join(lines)


def best_formulas(halloffame, archive: LossArchive, k: int = 5) -> list[dict]:
    """The ``k`` best distinct trees with fitness, learned-weight expression and sympy form."""
    rows = []
    for ind in list(halloffame)[:k]:
        record = archive.entries.get(archive.key(ind), {})
        try:
            simple = str(to_sympy(ind))
        except Exception as exc:  # sympy trouble never stops a report
            simple = f"<sympy: {type(exc).__name__}>"
        # a fingerprint archive may have evaluated an equivalent tree: weights belong to it
        rows.append({"tree": str(ind), "fitness": float(ind.fitness.values[0]),
                     "evaluated": record.get("tree", str(ind)),
                     "learned": record.get("expression", str(ind)), "sympy": simple,
                     "weights": record.get("weights", []),
                     "reason": record.get("reason") or record.get("error")})
    return rows


def search_text(summary: EvoMALSummary, seconds: float) -> str:
    """The search's summary lines: counts, then the best formulas (learned weights, sympy)."""
    lines = [f"\nsearch: {seconds:.0f} s; {summary.evaluations} evaluations, "
             f"{summary.archive_hits} archive hits (trees not re-evaluated)",
             f"best learned losses (validation {summary.metric}; archive: {summary.archive_size} "
             f"distinct, {summary.rejected} rejected/failed):"]
    for i, row in enumerate(summary.best, 1):
        same = "" if row["evaluated"] == row["tree"] else f" (equivalent to {row['evaluated']})"
        lines.append(f"{i}. {row['fitness']:.4f}  {row['tree']}{same}")
        if math.isfinite(row["fitness"]):
            lines.append(f"     learned: {row['learned']}\n     sympy:   {row['sympy']}")
        else:
            lines.append(f"     {row['reason'] or 'rejected'}")
    return "\n".join(lines)


def generation_line(record: dict, generations: int, seconds: float) -> str:
    """One logbook record as the run's per-generation log line: generation ``gen + 1`` of
    ``generations`` (the logbook's ``gen`` is DEAP's, 0 = the initial population)."""
    best = record.get("min")
    return (f"generation {record['gen'] + 1:>3}/{generations}: {record['nevals']:>3} evaluated, "
            f"{record['cached']:>3} archive hits, {record.get('rejected', 0):>3} rejected in "
            f"population; best {best:.4g}, median {record.get('median', float('nan')):.4g}"
            + (f"; {record['failed']} evaluations failed (reasons in logbook.csv)"
               if record.get("failed") else "") + f" [{seconds:.0f} s]")


def search(cfg: EvoMALRunConfig, data, rundir, resume_state: dict | None = None, *,
           map_fn=None, progress=no_progress, log=_quiet) -> SearchResult:
    """The GP search (§4, Algorithm 1): ``cfg.generations`` populations, the initial one
    included, with a checkpoint (``rundir``'s ``checkpoint.pt`` and ``logbook.csv``) after every
    generation; ``resume_state`` (the stored search state) continues it exactly."""
    evaluator = guarded_evaluator(cfg.evaluation())      # failure (timeout, OOM...) is data
    cache_dataset(data, cfg.dataset, cfg.seed, cfg.root)  # in-process evaluations reuse it
    toolbox = make_toolbox(evaluator, tournsize=cfg.tournament, max_height=cfg.max_height,
                           map_fn=map_fn)
    population = toolbox.population(cfg.population_size) if resume_state is None else []
    archive = LossArchive(data.task, data.num_classes, by=cfg.archive_key)
    hof = tools.HallOfFame(5, similar=lambda a, b: archive.key(a) == archive.key(b))
    bar = progress(cfg.generations, "evomal generations", unit="gen")
    bar.update(resume_state["generation"] + 1 if resume_state else 0)
    # search seconds so far (accumulated across resumes; not counted: time lost to a kill)
    prior = float(resume_state.get("seconds", 0.0)) if resume_state else 0.0
    start = time.perf_counter()
    elapsed = [prior]

    def checkpoint(state):
        elapsed[0] = prior + time.perf_counter() - start
        state["seconds"] = elapsed[0]
        rundir.save_checkpoint({CKPT_KEY: state})
        rundir.write_logbook(state["logbook"])
        bar.update(1)
        last = state["logbook"][-1]
        best = last.get("min")
        bar.set_postfix(best=f"{best:.4g}" if best is not None else "-")
        log(generation_line(last, cfg.generations, elapsed[0]))   # in --quiet too: the run's log

    population, logbook = eaEvoMAL(population, toolbox, cfg.ngen(), cxpb=cfg.cxpb,
                                   mutpb=cfg.mutpb, elitism=cfg.elitism, stats=fitness_stats(),
                                   halloffame=hof, archive=archive, checkpoint=checkpoint,
                                   resume_state=resume_state)
    bar.close()
    if resume_state is not None and resume_state["generation"] >= cfg.ngen():
        elapsed[0] = prior
    return SearchResult(population, logbook, hof, archive, elapsed[0])


def write_outputs(rundir, summary: EvoMALSummary, results: dict | None = None) -> list[str]:
    """``learning_curve.png`` (when there was a final comparison) and ``results.json``;
    returns the paths written."""
    written = []
    if results is not None:
        written.append(plot_learning_curves(results, rundir.file(PLOT_FILE), summary.metric,
                                            f"EvoMAL vs baseline on {summary.dataset}"))
    written.append(rundir.write_results(summary))
    return written


def run_evomal(cfg: EvoMALRunConfig, rundir, *, map_fn=None, progress=no_progress,
               log=None) -> EvoMALSummary:
    """Search, report the best formulas, compare the best learned loss with the baseline.

    ``rundir`` (a :class:`deapnn.rundir.RunDir`) holding a checkpoint is resumed: the search
    continues after its last generation and finished final trainings are reused, so the result
    is the one of an uninterrupted run. ``map_fn`` evaluates a generation (default: SCOOP when
    running under it, else ``map``); ``progress(total, desc, unit=...)`` makes the progress
    bar; ``log(text)`` receives the run's progress lines (default: dropped)."""
    # refused before any work, with the message of the config; a run that cannot fit
    # this host's memory too
    cfg.validate().check_resources()
    from deapnn.data import load_dataset
    from deapnn.runtime import get_device, seed_everything, set_device
    log = log or _quiet
    cfg.validate()
    if cfg.device:
        set_device(cfg.device)
    seed_everything(cfg.seed)
    data = load_dataset(cfg.dataset, root=cfg.root, download=cfg.download, seed=cfg.seed,
                        **cfg.regime())
    stored = rundir.load_checkpoint()
    with restoring(rundir.file(rundir.CHECKPOINT)):
        resume_state = stored.get(CKPT_KEY) if stored else None
        if resume_state is not None:
            int(resume_state["generation"]), float(resume_state.get("seconds", 0.0))
    if resume_state is not None:
        log(f"resuming {rundir.path} after generation {resume_state['generation']}")
    try:
        found = search(cfg, data, rundir, resume_state, map_fn=map_fn, progress=progress,
                       log=log)
    except StateError as exc:       # raised by the loop's restoring: name the checkpoint
        raise exc.at(rundir.file(rundir.CHECKPOINT)) from None
    rows = best_formulas(found.halloffame, found.archive)
    summary = EvoMALSummary(dataset=cfg.dataset, task=data.task, best=rows,
                            archive_size=len(found.archive), rejected=found.archive.rejected(),
                            evaluations=found.archive.misses, archive_hits=found.archive.hits,
                            timing={"search_seconds": round(found.seconds, 1)})
    log(search_text(summary, found.seconds))
    if not rows or not math.isfinite(rows[0]["fitness"]):
        write_outputs(rundir, summary)
        return summary
    summary.scale = scale_reports(rows, data.task, data.num_classes, cfg.nonnegative)
    if cfg.tune:
        summary.tuned, seconds = tuned_phase(rows[0], data, cfg, rundir, progress=progress,
                                             resuming=resume_state is not None, log=log)
        summary.timing["final_seconds_this_invocation"] = round(seconds, 1)
        write_outputs(rundir, summary)
        return summary
    results, seconds = compare_final(rows[0], data, cfg, rundir, get_device(),
                                     resuming=resume_state is not None, log=log)
    summary.timing["final_seconds"] = round(sum(r.get("seconds", 0.0) for res in results.values()
                                                for r in res["runs"]), 1)
    summary.timing["final_seconds_this_invocation"] = round(seconds, 1)
    summary.final = final_summary(results)
    summary.paired = paired_comparison(results)
    summary.paired_early_stopped = paired_comparison(results, "test_es")
    write_outputs(rundir, summary, results)
    return summary


__all__ = ["EvoMALSummary", "SearchResult", "run_evomal", "search", "best_formulas",
           "write_outputs", "search_text", "generation_line"]
