"""Gradient Lexicase Selection experiments (Ding & Spector 2022, ICLR): the configuration, the
DEAP toolbox, one job per arm × seed, and the runner that compares the arms over seeds.

* :mod:`deapnn.gls.config` — :class:`GLSConfig`, :data:`ARMS`, :data:`ARM_TITLES`;
* :mod:`deapnn.gls.toolbox` — :func:`gls_toolbox`, :func:`accuracy_evaluator`,
  :func:`final_accuracy`;
* :mod:`deapnn.gls.job` — :func:`run_job` (one arm × seed → an
  :class:`~deapnn.evaluation.Evaluation`);
* :mod:`deapnn.gls.runner` — :func:`run_gls` and its phases :func:`make_jobs`,
  :func:`run_jobs`, :func:`summarize`, :func:`format_table`, :func:`write_outputs`.
"""
from .config import ARM_TITLES, ARMS, GLSConfig
from .job import run_job
from .runner import (GLSSummary, format_table, make_jobs, plot, result_rows, run_gls, run_jobs,
                     summarize, write_outputs)
from .toolbox import accuracy_evaluator, final_accuracy, gls_toolbox

__all__ = ["GLSConfig", "ARMS", "ARM_TITLES", "gls_toolbox", "accuracy_evaluator",
           "final_accuracy", "run_job",
           "run_gls", "GLSSummary", "make_jobs", "run_jobs", "summarize", "format_table",
           "result_rows", "write_outputs", "plot"]
