"""EvoMAL fitness evaluation (Raymond et al. 2023, TPAMI §4.5-4.7, Algorithm 1 lines 6-18).

One evaluation of a loss tree: (1) argument check, (2) rejection protocol on free predictions
(§4.6), (3) local search of the edge weights by unrolled differentiation (§4.5), (4) a fresh base
network trained for ``fitness_steps`` SGD steps [500, batch 128] with the learned meta-loss, (5)
fitness = validation error rate (classification) or validation MSE (regression), lower is better.

:class:`EvoMALEvaluator` is a picklable callable (SCOOP ships it to workers); it takes the tree
*string* and **returns** everything to keep — fitness, reason, learned weights and expression —
because in-place changes made by a worker are lost (DESIGN). It seeds itself from
``derive_seed(run_seed, tree string)``, so the result does not depend on which worker runs it, and
it never touches the global RNGs of the calling process. Any exception, NaN or divergence gives
fitness ∞ with the reason recorded (DESIGN "Failure is data").
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields

import torch
import torch.nn.functional as F

from deapnn.losses.metaloss import MetaLossNetwork
from deapnn.losses.tree import TreeLoss, missing_arguments, parse_tree
from deapnn.losses.unrolled import LocalSearchConfig, UnrolledDivergence, local_search
from deapnn.evomal.rejection import rejection_protocol
from deapnn.runtime import derive_seed

WORST = float("inf")


@dataclass
class EvoMALConfig:
    """Everything an evaluation needs (plain data, picklable). Defaults: SPEC §4 / reference."""
    dataset: str = "diabetes"
    seed: int = 0
    model: str = "mlp"
    hidden: tuple | None = None          # MLP hidden sizes override (tests, quick demos)
    meta_steps: int = 250
    inner_steps: int = 1
    meta_lr: float = 1e-3
    lr: float = 0.01                     # base learner SGD (inner steps and fitness training)
    momentum: float = 0.9
    nesterov: bool = True
    weight_decay: float = 5e-4
    batch_size: int = 128
    fitness_steps: int = 500
    rejection_samples: int = 100
    rejection_steps: int = 1000
    rejection_lr: float = 0.01
    nonnegative: bool = False
    device: str | None = None

    def local_search_config(self) -> LocalSearchConfig:
        return LocalSearchConfig(meta_steps=self.meta_steps, inner_steps=self.inner_steps,
                                 meta_lr=self.meta_lr, inner_lr=self.lr, momentum=self.momentum,
                                 nesterov=self.nesterov, weight_decay=self.weight_decay,
                                 batch_size=self.batch_size, val_batch_size=self.batch_size)

    def validate(self) -> "EvoMALConfig":
        """Raise ``ValueError`` naming the first bad value (before any training)."""
        self.local_search_config().validate()
        for name in ("fitness_steps", "rejection_samples", "rejection_steps"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < (0 if name == "fitness_steps" else 1):
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        return self

    def to_dict(self) -> dict:
        d = asdict(self)
        d["hidden"] = list(self.hidden) if self.hidden is not None else None
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "EvoMALConfig":
        known = {f.name for f in fields(cls)}
        d = {k: v for k, v in d.items() if k in known}
        if d.get("hidden") is not None:
            d["hidden"] = tuple(d["hidden"])
        return cls(**d)


_DATA_CACHE: dict = {}


def get_data(name: str, seed: int):
    """The dataset, loaded once per worker process (``deapnn.data.load_dataset``)."""
    key = (name, seed)
    if key not in _DATA_CACHE:
        from deapnn.data import load_dataset
        _DATA_CACHE[key] = load_dataset(name, seed=seed)
    return _DATA_CACHE[key]


def build_base_model(cfg: EvoMALConfig, data, seed: int):
    """A freshly initialised base network (seeded, global RNG untouched)."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        if cfg.hidden is not None and cfg.model == "mlp":
            from deapnn.models.small import MLP
            return MLP(data.input_shape, data.num_classes, hidden=tuple(cfg.hidden))
        from deapnn.models import build_model
        return build_model(cfg.model, data.input_shape, data.num_classes)


def step_batches(n: int, batch_size: int, steps: int, gen: torch.Generator):
    """``steps`` index batches from successive shuffled passes over ``n`` examples."""
    done, order = 0, torch.empty(0, dtype=torch.long)
    while done < steps:
        if len(order) < min(batch_size, n):
            order = torch.randperm(n, generator=gen)
        yield order[:batch_size]
        order = order[batch_size:]
        done += 1


@torch.no_grad()
def score(model, x, y, task: str) -> float:
    """Validation/test error rate (classification) or MSE (regression); non-finite → ∞."""
    model.eval()
    out = torch.cat([model(xb) for xb in x.split(1024)])
    model.train()
    if not torch.isfinite(out).all():
        return WORST
    if task == "classification":
        pred = (out.reshape(-1) > 0).long() if out.shape[1] == 1 else out.argmax(1)
        return float((pred != y.reshape(pred.shape)).double().mean())
    value = float(F.mse_loss(out, y.reshape(out.shape).to(out.dtype)))
    return value if math.isfinite(value) else WORST


def train_with_loss(model, loss_fn, data, cfg: EvoMALConfig, steps: int, seed: int, device,
                    eval_every: int = 0, eval_split: str | tuple = "val"):
    """SGD [lr, momentum, Nesterov, weight decay of ``cfg``] for ``steps`` steps of batch
    ``cfg.batch_size`` with ``loss_fn``. Returns ``(curve, reason)``: ``curve`` lists
    ``(step, metric on eval_split)`` every ``eval_every`` steps — with a tuple of splits,
    ``(step, metric on the first, metric on the second, ...)``; ``reason`` is None or why training
    stopped (non-finite loss). Evaluation consumes no randomness, so the trained network does not
    depend on ``eval_every``."""
    from deapnn.training import TrainConfig, make_optimizer, train_steps
    model.to(device)
    train = data.train
    x, y = train.x.to(device), train.y.to(device)
    splits = (eval_split,) if isinstance(eval_split, str) else tuple(eval_split)
    evals = [(getattr(data, name).x.to(device), getattr(data, name).y.to(device))
             for name in splits]
    opt = make_optimizer(model.parameters(), TrainConfig(lr=cfg.lr, momentum=cfg.momentum,
                                                         nesterov=cfg.nesterov,
                                                         weight_decay=cfg.weight_decay))
    gen = torch.Generator().manual_seed(derive_seed(seed, "fitness-batches"))
    batches = step_batches(len(x), cfg.batch_size, steps, gen)
    curve, done, chunk = [], 0, eval_every or steps

    def point(step):
        return (step, *(score(model, ex, ey, data.task) for ex, ey in evals))

    if eval_every:
        curve.append(point(0))
    while done < steps:
        n = min(chunk, steps - done)
        chunk_batches = [next(batches) for _ in range(n)]
        _, reason = train_steps(model, opt, x, y, loss_fn, chunk_batches)
        done += n
        if reason:
            return curve, reason
        if eval_every:
            curve.append(point(done))
    return curve, None


class EvoMALEvaluator:
    """Picklable fitness function: ``evaluator(tree_string) -> dict`` with keys ``fitness``
    (float, ∞ = rejected/failed), ``reason``, ``rejected``, ``weights`` (learned edge weights),
    ``expression`` (formula with weights), ``tree`` and ``meta_loss`` (first/last local-search
    task loss). ``data`` may be given directly (tests); otherwise it is loaded by name per worker.
    """

    def __init__(self, config: EvoMALConfig, data=None):
        self.config = config.validate()
        self.data = data

    def _data(self):
        return self.data if self.data is not None else get_data(self.config.dataset, self.config.seed)

    def __call__(self, tree_string) -> dict:
        tree_string = str(tree_string)
        record = {"tree": tree_string, "fitness": WORST, "reason": None, "rejected": False,
                  "weights": [], "expression": tree_string, "meta_loss": []}
        try:
            return self._evaluate(tree_string, record)
        except UnrolledDivergence as exc:
            record.update(reason=f"local search diverged: {exc}", rejected=True)
        except Exception as exc:  # failure is data (timeouts, OOM included): the run goes on
            from deapnn.failsafe import describe
            record["reason"] = record["error"] = describe(exc)   # frees the CUDA cache on OOM
        return record

    def _evaluate(self, tree_string: str, record: dict) -> dict:
        cfg, data = self.config, self._data()
        from deapnn.runtime import get_device, set_device
        if cfg.device:
            set_device(cfg.device)
        device = get_device()
        seed = derive_seed(cfg.seed, tree_string)
        tree = parse_tree(tree_string)
        missing = missing_arguments(tree)
        if missing:
            record.update(reason=f"tree does not use {' and '.join(missing)}", rejected=True)
            return record
        symbolic = TreeLoss(tree, task=data.task, nonnegative=cfg.nonnegative)
        rej = rejection_protocol(symbolic, data.task, data.num_classes, cfg.rejection_samples,
                                 cfg.rejection_steps, cfg.rejection_lr, derive_seed(seed, "reject"))
        if not rej.accepted:
            record.update(reason=rej.reason, rejected=True)
            return record
        net = MetaLossNetwork(tree, task=data.task, nonnegative=cfg.nonnegative,
                              seed=derive_seed(seed, "edges"))
        template = build_base_model(cfg, data, derive_seed(seed, "template"))
        ls = local_search(net, template, (data.train.x, data.train.y), (data.val.x, data.val.y),
                          data.task, cfg.local_search_config(), seed, device)
        record.update(weights=ls.weights, expression=net.to_expression(),
                      meta_loss=[ls.losses[0], ls.losses[-1]] if ls.losses else [])
        net.requires_grad_(False)
        model = build_base_model(cfg, data, derive_seed(seed, "fitness-init"))
        _, reason = train_with_loss(model, net, data, cfg, cfg.fitness_steps, seed, device)
        if reason:
            record["reason"] = f"training with the learned loss diverged: {reason}"
            return record
        fitness = score(model, data.val.x.to(device), data.val.y.to(device), data.task)
        record["fitness"] = fitness
        if not fitness < WORST:
            record["reason"] = "non-finite validation outputs"
        return record


def failed_record(tree_string, reason: str) -> dict:
    """EvoMAL record of an evaluation that failed outside the evaluator: fitness ∞ + reason."""
    return {"tree": str(tree_string), "fitness": WORST, "reason": reason, "error": reason,
            "rejected": False, "weights": [], "expression": str(tree_string), "meta_loss": []}


class _FailedRecord:
    """Picklable ``worst`` for :class:`deapnn.failsafe.Guarded` (the tree is not known there)."""

    def __call__(self, reason: str) -> dict:
        return failed_record("?", reason)


def guarded_evaluator(config: EvoMALConfig, data=None, timeout: float | None = None):
    """:class:`EvoMALEvaluator` under :class:`deapnn.failsafe.Guarded`: a timeout
    (``--eval-timeout``, ``DEAPNN_EVAL_TIMEOUT``) or an escaping error gives fitness ∞ + reason."""
    from deapnn.failsafe import Guarded, default_timeout
    return Guarded(EvoMALEvaluator(config, data), _FailedRecord(),
                   timeout if timeout is not None else default_timeout())
