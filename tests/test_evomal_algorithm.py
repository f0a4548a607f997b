"""eaEvoMAL generation loop (Raymond et al. 2023 §4, Algorithm 1): archive, elitism, resume."""
import random

import pytest
import torch
from deap import tools

from deapnn.algorithms.evomal import eaEvoMAL
from deapnn.checkpoint import load_checkpoint, save_checkpoint
from deapnn.evaluation import Evaluation
from deapnn.evomal.toolbox import fitness_stats, make_toolbox
from deapnn.losses.archive import LossArchive, to_sympy
from deapnn.losses.tree import missing_arguments
from deapnn.runtime import derive_seed, seed_everything

CALLS = []


def fake_evaluate(text):
    """Deterministic stand-in for the (expensive) EvoMAL evaluation."""
    CALLS.append(text)
    if "sign" in text:
        return Evaluation((float("inf"),), {"reason": "rejected: sign", "tree": text})
    return Evaluation(((derive_seed(text) % 1000) / 1000 + 0.01 * len(text),),
                      {"reason": None, "tree": text})


def test_archive_by_tree_keys_the_exact_tree_and_old_states_by_fingerprint():
    arch = LossArchive("classification", num_classes=4)
    assert arch.by == "tree"
    arch.add("add(y, fx)", {"fitness": 0.5})
    assert "add(fx, y)" not in arch and arch.get("add(fx, y)") is None and arch.misses == 1
    assert arch.get("add(y, fx)")["fitness"] == 0.5 and arch.hits == 1
    assert LossArchive.from_state(arch.state()).by == "tree"
    old = arch.state()                       # a checkpoint written before the key was chosen
    del old["by"]
    assert LossArchive.from_state(old).by == "fingerprint"
    with pytest.raises(ValueError, match="built with"):
        arch.load_state(old)


def test_archive_equivalences_and_rejected_entries():
    arch = LossArchive("classification", num_classes=4, by="fingerprint")
    arch.add("add(y, fx)", {"fitness": 0.5})
    assert "add(fx, y)" in arch and arch.key("add(y, fx)") == arch.key("add(fx, y)")
    assert arch.get("add(fx, y)")["fitness"] == 0.5 and arch.hits == 1
    assert arch.key("mul(y, fx)") == arch.key("mul(fx, y)")
    assert arch.key("sub(y, fx)") != arch.key("sub(fx, y)")
    assert arch.key("add(y, fx)") == arch.key("add(add(fx, 1), sub(y, 1))")
    assert arch.key("fx") == arch.key("abs(fx)")        # fx is a probability: same loss
    reg = LossArchive("regression", by="fingerprint")
    assert reg.key("fx") != reg.key("abs(fx)")
    arch.add("sign(add(y, fx))", {"fitness": float("inf"), "reason": "rejected"})
    assert arch.rejected() == 1 and arch.get("sign(add(fx, y))")["reason"] == "rejected"
    again = LossArchive.from_state(arch.state())
    assert len(again) == 2 and "add(fx, y)" in again
    assert str(to_sympy("add(y, fx)")) == str(to_sympy("add(fx, y)"))


def _run(ngen, seed=0, checkpoint=None, resume_state=None, pop_size=12):
    seed_everything(seed)
    tb = make_toolbox(fake_evaluate, map_fn=map)
    pop = tb.population(pop_size)
    hof = tools.HallOfFame(3)
    arch = LossArchive("classification", num_classes=3, by="fingerprint")
    pop, log = eaEvoMAL(pop, tb, ngen, stats=fitness_stats(), halloffame=hof, verbose=False,
                        archive=arch, checkpoint=checkpoint, resume_state=resume_state)
    return pop, log, hof, arch


def _summary(pop, log, hof):
    return ([str(i) for i in pop], [i.fitness.values for i in pop], [dict(r) for r in log],
            [str(i) for i in hof])


def test_archive_skips_reevaluation_and_elitism_keeps_best():
    CALLS.clear()
    pop, log, hof, arch = _run(6)
    assert len(CALLS) == len(set(CALLS))                     # no tree string evaluated twice
    keys = [arch.key(t) for t in CALLS]
    assert len(keys) == len(set(keys))                       # nor any equivalent tree
    assert sum(r["nevals"] for r in log) == len(CALLS) and sum(r["cached"] for r in log) > 0
    best = [r["min"] for r in log]
    assert all(b2 <= b1 for b1, b2 in zip(best, best[1:]))   # elitism: best never lost
    assert all(not missing_arguments(ind) for ind in pop)
    assert all(ind.height <= 10 for ind in pop)
    assert hof[0].fitness.values[0] == min(best)


def test_interrupted_and_resumed_run_is_identical(tmp_path):
    full = _summary(*_run(5)[:3])
    path = tmp_path / "ckpt.pt"

    class Killed(Exception):
        pass

    def kill_after_gen2(state):
        save_checkpoint(path, state)
        if state["generation"] == 2:
            raise Killed

    with pytest.raises(Killed):
        _run(5, checkpoint=kill_after_gen2)
    random.seed(12345)            # the resumed process starts from another RNG state
    torch.manual_seed(999)
    resumed = _summary(*_run(5, seed=77, resume_state=load_checkpoint(path))[:3])
    assert resumed == full


def test_bad_arguments():
    tb = make_toolbox(fake_evaluate, map_fn=map)
    pop = tb.population(3)
    with pytest.raises(ValueError, match="cxpb"):
        eaEvoMAL(pop, tb, 1, cxpb=0.8, mutpb=0.5, verbose=False)
    with pytest.raises(ValueError, match="elitism"):
        eaEvoMAL(pop, tb, 1, elitism=5, verbose=False)
    with pytest.raises(ValueError, match="tournament"):
        make_toolbox(fake_evaluate, tournsize=0)


def test_operators_height_limit_and_correction_form():
    from operators.gp_loss import heightLimit, mutCorrectArguments, mutUniformLoss
    from deapnn.evomal.toolbox import parse_individual
    limited = heightLimit(3)(mutUniformLoss)
    random.seed(0)
    for _ in range(50):
        (child,) = limited(parse_individual("add(square(sub(y, fx)), y)"))
        assert child.height <= 3
    (fixed,) = mutCorrectArguments(parse_individual("log(fx)"), rng=random.Random(1))
    assert not missing_arguments(fixed)
    with pytest.raises(ValueError, match="max_height"):
        heightLimit(0)
