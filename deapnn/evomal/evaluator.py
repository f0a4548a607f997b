"""EvoMAL fitness evaluation (Raymond et al. 2023, TPAMI §4.5-4.7, Algorithm 1 lines 6-18).

One evaluation of a loss tree: (1) argument check, (2) local search of the edge weights by
unrolled differentiation (§4.5), (3) the rejection protocol (§4.6) on the learned loss — the
outputs of a fresh base network for the first training rows, optimised towards their labels —,
(4) a fresh base network trained for ``fitness_steps`` SGD steps [500, batch 128] with the learned
meta-loss, (5) fitness = validation error rate (classification) or validation MSE (regression),
lower is better. With ``rejection="before"`` the protocol screens the unweighted tree on random
predictions and targets before (2) instead (:mod:`deapnn.evomal.rejection`).

:class:`EvoMALEvaluator` is a picklable callable (SCOOP ships it to workers); it takes the tree
*string* and **returns** everything to keep as a :class:`deapnn.evaluation.Evaluation` — the
fitness, and in ``info`` the tree, the reason it was scored worst, the learned weights and
expression — because in-place changes made by a worker are lost. Every random draw derives from
:func:`evaluation_seed` — by default one seed for every candidate (common random numbers, as the
reference), optionally one per tree string — so the result does not depend on which worker runs
it, and it never touches the global RNGs of the calling process. A rejected candidate (§4.6
filters, a diverging local search or training) gets fitness ∞ with ``info["reason"]``; an
exception, a timeout or an out-of-memory gets fitness ∞ with the evaluation's ``error``.
"""
from __future__ import annotations

import torch

from deapnn.losses.metaloss import MetaLossNetwork
from deapnn.losses.tree import TreeLoss, missing_arguments, parse_tree
from deapnn.losses.unrolled import UnrolledDivergence, local_search
from deapnn.data import cached_dataset
from deapnn.evaluation import Evaluation
from deapnn.loss_training import WORST, LossTraining, task_error, train_with_loss
from deapnn.evomal.config import EvoMALConfig
from deapnn.evomal.rejection import reference_rejection, rejection_protocol
from deapnn.runtime import derive_seed

def build_base_model(cfg: EvoMALConfig, data, seed: int):
    """A freshly initialised base network (seeded, global RNG untouched): ``cfg.model`` (the MLP
    with :meth:`~deapnn.evomal.config.EvoMALConfig.hidden_of_model`, by default the reference's
    1000×1000) initialised with ``cfg.init`` (by default the reference's ``reset()``:
    Xavier-uniform weights, zero biases). Every network EvoMAL trains is built here: the
    local search's template, the rejection network, the fitness and the final trainings."""
    from deapnn.models.init import initialise
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        hidden = cfg.hidden_of_model()
        if hidden is not None:
            from deapnn.models.small import MLP
            model = MLP(data.input_shape, data.num_classes, hidden=hidden)
        else:
            from deapnn.models import build_model
            model = build_model(cfg.model, data.input_shape, data.num_classes)
        return model if cfg.init == "pytorch" else initialise(model, cfg.init)


def training_recipe(cfg: EvoMALConfig, steps: int, eval_every: int = 0,
                    milestones: tuple = ()) -> LossTraining:
    """How EvoMAL trains a base network with a loss (§4.7): ``cfg``'s SGD settings (by default
    the reference's for the dataset, a constant learning rate), batches of ``cfg.batch_size``
    from successive shuffled passes over the training split, ``steps`` steps; with
    ``milestones`` (the final training's) the learning rate × ``cfg.gamma`` at each of those
    steps instead of ``cfg``'s schedule; test/validation every ``eval_every`` steps (0: never)."""
    sgd = cfg.sgd().to_dict()
    if milestones:
        sgd.update(schedule="step", milestones=tuple(milestones))
    return LossTraining(**sgd, steps=steps, eval_every=eval_every)


def final_recipe(cfg, eval_every: int = 0) -> LossTraining:
    """The final training (meta-testing) of an
    :class:`~deapnn.evomal.config.EvoMALRunConfig`: :func:`training_recipe` for
    :meth:`~deapnn.evomal.config.EvoMALRunConfig.steps_of_final` steps with its
    :meth:`~deapnn.evomal.config.EvoMALRunConfig.milestones_of_final`."""
    return training_recipe(cfg, cfg.steps_of_final(), eval_every, cfg.milestones_of_final())


def evaluation_seed(cfg: EvoMALConfig, tree_string: str) -> int:
    """The seed every random draw of one evaluation derives from (edge-weight initialisation,
    local-search networks and batches, rejection network, fitness network and batch order).
    ``fitness_seed="common"``: the same for every candidate (common random numbers, as the
    reference reseeds before building each base network), so candidates are ranked on the
    same initialisations and batches; ``"per_tree"``: derived from the tree string."""
    if cfg.fitness_seed == "per_tree":
        return derive_seed(cfg.seed, tree_string)
    return derive_seed(cfg.seed, "common")


def batch_seed(seed: int) -> int:
    """The seed of the batch order of a training seeded with ``seed``."""
    return derive_seed(seed, "fitness-batches")


def split_errors(data, splits, device, fast=None):
    """``evaluate(model, step)`` for :func:`deapnn.loss_training.train_with_loss`: the task
    error (lower is better) on each named split (``fast``: see
    :func:`~deapnn.loss_training.task_error`)."""
    tensors = [(getattr(data, name).x.to(device), getattr(data, name).y.to(device))
               for name in splits]
    return lambda model, step: tuple(task_error(model, x, y, data.task, fast)
                                     for x, y in tensors)


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
        return self.data if self.data is not None else cached_dataset(
            self.config.dataset, self.config.seed, self.config.root, **self.config.regime())

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
        seed = evaluation_seed(cfg, tree_string)
        tree = parse_tree(tree_string)
        missing = missing_arguments(tree)
        if missing:
            info.update(reason=f"tree does not use {' and '.join(missing)}", rejected=True)
            return WORST
        if cfg.rejection == "before":
            symbolic = TreeLoss(tree, task=data.task, nonnegative=cfg.nonnegative)
            rej = rejection_protocol(symbolic, data.task, data.num_classes, cfg.rejection_samples,
                                     cfg.steps_of_rejection(), cfg.rejection_lr,
                                     derive_seed(seed, "reject"))
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
        if cfg.rejection == "reference":
            screen = build_base_model(cfg, data, derive_seed(seed, "rejection-init")).to(device)
            n = cfg.rejection_samples      # the first n training rows only reach the device
            rej = reference_rejection(net, screen, data.train.x[:n].to(device),
                                      data.train.y[:n].to(device), data.task, n,
                                      cfg.steps_of_rejection(), cfg.rejection_lr)
            if not rej.accepted:
                info.update(reason=rej.reason, rejected=True)
                return WORST
        model = build_base_model(cfg, data, derive_seed(seed, "fitness-init"))
        fast = cfg.fast_path()
        reason = train_with_loss(model, net, data, training_recipe(cfg, cfg.fitness_steps),
                                 batch_seed=batch_seed(seed), device=device, fast=fast).reason
        if reason:
            info["reason"] = f"training with the learned loss diverged: {reason}"
            return WORST
        fitness = task_error(model, data.val.x.to(device), data.val.y.to(device), data.task,
                             fast)
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
