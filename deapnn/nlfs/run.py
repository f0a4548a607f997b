"""The NLFS run driver (Morgan & Hougen 2024 §3): random pool (scored in two stages) → aging
evolution → (optional) elimination → formulas, probe-curve plot and a final test-set comparison
against CE (:mod:`deapnn.nlfs.compare`: by default tuned, every loss at its own learning rate).

:func:`run_nlfs` strings together phase functions that take and return data
(:func:`evaluate_pool`, :func:`rescore_pool`, :func:`seed_population`, :func:`evolve`,
:func:`eliminate`, :func:`best_entries`, :func:`register_best`, :func:`plot_probe`, then
``compare_tuned`` / ``compare_final``). Every phase checkpoints into the run directory (the pool
and its re-scoring chunk by chunk, evolution round by round, elimination candidate chunk by
chunk, the final comparison training by training), so a resumed run continues where a killed one
stopped and ends exactly as the uninterrupted run.
"""
from __future__ import annotations

import random
from dataclasses import dataclass

from deap import tools

from ..operators.graph_phenotype import PopulationIndex, fingerprint, samePhenotype

from ..algorithms.regularized import DistinctHallOfFame, eaRegularizedEvolution
from ..algorithms.regularized_restart import state_logbook
from ..checkpoint import StateError
from ..evaluation import as_evaluation
from ..losses.graph import LossGraph
from ..plots import save_figure
from ..progress import no_progress
from ..runtime import derive_seed, get_map, seed_everything
from .compare import compare_final, compare_tuned, scale_reports
from .config import NLFSConfig
from .evaluator import guarded_evaluator
from .state import Checkpoint as _Checkpoint
from .summary import NLFSSummary
from .toolbox import LossIndividual, decode, make_toolbox, random_individual

CE_EXPRESSION = "-(y * log(yhat))"

MUTATION_STATS = {"children": 0, "failed": 0, "drifted": 0, "tries": 0,
                  "invalid": 0, "integrity": 0, "duplicate": 0}


@dataclass
class Evolution:
    """The outcome of :func:`evolve`."""
    population: list
    logbook: list
    halloffame: list               # best first, pairwise distinct phenotypes
    mutation: dict


def _counted(mutate, stats: dict):
    """Wrap ``toolbox.mutate`` to count children, failures and rejections into ``stats``."""
    def counted(ind):
        out = mutate(ind)
        child = out[0]
        stats["children"] += 1
        stats["failed"] += int(bool(getattr(child, "mutation_failed", False)))
        stats["drifted"] += int(bool(getattr(child, "mutation_drifts", 0)))
        stats["tries"] += int(getattr(child, "mutation_tries", 0) or 0)
        for k, v in (getattr(child, "mutation_rejects", None) or {}).items():
            stats[k] = stats.get(k, 0) + int(v)
        return out
    return counted


def random_pool(seed: int, n: int, wiring: str = "reference", flip_rule: str = "start") -> dict:
    """The unevaluated random pool of a run: ``n`` integrity-passing genomes (JSON, ``wiring``
    as :meth:`LossGraph.random`, ``flip_rule`` as ``checkIntegrity``), no two with the same
    phenotype (expression or fingerprint, Morgan & Hougen 2024 §3.3), so the seeded population
    holds no duplicates. Seeds the global RNGs with ``seed`` first."""
    seed_everything(seed)
    rng = random.Random(derive_seed(seed, "pool"))
    index, out = PopulationIndex(), []
    for _ in range(200 * n):
        if len(out) == n:
            break
        g = random_individual(rng, wiring=wiring, flip_rule=flip_rule)
        fp, expr = fingerprint(g), g.to_expression()
        if index.contains(fp, expr):
            continue
        index.add(fp, expr)
        out.append(g.to_json())
    while len(out) < n:                 # (practically unreachable) allow duplicates
        out.append(random_individual(rng, wiring=wiring, flip_rule=flip_rule).to_json())
    return {"genomes": out, "fitness": [], "info": []}


def evaluate_pool(pool: dict, evaluator, map_fn, *, chunk: int, progress=no_progress,
                  checkpoint=None, desc: str = "pool") -> dict:
    """Evaluate the genomes of ``pool`` not yet evaluated, ``chunk`` per ``map_fn`` call;
    ``checkpoint(pool)`` after each chunk. Returns the pool with ``fitness`` and ``info`` (the
    evaluation's info, ``error`` included) for every genome."""
    pool = {k: list(v) for k, v in pool.items()}
    bar = progress(len(pool["genomes"]), desc, unit="loss")
    bar.update(len(pool["fitness"]))
    while len(pool["fitness"]) < len(pool["genomes"]):
        todo = pool["genomes"][len(pool["fitness"]):][:chunk]
        for ev in map(as_evaluation, map_fn(evaluator, todo)):
            pool["fitness"].append(ev.fitness)
            pool["info"].append({**ev.info, **({"error": ev.error} if ev.failed else {})})
        bar.update(len(todo))
        if checkpoint is not None:
            checkpoint(pool)
    bar.close()
    return pool


def rescore_pool(pool: dict, n: int, evaluator, map_fn, *, chunk: int, state=None,
                 progress=no_progress, checkpoint=None) -> dict:
    """The second pool stage (Morgan & Hougen's implementation: the pool is scored with the
    standard surrogate, its best are re-scored with the augmented one): the ``n`` fittest
    members of the evaluated ``pool`` (ties: pool order), evaluated again with ``evaluator``.
    Returns a pool of those genomes with their new ``fitness``/``info`` and ``first`` (their
    first-stage fitness); ``state``: the partial result stored by ``checkpoint`` (resumed)."""
    order = sorted(range(len(pool["genomes"])), key=lambda i: -pool["fitness"][i])[:n]
    todo = state or {"genomes": [pool["genomes"][i] for i in order],
                     "first": [pool["fitness"][i] for i in order], "fitness": [], "info": []}
    return evaluate_pool(todo, evaluator, map_fn, chunk=chunk, progress=progress,
                         checkpoint=checkpoint, desc="rescore")


def seed_population(pool: dict, size: int, initial_age: str = "shared") -> list:
    """The ``size`` fittest members of an evaluated pool (or of a :func:`rescore_pool` result) as
    individuals (fitness and info set), best first. ``initial_age="shared"`` (Morgan & Hougen's
    implementation: every seeded member starts at age 0) gives them one birth, so aging
    evolution removes the weakest seed first; ``"ordered"`` numbers them best first (the fittest
    is then the oldest and dies first — deapnn's behaviour before it followed the reference)."""
    order = sorted(range(len(pool["genomes"])), key=lambda i: -pool["fitness"][i])[:size]
    population = []
    for k, i in enumerate(order):
        ind = decode(pool["genomes"][i])
        ind.fitness.values = (pool["fitness"][i],)
        ind.info = pool["info"][i]
        ind.birth = 0 if initial_age == "shared" else k
        population.append(ind)
    return population


def evolve(cfg: NLFSConfig, population: list, evaluator, map_fn, *, state=None, mutation=None,
           progress=no_progress, checkpoint=None) -> Evolution:
    """Aging evolution of ``population`` (Morgan & Hougen 2024 §3.4; Real et al. 2019
    Algorithm 1) for ``cfg.cycles`` children, ``cfg.batch`` per round. ``state``/``mutation``:
    the stored evolution state and mutation counters to resume from; ``checkpoint(state,
    mutation)`` after every round."""
    if state is None:
        seed_everything(derive_seed(cfg.seed, "evolve"))
    toolbox = make_toolbox(evaluator, population, map_fn, wiring=cfg.wiring,
                           flip_rule=cfg.flip_rule)
    mutstats = dict(MUTATION_STATS, **(mutation or {}))
    toolbox.register("mutate", _counted(toolbox.mutate, mutstats))
    # one entry per phenotype: no two reported losses share a probe-curve fingerprint
    hof = DistinctHallOfFame(max(cfg.top, cfg.sizes[0] if cfg.eliminate else cfg.top),
                             similar=samePhenotype)
    stats = tools.Statistics(lambda ind: ind.fitness.values[0])
    stats.register("max", max)
    stats.register("mean", lambda v: sum(v) / len(v))
    stats.register("zeros", lambda v: sum(1 for x in v if x == 0))
    bar = progress(cfg.cycles, "cycles", unit="child")

    def on_round(s):
        if checkpoint is not None:
            checkpoint(s, dict(mutstats))
        if hasattr(bar, "set_postfix"):
            bar.set_postfix(best=f"{hof[0].fitness.values[0]:.3f}" if len(hof) else "-")
    population, logbook = eaRegularizedEvolution(
        population, toolbox, cfg.cycles, cfg.sample_size, stats=stats, halloffame=hof,
        batch=cfg.batch, checkpoint=on_round, resume_state=state, progress=bar,
        failed_child=cfg.failed_child)
    bar.close()
    children = {k: sum(int(r.get(k, 0)) for r in logbook[1:])
                for k in ("remutated", "discarded", "inserted_failed", "diverged_inserted")}
    return Evolution(population, list(logbook), list(hof), {**mutstats, **children})


def eliminate(cfg: NLFSConfig, best: list, map_fn, *, state=None, checkpoint=None):
    """Successive halving of the hall of fame ``best`` (Morgan & Hougen 2024 §3.6) on longer
    budgets and, for image data, a CNN. Returns ``(survivors, rounds, history)``: survivors best
    first (keeping their surrogate fitness), ``rounds`` each survivor's score per round by
    expression, ``history`` the rows of ``elimination.json``."""
    from ..data import dataset_info
    from .elimination import default_stages, successive_halving, survivor_scores
    sizes = [min(s, len(best)) for s in cfg.sizes]
    image = len(tuple(dataset_info(cfg.dataset).input_shape)) == 3
    survivors, history = successive_halving(
        best, default_stages(cfg.surrogate(), len(sizes) - 1, image), sizes, map_fn,
        state=state, chunk=max(1, cfg.batch), checkpoint=checkpoint)
    by_json = {ind.to_json(): ind for ind in best}     # survivors keep their surrogate fitness
    survivors = [by_json.get(g) or decode(g) for g in survivors]
    rounds = {ind.to_expression(): survivor_scores(history, ind.to_expression())
              for ind in survivors}
    return survivors, rounds, history


def best_entries(best: list, rounds: dict) -> list:
    """The reported losses ``nlfs_1``, ``nlfs_2``, …: expression, surrogate fitness, LaTeX,
    genome and (after elimination) the score in each round."""
    entries = []
    for k, ind in enumerate(best, 1):
        fit = ind.fitness.values[0] if ind.fitness.valid else float("nan")
        entry = {"name": f"nlfs_{k}", "expression": ind.to_expression(), "fitness": fit,
                 "latex": ind.to_latex(), "genome": ind.to_dict()}
        elim = rounds.get(entry["expression"])
        if elim is not None:
            entry["elimination"] = elim        # score in each successive-halving round
        entries.append(entry)
    return entries


def register_best(rundir, entries: list, best: list) -> None:
    """Register the reported losses in the run's ``losses.json`` (``deapnn.losses.get``)."""
    from ..losses.library import register
    for entry, ind in zip(entries, best):
        elim = entry.get("elimination")
        register(entry["name"], ind, path=rundir.file("losses.json"),
                 meta={"fitness": entry["fitness"], "run": rundir.path,
                       **({"elimination": elim} if elim else {})})


def plot_probe(path, genomes, labels) -> None:
    """Plot the normalised probe curves of ``genomes`` next to cross-entropy's into ``path``."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from ..operators.graph_integrity import probe, probe_curve
    _, _, p = probe()
    fig, ax = plt.subplots(figsize=(6, 4))
    for g, label in [(LossGraph.from_expression(CE_EXPRESSION), "cross-entropy")] + \
            list(zip(genomes, labels)):
        c = probe_curve(g) * (-1 if g.flip else 1)
        c = (c - c.min()) / max(c.max() - c.min(), 1e-12)
        ax.plot(p, c, label=label, lw=2 if label == "cross-entropy" else 1.2)
    ax.set_xlabel("p = predicted probability of the wrong class")
    ax.set_ylabel("normalised loss (probe)")
    ax.set_title("NLFS: best losses vs cross-entropy")
    ax.legend(fontsize=7)
    fig.tight_layout()
    save_figure(fig, path, dpi=120)


def scored_pool(cfg: NLFSConfig, ckpt: _Checkpoint, evaluator, map_fn, progress) -> dict:
    """The pool phase: the random pool scored (checkpointed chunk by chunk) and, when
    ``cfg.rescore_count()`` > 0, its best re-scored (:func:`rescore_pool`). With a second stage
    the pool is scored with :meth:`NLFSConfig.standard_surrogate` and the best with
    ``evaluator`` (the search's surrogate); without, the pool with ``evaluator``. Returns the
    pool the population is seeded from."""
    n, chunk = cfg.rescore_count(), max(8, 4 * cfg.batch)
    first = guarded_evaluator(cfg.standard_surrogate()) if n else evaluator
    pool = evaluate_pool(ckpt.part("pool") or random_pool(cfg.seed, cfg.pool, cfg.wiring,
                                                          cfg.flip_rule),
                         first, map_fn, chunk=chunk, progress=progress,
                         checkpoint=lambda p: ckpt.save("pool", pool=p))
    if not n or (ckpt.part("evo") is not None and ckpt.part("rescore") is None):
        return pool         # (a run from before the second stage resumes its evolution)
    return rescore_pool(pool, n, evaluator, map_fn, chunk=chunk, state=ckpt.part("rescore"),
                        progress=progress, checkpoint=lambda p: ckpt.save("rescore", rescore=p))


def run_nlfs(cfg: NLFSConfig, rundir=None, *, map_fn=None, progress=no_progress,
             log=None) -> NLFSSummary:
    """Run (or resume, when ``rundir`` holds a checkpoint) an NLFS search; return its summary
    (also written to ``rundir``: results.json, logbook.csv, losses.json, probe_curves.png,
    elimination.json). ``progress``: a bar factory ``progress(total, desc, unit=...)``;
    ``log``: an optional callable told when each phase is done."""
    cfg.validate()          # refused before any work, with the message of the config
    cfg.validate()
    map_fn = map_fn or get_map()
    note = log or (lambda *a: None)
    evaluator = guarded_evaluator(cfg.surrogate())     # failure (timeout, OOM...) is data
    ckpt = _Checkpoint(rundir, cfg)         # a stored state that is not this run's: refused
    pool = scored_pool(cfg, ckpt, evaluator, map_fn, progress)
    note(f"pool: {cfg.pool} losses evaluated"
         + (f" (best {cfg.rescore_count()} re-scored)" if cfg.rescore_count() else ""))

    def evolve_checkpoint(state, mutation):
        ckpt.save("evolve", evo=state, mutation=mutation)
        if rundir is not None:
            rundir.write_logbook(state_logbook(state))
    try:
        evo = evolve(cfg, seed_population(pool, cfg.population_size, cfg.initial_age), evaluator,
                     map_fn, state=ckpt.part("evo"), mutation=ckpt.part("mutation"),
                     progress=progress, checkpoint=evolve_checkpoint)
    except StateError as exc:       # raised by the loop's restoring: name the checkpoint
        raise exc.at(rundir.file(rundir.CHECKPOINT)) if rundir is not None else exc from None
    note(f"evolution: {cfg.cycles} children evaluated")
    best, rounds = evo.halloffame, {}
    if cfg.eliminate and len(best) > 1:
        best, rounds, history = eliminate(cfg, best, map_fn, state=ckpt.part("elim"),
                                          checkpoint=lambda s: ckpt.save("eliminate", elim=s))
        if rundir is not None:
            rundir.write_json("elimination.json", history)
        note(f"elimination: {len(best)} losses left")
    best = best[:cfg.top]
    summary = NLFSSummary(cfg, best_entries(best, rounds), evo.mutation, logbook=evo.logbook,
                          population=[i.to_expression() for i in evo.population],
                          run_dir=rundir.path if rundir is not None else None)
    if rundir is not None:
        register_best(rundir, summary.best, best)
        if best:
            plot_probe(rundir.file("probe_curves.png"), best, [e["name"] for e in summary.best])
    found = [(e["name"], ind.to_json()) for e, ind in zip(summary.best, best)]
    if found:
        from ..data import dataset_info
        summary.scale = scale_reports(found, dataset_info(cfg.dataset).num_classes)
    if cfg.seeds and best and cfg.tune:
        summary.tuned = compare_tuned(cfg, found, map_fn, state=ckpt.part("tuned"),
                                      checkpoint=lambda s: ckpt.save("tuned", tuned=s),
                                      progress=progress, log=note)
    elif cfg.seeds and best:
        summary.comparison, summary.paired = compare_final(
            cfg, [(summary.best[0]["name"], best[0].to_json())], map_fn, state=ckpt.part("final"),
            checkpoint=lambda s: ckpt.save("final", final=s))
    if rundir is not None:
        rundir.write_results(summary)
        rundir.write_logbook(summary.logbook)
    return summary


__all__ = ["NLFSConfig", "NLFSSummary", "Evolution", "run_nlfs", "random_pool", "evaluate_pool",
           "rescore_pool", "scored_pool", "seed_population", "evolve", "eliminate",
           "best_entries", "register_best", "plot_probe", "LossIndividual", "CE_EXPRESSION"]
