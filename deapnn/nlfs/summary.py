"""What an NLFS run found (:class:`NLFSSummary`, a :class:`deapnn.results.Summary`): the best
losses, the final comparison against cross-entropy (Morgan & Hougen 2024 §4; tuned by default,
:mod:`deapnn.comparison`), the scale report and the mutation counters; stored as the run's
``results.json`` and printed by ``deapnn nlfs`` (:meth:`NLFSSummary.render`)."""
from __future__ import annotations

from dataclasses import dataclass, field

from ..results import SCHEMA_VERSION, training_failures, tuned_trainings, without_version
from .config import NLFSConfig


@dataclass
class NLFSSummary:
    """What an NLFS run found. :meth:`to_dict` is the run's ``results.json``; the jobs are the
    search (failed when it found no loss) and every final-comparison training on the test split
    (failed when it gave no finite test accuracy)."""
    config: NLFSConfig
    best: list                     # entries: name, expression, fitness, latex, genome[,
    #                                elimination]
    mutation: dict                 # mutation counters (children, failed, drifted, rejections),
    #                                failed children (remutated, discarded, inserted_failed) and
    #                                children diverged after the pre-screen (diverged_inserted)
    comparison: list | None = None  # final comparison rows: loss, mean, std, test (per seed)
    paired: dict | None = None     # found − CE per seed: diff, mean_diff, wins, ties, losses
    tuned: dict | None = None      # the tuned comparison (deapnn.comparison; default protocol)
    scale: dict | None = None      # scale report of each best loss (deapnn.losses.scale)
    logbook: list = field(default_factory=list)
    population: list = field(default_factory=list)   # final population (expressions)
    run_dir: str | None = None

    def to_dict(self) -> dict:
        out = {"schema_version": SCHEMA_VERSION, "config": self.config.to_dict(),
               "best": self.best}
        if self.comparison is not None:
            out["comparison"] = self.comparison
        if self.paired is not None:
            out["paired"] = self.paired
        if self.tuned is not None:
            out["tuned"] = self.tuned
        if self.scale is not None:
            out["scale"] = self.scale
        out["mutation"] = self.mutation
        return out

    @classmethod
    def from_dict(cls, data: dict) -> NLFSSummary:
        """The summary :meth:`to_dict` stored (without the logbook, the final population and
        the run directory, which ``results.json`` does not hold)."""
        data = without_version(data)
        return cls(**{**data, "config": NLFSConfig.from_dict(data["config"])})

    def _trainings(self) -> list[tuple[str, float]]:
        if self.tuned is not None:
            return tuned_trainings(self.tuned)
        return [(f"final {row['loss']} seed {s}", v) for row in self.comparison or ()
                for s, v in enumerate(row["test"])]

    @property
    def jobs(self) -> int:
        """The search and the final comparison's test trainings."""
        return 1 + len(self._trainings())

    @property
    def failures(self) -> list[str]:
        """``"search: no loss found"``, and each final training without a finite test value."""
        return ([] if self.best else ["search: no loss found"]) + \
            training_failures(self._trainings())

    def render(self) -> str:
        """The printed report of a run: best losses, final comparison, mutation counters."""
        cfg, lines = self.config, ["best losses found:"]
        for e in self.best:
            elim = e.get("elimination")
            lines.append(f"  {e['name']}  val={e['fitness']:.4f}"
                         + (f"  rounds={'/'.join(f'{v:.4f}' for v in elim)}" if elim else "")
                         + f"  {e['expression']}")
        if self.comparison is not None:
            lines.append(f"final comparison: test accuracy, {len(cfg.seeds)} seeds, "
                         f"{cfg.final_steps} steps, model {cfg.final_model or cfg.model}")
            lines.append(f"  {'loss':<16}{'mean':>8}{'std':>8}  per seed")
            for row in self.comparison:
                lines.append(f"  {row['loss']:<16}{row['mean']:>8.4f}{row['std']:>8.4f}  "
                             + " ".join(f"{v:.4f}" for v in row["test"]))
            if self.paired is not None:
                pr = self.paired
                lines.append(f"  paired (found - CE): mean {pr['mean_diff']:+.4f}; "
                             f"wins/ties/losses {pr['wins']}/{pr['ties']}/{pr['losses']}")
        if self.tuned is not None:
            from ..comparison import table_lines
            lines += table_lines(self.tuned)
        if self.scale:
            from ..losses.scale import scale_line
            lines.append("scale report (gradient on random logits vs cross-entropy's):")
            lines += [scale_line(name, rep) for name, rep in self.scale.items()]
        m = self.mutation
        lines.append(f"mutations: {m['children']} children, {m['failed']} failed (parent "
                     f"kept), {m['drifted']} via neutral re-draw; rejected tries: "
                     f"{m['invalid']} invalid, {m['integrity']} integrity, "
                     f"{m['duplicate']} duplicate")
        if "discarded" in m:
            lines.append(f"failed children ({cfg.failed_child}): {m['remutated']} re-mutated, "
                         f"{m['discarded']} discarded, {m['inserted_failed']} inserted")
        if "diverged_inserted" in m:
            lines.append(f"children diverged after the pre-screen ({cfg.diverged_child}): "
                         f"{m['diverged_inserted']} inserted with their best accuracy so far")
        if not self.best:
            lines.append("no loss found")
        return "\n".join(lines)


__all__ = ["NLFSSummary"]
