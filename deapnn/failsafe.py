"""Failure is data: one evaluation that raises, runs out of (CUDA)
memory or overruns its time gives that individual the worst fitness and a recorded reason; the
generation, and the run, go on.

    toolbox.register("evaluate", guarded(evaluate, worst=(0.0,), timeout=60))

:class:`Guarded` is a picklable callable (SCOOP ships it to the workers; it holds only the
wrapped evaluate, the worst value and the timeout), so the failure is caught **on the worker**
and comes back as an ordinary result: an :class:`~deapnn.evaluation.Evaluation` with the worst
fitness values and ``error`` set to the reason.

Limits of the timeout (``SIGALRM`` through ``signal.setitimer``):

* POSIX only, and only in the main thread of the process (SCOOP runs tasks there); elsewhere the
  evaluation runs without a time limit (it is never refused).
* The alarm raises :class:`EvaluationTimeout` between Python bytecodes: one long C call (a huge
  torch op, a blocking read) finishes before it is interrupted.
* Code inside the evaluation that catches every ``Exception`` sees the timeout first; the NLFS and
  EvoMAL evaluators do, and record it as their reason (the intended path). Code that swallows it
  silently runs on past the limit.
* The evaluation must not itself wait on SCOOP futures (the alarm would fire in SCOOP's code).
* An enclosing alarm is suspended for the evaluation and re-armed with its remaining time after.
"""
from __future__ import annotations

import signal
import threading
import time
from contextlib import contextmanager

from .evaluation import Evaluation

class EvaluationTimeout(Exception):
    """An evaluation ran past its time limit."""


def is_oom(exc: BaseException) -> bool:
    """True for a CUDA (or other accelerator) out-of-memory error."""
    import torch
    oom = getattr(torch.cuda, "OutOfMemoryError", None)
    if oom is not None and isinstance(exc, oom):
        return True
    return isinstance(exc, (RuntimeError, MemoryError)) and "out of memory" in str(exc).lower()


def free_accelerator_memory() -> None:
    """Release cached CUDA blocks after an out-of-memory error (never initialises CUDA)."""
    import gc
    import torch
    gc.collect()
    try:
        if torch.cuda.is_initialized():
            torch.cuda.empty_cache()
    except Exception:   # a broken CUDA context must not turn one failure into a crash
        pass


def describe(exc: BaseException) -> str:
    """One-line reason for a failed evaluation (``Type: first line``); frees the CUDA cache when
    ``exc`` is an out-of-memory error, so the next evaluation on this worker can run."""
    if is_oom(exc):
        free_accelerator_memory()
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0][:300]}" if text else type(exc).__name__


def default_timeout() -> float | None:
    """Per-evaluation time limit in seconds from ``DEAPNN_EVAL_TIMEOUT`` (``--eval-timeout``;
    unset or 0: none). A value that is not a number >= 0 is
    :class:`deapnn.parallel.SettingError` naming the variable, never silently no limit."""
    from .parallel import env_setting
    return env_setting("DEAPNN_EVAL_TIMEOUT") or None


def can_time_out() -> bool:
    """Whether :func:`time_limit` can interrupt code running in this thread."""
    return hasattr(signal, "SIGALRM") and threading.current_thread() is threading.main_thread()


@contextmanager
def time_limit(seconds: float | None):
    """Raise :class:`EvaluationTimeout` in the block after ``seconds`` (see the module's limits).
    ``None``/0, a non-main thread or a platform without ``SIGALRM``: no limit."""
    if not seconds or seconds <= 0 or not can_time_out():
        yield
        return

    def on_alarm(signum, frame):
        raise EvaluationTimeout(f"evaluation exceeded its time limit of {seconds:g} s")

    previous = signal.signal(signal.SIGALRM, on_alarm)
    outer_left, _ = signal.setitimer(signal.ITIMER_REAL, seconds)
    started = time.monotonic()
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
        if outer_left:                 # re-arm an enclosing alarm with what it had left
            signal.setitimer(signal.ITIMER_REAL,
                             max(1e-3, outer_left - (time.monotonic() - started)))


def failure_reason(result) -> str | None:
    """The recorded failure of an evaluation result (an :class:`Evaluation`'s ``error``), or
    None for a plain fitness tuple."""
    return result.error if isinstance(result, Evaluation) else None


class Guarded:
    """``Guarded(evaluate, worst, timeout=None)(*args)``: ``evaluate(*args)``, or, when it raises
    (``Exception``, CUDA out-of-memory included) or overruns ``timeout`` seconds,
    ``Evaluation(worst, {}, error=reason)`` (``worst``: the worst fitness tuple, or one number).
    ``passthrough`` exception classes are re-raised (errors of the run, not of one individual).
    Picklable when ``evaluate`` and ``worst`` are."""

    def __init__(self, evaluate, worst, timeout: float | None = None, passthrough: tuple = ()):
        if timeout is not None and not timeout > 0:
            raise ValueError(f"timeout must be > 0 seconds or None, got {timeout!r}")
        self.evaluate = evaluate
        self.worst = tuple(worst) if isinstance(worst, (tuple, list)) else (float(worst),)
        self.timeout = timeout
        self.passthrough = tuple(passthrough)

    def __call__(self, *args, **kwargs):
        try:
            with time_limit(self.timeout):
                return self.evaluate(*args, **kwargs)
        except self.passthrough:
            raise
        except Exception as exc:   # failure is data: this individual fails, the run goes on
            return Evaluation.failure(self.worst, describe(exc))

    def __repr__(self):
        return f"Guarded({self.evaluate!r}, worst={self.worst!r}, timeout={self.timeout!r})"


def guarded(evaluate, worst, timeout: float | None = None, passthrough: tuple = ()) -> Guarded:
    """Wrap ``evaluate`` so that a failure gives ``worst`` with a reason (see :class:`Guarded`)."""
    return Guarded(evaluate, worst, timeout, passthrough)


__all__ = ["EvaluationTimeout", "Guarded", "guarded", "describe", "failure_reason", "time_limit",
           "default_timeout", "is_oom", "can_time_out"]
