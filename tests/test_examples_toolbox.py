"""The toolbox-composition examples run end to end in ``--smoke`` mode, each within its
60-second budget (2 CPU cores), print what they found, and one runs under ``python -m scoop -n 2``
with exactly the output of a plain run (evaluations seed themselves; the run depends on
``--batch``, not on the worker count)."""
import itertools
import re
import sys
import time

import pytest
from test_scale import REPO, run_group, scoop_env

BUDGET_S = 60


def smoke(tmp_path, script, *args, scoop=False):
    """Run ``examples/<script> --smoke``; return its stdout (asserting exit 0 and the budget)."""
    cmd = [sys.executable, *(["-m", "scoop", "-n", "2"] if scoop else []),
           f"examples/{script}", "--smoke", *args]
    start = time.perf_counter()
    rc, out, err = run_group(cmd, scoop_env(tmp_path), timeout=4 * BUDGET_S)
    elapsed = time.perf_counter() - start
    assert rc == 0, f"{script}: rc {rc}\nstdout: {out[-2000:]}\nstderr: {err[-3000:]}"
    assert elapsed < BUDGET_S, f"{script} --smoke took {elapsed:.0f} s (budget {BUDGET_S} s)"
    return out


def test_gls_toolbox_runs_every_arm_with_the_same_loop(tmp_path):
    out = smoke(tmp_path, "gls_toolbox.py")
    rows = {m[1]: (float(m[2]), float(m[3]), int(m[4])) for m in re.finditer(
        r"^(lexicase|eps-lexicase|random)\s+0\s+([\d.]+)\s+([\d.]+)\s+(\d+)", out, re.M)}
    assert set(rows) == {"lexicase", "eps-lexicase", "random"}
    assert all(0.0 <= val <= 1.0 and 0.0 <= test <= 1.0 for val, test, _ in rows.values())
    assert rows["random"][2] == 0                          # random selection examines no case
    assert rows["lexicase"][2] >= 3 and rows["eps-lexicase"][2] >= 3   # >= 1 case per generation
    assert re.search(r"^best arm: \S+ \(seed 0\) test accuracy", out, re.M)


def test_nlfs_toolbox_reports_integrity_passing_losses_and_the_same_search_under_scoop(tmp_path):
    from deapnn.losses import LossGraph
    from deapnn.operators import checkIntegrity
    out = smoke(tmp_path, "nlfs_toolbox.py")
    found = re.findall(r"^#\d val acc ([\d.]+)  (.+)$", out, re.M)
    assert len(found) == 3
    assert [float(a) for a, _ in found] == sorted((float(a) for a, _ in found), reverse=True)
    best = re.search(r"^best loss: (.+)$", out, re.M)[1]
    assert best == found[0][1]
    for _, formula in found:                  # every loss reported passes the §3.3 test
        assert checkIntegrity(LossGraph.from_expression(formula)).accept, formula
    assert re.search(r"^LaTeX: \\mathcal\{L\} = ", out, re.M)
    assert re.search(r"^test accuracy, \d+ steps: found_0 [\d.]+ vs cross-entropy [\d.]+", out,
                     re.M)
    # python -m scoop -n 2: the children of a round are evaluated in the workers (LossIndividual
    # and the returned Evaluation travel by pickle), and the search is the same
    scoop = smoke(tmp_path, "nlfs_toolbox.py", scoop=True)
    assert [line for line in scoop.splitlines() if not line.startswith("Launching")] == \
        out.splitlines()


def test_evomal_toolbox_finds_a_tree_using_both_arguments_and_trains_with_it(tmp_path):
    out = smoke(tmp_path, "evomal_toolbox.py")
    tree = re.search(r"^best tree: (.+?)  \(validation MSE ([\d.]+), (\d+) evaluations\)", out,
                     re.M)
    assert tree, out
    assert re.search(r"\by\b", tree[1]) and re.search(r"\bfx\b", tree[1])   # correctArguments
    assert int(tree[3]) >= 1
    learned = re.search(r"^learned: (.+)$", out, re.M)[1]
    names = re.compile(r"[a-z]+")                          # the tree, with edge weights
    assert names.findall(re.sub(r"[-\d.e+]+\*", "", learned)) == names.findall(tree[1])
    assert "*" in learned
    final = re.search(r"^test MSE after \d+ steps: learned loss ([\d.na]+) vs MSE ([\d.]+)", out,
                      re.M)
    assert final and float(final[2]) > 0


def test_aging_any_genome_evolves_a_bit_string(tmp_path):
    out = smoke(tmp_path, "aging_any_genome.py")
    m = re.search(r"^best mask: ([01]{30})  \((\d+) of 30 features: \[([\d, ]*)\]\)", out, re.M)
    assert m, out
    mask, count, indices = m[1], int(m[2]), [int(i) for i in m[3].split(", ")]
    assert count == mask.count("1") >= 1
    assert indices == [i for i, bit in enumerate(mask) if bit == "1"]
    fitness = float(re.search(r"^fitness ([\d.-]+); (\d+) evaluations", out, re.M)[1])
    assert 0.0 < fitness <= 1.0 - 0.002 * count + 1e-9          # accuracy − price × features
    assert "test accuracy: selected features" in out


def test_lexicase_multiplexer_compares_both_selections_on_the_same_seeds(tmp_path):
    out = smoke(tmp_path, "lexicase_multiplexer.py")
    rows = re.findall(r"^(lexicase|tournament)\s+(\d+)\s+(\d+)/64", out, re.M)
    assert sorted((s, int(seed)) for s, seed, _ in rows) == \
        [("lexicase", 0), ("lexicase", 1), ("tournament", 0), ("tournament", 1)]
    assert all(0 < int(h) <= 64 for *_, h in rows)
    assert re.search(r"^6-multiplexer solved: lexicase \d/2, tournament \d/2", out, re.M)


@pytest.mark.parametrize("k", [1, 2, 3])
def test_multiplexer_cases_match_the_definition(k):
    """Oracle for the example's problem: the target is the data bit the address selects."""
    sys.path.insert(0, str(REPO / "examples"))
    try:
        from lexicase_multiplexer import multiplexer
    finally:
        sys.path.remove(str(REPO / "examples"))
    pset, inputs, targets = multiplexer(k)
    n = k + 2 ** k
    assert inputs == list(itertools.product((0, 1), repeat=n)) and len(pset.arguments) == n
    for row, t in zip(inputs, targets):
        address = sum(bit << (k - 1 - i) for i, bit in enumerate(row[:k]))
        assert t == row[k + address]
    assert sum(targets) == len(targets) // 2


def test_lexicase_symbreg_smoke_is_a_short_seeded_run(tmp_path):
    out = smoke(tmp_path, "lexicase_symbreg.py", "--quiet")
    assert re.search(r"^mean absolute error: [\d.e+-]+\s+\(selection: lexicase, fitness: cases, "
                     r"seed 1, 3 generations\)$", out, re.M), out


def test_lexicase_variants_smoke_tables_every_variant_on_both_problems(tmp_path):
    sys.path.insert(0, str(REPO / "examples"))
    try:
        from lexicase_variants import VARIANTS
    finally:
        sys.path.remove(str(REPO / "examples"))
    out = smoke(tmp_path, "lexicase_variants.py")
    rows = re.findall(r"^(6-multiplexer|symbolic regression)\s+(\S+)\s+(\d)/1\s+(\d+)%", out, re.M)
    assert sorted((p, v) for p, v, *_ in rows) == \
        sorted((p, v) for p in ("6-multiplexer", "symbolic regression") for v in VARIANTS)
    assert all(int(pct) == 100 * int(s) for *_, s, pct in rows)
    assert re.search(r"^\(population 40, at most 3 generations, seeds 0;", out, re.M)
