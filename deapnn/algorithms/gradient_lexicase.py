"""``eaGradientLexicase``: the generation loop of Gradient Lexicase Selection (Ding & Spector 2022,
ICLR, §3, Algorithm 1).

Per generation: the parent is copied into p children (or, at generation 0 with
``init="independent"``, children are fresh networks as in the reference code), the children are
mutated with subset gradient descent (``toolbox.mutate`` = :func:`operators.mutSubGD`) at the
generation's cosine learning rate, and one child is chosen by ``toolbox.select`` (lexicase over
training cases, :func:`operators.selGradientLexicase`; :func:`operators.selRandomChild` for the
random-selection ablation). The winner becomes the parent. The toolbox contract is declared in
:mod:`deapnn.algorithms.contracts`.

Every random draw of a generation comes from generators seeded with ``derive_seed(seed, g)``, and
the loop state is checkpointed after each generation, so a killed run resumed from its checkpoint
ends bit-identical to an uninterrupted one on CPU.
"""
from __future__ import annotations

import copy
import dataclasses
import time

import numpy as np
import torch
from deap import tools

from ..checkpoint import restoring
from ..config import Check, Config, Interval, Options
from ..deprecation import renamed
from ..runtime import derive_seed
from ..training import TrainConfig, make_optimizer, scheduled_lr, set_lr
from .support import logbook_records, restore_logbook

MOMENTUM_MODES = ("reset", "inherit", "none")
INIT_MODES = ("clone", "independent")


@dataclasses.dataclass
class GLSLoopConfig(Config):
    """The loop settings :func:`eaGradientLexicase` accepts, with their constraints declared once
    (``deapnn.gls.GLSConfig`` reuses them)."""
    population_size: int = 4
    momentum_mode: str = "reset"
    init: str = "clone"
    ngen: int = 0

    _parameter_constraints = {
        "population_size": [Check(lambda v: isinstance(v, int) and not isinstance(v, bool)
                                  and v >= 2, "an integer >= 2 (selection needs two children)")],
        "momentum_mode": [Options(MOMENTUM_MODES)],
        "init": [Options(INIT_MODES)],
        "ngen": [Interval(int, 0, None)],
    }


def checkpoint_logbook(state: dict) -> tools.Logbook:
    """The logbook stored in a checkpoint of :func:`eaGradientLexicase` (the
    :func:`~deapnn.algorithms.support.logbook_records` layout, or the list of records that
    checkpoints written before it hold)."""
    data = state["logbook"]
    return restore_logbook(data if isinstance(data, dict) else {"records": data})


def _optimizers(children, cfg: TrainConfig, momentum_mode: str, inherited: dict | None):
    """One SGD optimizer per child. ``reset``: fresh state (the reference); ``inherit``: each
    child starts from its own copy of the selected parent's momentum buffers; ``none``: plain SGD
    without momentum.

    ``Optimizer.load_state_dict`` keeps the tensors it is given (it copies nothing when device and
    dtype already match), so each child loads a deep copy: loading ``inherited`` itself would make
    all children step one shared buffer, in place."""
    if momentum_mode == "none":
        cfg = dataclasses.replace(cfg, momentum=0.0, nesterov=False)
    opts = [make_optimizer(child.parameters(), cfg) for child in children]
    if momentum_mode == "inherit" and inherited is not None:
        for opt in opts:
            opt.load_state_dict(copy.deepcopy(inherited))
    return opts


def eaGradientLexicase(parent: torch.nn.Module, toolbox, ngen: int, *, cfg: TrainConfig,
                       population_size: int = 4, momentum_mode: str = "reset",
                       init: str = "clone", seed: int = 0, eval_interval: int = 0, stats=None,
                       halloffame=None, checkpoint=None, resume_state: dict | None = None,
                       progress=None, verbose: bool = False, pop_size: int | None = None,
                       momentum: str | None = None):
    """Evolve ``parent``'s weights for ``ngen`` generations of Gradient Lexicase Selection.

    Per generation the parent is copied into ``population_size`` children, the children are
    trained by ``toolbox.mutate`` (subset gradient descent) at the generation's learning rate,
    one child is chosen by ``toolbox.select`` and becomes the parent (a diverged winner leaves
    the parent as it was). Every random draw of generation ``g`` comes from generators seeded with
    ``derive_seed(seed, "gls", g)``, so a run resumed from a checkpoint ends bit-identical to an
    uninterrupted one on CPU.

    Parameters
    ----------
    parent : torch.nn.Module
        The network, trained in place.
    toolbox : deap.base.Toolbox
        With ``mutate`` a :class:`~deapnn.algorithms.contracts.GLSMutate` (e.g.
        :func:`operators.mutSubGD` with ``x, y`` bound), ``select`` a
        :class:`~deapnn.algorithms.contracts.GLSSelect` (e.g. :func:`operators.selGradientLexicase`,
        or :func:`operators.selRandomChild` for the ablation); optionally ``evaluate`` a
        :class:`~deapnn.algorithms.contracts.GLSEvaluate` (metrics of the parent, e.g. validation
        accuracy), ``model`` a :class:`~deapnn.algorithms.contracts.GLSModelFactory` (needed for
        ``init="independent"``) and ``diagnose`` a :class:`~deapnn.algorithms.contracts.GLSDiagnose`
        (``diagnose(children, winner_index, select_info) -> dict``, called after selection).
    ngen : int
        Number of generations (>= 0).
    cfg : deapnn.training.TrainConfig
        ``lr`` (the learning rate follows ``cfg.schedule``, by default a cosine from ``lr`` to 0
        over all generations, constant within a generation), momentum, Nesterov and weight decay
        of the children's SGD optimizers.
    population_size : int, optional
        p, the children per generation (>= 2; default 4).
    momentum_mode : {"reset", "inherit", "none"}, optional
        ``"reset"`` (default, the reference code): fresh optimizer state every generation;
        ``"inherit"``: each child starts from its own copy of the winner's momentum buffers;
        ``"none"``: plain SGD without momentum.
    init : {"clone", "independent"}, optional
        ``"clone"`` (default): the children of generation 0 are copies of ``parent``;
        ``"independent"``: fresh networks from ``toolbox.model`` (the reference code).
    seed : int, optional
        Run seed every generation's generators derive from (default 0).
    eval_interval : int, optional
        Call ``toolbox.evaluate`` every this many generations (0, the default: only after the
        last one).
    stats : deap.tools.Statistics, optional
        Applied to the children after selection (e.g. on their ``train_loss``).
    halloffame : object, optional
        Unused (the lineage has one member); accepted for DEAP signature compatibility.
    checkpoint : callable, optional
        ``checkpoint(state)`` after each generation, with the full loop state (generation,
        parent weights, inherited optimizer state, logbook).
    resume_state : dict, optional
        A state given to ``checkpoint`` earlier: the run continues after its generation.
    progress : object, optional
        tqdm-like; ``update(1)`` per generation.
    verbose : bool, optional
        Print the logbook stream.
    pop_size : int, optional
        Former name of ``population_size`` (deprecated; removed in deapnn 0.3.0).
    momentum : str, optional
        Former name of ``momentum_mode`` (deprecated; removed in deapnn 0.3.0: ``momentum``
        is the SGD momentum number of ``cfg``).

    Returns
    -------
    parent : torch.nn.Module
        The evolved network (the same object).
    logbook : deap.tools.Logbook
        One record per generation: ``gen, lr, train_loss, select_time, mutate_time,
        cases_examined, survivors, winner, steps_per_child`` (the fewest optimizer steps a child
        took, when ``mutate`` reports them as ``child.subgd_steps``), ``diverged`` when the winner
        diverged, plus what ``evaluate``, ``diagnose`` and ``stats`` return.

    Raises
    ------
    deapnn.config.ConfigError
        On an invalid ``population_size``, ``momentum_mode``, ``init`` or ``ngen``.

    Examples
    --------
    >>> import torch
    >>> from deap import base
    >>> from deapnn.algorithms import eaGradientLexicase
    >>> from deapnn.training import TrainConfig
    >>> from deapnn.operators import mutSubGD, selGradientLexicase
    >>> x, y = torch.randn(128, 4), torch.randint(0, 3, (128,))
    >>> toolbox = base.Toolbox()
    >>> toolbox.register("mutate", mutSubGD, x=x, y=y, batch_size=16)
    >>> toolbox.register("select", selGradientLexicase, x=x, y=y)
    >>> parent, logbook = eaGradientLexicase(torch.nn.Linear(4, 3), toolbox, ngen=3,
    ...                                      cfg=TrainConfig(lr=0.1), population_size=2)
    >>> logbook.select("gen")
    [1, 2, 3]

    References
    ----------
    Ding & Spector 2022, "Optimizing neural networks with gradient lexicase selection" (ICLR), §3
    and Algorithm 1 (the loop), §3.2 (subset gradient descent), §3.3 (lexicase selection);
    ``docs/faithfulness.md`` lists every element against the paper and the reference code.
    """
    if pop_size is not None:
        renamed("eaGradientLexicase(pop_size=)", "population_size=")
        population_size = pop_size
    if momentum is not None:
        renamed("eaGradientLexicase(momentum=)", "momentum_mode= (momentum is the SGD number "
                "of cfg)")
        momentum_mode = momentum
    GLSLoopConfig(population_size, momentum_mode, init, ngen)
    logbook = tools.Logbook()
    start_gen, inherited = 0, None
    if resume_state is not None:
        with restoring():
            parent.load_state_dict(resume_state["parent"])
            inherited = resume_state.get("optimizer")
            start_gen = int(resume_state["generation"])
            logbook = checkpoint_logbook(resume_state)
        if progress is not None:
            progress.update(start_gen)
    device = next(parent.parameters()).device
    children = [copy.deepcopy(parent) for _ in range(population_size)]
    for gen in range(start_gen, ngen):
        g_seed = derive_seed(seed, "gls", gen)
        torch.manual_seed(g_seed)
        if init == "independent" and gen == 0:
            children = [toolbox.model().to(device) for _ in range(population_size)]
        else:
            state = parent.state_dict()
            for child in children:
                child.load_state_dict(state)
        lr = scheduled_lr(cfg, gen, ngen)
        optimizers = _optimizers(children, cfg, momentum_mode, inherited)
        for opt in optimizers:
            set_lr(opt, lr)
        t0 = time.perf_counter()
        toolbox.mutate(children, optimizers=optimizers,
                       generator=torch.Generator().manual_seed(g_seed),
                       augment_generator=torch.Generator(device=device).manual_seed(g_seed + 1))
        t1 = time.perf_counter()
        info: dict = {}
        winner = toolbox.select(children, 1, rng=np.random.default_rng(g_seed), info=info)[0]
        t2 = time.perf_counter()
        w = children.index(winner)
        if getattr(winner, "diverged", None):
            record = dict(gen=gen + 1, lr=lr, diverged=winner.diverged)   # keep the old parent
        else:
            parent.load_state_dict(winner.state_dict())
            if momentum_mode == "inherit":
                inherited = copy.deepcopy(optimizers[w].state_dict())
            record = dict(gen=gen + 1, lr=lr, train_loss=winner.train_loss)
        record.update(mutate_time=t1 - t0, select_time=t2 - t1,
                      cases_examined=info.get("cases_examined"),
                      survivors=info.get("survivors_per_chunk"), winner=w)
        steps = [getattr(c, "subgd_steps", None) for c in children]
        if None not in steps:
            record["steps_per_child"] = min(s for s in steps if s is not None)
        if hasattr(toolbox, "diagnose"):
            record.update(toolbox.diagnose(children, w, info))
        if stats is not None:
            record.update(stats.compile(children))
        last = gen + 1 == ngen
        if hasattr(toolbox, "evaluate") and ((eval_interval and (gen + 1) % eval_interval == 0)
                                             or last):
            record.update(toolbox.evaluate(parent))
        logbook.record(**record)
        if verbose:
            print(logbook.stream)
        if progress is not None:
            progress.update(1)
            if "train_loss" in record:
                progress.set_postfix(loss=f"{record['train_loss']:.4f}")
        if checkpoint is not None:
            checkpoint({"generation": gen + 1, "parent": parent.state_dict(),
                        "optimizer": inherited, "logbook": logbook_records(logbook)})
    return parent, logbook
