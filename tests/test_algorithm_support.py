"""deapnn.algorithms.support: what the generation loops share (RNG isolation around
``toolbox.map``, evaluations read as :class:`~deapnn.evaluation.Evaluation`)."""
import random

import numpy as np
import pytest
import torch
from deap import base

from deapnn.algorithms.support import isolated_rng, map_evaluations
from deapnn.evaluation import Evaluation


class _MapFailed(Exception):
    pass


def _draws():
    return random.random(), float(np.random.rand()), float(torch.rand(1))


def _seed(s):
    random.seed(s)
    np.random.seed(s)
    torch.manual_seed(s)


def test_rng_state_is_restored_when_toolbox_map_raises():
    def evaluate(x):
        random.random(), np.random.rand(), torch.rand(3)   # an in-process evaluation draws
        return (float(x),)

    def broken_map(fn, items):
        [fn(x) for x in items]                             # draws, then the map fails
        raise _MapFailed
    tb = base.Toolbox()
    tb.register("evaluate", evaluate)
    tb.register("map", broken_map)
    _seed(3)
    expected = _draws()
    _seed(3)
    with pytest.raises(_MapFailed):
        map_evaluations(tb, [1, 2, 3])
    assert _draws() == expected                            # as if the map never ran


def test_isolated_rng_restores_after_the_block_and_after_an_error():
    _seed(5)
    expected = _draws()
    _seed(5)
    with isolated_rng():
        _draws()
    assert _draws() == expected
    _seed(5)
    with pytest.raises(ZeroDivisionError):
        with isolated_rng():
            _draws()
            raise ZeroDivisionError
    assert _draws() == expected


def test_map_evaluations_reads_plain_tuples_numbers_and_evaluations():
    tb = base.Toolbox()
    tb.register("map", map)
    tb.register("evaluate", lambda x: {0: (1.0,), 1: 2, 2: Evaluation((3.0,), {"a": 1})}[x])
    out = map_evaluations(tb, [0, 1, 2])
    assert [e.values for e in out] == [(1.0,), (2.0,), (3.0,)]
    assert out[2].info == {"a": 1} and not any(e.failed for e in out)
    assert map_evaluations(tb, []) == []
