"""EvoMAL (Raymond, Chen, Xue & Zhang, GECCO 2023 / TPAMI 2023): rejection protocol, fitness
evaluation, DEAP toolbox set-up and the run driver used by ``deapnn evomal``.

Modules are imported by full path (``deapnn.evomal.evaluator``…); nothing heavy happens at import.
"""
