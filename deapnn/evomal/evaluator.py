"""EvoMAL fitness evaluation (Raymond et al. 2023, TPAMI §4.5-4.7, Algorithm 1 lines 6-18).

One evaluation of a loss tree: (1) argument check, (2) rejection protocol on free predictions
(§4.6), (3) local search of the edge weights by unrolled differentiation (§4.5), (4) a fresh base
network trained for ``fitness_steps`` SGD steps [500, batch 128] with the learned meta-loss, (5)
fitness = validation error rate (classification) or validation MSE (regression), lower is better.

:class:`EvoMALEvaluator` is a picklable callable (SCOOP ships it to workers); it takes the tree
*string* and **returns** everything to keep as a :class:`deapnn.evaluation.Evaluation` — the
fitness, and in ``info`` the tree, the reason it was scored worst, the learned weights and
expression — because in-place changes made by a worker are lost. It seeds itself from
``derive_seed(run_seed, tree string)``, so the result does not depend on which worker runs it, and
it never touches the global RNGs of the calling process. A rejected candidate (§4.6 filters, a
diverging local search or training) gets fitness ∞ with ``info["reason"]``; an exception, a
timeout or an out-of-memory gets fitness ∞ with the evaluation's ``error``.
"""
from __future__ import annotations

import math
import torch
import torch.nn.functional as F

from deapnn.losses.metaloss import MetaLossNetwork
from deapnn.losses.tree import TreeLoss, missing_arguments, parse_tree
from deapnn.losses.unrolled import UnrolledDivergence, local_search
from deapnn.evaluation import Evaluation
from deapnn.evomal.config import EvoMALConfig
from deapnn.evomal.rejection import rejection_protocol
from deapnn.runtime import derive_seed

WORST = float("inf")


_DATA_CACHE: dict = {}


def get_data(name: str, seed: int):
    """The dataset, loaded once per worker process (``deapnn.data.load_dataset``)."""
    key = (name, seed)
    if key not in _DATA_CACHE:
        from deapnn.data import load_dataset
        _DATA_CACHE[key] = load_dataset(name, seed=seed)
    return _DATA_CACHE[key]


def cache_dataset(data, name: str, seed: int) -> None:
    """Make :func:`get_data` return ``data`` for ``(name, seed)`` in this process (the run has
    loaded it already: evaluations running in-process reuse it)."""
    _DATA_CACHE[(name, seed)] = data


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
    """Picklable fitness function: ``evaluator(tree_string) -> Evaluation`` with the fitness
    (∞ = rejected or failed) and ``info`` keys ``tree``, ``reason`` (why it was scored worst, or
    None), ``rejected`` (by a §4.6 filter or a diverging local search), ``weights`` (learned edge
    weights), ``expression`` (formula with weights) and ``meta_loss`` (first/last local-search
    task loss); ``error`` is set when the evaluation itself failed (exception, out-of-memory,
    timeout). ``data`` may be given directly (tests); otherwise it is loaded by name per worker.
    """

    def __init__(self, config: EvoMALConfig, data=None):
        self.config = config.validate()
        self.data = data

    def _data(self):
        return self.data if self.data is not None else get_data(self.config.dataset, self.config.seed)

    def __call__(self, tree_string) -> Evaluation:
        tree_string = str(tree_string)
        info = {"tree": tree_string, "reason": None, "rejected": False, "weights": [],
                "expression": tree_string, "meta_loss": []}
        try:
            fitness = self._evaluate(tree_string, info)
        except UnrolledDivergence as exc:
            info.update(reason=f"local search diverged: {exc}", rejected=True)
            fitness = WORST
        except Exception as exc:  # failure is data (timeouts, OOM included): the run goes on
            from deapnn.failsafe import describe
            return Evaluation.failure((WORST,), describe(exc), **info)  # frees CUDA cache on OOM
        return Evaluation((fitness,), info)

    def _evaluate(self, tree_string: str, info: dict) -> float:
        """The fitness of ``tree_string``; fills ``info`` along the way."""
        cfg, data = self.config, self._data()
        from deapnn.runtime import get_device, set_device
        if cfg.device:
            set_device(cfg.device)
        device = get_device()
        seed = derive_seed(cfg.seed, tree_string)
        tree = parse_tree(tree_string)
        missing = missing_arguments(tree)
        if missing:
            info.update(reason=f"tree does not use {' and '.join(missing)}", rejected=True)
            return WORST
        symbolic = TreeLoss(tree, task=data.task, nonnegative=cfg.nonnegative)
        rej = rejection_protocol(symbolic, data.task, data.num_classes, cfg.rejection_samples,
                                 cfg.rejection_steps, cfg.rejection_lr, derive_seed(seed, "reject"))
        if not rej.accepted:
            info.update(reason=rej.reason, rejected=True)
            return WORST
        net = MetaLossNetwork(tree, task=data.task, nonnegative=cfg.nonnegative,
                              seed=derive_seed(seed, "edges"))
        template = build_base_model(cfg, data, derive_seed(seed, "template"))
        ls = local_search(net, template, (data.train.x, data.train.y), (data.val.x, data.val.y),
                          data.task, cfg.local_search_config(), seed, device)
        info.update(weights=ls.weights, expression=net.to_expression(),
                    meta_loss=[ls.losses[0], ls.losses[-1]] if ls.losses else [])
        net.requires_grad_(False)
        model = build_base_model(cfg, data, derive_seed(seed, "fitness-init"))
        _, reason = train_with_loss(model, net, data, cfg, cfg.fitness_steps, seed, device)
        if reason:
            info["reason"] = f"training with the learned loss diverged: {reason}"
            return WORST
        fitness = score(model, data.val.x.to(device), data.val.y.to(device), data.task)
        if not fitness < WORST:
            info["reason"] = "non-finite validation outputs"
        return fitness


def guarded_evaluator(config: EvoMALConfig, data=None, timeout: float | None = None):
    """:class:`EvoMALEvaluator` under :class:`deapnn.failsafe.Guarded`: a timeout
    (``--eval-timeout``, ``DEAPNN_EVAL_TIMEOUT``) or an escaping error gives fitness ∞ and the
    evaluation's ``error`` (the generation loop records which tree it was)."""
    from deapnn.failsafe import Guarded, default_timeout
    return Guarded(EvoMALEvaluator(config, data), (WORST,),
                   timeout if timeout is not None else default_timeout())
