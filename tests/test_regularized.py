"""eaRegularizedEvolution and the aging operators (Real et al. 2019, Algorithm 1)."""
import json
import os
import random
import signal
import subprocess
import sys
import textwrap

import pytest
from deap import base, creator, tools

from deapnn.algorithms.regularized import eaRegularizedEvolution
from operators.aging import oldestIndex, replaceOldest, selAgingTournament

if not hasattr(creator, "RegToyFit"):
    creator.create("RegToyFit", base.Fitness, weights=(1.0,))
    creator.create("RegToyInd", list, fitness=creator.RegToyFit)

N_BITS = 24


def evaluate(ind):
    return (float(sum(ind)),)


def make_toolbox(evaluate_fn=evaluate):
    tb = base.Toolbox()
    tb.register("bit", random.randint, 0, 1)
    tb.register("individual", tools.initRepeat, creator.RegToyInd, tb.bit, N_BITS)
    tb.register("population", tools.initRepeat, list, tb.individual)
    tb.register("evaluate", evaluate_fn)
    tb.register("mutate", tools.mutFlipBit, indpb=1.0 / N_BITS)
    tb.register("select", selAgingTournament)
    return tb


def _snapshot(pop):
    return [(list(i), i.birth, i.fitness.values) for i in pop]


def test_removes_exactly_the_oldest_each_cycle():
    random.seed(1)
    tb = make_toolbox()
    pop = tb.population(n=12)
    births = []

    def ckpt(state):
        births.append((state["cycle"], sorted(r["birth"] for r in state["population"])))
    eaRegularizedEvolution(pop, tb, cycles=40, sample_size=4, verbose=False, checkpoint=ckpt)
    assert len(births) == 41
    for cycle, b in births:
        # the initial members share birth 0; after c cycles the members are the initial ones
        # not yet replaced and exactly the last P children: the oldest went each time
        assert b == [0] * max(0, 12 - cycle) + list(range(max(1, cycle - 11), cycle + 1))
    assert len(pop) == 12


def test_batch_rounds_also_remove_the_oldest():
    random.seed(2)
    tb = make_toolbox()
    pop = tb.population(n=10)
    seen = []
    eaRegularizedEvolution(pop, tb, cycles=23, sample_size=3, batch=4, verbose=False,
                           checkpoint=lambda s: seen.append((s["cycle"], sorted(
                               r["birth"] for r in s["population"]))))
    assert [c for c, _ in seen] == [0, 4, 8, 12, 16, 20, 23]
    for cycle, b in seen:
        assert b == [0] * max(0, 10 - cycle) + list(range(max(1, cycle - 9), cycle + 1))


def test_batch_one_equals_sequential_reference():
    """W = 1 is exactly Real et al.'s Algorithm 1 written out by hand, with the initial
    members sharing one age and ties among the oldest going to the weakest."""
    random.seed(7)
    tb = make_toolbox()
    pop = tb.population(n=15)
    ref = [tb.clone(i) for i in pop]
    for ind in ref:
        ind.fitness.values = evaluate(ind)
        ind.birth = 0
    state = random.getstate()
    eaRegularizedEvolution(pop, tb, cycles=60, sample_size=5, batch=1, verbose=False)
    random.setstate(state)
    # reference loop (the initial evaluation consumes no randomness)
    births = 1
    for _ in range(60):
        sample = [random.choice(ref) for _ in range(5)]
        parent = max(sample, key=lambda i: i.fitness)
        child = tb.clone(parent)
        tools.mutFlipBit(child, indpb=1.0 / N_BITS)
        child.fitness.values = evaluate(child)
        child.birth = births
        births += 1
        oldest = min(range(len(ref)), key=lambda k: (ref[k].birth, ref[k].fitness))
        ref.pop(oldest)
        ref.append(child)
    assert _snapshot(pop) == _snapshot(ref)


def test_hall_of_fame_keeps_history_best():
    random.seed(3)
    evaluated = []

    def noisy(ind):       # a fitness that is not inherited: the best may die of old age
        f = random.Random(hash(tuple(ind)) ^ len(evaluated)).random()
        evaluated.append(f)
        return (f,)
    tb = make_toolbox(noisy)
    pop = tb.population(n=6)
    hof = tools.HallOfFame(3, similar=lambda a, b: False)    # a re-drawn genome is a new entry
    eaRegularizedEvolution(pop, tb, cycles=50, sample_size=2, halloffame=hof, verbose=False)
    assert hof[0].fitness.values[0] == max(evaluated)
    assert [h.fitness.values[0] for h in hof] == sorted(evaluated, reverse=True)[:3]


def test_evaluate_may_return_an_evaluation_with_info_and_nan_is_worst():
    random.seed(4)

    from deapnn.evaluation import Evaluation

    def ev(ind):
        if ind[0] == 1 and ind[1] == 1:
            return Evaluation((float("nan"),), {"reason": "diverged"})
        return Evaluation((float(sum(ind)),), {"reason": None})
    tb = make_toolbox(ev)
    pop = tb.population(n=8)
    eaRegularizedEvolution(pop, tb, cycles=20, sample_size=3, verbose=False)
    for ind in pop:
        assert "reason" in ind.info
        if ind.info["reason"] == "diverged":
            assert ind.fitness.values[0] == float("-inf")


def test_stats_logbook_and_map_calls():
    random.seed(5)
    calls = []
    tb = make_toolbox()
    tb.register("map", lambda f, xs: calls.append(len(list(xs := list(xs)))) or list(map(f, xs)))
    stats = tools.Statistics(lambda i: i.fitness.values[0])
    stats.register("max", max)
    pop = tb.population(n=10)
    _, log = eaRegularizedEvolution(pop, tb, cycles=10, sample_size=3, batch=4, stats=stats,
                                    verbose=False)
    assert calls == [10, 4, 4, 2]                    # one map call per round, W children each
    assert log.select("cycle") == [0, 4, 8, 10] and len(log.select("max")) == 4


def test_bad_arguments_fail_fast():
    tb = make_toolbox()
    random.seed(0)
    pop = tb.population(n=3)
    with pytest.raises(ValueError, match="sample size 4 exceeds the population size 3"):
        eaRegularizedEvolution(pop, tb, cycles=5, sample_size=4, verbose=False)
    with pytest.raises(ValueError, match="batch"):
        eaRegularizedEvolution(pop, tb, cycles=5, sample_size=2, batch=0, verbose=False)
    with pytest.raises(ValueError, match="sample size 4 exceeds the population size 3"):
        selAgingTournament(pop, 4)


def test_in_process_resume_equals_uninterrupted():
    random.seed(11)
    tb = make_toolbox()
    pop = tb.population(n=10)
    states = []
    hof = tools.HallOfFame(2)
    _, log_full = eaRegularizedEvolution(pop, tb, cycles=30, sample_size=3, batch=2,
                                         halloffame=hof, verbose=False,
                                         checkpoint=states.append)
    full = _snapshot(pop)
    mid = states[7]                                          # after 14 cycles
    assert mid["cycle"] == 14
    random.seed(999)                                         # resume must not depend on this
    pop2, hof2 = [], tools.HallOfFame(2)
    _, log2 = eaRegularizedEvolution(pop2, tb, cycles=30, sample_size=3, batch=2,
                                     halloffame=hof2, verbose=False, resume_state=mid,
                                     decode=creator.RegToyInd)
    assert _snapshot(pop2) == full
    assert list(log2) == list(log_full)
    assert [list(h) for h in hof2] == [list(h) for h in hof]


def test_aging_tournament_samples_with_replacement():
    pop = []
    for f in range(5):
        ind = creator.RegToyInd([f])
        ind.fitness.values = (float(f),)
        pop.append(ind)
    random.seed(0)
    picks = [selAgingTournament(pop, 5)[0].fitness.values[0] for _ in range(3000)]
    share_best = picks.count(4.0) / len(picks)
    assert abs(share_best - (1 - 0.8 ** 5)) < 0.03     # 0.672, not 1.0 (without replacement)
    random.seed(0)
    again = [selAgingTournament(pop, 5)[0].fitness.values[0] for _ in range(3000)]
    assert again == picks
    assert len(selAgingTournament(pop, 2, k=7)) == 7


def test_replace_oldest_ties_remove_the_weakest_oldest():
    pop = []
    for birth, fit in [(3, 5.0), (1, 9.0), (1, 2.0), (1, 4.0), (2, 0.0)]:
        ind = creator.RegToyInd([birth])
        ind.fitness.values = (fit,)
        ind.birth = birth
        pop.append(ind)
    assert oldestIndex(pop) == 2
    child = creator.RegToyInd([9])
    child.birth = 4
    dead = replaceOldest(pop, child)
    assert dead.fitness.values == (2.0,) and pop[-1] is child and len(pop) == 5
    with pytest.raises(ValueError, match="birth"):
        replaceOldest(pop, creator.RegToyInd([0]))


SCRIPT = textwrap.dedent('''
    import json, os, random, signal, sys
    sys.path.insert(0, {root!r})
    from deap import tools
    sys.path.insert(0, {tests!r})
    import test_regularized as T
    from deapnn.algorithms.regularized import eaRegularizedEvolution
    from deapnn.checkpoint import save_checkpoint, load_checkpoint
    ckpt, out = sys.argv[1], sys.argv[2]
    kill_at = int(os.environ.get("KILL_AT", "-1"))
    count = [0]
    def ev(ind):
        count[0] += 1
        if count[0] == kill_at:
            os.kill(os.getpid(), signal.SIGKILL)
        return (float(sum(ind)),)
    tb = T.make_toolbox(ev)
    hof = tools.HallOfFame(3)
    resume = load_checkpoint(ckpt) if os.path.exists(ckpt) else None
    random.seed(21)
    pop = [] if resume else tb.population(n=12)
    _, log = eaRegularizedEvolution(pop, tb, cycles=40, sample_size=4, batch=3, halloffame=hof,
                                    verbose=False, resume_state=resume, decode=T.creator.RegToyInd,
                                    checkpoint=lambda s: save_checkpoint(ckpt, s))
    json.dump({{"pop": [[list(i), i.birth, list(i.fitness.values)] for i in pop],
               "log": list(log), "hof": [list(h) for h in hof]}}, open(out, "w"))
''')


def test_sigkill_and_resume_gives_identical_result(tmp_path):
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    script = tmp_path / "run.py"
    script.write_text(SCRIPT.format(root=root, tests=os.path.join(root, "tests")))
    env = dict(os.environ, PYTHONPATH=root)

    def run(ckpt, out, kill_at=None):
        e = dict(env, KILL_AT=str(kill_at)) if kill_at else env
        return subprocess.run([sys.executable, str(script), str(ckpt), str(out)], env=e,
                              capture_output=True, text=True, timeout=120)
    ref = run(tmp_path / "a.pt", tmp_path / "a.json")
    assert ref.returncode == 0, ref.stderr
    killed = run(tmp_path / "b.pt", tmp_path / "b.json", kill_at=12 + 3 * 5 + 2)
    assert killed.returncode == -signal.SIGKILL and not (tmp_path / "b.json").exists()
    resumed = run(tmp_path / "b.pt", tmp_path / "b.json")
    assert resumed.returncode == 0, resumed.stderr
    a = json.loads((tmp_path / "a.json").read_text())
    b = json.loads((tmp_path / "b.json").read_text())
    assert a == b


def test_distinct_hall_of_fame_keeps_the_best_of_each_phenotype():
    from deapnn.algorithms.regularized import DistinctHallOfFame

    def same(a, b):                                       # toy "phenotype": the bit count
        return sum(a) == sum(b)

    def ind(bits, fit):
        i = creator.RegToyInd(bits)
        i.fitness.values = (fit,)
        return i
    hof = DistinctHallOfFame(3, similar=same)
    hof.update([ind([1, 0], 0.5), ind([0, 1], 0.7)])      # same phenotype, better: replaces
    assert [list(h) for h in hof] == [[0, 1]]
    hof.update([ind([1, 0], 0.6)])                          # same phenotype, worse: dropped
    assert [list(h) for h in hof] == [[0, 1]]
    hof.update([ind([1, 1], 0.4), ind([0, 0], 0.3), ind([1, 1, 1], 0.2), ind([0, 0, 0], 0.35)])
    assert [h.fitness.values[0] for h in hof] == [0.7, 0.4, 0.35]
    assert len({sum(h) for h in hof}) == len(hof)
    # plain DEAP would have kept the first, worse twin
    plain = tools.HallOfFame(3, similar=same)
    plain.update([ind([1, 0], 0.5), ind([0, 1], 0.7)])
    assert [h.fitness.values[0] for h in plain] == [0.5]


def test_plain_fitness_tuples_and_guarded_failures_are_assigned():
    """DEAP's convention (a plain tuple) still works; a failed evaluation is the worst fitness,
    ``ind.info["error"]`` and a counted failure in the logbook."""
    from deapnn.failsafe import guarded
    random.seed(6)

    def ev(ind):
        if sum(ind) % 5 == 0:
            raise RuntimeError("boom")
        return (float(sum(ind)),)
    tb = make_toolbox(guarded(ev, worst=(-1.0,)))
    pop = tb.population(n=8)
    _, log = eaRegularizedEvolution(pop, tb, cycles=12, sample_size=3)
    for ind in pop:
        failed = sum(ind) % 5 == 0
        assert (ind.fitness.values == (-1.0,)) == failed
        assert (getattr(ind, "info", {}).get("error") == "RuntimeError: boom") == failed
    assert sum(r["failed"] for r in log) == sum(len(r.get("errors", [])) for r in log)


def test_resume_reads_the_previous_state_layout():
    """A checkpoint of the previous layout (format 1: logbook records + separate header) resumes."""
    random.seed(12)
    tb = make_toolbox()
    pop = tb.population(n=6)
    states = []
    _, log_full = eaRegularizedEvolution(pop, tb, cycles=6, sample_size=2,
                                         checkpoint=states.append)
    full = _snapshot(pop)
    mid = dict(states[3])
    mid.update(format="deapnn-regularized-1", header=mid["logbook"]["header"],
               logbook=mid["logbook"]["records"])
    pop2 = []
    _, log2 = eaRegularizedEvolution(pop2, tb, cycles=6, sample_size=2, resume_state=mid,
                                     decode=creator.RegToyInd)
    assert _snapshot(pop2) == full and list(log2) == list(log_full)


# --- initial ages and failed children (Morgan & Hougen 2024 §3.4, reference implementation) ---

def _seeded(fits):
    """Evaluated toy members without births, listed best first (as NLFS seeds its population)."""
    pop = []
    for f in fits:
        ind = creator.RegToyInd([1] * N_BITS)
        ind.fitness.values = (f,)
        pop.append(ind)
    return pop


def _removal_order(states, seeds):
    """The seeds' fitnesses in the order they left the population, from checkpoint states."""
    order, alive = [], set(seeds)
    for s in states:
        now = {r["fitness"][0] for r in s["population"]}
        gone = sorted(alive - now)
        order += gone
        alive -= set(gone)
    return order


@pytest.mark.parametrize("batch", [1, 4])
def test_initial_members_share_one_age_so_the_weakest_seed_dies_first(batch):
    """Defect: the seeds were aged in list order (best first), so the fittest seed was removed
    first.  All initial members share one age; the worst among the oldest goes first."""
    random.seed(8)
    seeds = [0.9, 0.8, 0.7, 0.6, 0.5, 0.4]
    pop = _seeded(seeds)
    tb = make_toolbox(lambda ind: (0.1,))
    states = []
    eaRegularizedEvolution(pop, tb, cycles=6, sample_size=2, batch=batch,
                           checkpoint=states.append)
    assert _removal_order(states, seeds) == [0.4, 0.5, 0.6, 0.7, 0.8, 0.9]
    assert [r["birth"] for r in states[0]["population"]] == [0] * 6
    assert sorted(i.birth for i in pop) == [1, 2, 3, 4, 5, 6]


def test_given_births_are_kept():
    """A caller who sets ``birth`` keeps control of the ages (e.g. Real et al.'s queue order)."""
    random.seed(8)
    seeds = [0.9, 0.8, 0.7, 0.6]
    pop = _seeded(seeds)
    for i, ind in enumerate(pop):
        ind.birth = i
    states = []
    eaRegularizedEvolution(pop, make_toolbox(lambda ind: (0.1,)), cycles=4, sample_size=2,
                           checkpoint=states.append)
    assert _removal_order(states, seeds) == [0.9, 0.8, 0.7, 0.6]


def _failing_toolbox(fail):
    """Toy toolbox whose children fail (a pre-screen ``reason``) while ``fail(n)`` is true for
    the n-th evaluation of a child; records each mutated parent."""
    from deapnn.evaluation import Evaluation
    calls, parents = [0], []

    def ev(ind):
        calls[0] += 1
        if fail(calls[0]):
            return Evaluation((0.0,), {"reason": "pre-screen"})
        return Evaluation((float(sum(ind)),), {"reason": None})
    tb = make_toolbox(ev)
    mutate = tb.mutate

    def recorded(ind):
        parents.append(list(ind))
        return mutate(ind)
    tb.register("mutate", recorded)
    return tb, parents


def test_failed_child_is_remutated_then_discarded_leaving_the_population_unchanged():
    """Defect: a child failing the pre-screen (fitness 0) replaced the oldest member.  The
    reference re-mutates the same parent (7 attempts in all) and then discards the child."""
    random.seed(9)
    pop = _seeded([5.0, 4.0, 3.0, 2.0])
    tb, parents = _failing_toolbox(lambda n: True)
    before = [(list(i), i.fitness.values) for i in pop]
    _, log = eaRegularizedEvolution(pop, tb, cycles=3, sample_size=2)
    assert [(list(i), i.fitness.values) for i in pop] == before       # nobody replaced
    assert [i.birth for i in pop] == [0] * 4
    assert [r["nevals"] for r in log][1:] == [7, 7, 7]
    assert [r["discarded"] for r in log][1:] == [1, 1, 1]
    assert [r["remutated"] for r in log][1:] == [6, 6, 6]
    assert all(r["inserted_failed"] == 0 for r in log)
    for c in range(3):                       # each attempt mutates the same (one) parent
        assert len({tuple(p) for p in parents[7 * c:7 * c + 7]}) == 1


def test_failed_child_remutation_keeps_the_first_success():
    random.seed(10)
    pop = _seeded([5.0, 4.0, 3.0, 2.0])
    tb, parents = _failing_toolbox(lambda n: n <= 2)          # two failures, then success
    _, log = eaRegularizedEvolution(pop, tb, cycles=1, sample_size=2)
    assert log[1]["nevals"] == 3 and log[1]["remutated"] == 2 and log[1]["discarded"] == 0
    assert len(parents) == 3 and len({tuple(p) for p in parents}) == 1
    assert [i.birth for i in pop] == [0, 0, 0, 1]             # one child inserted
    assert pop[-1].info["reason"] is None and pop[-1].fitness.values[0] > 0
    assert 2.0 not in [i.fitness.values[0] for i in pop]        # the weakest seed went


def test_failed_child_insert_keeps_the_previous_behaviour():
    random.seed(9)
    pop = _seeded([5.0, 4.0, 3.0, 2.0])
    tb, parents = _failing_toolbox(lambda n: True)
    _, log = eaRegularizedEvolution(pop, tb, cycles=3, sample_size=2, failed_child="insert")
    assert [i.fitness.values[0] for i in pop] == [5.0, 0.0, 0.0, 0.0]
    assert len(parents) == 3 and [r["nevals"] for r in log][1:] == [1, 1, 1]
    assert [r["inserted_failed"] for r in log][1:] == [1, 1, 1]
    assert all(r["discarded"] == 0 and r["remutated"] == 0 for r in log)
    with pytest.raises(ValueError, match="failed_child"):
        eaRegularizedEvolution(pop, tb, cycles=1, sample_size=2, failed_child="keep")
    with pytest.raises(ValueError, match="attempts"):
        eaRegularizedEvolution(pop, tb, cycles=1, sample_size=2, attempts=0)


@pytest.mark.parametrize("batch", [1, 3])
def test_failed_children_never_enter_the_hall_of_fame_when_discarded(batch):
    random.seed(13)
    pop = _seeded([5.0, 4.0, 3.0, 2.0])
    tb, _ = _failing_toolbox(lambda n: n % 2 == 0)
    hof = tools.HallOfFame(50)
    _, log = eaRegularizedEvolution(pop, tb, cycles=6, sample_size=2, batch=batch,
                                    halloffame=hof)
    assert all(h.fitness.values[0] > 0 for h in hof)
    assert sum(r["discarded"] for r in log) == 0 and sum(r["remutated"] for r in log) > 0
    assert sum(r["nevals"] for r in log[1:]) == 6 + sum(r["remutated"] for r in log)
