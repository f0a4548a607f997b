"""A SCOOP ``map`` that survives a lost worker.

SCOOP 0.7 does not recover from a worker that dies (SIGKILL, out-of-memory killer, a remote host
going away): its broker keeps handing tasks to the dead worker's address, and the first send to
it raises ``zmq.error.ZMQError: Host unreachable`` in the broker thread, which ends it; every
future still out then never comes back and ``futures.map`` waits forever.

:class:`ScoopMap` (what :func:`deapnn.runtime.get_map` gives under ``python -m scoop``) keeps the
run going instead:

* the origin hands one item at a time to each other worker (``futures.submit``) and evaluates
  the next item itself meanwhile, so ``-n N`` still means N evaluating processes;
* results are put back in input order, and every evaluation seeds itself from the run seed and
  the individual's identity (:func:`deapnn.runtime.derive_seed`), so the result is the serial
  ``map``'s whichever process evaluated what;
* when a worker is known to be gone (under ``deapnn ... --workers N``, the supervisor of
  :mod:`deapnn.heartbeat` says so within a second of its process ending, or
  :data:`deapnn.heartbeat.SILENT_AFTER` seconds after its host stopped answering), or when no
  evaluation has finished for ``timeout`` seconds (``--worker-timeout``, default one hour: a
  worker alive but stuck) while futures are out, the pool is given up: the origin says so in one
  line on stderr, evaluates the outstanding items itself and runs the rest of the run's
  evaluations in this process (SCOOP's broker dies at its next send to a dead worker, losing
  every later future too). The run finishes with the result it would have had; ``--resume``
  with ``--workers`` after stopping it brings the workers back.

Also home of the environment variables of parallel evaluation (:data:`ENV_SETTINGS`), checked
up front by the command line (:func:`check_environment`: one line naming the variable, exit 2).
"""
from __future__ import annotations

import math
import os
import sys
import time

#: seconds without any evaluation finishing, while futures are out, before the workers are
#: presumed lost (``--worker-timeout``; ``$DEAPNN_WORKER_TIMEOUT``)
DEFAULT_WORKER_TIMEOUT = 3600.0
TIMEOUT_ENV = "DEAPNN_WORKER_TIMEOUT"
_POLL_MS = 100


class SettingError(ValueError):
    """An environment variable deapnn reads holds a value it cannot use."""


#: variable -> (type, lowest value accepted, whether that value itself is excluded, meaning)
ENV_SETTINGS = {
    TIMEOUT_ENV: (float, 0, True, "seconds (> 0) without an evaluation from the SCOOP workers"),
    "DEAPNN_EVAL_TIMEOUT": (float, 0, False, "seconds one evaluation may take (>= 0, 0: no limit)"),
    "DEAPNN_THREADS": (int, 1, False, "torch threads per process (an integer >= 1)"),
    "DEAPNN_WORKER_SLOT": (int, 0, False, "this worker's slot on its host (an integer >= 0)"),
    "SCOOP_WORKER_SLOT": (int, 0, False, "this worker's slot on its host (an integer >= 0)"),
    "DEAPNN_FAKE_GPUS": (int, 0, False, "a simulated GPU count (an integer >= 0)"),
}


def env_setting(name: str):
    """The value of environment variable ``name`` of :data:`ENV_SETTINGS` (None when unset or
    empty); :class:`SettingError` naming it when it holds anything else."""
    text = os.environ.get(name, "").strip()
    if not text:
        return None
    kind, low, excluded, meaning = ENV_SETTINGS[name]
    try:
        value = kind(text)
        good = math.isfinite(value) and (value > low if excluded else value >= low)
    except (ValueError, OverflowError):
        good = False
    if not good:
        raise SettingError(f"environment variable {name}={text[:40]!r}: expected {meaning}")
    return value


def check_environment() -> None:
    """Every variable of :data:`ENV_SETTINGS` that is set holds a usable value (see
    :func:`env_setting`)."""
    for name in ENV_SETTINGS:
        env_setting(name)


def worker_timeout() -> float:
    """The lost-worker bound in force: ``$DEAPNN_WORKER_TIMEOUT`` or
    :data:`DEFAULT_WORKER_TIMEOUT`."""
    value = env_setting(TIMEOUT_ENV)
    return DEFAULT_WORKER_TIMEOUT if value is None else value


class WorkersLost(RuntimeError):
    """Raised inside :class:`ScoopMap` when the pool is lost: a worker gone, or none answering."""


class ScoopMap:
    """``map(func, *iterables)`` over SCOOP workers with a bound on a lost worker (see module).

    Returns a list (the callers consume the whole map anyway). An exception raised by ``func``
    for some item is raised again once every item is done, the one of the first such item —
    the item a serial ``map`` would have stopped at.
    """

    def __init__(self, timeout: float | None = None, *, log=None):
        self.timeout = worker_timeout() if timeout is None else float(timeout)
        self.lost = False              # set once: from then on everything runs here
        self._log = log or (lambda text: print(text, file=sys.stderr, flush=True))

    # -- SCOOP plumbing (kept in these small methods: the only use of SCOOP internals) -------
    @staticmethod
    def _remote_workers() -> int:
        import scoop
        return max(0, int(getattr(scoop, "SIZE", 1) or 1) - 1)

    @staticmethod
    def _submit(func, args):
        from scoop import futures
        return futures.submit(func, *args)

    @staticmethod
    def _gone(said: bool = False) -> str | None:
        """What the run's supervisor said about a worker that is gone (None: nothing);
        ``said``: this map says so."""
        from .heartbeat import lost_worker
        return lost_worker(said)

    @staticmethod
    def _pump(futs, wait_ms: int) -> None:
        """Send queued futures to the broker and take in what arrived (waiting up to
        ``wait_ms`` for a message)."""
        from scoop import _control, futures
        futures.wait(list(futs), timeout=0)            # flush the local queue, read replies
        if wait_ms:
            _control.execQueue.socket._poll(wait_ms)
            _control.execQueue.updateQueue()

    # -- the map ------------------------------------------------------------------------------
    def __call__(self, func, *iterables):
        items = list(zip(*iterables))
        if not self.lost and self._gone():
            self._give_up(WorkersLost(self._gone()), 0)
        remote = 0 if self.lost else self._remote_workers()
        if remote == 0 or len(items) <= 1:
            return [func(*args) for args in items]
        results, errors = [None] * len(items), {}
        out: dict = {}                                 # future -> item index
        following = 0                                  # next item nobody has taken yet
        last_progress = time.monotonic()

        def collect() -> bool:
            done = [f for f in out if f._ended()]
            for f in done:
                i = out.pop(f)
                if f.exceptionValue is not None:
                    errors[i] = f.exceptionValue
                else:
                    results[i] = f.resultValue
                f._delete()
            return bool(done)

        try:
            while following < len(items) or out:
                # one item per remote worker in flight (two when there is plenty left)
                limit = remote * (2 if len(items) - following > 2 * (remote + 1) else 1)
                while following < len(items) and len(out) < limit:
                    out[self._submit(func, items[following])] = following
                    following += 1
                self._pump(out, 0)
                if following < len(items):             # the origin takes the next item
                    i, following = following, following + 1
                    try:
                        results[i] = func(*items[i])
                    except Exception as exc:           # noqa: BLE001 - re-raised in order below
                        errors[i] = exc
                    last_progress = time.monotonic()
                    self._pump(out, 0)
                    if self._gone():
                        raise WorkersLost(self._gone())
                    if collect():
                        last_progress = time.monotonic()
                    continue
                self._pump(out, _POLL_MS)
                if self._gone():
                    raise WorkersLost(self._gone())
                if collect():
                    last_progress = time.monotonic()
                elif time.monotonic() - last_progress > self.timeout:
                    raise WorkersLost(f"no evaluation came back from the SCOOP workers for "
                                      f"{self.timeout:g} s")
        except Exception as exc:                        # noqa: BLE001 - lost pool: carry on here
            from scoop._comm import Shutdown
            if not isinstance(exc, (WorkersLost, Shutdown)):
                raise
            self._give_up(exc, len(out))
            for i in sorted(out.values()) + list(range(following, len(items))):
                try:
                    results[i] = func(*items[i])
                except Exception as err:               # noqa: BLE001 - re-raised in order below
                    errors[i] = err
        if errors:
            raise errors[min(errors)]
        return results

    def _give_up(self, why, outstanding: int) -> None:
        self.lost = True
        reason = str(why) or "the SCOOP pool shut down (a worker exited unexpectedly)"
        if self._gone(said=True) is None:
            reason += " (--worker-timeout; a worker died?)"
        what = f"the {outstanding} outstanding item(s) and " if outstanding else ""
        self._log(f"deapnn: warning: {reason}: evaluating {what}the rest of this run in the "
                  "origin process. Results are unchanged; to get the workers back, stop the run "
                  "and `--resume` it with --workers")


_SHARED: ScoopMap | None = None


def scoop_map() -> ScoopMap:
    """This process's :class:`ScoopMap` (one per process, so a lost pool is given up once)."""
    global _SHARED
    if _SHARED is None:
        _SHARED = ScoopMap()
    return _SHARED
