"""Gradient Lexicase Selection experiments: toolbox assembly and the comparison arms of SPEC §1
(GLS; SGD at the same epochs; SGD at matched compute, (p+1)× epochs; SubGD + random selection).

One *job* = one arm × one seed, run in its own directory with a checkpoint after every generation
or epoch, so ``--resume`` continues exactly where a killed job stopped. Jobs are independent and
picklable, so ``toolbox.map`` (SCOOP) can run them in parallel.
"""
from __future__ import annotations

import fcntl
import json
import os
import socket
import time
from dataclasses import asdict, dataclass, field

import numpy as np
import torch
from deap import base

from operators.gls import mutSubGD, selGradientLexicase

from .algorithms import eaGradientLexicase
from .checkpoint import load_checkpoint, save_checkpoint
from .data import load_dataset
from .models import build_model
from .rundir import RunDir, save_weights
from .runtime import derive_seed, get_device, seed_everything
from .training import TrainConfig, evaluate, train

ARMS = ("gls", "sgd", "sgd_matched", "random")
ARM_TITLES = {"gls": "GLS", "sgd": "SGD (same epochs)", "sgd_matched": "SGD ((p+1)× epochs)",
              "random": "SubGD + random selection"}


@dataclass
class GLSConfig:
    """Everything that defines a GLS comparison (stored as the run's ``config.json``)."""
    dataset: str = "digits"
    model: str = "cnn"
    epochs: int = 30
    pop: int = 4
    lr: float = 0.1
    momentum: float = 0.9
    nesterov: bool = False
    weight_decay: float = 1e-4
    batch_size: int = 64
    schedule: str = "cosine"
    momentum_mode: str = "reset"
    init: str = "clone"
    selection_data: str = "clean"
    semantics: str = "standard"
    chunk_size: int = 8
    max_cases: int | None = None   # case budget per selection event (None: exact lexicase)
    augment: bool = True
    eval_every: int = 0            # generations/epochs between val/test evaluations (0: per epoch-equivalent)
    arms: list = field(default_factory=lambda: ["gls", "sgd"])
    seeds: list = field(default_factory=lambda: [0])
    root: str | None = None
    download: bool = False

    def train_config(self, epochs: int) -> TrainConfig:
        return TrainConfig(epochs=epochs, lr=self.lr, momentum=self.momentum,
                           nesterov=self.nesterov, weight_decay=self.weight_decay,
                           batch_size=self.batch_size, schedule=self.schedule).validate()

    def validate(self) -> "GLSConfig":
        """Raise ``ValueError`` naming the first invalid setting (used when resuming a run)."""
        from .algorithms.gradient_lexicase import INIT_MODES, MOMENTUM_MODES
        from .data import dataset_names
        from .models import model_names
        self.train_config(self.epochs)
        checks = [(self.dataset in dataset_names(), "dataset", self.dataset),
                  (self.model in model_names(), "model", self.model),
                  (isinstance(self.pop, int) and self.pop >= 2, "pop", self.pop),
                  (self.momentum_mode in MOMENTUM_MODES, "momentum_mode", self.momentum_mode),
                  (self.init in INIT_MODES, "init", self.init),
                  (self.selection_data in ("clean", "augmented"), "selection_data",
                   self.selection_data),
                  (self.max_cases is None or (isinstance(self.max_cases, int)
                                              and self.max_cases >= 1), "max_cases",
                   self.max_cases),
                  (all(a in ARMS for a in self.arms), "arms", self.arms),
                  (bool(self.seeds) and all(isinstance(x, int) for x in self.seeds), "seeds",
                   self.seeds)]
        for ok, name, value in checks:
            if not ok:
                raise ValueError(f"invalid {name}: {value!r}")
        return self

    def generations(self) -> int:
        """GLS generations = epochs · (p+1) (SPEC §1.4)."""
        return self.epochs * (self.pop + 1)


def _random_select(children, k, *, rng, info=None):
    """Selection of the ablation arm: a child drawn uniformly (``rng`` as in lexicase)."""
    return [children[int(i)] for i in rng.integers(len(children), size=k)]


def _evaluator(data, best_file: str | None = None, best: float = -1.0):
    """Validation/test accuracy of a model; with ``best_file``, the weights of the best model by
    validation accuracy so far are saved there (atomically) whenever it improves."""
    def run(model):
        nonlocal best
        record = {"val_acc": evaluate(model, data.val.x, data.val.y, data.task),
                  "test_acc": evaluate(model, data.test.x, data.test.y, data.task)}
        if best_file and record["val_acc"] > best:
            best = record["val_acc"]
            save_weights(best_file, model.state_dict())
        return record
    return run


def _best_so_far(records) -> float:
    return max((r["val_acc"] for r in records if r.get("val_acc") is not None), default=-1.0)


def gls_toolbox(data, cfg: GLSConfig, arm: str = "gls", device=None) -> base.Toolbox:
    """A DEAP toolbox with ``mutate`` (SubGD), ``select`` (lazy gradient lexicase, or random for
    the ablation arm), ``evaluate`` (val/test accuracy) and ``model`` registered for ``data``."""
    device = device or get_device()
    tb = base.Toolbox()
    x, y = data.train.x.to(device), data.train.y.to(device)
    augment = data.augment if cfg.augment else None
    tb.register("mutate", mutSubGD, x=x, y=y, batch_size=cfg.batch_size, augment=augment)
    if arm == "random":
        tb.register("select", _random_select)
    else:
        sel_x = x
        if cfg.selection_data == "augmented" and augment:
            # Reference-code option: select on an augmented copy (drawn once per run).
            from .data import augment_batch
            sel_x = augment_batch(x, augment, torch.Generator(device=device).manual_seed(0))
        tb.register("select", selGradientLexicase, x=sel_x, y=y, chunk_size=cfg.chunk_size,
                    max_cases=cfg.max_cases, semantics=cfg.semantics)
    tb.register("evaluate", _evaluator(data))
    tb.register("model", build_model, cfg.model, data.input_shape, data.num_classes)
    return tb


def run_job(job: dict) -> dict:
    """Run (or resume) one arm × seed in ``job["dir"]``; return its result dict.

    ``job`` = ``{"arm", "seed", "dir", "config": GLSConfig as dict, "quiet"[, "timeout"]}``. A
    finished job (``result.json`` present) is read back, not re-run.

    Failure is data: a job that raises (CUDA out-of-memory included) or overruns
    ``job["timeout"]`` seconds gives a result row with ``error`` (the reason) and no accuracy,
    and the other jobs of the comparison go on; it writes no ``result.json``, so ``--resume``
    retries it from its last checkpoint. A corrupt checkpoint is the run's error, not the job's
    (:class:`~deapnn.checkpoint.CheckpointError` propagates: clear message, exit 2).
    """
    from .checkpoint import CheckpointError
    from .failsafe import describe, time_limit
    started = time.perf_counter()
    try:
        with time_limit(job.get("timeout")):
            return _run_job(job)
    except CheckpointError:
        raise
    except Exception as exc:
        reason = describe(exc)
        logbook = os.path.join(job["dir"], "logbook.csv")
        try:      # an empty logbook keeps the run's plots and reports working
            os.makedirs(job["dir"], exist_ok=True)
            if not os.path.exists(logbook):
                open(logbook, "w", encoding="utf-8").close()
        except OSError:
            pass
        return {"arm": job["arm"], "seed": int(job["seed"]), "test_acc": None, "val_acc": None,
                "seconds": time.perf_counter() - started, "diverged": None, "error": reason}


def _run_job(job: dict) -> dict:
    # SCOOP may resend a future that runs for long ("Lost track of future ... Resending it"):
    # a second copy of a job waits for the first on the job directory's lock and then reads its
    # result instead of training the same thing twice in the same directory.
    os.makedirs(job["dir"], exist_ok=True)
    with open(os.path.join(job["dir"], ".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        return _run_job_locked(job)


def _run_job_locked(job: dict) -> dict:
    from .commands.common import progress as progress_bar
    cfg = GLSConfig(**job["config"])
    arm, seed, out = job["arm"], int(job["seed"]), job["dir"]
    result_file = os.path.join(out, "result.json")
    if os.path.exists(result_file):
        with open(result_file, encoding="utf-8") as fh:
            return json.load(fh)
    ckpt_file = os.path.join(out, "checkpoint.pt")
    resume = load_checkpoint(ckpt_file) if os.path.exists(ckpt_file) else None
    seed_everything(seed)
    data = load_dataset(cfg.dataset, root=cfg.root, download=cfg.download, seed=seed)
    device = get_device()
    torch.manual_seed(derive_seed(seed, "init"))
    model = build_model(cfg.model, data.input_shape, data.num_classes).to(device)
    interval = cfg.eval_every or (cfg.pop + 1 if arm in ("gls", "random") else 1)
    start = time.perf_counter() - (resume or {}).get("elapsed", 0.0)
    best_file = os.path.join(out, "best_model.pt")

    def save(state):
        state["elapsed"] = time.perf_counter() - start
        save_checkpoint(ckpt_file, state)

    if arm in ("gls", "random"):
        ngen = cfg.generations()
        bar = progress_bar(ngen, f"{arm} seed {seed}", job.get("quiet", False), unit="gen")
        tb = gls_toolbox(data, cfg, arm, device)
        tb.register("evaluate", _evaluator(data, best_file,
                                           _best_so_far((resume or {}).get("logbook", []))))
        model, logbook = eaGradientLexicase(
            model, tb, ngen, cfg=cfg.train_config(ngen), pop_size=cfg.pop,
            momentum=cfg.momentum_mode, init=cfg.init, seed=seed, eval_interval=interval,
            checkpoint=save, resume_state=resume, progress=bar)
        records, diverged = [dict(r) for r in logbook], None
        for r in records:
            r["compute_epochs"] = r["gen"]          # one SubGD pass = one epoch of gradient steps
    else:
        epochs = cfg.epochs * (cfg.pop + 1 if arm == "sgd_matched" else 1)
        bar = progress_bar(epochs, f"{arm} seed {seed}", job.get("quiet", False), unit="epoch")
        evaluate_all = _evaluator(data, best_file, _best_so_far((resume or {}).get("history", [])))

        def on_epoch(epoch, loss):
            record = {"epoch": epoch + 1, "compute_epochs": epoch + 1, "train_loss": loss}
            if (epoch + 1) % interval == 0 or epoch + 1 == epochs:
                record.update(evaluate_all(model))
            return record

        res = train(model, data.train.x, data.train.y, cfg.train_config(epochs), task=data.task,
                    augment=data.augment if cfg.augment else None, device=device, seed=seed,
                    on_epoch=on_epoch, progress=bar, checkpoint=save, resume_state=resume)
        records, diverged = res.history, res.reason
    bar.close()
    final = _evaluator(data)(model)     # the final parent is reported (SPEC §1.8), not the best
    result = {"arm": arm, "seed": seed, "test_acc": final["test_acc"], "val_acc": final["val_acc"],
              "seconds": time.perf_counter() - start, "diverged": diverged,
              "device": str(device), "host": socket.gethostname()}
    rd = RunDir.open(out)
    rd.write_logbook(records)
    rd.save_weights(model.state_dict(), "model.pt")
    rd.write_json("result.json", result)
    return result


def summarize(results: list[dict]) -> dict:
    """Per arm: mean ± std test accuracy, mean wall time, and paired differences vs SGD/GLS."""
    by_arm: dict = {}
    failed: dict = {}
    for r in results:
        if r.get("error"):               # a failed job: counted and explained, not averaged
            failed.setdefault(r["arm"], []).append(f"seed {r['seed']}: {r['error']}")
            by_arm.setdefault(r["arm"], [])
        else:
            by_arm.setdefault(r["arm"], []).append(r)
    summary = {}
    for arm, rs in by_arm.items():
        acc = np.array([r["test_acc"] for r in rs], dtype=float)
        summary[arm] = {"n": len(rs), "mean": float(acc.mean()) if len(rs) else float("nan"),
                        "std": float(acc.std(ddof=1)) if len(rs) > 1 else 0.0,
                        "seconds": float(np.mean([r["seconds"] for r in rs])) if rs else 0.0,
                        "per_seed": {int(r["seed"]): r["test_acc"] for r in rs}}
        if arm in failed:
            summary[arm]["failed"] = failed[arm]
    if "gls" in summary:
        for arm in summary:
            if arm == "gls":
                continue
            common = sorted(set(summary[arm]["per_seed"]) & set(summary["gls"]["per_seed"]))
            d = np.array([summary["gls"]["per_seed"][s] - summary[arm]["per_seed"][s]
                          for s in common])
            if len(d):
                summary[arm]["gls_minus_arm"] = {
                    "mean": float(d.mean()), "std": float(d.std(ddof=1)) if len(d) > 1 else 0.0,
                    "wins": int((d > 0).sum()), "ties": int((d == 0).sum()),
                    "losses": int((d < 0).sum())}
    return summary


def format_table(summary: dict, cfg: GLSConfig) -> str:
    lines = [f"{cfg.model} on {cfg.dataset}, p={cfg.pop}, {cfg.epochs} epochs "
             f"(GLS: {cfg.generations()} generations)",
             f"{'arm':<26} {'test accuracy':>20} {'seeds':>5} {'wall s':>8}  GLS − arm (paired)"]
    for arm in ARMS:
        if arm not in summary:
            continue
        s = summary[arm]
        pair = s.get("gls_minus_arm")
        ptxt = (f"{pair['mean']:+.4f} ± {pair['std']:.4f}  ({pair['wins']}W/{pair['ties']}T/"
                f"{pair['losses']}L)") if pair else ""
        lines.append(f"{ARM_TITLES[arm]:<26} {s['mean']:>11.4f} ± {s['std']:.4f} {s['n']:>5} "
                     f"{s['seconds']:>8.1f}  {ptxt}")
    for arm in ARMS:
        for why in summary.get(arm, {}).get("failed", []):
            lines.append(f"  failed: {ARM_TITLES[arm]} {why}")
    return "\n".join(lines)


def jobs_for(cfg: GLSConfig, out: str, quiet: bool) -> list[dict]:
    """One picklable job per seed × arm (``timeout``: ``--eval-timeout`` per job, or None)."""
    from .failsafe import default_timeout
    arms = ["gls"] + [a for a in cfg.arms if a != "gls"]
    return [{"arm": arm, "seed": seed, "dir": os.path.join(out, arm, f"seed{seed}"),
             "config": asdict(cfg), "quiet": quiet, "timeout": default_timeout()}
            for seed in cfg.seeds for arm in arms]

