"""One GLS *job*: one comparison arm × one seed, run in its own directory.

A job checkpoints after every generation (GLS, random selection) or epoch (SGD arms), so a
killed job resumed later continues exactly where it stopped. Jobs are independent and picklable
(plain dicts), so ``map_fn`` (SCOOP's ``futures.map``) can run them in parallel.
"""
from __future__ import annotations

import copy
import dataclasses
import json
import os
import socket
import time

import torch

from ..algorithms import eaGradientLexicase
from ..algorithms.gradient_lexicase import checkpoint_logbook
from ..checkpoint import (CheckpointError, StateError, config_hash, load_checkpoint, restoring,
                          save_checkpoint)
from ..data import load_dataset
from ..evaluation import Evaluation
from ..failsafe import describe, time_limit
from ..models import build_model
from ..progress import no_progress
from ..rundir import RunDir, RunDirError, atomic_write, check_no_links, lock_directory, save_weights
from ..safefs import FileKindError, guard, make_dirs, read_text
from ..runtime import derive_seed, get_device, seed_everything
from ..training import train
from ..class_metrics import class_results
from ..compiled import compile_record
from .config import TUNED_ARMS, GLSConfig
from .representation import feature_effective_rank
from .toolbox import accuracy_evaluator, final_accuracy, gls_toolbox


def run_job(job: dict) -> Evaluation:
    """Run (or resume) one arm × seed in ``job["dir"]``; return its :class:`Evaluation`:
    ``values`` = ``(test accuracy,)``, ``info`` = the job's result row (``arm, seed, test_acc,
    val_acc, val_size, seconds, diverged, device, host``; ``val_size``: the validation examples
    held out of the training data, 0 for the paper's protocol, where ``val_acc`` is None; the
    regime of :func:`regime`; ``feature_erank``, the effective rank of the final model's
    penultimate-layer features on the test split, :mod:`deapnn.gls.representation`;
    ``sgd_reset``: ``momentum_reset`` = T; ``sgd_tuned``: the chosen ``lr`` and ``tuning``, the
    validation accuracy of every learning rate tried).

    ``job`` = ``{"arm", "seed", "dir", "config": GLSConfig.to_dict()[, "progress", "timeout"]}``
    (``progress``: a factory ``progress(total, desc, unit=...)``, default silent). A finished job
    (``result.json`` present) is read back, not re-run.

    Failure is data: a job that raises (CUDA out-of-memory included) or overruns
    ``job["timeout"]`` seconds gives an Evaluation with ``error`` (the reason) whose row has
    ``error`` and no accuracy, and the other jobs of the comparison go on; it writes no
    ``result.json``, so a resumed run retries it from its last checkpoint. A corrupt checkpoint
    is the run's error, not the job's (:class:`~deapnn.checkpoint.CheckpointError` propagates),
    and so is a symbolic link planted in the run directory (:class:`~deapnn.rundir.RunDirError`:
    the job's directory and files are reached from the run directory, ``job["root"]``, without
    following links, :mod:`deapnn.safefs`; nothing is written or read through one).
    """
    started = time.perf_counter()
    guard(job.get("root") or os.path.dirname(os.path.dirname(job["dir"])))
    try:
        with time_limit(job.get("timeout")):
            row = _run_job(job)
        return Evaluation((row["test_acc"],), row)
    except (CheckpointError, RunDirError):
        raise
    except Exception as exc:
        reason = describe(exc)
        logbook = os.path.join(job["dir"], "logbook.csv")
        try:      # an empty logbook keeps the run's plots and reports working
            make_dirs(job["dir"])
            if not os.path.lexists(logbook):
                atomic_write(logbook, lambda fh: None)
        except OSError:
            pass
        row = {"arm": job["arm"], "seed": int(job["seed"]), "test_acc": None, "val_acc": None,
               "seconds": time.perf_counter() - started, "diverged": None, "error": reason}
        return Evaluation((None,), row, reason)


def _run_job(job: dict) -> dict:
    # SCOOP may resend a future that runs for long ("Lost track of future ... Resending it"):
    # a second copy of a job waits for the first on the job directory's lock and then reads its
    # result instead of training the same thing twice in the same directory.
    make_dirs(job["dir"])
    check_no_links(job["dir"])
    lock = lock_directory(job["dir"], wait=True)
    try:
        return _run_job_locked(job)
    finally:
        os.close(lock)       # closing drops the flock


def _best_so_far(records) -> float:
    return max((r["val_acc"] for r in records if r.get("val_acc") is not None), default=-1.0)


def child_steps(n_train: int, batch_size: int, pop: int) -> int:
    """Optimizer steps of a GLS child per generation: the fewest any child takes when the
    ``ceil(n_train / batch_size)`` mini-batches of one SubGD pass go round-robin to ``pop``
    children (Ding & Spector 2022, §3.2) — T of the ``sgd_reset`` control."""
    return max(1, -(-n_train // batch_size) // pop)


def regime(cfg: GLSConfig, n_train: int, dataset_augment: str | None = "registry") -> dict:
    """The regime a comparison runs in, stored in every result row: ``population_size``, a GLS
    child's ``steps_per_child`` per generation, the ``augmentation`` SubGD and SGD apply (None:
    none), the lexicase ``case_metric`` and its ``epsilon``."""
    return {"population_size": cfg.population_size,
            "steps_per_child": child_steps(n_train, cfg.batch_size, cfg.population_size),
            "augmentation": cfg.augmentation_kind(dataset_augment),
            "case_metric": cfg.case_metric,
            "epsilon": cfg.epsilon}


def _fraction(values) -> float | None:
    values = [bool(v) for v in values if v is not None and v == v]
    return sum(values) / len(values) if values else None


def diagnostics_summary(records) -> dict:
    """Per-job summary of ``--diagnostics`` over the generations: ``diag_decided`` (share of
    generations in which lexicase narrowed the pool to one child on some case),
    ``diag_trained_on_decider`` (of those, the share whose winner trained on that case; about
    1/p if unrelated) and ``diag_winner_best_val`` (share of generations whose winner is a best
    child on the validation split; about 1/p by chance)."""
    return {"diag_decided": _fraction([r.get("deciding_case") is not None for r in records
                                       if r.get("cases_examined") is not None]),
            "diag_trained_on_decider": _fraction([r.get("winner_trained_on_decider")
                                                  for r in records]),
            "diag_winner_best_val": _fraction([r.get("winner_best_val") for r in records])}


def _sgd(model, data, cfg, epochs, lr, seed, device, interval, bar, save, resume, best_file,
         reset=None, rebalance=None):
    """Train ``model`` with SGD (``reset``: momentum reset period, the ``sgd_reset`` control;
    ``rebalance``: the ``loss_fn`` and ``sampler`` of a rebalancing arm, :func:`_rebalance`);
    return ``(records, divergence reason)``."""
    with restoring():
        best = _best_so_far((resume or {}).get("history", []))
    evaluate_all = accuracy_evaluator(data, best_file, best, cfg.fast_path())

    def on_epoch(epoch, loss):
        record = {"epoch": epoch + 1, "compute_epochs": epoch + 1, "train_loss": loss}
        if (epoch + 1) % interval == 0 or epoch + 1 == epochs:
            record.update(evaluate_all(model))
        return record

    tc = cfg.train_config(epochs)
    if lr != tc.lr:
        tc = dataclasses.replace(tc, lr=lr)
    res = train(model, data.train.x, data.train.y, tc, task=data.task,
                augment=cfg.augmentation_kind(data.augment), device=device, seed=seed,
                on_epoch=on_epoch, progress=bar, checkpoint=save, resume_state=resume,
                momentum_reset=reset, fast=cfg.fast_path(), **(rebalance or {}))
    return res.history, res.reason


def _rebalance(arm: str, data) -> dict:
    """The training of a class-rebalancing arm (:mod:`deapnn.rebalance`), as keywords of
    :func:`deapnn.training.train`: ``sgd_balanced`` weights the loss by inverse class
    frequency, ``sgd_resampled`` samples every class equally often; other arms: none."""
    from ..rebalance import WeightedCrossEntropy, balanced_order, class_weights
    if arm == "sgd_balanced":
        return {"loss_fn": WeightedCrossEntropy(class_weights(data.train.y, data.num_classes))}
    if arm == "sgd_resampled":
        return {"sampler": balanced_order(data.train.y, data.num_classes)}
    return {}


def _tuned_sgd(cfg, data, model, seed, out, device, bar, interval, run=None, rebalance=None):
    """The ``sgd_tuned`` control: SGD for ``cfg.epochs`` epochs from the same initial weights at
    every learning rate ``lr · f`` (``f`` in ``cfg.tune_factors``), each in ``lr<i>/`` with its
    own checkpoints; the one with the best final validation accuracy (the first of a tie, in
    grid order) is the arm's model. The test split is never looked at while choosing.
    ``rebalance``: the training of ``sgd_balanced`` / ``sgd_resampled`` (:func:`_rebalance`),
    tuned the same way. Returns ``(model, records, divergence reason, {"lr", "tuning"})``."""
    init = copy.deepcopy(model.state_dict())
    trials = []
    for i, factor in enumerate(cfg.tune_factors):
        lr = cfg.lr * factor
        sub = os.path.join(out, f"lr{i}")
        trial_file = os.path.join(sub, "trial.pt")
        if os.path.exists(trial_file):
            trial = load_checkpoint(trial_file, run)
            bar.update(cfg.epochs)
        else:
            ckpt = os.path.join(sub, "checkpoint.pt")
            resume = load_checkpoint(ckpt, run) if os.path.exists(ckpt) else None
            model.load_state_dict(init)
            started = time.perf_counter() - (resume or {}).get("elapsed", 0.0)

            def save(state, ckpt=ckpt, started=started):
                state["elapsed"] = time.perf_counter() - started
                save_checkpoint(ckpt, state, run)

            records, reason = _sgd(model, data, cfg, cfg.epochs, lr, seed, device, interval, bar,
                                   save, resume, None, rebalance=rebalance)
            val = None if reason else final_accuracy(data, model, cfg.fast_path())["val_acc"]
            trial = {"lr": lr, "val_acc": val, "reason": reason, "history": records,
                     "model": model.state_dict()}
            save_checkpoint(trial_file, trial, run)
        trials.append({k: v for k, v in trial.items() if k != "model"})
        trials[-1]["file"] = trial_file
    scored = [t for t in trials if t["val_acc"] is not None]
    best = max(scored, key=lambda t: t["val_acc"]) if scored else trials[0]
    model.load_state_dict(load_checkpoint(best["file"], run)["model"])
    save_weights(os.path.join(out, "best_model.pt"), model.state_dict())
    records = [dict(r, lr=best["lr"]) for r in best["history"]]
    return model, records, best["reason"], {
        "lr": best["lr"], "tuning": [{"lr": t["lr"], "val_acc": t["val_acc"]} for t in trials]}


def _run_job_locked(job: dict) -> dict:
    cfg = GLSConfig(**job["config"])
    arm, seed, out = job["arm"], int(job["seed"]), job["dir"]
    progress = job.get("progress") or no_progress
    result_file = os.path.join(out, "result.json")
    if os.path.exists(result_file):
        return _stored_result(result_file, arm, seed)
    ckpt_file = os.path.join(out, "checkpoint.pt")
    run = config_hash("gls", job["config"], f"{arm}/seed{seed}")     # binds its checkpoints
    resume = load_checkpoint(ckpt_file, run) if os.path.exists(ckpt_file) else None
    if resume is not None and not isinstance(resume, dict):
        raise CheckpointError(f"checkpoint {ckpt_file} does not hold a job's state; move it "
                              "away to re-run the job")
    try:
        return _train_job(cfg, arm, seed, out, progress, resume, ckpt_file, run)
    except StateError as exc:       # raised by the loops' restoring: name this job's checkpoint
        raise exc.at(ckpt_file) from None


def _stored_result(path: str, arm: str, seed: int) -> dict:
    """The ``result.json`` of a finished job, checked: a file that is not this job's result
    row (another arm or seed, a missing or non-numeric accuracy) is the run's error."""
    try:      # a regular file of bounded size, never through a link
        row = json.loads(read_text(path))
    except FileKindError as exc:
        raise CheckpointError(f"{path} is {exc}; delete it to re-run the job") from None
    except (OSError, ValueError, RecursionError) as exc:
        raise CheckpointError(f"{path} is unreadable ({exc}); delete it to re-run the job") \
            from None

    def number(v, optional=False):
        return (v is None and optional) or (isinstance(v, (int, float))
                                            and not isinstance(v, bool))
    from ..results import job_row
    row = job_row(row)
    if not (isinstance(row, dict) and row.get("arm") == arm and row.get("seed") == seed
            and number(row.get("test_acc")) and number(row.get("val_acc"), True)
            and number(row.get("seconds")) and number(row.get("val_size", 0))):
        raise CheckpointError(f"{path} is not the result of job {arm} seed {seed} (arm, seed, "
                              "test_acc, val_acc, seconds); delete it to re-run the job")
    return row


def _train_job(cfg, arm, seed, out, progress, resume, ckpt_file, run=None) -> dict:
    seed_everything(seed)
    data = load_dataset(cfg.dataset, root=cfg.root, download=cfg.download, seed=seed,
                        val_size=cfg.val_size, **cfg.regime())
    device = get_device()
    torch.manual_seed(derive_seed(seed, "init"))
    model = build_model(cfg.model, data.input_shape, data.num_classes).to(device)
    interval = cfg.eval_every or (cfg.population_size + 1 if arm in ("gls", "random") else 1)
    with restoring(ckpt_file):
        start = time.perf_counter() - float((resume or {}).get("elapsed", 0.0))
    best_file = os.path.join(out, "best_model.pt")

    def save(state):
        state["elapsed"] = time.perf_counter() - start
        save_checkpoint(ckpt_file, state, run)

    if arm in ("gls", "random"):
        ngen = cfg.generations()
        bar = progress(ngen, f"{arm} seed {seed}", unit="gen")
        tb = gls_toolbox(data, cfg, arm, device)
        with restoring(ckpt_file):
            best = _best_so_far(list(checkpoint_logbook(resume)) if resume else [])
        tb.register("evaluate", accuracy_evaluator(data, best_file, best, cfg.fast_path()))
        model, logbook = eaGradientLexicase(
            model, tb, ngen, cfg=cfg.train_config(ngen), population_size=cfg.population_size,
            momentum_mode=cfg.momentum_mode, init=cfg.init, seed=seed, eval_interval=interval,
            checkpoint=save, resume_state=resume, progress=bar)
        records, diverged = [dict(r) for r in logbook], None
        for r in records:
            r["compute_epochs"] = r["gen"]          # one SubGD pass = one epoch of gradient steps
        extra = diagnostics_summary(records) if cfg.diagnostics else {}
    elif arm in TUNED_ARMS:
        bar = progress(cfg.epochs * len(cfg.tune_factors), f"{arm} seed {seed}", unit="epoch")
        model, records, diverged, extra = _tuned_sgd(cfg, data, model, seed, out, device, bar,
                                                     interval, run, _rebalance(arm, data))
    else:
        epochs = cfg.epochs * (cfg.population_size + 1 if arm == "sgd_matched" else 1)
        bar = progress(epochs, f"{arm} seed {seed}", unit="epoch")
        reset = (child_steps(len(data.train), cfg.batch_size, cfg.population_size)
                 if arm == "sgd_reset" else None)
        records, diverged = _sgd(model, data, cfg, epochs, cfg.lr, seed, device, interval, bar,
                                 save, resume, best_file, reset)
        extra = {"momentum_reset": reset} if reset is not None else {}
    bar.close()
    # the final parent is reported, not the best (as the reference code, Ding & Spector 2022, §4)
    final = final_accuracy(data, model, cfg.fast_path())
    result = {"arm": arm, "seed": seed, "test_acc": final["test_acc"], "val_acc": final["val_acc"],
              "val_size": len(data.val), "seconds": time.perf_counter() - start,
              "diverged": diverged, "device": str(device), "host": socket.gethostname(), **extra,
              **regime(cfg, len(data.train), data.augment),
              "feature_erank": feature_effective_rank(model, data.test.x),
              **class_results(data, model, records if cfg.diagnostics else None),
              **(compile_record() if cfg.compile else {})}
    rd = RunDir.open(out)
    if data.meta.get("regime"):         # the class order and the flipped labels of the seed
        rd.write_json("regime.json", data.meta["regime"])
    rd.write_logbook(records)
    rd.save_weights(model.state_dict(), "model.pt")
    rd.write_json("result.json", result)
    return result


__all__ = ["run_job"]
