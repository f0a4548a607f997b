"""The NLFS run driver (Morgan & Hougen 2024 §3; SPEC §3): random pool → aging evolution →
(optional) elimination → formulas, probe-curve plot and a final test-set comparison against CE.

Every phase checkpoints into the run directory, so ``--resume`` continues where a killed run
stopped (the pool chunk by chunk, evolution round by round).
"""
from __future__ import annotations

import random
import statistics
from dataclasses import asdict, dataclass, field

from deap import tools

from operators.graph import PopulationIndex, fingerprint, samePhenotype

from ..algorithms.regularized import DistinctHallOfFame, eaRegularizedEvolution
from ..losses.graph import LossGraph
from ..runtime import derive_seed, get_map, seed_everything
from .evaluator import SurrogateConfig, guarded_evaluator, train_with_loss
from .toolbox import LossIndividual, decode, make_toolbox, random_individual

CE_EXPRESSION = "-(y * log(yhat))"


@dataclass
class NLFSConfig:
    dataset: str = "digits"
    model: str = "mlp"
    population: int = 20
    cycles: int = 200
    sample_size: int = 5
    pool: int = 40
    budget: int = 300               # surrogate SGD steps
    batch: int = 1                  # children in flight per round (W)
    seed: int = 0
    seeds: int = 3                  # final comparison seeds
    final_steps: int = 900
    final_model: str | None = None  # default: same as model
    top: int = 3
    eliminate: bool = False
    sizes: list = field(default_factory=lambda: [25, 12, 6, 4])
    root: str | None = None

    def validate(self) -> "NLFSConfig":
        for name in ("population", "sample_size", "pool", "budget", "batch", "final_steps", "top"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.cycles < 0 or self.seeds < 0:
            raise ValueError("cycles and seeds must be >= 0")
        if self.sample_size > self.population:
            raise ValueError(f"sample size {self.sample_size} exceeds the population "
                             f"{self.population}")
        if self.pool < self.population:
            raise ValueError(f"pool {self.pool} is smaller than the population {self.population}")
        return self

    def surrogate(self) -> SurrogateConfig:
        return SurrogateConfig(dataset=self.dataset, model=self.model, steps=self.budget,
                               seed=self.seed, root=self.root,
                               eval_every=max(1, min(50, self.budget // 4)),
                               prescreen_steps=min(50, self.budget // 4))


MUTATION_STATS = {"children": 0, "failed": 0, "drifted": 0, "tries": 0,
                  "invalid": 0, "integrity": 0, "duplicate": 0}


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


def _distinct_pool(rng, n: int) -> list:
    """``n`` random integrity-passing genomes (JSON), no two with the same phenotype
    (expression or fingerprint, SPEC §3), so the seeded population holds no duplicates."""
    index, out = PopulationIndex(), []
    for _ in range(200 * n):
        if len(out) == n:
            break
        g = random_individual(rng)
        fp, expr = fingerprint(g), g.to_expression()
        if index.contains(fp, expr):
            continue
        index.add(fp, expr)
        out.append(g.to_json())
    while len(out) < n:                 # (practically unreachable) allow duplicates
        out.append(random_individual(rng).to_json())
    return out


def _plain_result(res: dict) -> dict:
    return {k: (float(v) if isinstance(v, float) else v) for k, v in res.items()}


def _final_job(job):
    """One final-comparison training: ``(loss spec, SurrogateConfig, train seed)`` → result."""
    from ..losses.library import get
    spec, cfg, seed = job
    loss = get(spec) if not spec.startswith("{") else \
        LossGraph.from_json(spec).compile()
    return train_with_loss(loss, cfg, seed, test=True)


def _plot_probe(path, genomes, labels):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from operators.graph import probe, probe_curve
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
    fig.savefig(path, dpi=120)
    plt.close(fig)


def run_nlfs(cfg: NLFSConfig, rundir=None, quiet: bool = True, map_fn=None, log=print) -> dict:
    """Run (or resume, when ``rundir`` holds a checkpoint) an NLFS search; return a summary."""
    from ..commands.common import progress as make_bar
    cfg.validate()
    map_fn = map_fn or get_map()
    evaluator = guarded_evaluator(cfg.surrogate())     # failure (timeout, OOM...) is data
    state = rundir.load_checkpoint() if rundir is not None else None
    save = rundir.save_checkpoint if rundir is not None else (lambda s: None)

    # --- phase 1: random pool, evaluated chunk by chunk -----------------------------------
    if state is None:
        seed_everything(cfg.seed)
        rng = random.Random(derive_seed(cfg.seed, "pool"))
        pool = {"genomes": _distinct_pool(rng, cfg.pool), "fitness": [], "info": []}
    else:
        pool = state["pool"]
    chunk = max(8, 4 * cfg.batch)
    bar = make_bar(cfg.pool, "pool", quiet, unit="loss")
    bar.update(len(pool["fitness"]))
    while len(pool["fitness"]) < cfg.pool:
        todo = pool["genomes"][len(pool["fitness"]):][:chunk]
        for (fit, info) in map_fn(evaluator, todo):
            pool["fitness"].append(float(fit[0]))
            pool["info"].append(info)
        bar.update(len(todo))
        save({"phase": "pool", "pool": pool})
    bar.close()

    # --- phase 2: aging evolution -----------------------------------------------------------
    order = sorted(range(cfg.pool), key=lambda i: -pool["fitness"][i])[:cfg.population]
    population = []
    for i in order:
        ind = decode(pool["genomes"][i])
        ind.fitness.values = (pool["fitness"][i],)
        ind.info = pool["info"][i]
        population.append(ind)
    evo_state = state.get("evo") if state else None
    if evo_state is None:
        seed_everything(derive_seed(cfg.seed, "evolve"))
    toolbox = make_toolbox(evaluator, population, map_fn)
    mutstats = dict(MUTATION_STATS, **((state or {}).get("mutation") or {}))
    toolbox.register("mutate", _counted(toolbox.mutate, mutstats))
    # one entry per phenotype: no two reported losses share a probe-curve fingerprint
    hof = DistinctHallOfFame(max(cfg.top, cfg.sizes[0] if cfg.eliminate else cfg.top),
                             similar=samePhenotype)
    saved = {"pool": pool, "evo": evo_state, "mutation": mutstats,
             "elim": (state or {}).get("elim"), "final": (state or {}).get("final")}

    def save_phase(phase, **parts):
        saved.update(parts)
        save({"phase": phase, **saved})
    stats = tools.Statistics(lambda ind: ind.fitness.values[0])
    stats.register("max", max)
    stats.register("mean", lambda v: sum(v) / len(v))
    stats.register("zeros", lambda v: sum(1 for x in v if x == 0))
    bar = make_bar(cfg.cycles, "cycles", quiet, unit="child")

    def checkpoint(s):
        save_phase("evolve", evo=s, mutation=dict(mutstats))
        if rundir is not None:
            rundir.write_logbook(s["logbook"])
        bar.set_postfix(best=f"{hof[0].fitness.values[0]:.3f}" if len(hof) else "-")
    population, logbook = eaRegularizedEvolution(
        population, toolbox, cfg.cycles, cfg.sample_size, stats=stats, halloffame=hof,
        verbose=False, batch=cfg.batch, checkpoint=checkpoint, resume=evo_state, progress=bar)
    bar.close()

    best = list(hof)
    rounds = {}
    if cfg.eliminate and len(best) > 1:
        from .elimination import default_stages, successive_halving, survivor_scores
        sizes = [min(s, len(best)) for s in cfg.sizes]
        image = len(_dataset_shape(cfg)) == 3
        survivors, history = successive_halving(
            best, default_stages(cfg.surrogate(), len(sizes) - 1, image), sizes, map_fn,
            state=saved["elim"], chunk=max(1, cfg.batch),
            checkpoint=lambda st: save_phase("eliminate", elim=st))
        by_json = {ind.to_json(): ind for ind in best}     # survivors keep their surrogate fitness
        best = [by_json.get(g) or decode(g) for g in survivors]
        rounds = {ind.to_expression(): survivor_scores(history, ind.to_expression())
                  for ind in best}
        if rundir is not None:
            rundir.write_json("elimination.json", history)
    best = best[:cfg.top]

    summary = {"config": asdict(cfg), "best": []}
    log("best losses found:")
    for k, ind in enumerate(best, 1):
        fit = ind.fitness.values[0] if ind.fitness.valid else float("nan")
        entry = {"name": f"nlfs_{k}", "expression": ind.to_expression(), "fitness": fit,
                 "latex": ind.to_latex(), "genome": ind.to_dict()}
        elim = rounds.get(entry["expression"])
        if elim is not None:
            entry["elimination"] = elim        # score in each successive-halving round
        summary["best"].append(entry)
        log(f"  nlfs_{k}  val={fit:.4f}"
            + (f"  rounds={'/'.join(f'{v:.4f}' for v in elim)}" if elim else "")
            + f"  {entry['expression']}")
        if rundir is not None:
            from ..losses.library import register
            register(entry["name"], ind, path=rundir.file("losses.json"),
                     meta={"fitness": fit, "run": rundir.path,
                           **({"elimination": elim} if elim else {})})
    if rundir is not None and best:
        _plot_probe(rundir.file("probe_curves.png"), best, [e["name"] for e in summary["best"]])

    # --- phase 3: final comparison on the test set ------------------------------------------
    if cfg.seeds and best:
        final = SurrogateConfig(**{**asdict(cfg.surrogate()), "steps": cfg.final_steps,
                                   "model": cfg.final_model or cfg.model, "prescreen_steps": 0,
                                   "eval_every": max(1, cfg.final_steps // 10)})
        arms = [("cross-entropy", "ce")] + [(e["name"], best[i].to_json())
                                              for i, e in enumerate(summary["best"][:1])]
        jobs = [(spec, final, derive_seed(cfg.seed, "final", s)) for _, spec in arms
                for s in range(cfg.seeds)]
        # per-job results are checkpointed, so a resumed run skips the seeds already trained
        fstate = saved["final"]
        if not fstate or fstate.get("jobs") != [[spec, seed] for spec, _, seed in jobs]:
            fstate = {"jobs": [[spec, seed] for spec, _, seed in jobs], "results": []}
        results = list(fstate["results"])
        step = max(1, cfg.batch)
        while len(results) < len(jobs):
            results += [_plain_result(r) for r in map_fn(_final_job, jobs[len(results):][:step])]
            save_phase("final", final={"jobs": fstate["jobs"], "results": list(results)})
        table = []
        for a, (label, _) in enumerate(arms):
            accs = [r["test_acc"] for r in results[a * cfg.seeds:(a + 1) * cfg.seeds]]
            sd = statistics.stdev(accs) if len(accs) > 1 else 0.0
            table.append({"loss": label, "mean": statistics.mean(accs), "std": sd, "test": accs})
        summary["comparison"] = table
        if len(table) == 2:
            diffs = [b - a for a, b in zip(table[0]["test"], table[1]["test"])]
            summary["paired"] = {"diff": diffs, "mean_diff": statistics.mean(diffs),
                                 "wins": sum(d > 0 for d in diffs),
                                 "ties": sum(d == 0 for d in diffs),
                                 "losses": sum(d < 0 for d in diffs)}
        log(f"final comparison: test accuracy, {cfg.seeds} seeds, {cfg.final_steps} steps, "
            f"model {final.model}")
        log(f"  {'loss':<16}{'mean':>8}{'std':>8}  per seed")
        for row in table:
            log(f"  {row['loss']:<16}{row['mean']:>8.4f}{row['std']:>8.4f}  "
                + " ".join(f"{v:.4f}" for v in row["test"]))
        if "paired" in summary:
            pr = summary["paired"]
            log(f"  paired (found - CE): mean {pr['mean_diff']:+.4f}; wins/ties/losses "
                f"{pr['wins']}/{pr['ties']}/{pr['losses']}")
    summary["mutation"] = dict(mutstats)
    log(f"mutations: {mutstats['children']} children, {mutstats['failed']} failed (parent "
        f"kept), {mutstats['drifted']} via neutral re-draw; rejected tries: "
        f"{mutstats['invalid']} invalid, {mutstats['integrity']} integrity, "
        f"{mutstats['duplicate']} duplicate")
    if rundir is not None:
        rundir.write_json("results.json", summary)
        rundir.write_logbook(list(logbook))
    summary["logbook"] = list(logbook)
    summary["population"] = [i.to_expression() for i in population]
    return summary


def _dataset_shape(cfg):
    from ..data import DATASETS
    return tuple(DATASETS[cfg.dataset].input_shape)


__all__ = ["NLFSConfig", "run_nlfs", "LossIndividual"]
