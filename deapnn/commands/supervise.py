"""The deapnn process of a ``--workers N`` run: SCOOP's launcher in a process group of its own,
under a :class:`deapnn.heartbeat.Supervisor` (see there for the whole scheme, issue 23 items 6
and 7). :func:`run_supervised` ends that group on every way out; passes SIGTERM, SIGHUP and
Ctrl-C on to the origin (which ends its run and says so in one line) and Ctrl-Z to the group;
and returns the exit code the origin reported, or says in one line why there is none (the
launcher or the origin killed).
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time

from .. import signals
from ..heartbeat import GRACE, Supervisor


def run_supervised(command, env: dict, *, local: bool, hint=lambda: "") -> int:
    """Run SCOOP's launcher ``command(argument)`` (``argument``: the value of
    :data:`deapnn.heartbeat.FLAG`) under a :class:`~deapnn.heartbeat.Supervisor` and return the
    command's exit code. Terminated or KeyboardInterrupt is passed on to the origin; it is
    raised again when the origin did not report (its line not said). ``hint()``: the end of a
    line about a stopped run (``, resume with --resume DIR``)."""
    sup = Supervisor(local=local)
    group = {"process_group": 0} if sys.version_info >= (3, 11) else {"preexec_fn": os.setpgrp}
    try:
        child = subprocess.Popen(command(sup.argument), env=env, **group)
    except BaseException:
        sup.close()
        raise
    previous = _forward_stops(child.pid)
    try:
        try:
            rc = child.wait()
            signals.freeze()           # the outcome is the run's: a signal now changes nothing
        except (signals.Terminated, KeyboardInterrupt) as exc:
            signum = getattr(exc, "signum", signal.SIGINT)
            if not sup.tell_origin(f"signal {int(signum)}"):
                _signal_group(child.pid, signum)
            _wait_origin(sup, child, GRACE)
            if sup.exit_code is None:
                raise
            return sup.exit_code
        if sup.wait(2.0 if rc == 0 else 0.5) and sup.exit_code is not None:
            return sup.exit_code
        if sup.origin is not None and not sup.origin_gone:  # the launcher died under its origin
            how = (f"was killed by {signal.Signals(-rc).name}" if rc < 0 and -rc in
                   signal.valid_signals() else f"exited ({rc})")
            reason = f"the SCOOP launcher (pid {child.pid}) {how}; the run was stopped"
            if sup.tell_origin(f"stop {reason}"):
                _wait_origin(sup, None, GRACE)
                if sup.exit_code is not None:
                    return sup.exit_code
            print(f"deapnn: error: {reason}{hint()}", file=sys.stderr, flush=True)
            return 1
        what = (f"the SCOOP origin (pid {sup.origin.pid} on {sup.origin.host}) ended without "
                "an exit status (killed?)" if sup.origin is not None else
                f"the SCOOP run ended before its origin started (launcher exit {rc})")
        print(f"deapnn: error: {what}; see the messages above{hint()}", file=sys.stderr,
              flush=True)
        return 1
    finally:
        signals.freeze()               # the outcome is decided; ending the group is not undone
        end_group(child.pid)
        if child.poll() is None:
            child.kill()
            child.wait()
        _restore_stops(previous)
        sup.close()


def _wait_origin(sup, child, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and not sup.wait(0.1):
        if child is not None and child.poll() is not None and sup.origin is None:
            return                     # the run ended before its origin ever attached


def _signal_group(pgid: int, signum: int) -> None:
    try:
        os.killpg(pgid, signum)
    except (ProcessLookupError, PermissionError):
        pass


def _group_alive(pgid: int) -> bool:
    """Whether process group ``pgid`` has a member that is not a zombie."""
    if not os.path.isdir("/proc"):
        try:
            os.killpg(pgid, 0)
            return True
        except (ProcessLookupError, PermissionError):
            return False
    for name in os.listdir("/proc"):
        if name.isdigit():
            try:
                with open(f"/proc/{name}/stat", "rb") as fh:
                    fields = fh.read().rsplit(b")", 1)[1].split()
            except OSError:
                continue
            if int(fields[2]) == pgid and fields[0] != b"Z":
                return True
    return False


def end_group(pgid: int, grace: float = 2.0) -> None:
    """End process group ``pgid``: SIGTERM, then SIGKILL to what is left after ``grace`` s."""
    for signum in (signal.SIGTERM, signal.SIGKILL):
        _signal_group(pgid, signum)
        deadline = time.monotonic() + grace
        while _group_alive(pgid):
            if time.monotonic() > deadline:
                break
            time.sleep(0.05)
        else:
            return


def _forward_stops(pgid: int):
    """Ctrl-Z (SIGTSTP) stops the launcher's group with this process; ``fg`` continues both."""
    if not hasattr(signal, "SIGTSTP") or threading.current_thread() is not threading.main_thread():
        return None

    def on_tstp(signum, frame):
        _signal_group(pgid, signal.SIGSTOP)
        os.kill(os.getpid(), signal.SIGSTOP)
        _signal_group(pgid, signal.SIGCONT)
    return signal.signal(signal.SIGTSTP, on_tstp)


def _restore_stops(previous) -> None:
    if previous is not None:
        signal.signal(signal.SIGTSTP, previous)
