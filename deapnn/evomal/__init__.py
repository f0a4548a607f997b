"""EvoMAL (Raymond, Chen, Xue & Zhang, GECCO 2023 / TPAMI 2023): configuration
(:mod:`~deapnn.evomal.config`: ``EvoMALConfig``, ``EvoMALRunConfig``), rejection protocol,
fitness evaluation (:mod:`~deapnn.evomal.evaluator`), DEAP toolbox set-up
(:mod:`~deapnn.evomal.toolbox`) and the runner used by ``deapnn evomal``
(:mod:`~deapnn.evomal.run`: ``run_evomal(cfg, rundir, *, map_fn, progress, log) -> EvoMALSummary``)
with its final comparison (:mod:`~deapnn.evomal.compare`).

Modules are imported by full path (``deapnn.evomal.evaluator``…); nothing heavy happens at import.
"""
