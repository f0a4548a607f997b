"""GLS operators: SubGD dealing, lazy chunked gradient lexicase selection (Ding & Spector 2022)."""
import itertools
from collections import Counter

import numpy as np
import pytest
import torch
from scipy.stats import chisquare
from torch import nn

from operators.gls import mutSubGD, selGradientLexicase
from tests.gls_helpers import table_population


class Recorder(nn.Module):
    """A linear model that records the case ids (column 0 of its input) of every training batch."""

    def __init__(self):
        super().__init__()
        self.lin = nn.Linear(1, 3)
        self.batches = []

    def forward(self, x):
        if self.training:
            self.batches.append(x[:, 0].long().tolist())
            Recorder.last = self.batches[-1]
        return self.lin(x * 0.01)


def test_subgd_deals_disjoint_round_robin_slices_covering_the_epoch():
    n, p, bs = 203, 3, 10
    x = torch.arange(n, dtype=torch.float32).unsqueeze(1)
    y = torch.randint(3, (n,))
    children = [Recorder() for _ in range(p)]
    opts = [torch.optim.SGD(c.parameters(), lr=0.01) for c in children]
    gen = torch.Generator().manual_seed(5)
    mutSubGD(children, x, y, optimizers=opts, batch_size=bs, generator=gen)
    # The global batch order is the permutation drawn from the generator, dealt b -> b mod p.
    order = torch.randperm(n, generator=torch.Generator().manual_seed(5)).split(bs)
    for b, idx in enumerate(order):
        assert children[b % p].batches[b // p] == idx.tolist()
    seen = [set(i for batch in c.batches for i in batch) for c in children]
    for a, b in itertools.combinations(seen, 2):
        assert not a & b
    assert set().union(*seen) == set(range(n))
    assert sum(len(c.batches) for c in children) == len(order)
    assert all(np.isfinite(c.train_loss) for c in children)


def test_subgd_marks_a_diverging_child_and_keeps_training_the_others():
    n = 64
    x = torch.arange(n, dtype=torch.float32).unsqueeze(1)
    y = torch.randint(3, (n,))
    children = [Recorder() for _ in range(2)]
    opts = [torch.optim.SGD(c.parameters(), lr=0.01) for c in children]
    poisoned = torch.randperm(n, generator=torch.Generator().manual_seed(9)).split(8)[2].tolist()

    def loss(out, target):
        value = nn.functional.cross_entropy(out, target)
        # Batch 2 of the epoch belongs to child 0 (round robin): make its loss NaN.
        return value * float("nan") if Recorder.last == poisoned else value

    mutSubGD(children, x, y, optimizers=opts, batch_size=8, loss_fn=loss,
             generator=torch.Generator().manual_seed(9))
    assert children[0].diverged and "non-finite" in children[0].diverged
    assert np.isnan(children[0].train_loss)
    assert children[1].diverged is None and len(children[1].batches) == 4
    assert len(children[0].batches) == 2   # batches 0 and 2 were evaluated, 4 and 6 skipped


def simulate_lexicase(table, order):
    """Textbook lexicase on a pass table over the given case order: (winner pool, cases used)."""
    pool = list(range(table.shape[0]))
    for used, case in enumerate(order, 1):
        passers = [i for i in pool if table[i, case]]
        if passers:
            pool = passers
        if len(pool) == 1:
            return pool, used
    return pool, len(order)


@pytest.mark.parametrize("chunk", [1, 3, 64])
def test_selection_winner_is_the_lexicase_winner_on_the_examined_case_order(chunk):
    rng = np.random.default_rng(1)
    table = rng.random((5, 300)) < 0.97           # late-training like: few failures
    for trial in range(10):
        models, x, y = table_population(table, seed=trial)
        info = {}
        winner = selGradientLexicase(models, 1, x=x, y=y, rng=np.random.default_rng(trial),
                                     chunk_size=chunk, info=info)[0]
        w = models.index(winner)
        order = list(dict.fromkeys(winner.seen))    # the winner was evaluated on every chunk
        pool, used = simulate_lexicase(table, order)
        if len(pool) == 1:
            assert pool == [w]
            assert info["cases_examined"] == used
        else:                                       # cases ran out: a random survivor
            assert w in pool
        # Lazy: nobody was evaluated beyond the chunk in which selection ended.
        assert max(len(m.seen) for m in models) <= len(order)
        # The winner passes every case examined that some then-survivor passed.
        alive = list(range(len(models)))
        for case in order[:info["cases_examined"]]:
            passers = [i for i in alive if table[i, case]]
            if passers:
                assert table[w, case]
                alive = passers


def exact_lexicase_probabilities(table, m=None):
    """Selection probability of each row under standard lexicase, by enumerating case orders;
    with ``m``, only the first m cases of each order are used (= lexicase on a uniformly random
    down-sample of m cases), survivors drawn uniformly."""
    p, n = table.shape
    counts = np.zeros(p)
    perms = list(itertools.permutations(range(n)))
    for order in perms:
        pool, _ = simulate_lexicase(table, order[:m])
        for i in pool:
            counts[i] += 1 / len(pool)
    return counts / len(perms)


def test_chunked_lazy_selection_matches_exact_lexicase_distribution():
    table = np.array([[1, 1, 0, 0, 1, 0],
                      [1, 0, 1, 0, 1, 0],
                      [0, 1, 1, 1, 0, 0],
                      [1, 1, 0, 0, 1, 0]], dtype=bool)   # rows 0 and 3 tie; case 5 failed by all
    probs = exact_lexicase_probabilities(table)
    models, x, y = table_population(table)
    rng = np.random.default_rng(123)
    draws = 6000
    counts = Counter(models.index(selGradientLexicase(models, 1, x=x, y=y, rng=rng,
                                                       chunk_size=2)[0]) for _ in range(draws))
    observed = np.array([counts[i] for i in range(len(models))])
    expected = probs * draws
    mask = expected > 0
    assert observed[~mask].sum() == 0
    assert chisquare(observed[mask], expected[mask]).pvalue > 1e-4   # fixed seed: deterministic


def reference_select(table, order, fallback):
    """A literal port of the reference code's ``select`` (``lexi.py`` L180–L208) on a pass table
    (``table[i, case]`` True = child i correct), cases in ``order``, ``fallback`` being its
    ``np.random.randint(0, pop_size)`` draw. Returns (winner, cases consumed)."""
    selection = list(range(table.shape[0]))
    selected = fallback
    used = 0
    for case in order:
        used += 1
        for child_idx in selection:          # removing from the list being iterated, as there
            if not table[child_idx, case]:
                selection.remove(child_idx)
        if len(selection) == 1:
            selected = selection[0]
        if len(selection) <= 1:
            break
    return selected, used


def test_reference_semantics_match_a_literal_port_of_the_reference_loop():
    gen = np.random.default_rng(2022)
    for trial in range(150):
        p, n = int(gen.integers(1, 7)), int(gen.integers(1, 40))
        # from almost-always-correct children (late training: long ties) to near chance
        table = gen.random((p, n)) < gen.choice([0.3, 0.7, 0.95, 0.99])
        if trial % 5 == 0:
            table[:, gen.integers(n)] = False           # a case every child fails
        models, x, y = table_population(table)
        draws = np.random.default_rng(trial)
        fallback = int(draws.integers(p))            # deapnn draws the fallback first, as lexi.py
        winner, used = reference_select(table, draws.permutation(n), fallback)
        for chunk in (1, 3, 8):
            info = {}
            chosen, = selGradientLexicase(models, 1, x=x, y=y, rng=np.random.default_rng(trial),
                                          semantics="reference", chunk_size=chunk, info=info)
            assert chosen is models[winner], (trial, chunk)
            if p > 1:
                assert info["cases_examined"] == used and min(info["survivors_per_chunk"]) >= 1


def test_reference_semantics_a_case_all_four_fail_keeps_children_1_and_3():
    # lexi.py L189–L194: child 0 is removed, so child 1 is never examined on that case; child 2
    # is removed, child 3 skipped. The pool never empties (docs/faithfulness.md, tie semantics).
    from operators.gls import _reference_filter
    pool, used = _reference_filter([0, 1, 2, 3], np.ones((4, 1), dtype=np.uint8))
    assert (pool, used) == ([1, 3], 1)
    assert _reference_filter([0, 1, 2], np.ones((3, 5), dtype=np.uint8)) == ([1], 1)
    # Children 0, 1, 2 have the same record, 3 fails case 1. Whatever the case order, the
    # reference keeps child 1 alone (case 0 first: [1, 3], then case 1 removes 3; case 1 first:
    # [0, 1, 2], then case 0 keeps 1). Standard lexicase: a uniform pick among 0, 1, 2.
    table = np.array([[0, 1], [0, 1], [0, 1], [0, 0]], dtype=bool)
    models, x, y = table_population(table)
    counts_std, counts_ref = Counter(), Counter()
    for s in range(300):
        counts_std[models.index(selGradientLexicase(models, 1, x=x, y=y,
                                                     rng=np.random.default_rng(s))[0])] += 1
        counts_ref[models.index(selGradientLexicase(models, 1, x=x, y=y, semantics="reference",
                                                    rng=np.random.default_rng(s))[0])] += 1
    assert counts_ref == Counter({1: 300})
    assert sorted(counts_std) == [0, 1, 2] and min(counts_std.values()) > 60


def test_reference_semantics_cases_run_out_gives_a_uniform_pick_over_all_children():
    # One case, failed by all four: the pool is [1, 3] when the cases run out, and the reference
    # falls back on its draw over *all* children (lexi.py L184), removed ones included.
    models, x, y = table_population(np.zeros((4, 1), dtype=bool))
    counts = Counter()
    for s in range(400):
        info = {}
        counts[models.index(selGradientLexicase(models, 1, x=x, y=y, semantics="reference",
                                                rng=np.random.default_rng(s), info=info)[0])] += 1
        assert info["survivors_per_chunk"] == [2] and info["deciding_case"] is None
    assert sorted(counts) == [0, 1, 2, 3] and min(counts.values()) > 60


def test_selection_ignores_diverged_children_and_rejects_bad_arguments():
    table = np.ones((3, 10), dtype=bool)
    models, x, y = table_population(table)
    models[0].diverged = models[2].diverged = "nan"
    for s in range(20):
        chosen = selGradientLexicase(models, 1, x=x, y=y, rng=np.random.default_rng(s))
        assert chosen[0] is models[1]
    with pytest.raises(ValueError, match="semantics"):
        selGradientLexicase(models, 1, x=x, y=y, semantics="nope")
    with pytest.raises(ValueError, match="empty"):
        selGradientLexicase([], 1, x=x, y=y)
    with pytest.raises(ValueError, match="k must be"):
        selGradientLexicase(models, -1, x=x, y=y)


def test_case_budget_gives_downsampled_lexicase_and_bounds_the_cases_evaluated():
    table = np.array([[1, 1, 0, 0, 1, 0],
                      [1, 0, 1, 0, 1, 0],
                      [0, 1, 1, 1, 0, 1],
                      [1, 1, 0, 1, 1, 0]], dtype=bool)
    m = 2
    probs = exact_lexicase_probabilities(table, m)
    assert not np.allclose(probs, exact_lexicase_probabilities(table), atol=0.02)  # budget matters
    models, x, y = table_population(table)
    rng = np.random.default_rng(7)
    draws, counts = 6000, Counter()
    for _ in range(draws):
        for model in models:
            model.seen.clear()
        info = {}
        counts[models.index(selGradientLexicase(models, 1, x=x, y=y, rng=rng, chunk_size=1,
                                                max_cases=m, info=info)[0])] += 1
        assert info["cases_examined"] <= m
        assert max(len(model.seen) for model in models) <= m
    observed = np.array([counts[i] for i in range(len(models))])
    assert chisquare(observed, probs * draws).pvalue > 1e-4   # fixed seed: deterministic
    with pytest.raises(ValueError, match="max_cases"):
        selGradientLexicase(models, 1, x=x, y=y, max_cases=0)


def test_cpu_selection_in_channels_last_matches_default_layout_and_restores_weights():
    from deapnn.models import build_model
    from operators.gls_cases import cpu_inference_layout, pass_matrix
    torch.manual_seed(0)
    children = [build_model("cnn", (1, 8, 8), 10) for _ in range(3)]
    x, y = torch.randn(300, 1, 8, 8), torch.randint(10, (300,))
    before = [{k: v.clone() for k, v in c.state_dict().items()} for c in children]
    params = [list(c.parameters()) for c in children]
    for c in children:
        c.eval()
    with torch.inference_mode():
        expected = np.stack([(c(x).argmax(1) != y).numpy() for c in children]).astype(np.uint8)
    with cpu_inference_layout(children, x) as layout:
        assert children[0].features[0].weight.is_contiguous(memory_format=torch.channels_last)
        assert layout(x).is_contiguous(memory_format=torch.channels_last)
        assert np.array_equal(pass_matrix(children, layout(x), y, 64), expected)
    mlps = [build_model("mlp", (1, 8, 8), 10)]
    with cpu_inference_layout(mlps, x) as layout:    # nothing to convert: cases left as they are
        assert layout(x) is x
    for c in children:
        c.train()
    selGradientLexicase(children, 2, x=x, y=y, rng=np.random.default_rng(3))
    for c, state, ps in zip(children, before, params):
        assert c.training                               # mode restored
        assert list(c.parameters()) == ps               # same Parameter objects (optimizers)
        for k, v in c.state_dict().items():
            assert v.is_contiguous() and torch.equal(v, state[k])
