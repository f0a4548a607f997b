"""SIGTERM and SIGHUP end a deapnn command like Ctrl-C (issue 23, item 11).

A batch system pre-empting a job sends SIGTERM; a closed terminal or ssh session sends SIGHUP.
Either raises :class:`Terminated` in the main thread, which unwinds like ``KeyboardInterrupt``:
every atomic write in progress is finished or abandoned (its temporary file removed), and the
command says so in one line and exits ``128 + signal`` (143, 129).

* :func:`install` is the first thing the entry point does (``deapnn.cli.main``, before it
  imports torch), so a signal during start-up is reported like any other;
* the handler acts once: repeats (a second TERM while the first unwinds, five in a row) are
  ignored, and so is any signal after :func:`freeze` (the outcome is decided) or
  :func:`exiting` (the process is on its way out with it);
* :func:`request_stop` ends the run the same way from another thread, with a reason that
  becomes the error line (the SCOOP origin when its launcher was killed: :mod:`deapnn.heartbeat`).

No torch, no numpy: importing this module costs nothing.
"""
from __future__ import annotations

import os
import signal
import threading

#: the signals that end a command like SIGTERM (SIGINT keeps Python's KeyboardInterrupt)
HANDLED = tuple(getattr(signal, name) for name in ("SIGTERM", "SIGHUP") if hasattr(signal, name))


class Terminated(BaseException):
    """A handled signal arrived (see module): unwound like Ctrl-C."""

    def __init__(self, signum: int = signal.SIGTERM):
        super().__init__(signum)
        self.signum = signum

    @property
    def exit_code(self) -> int:
        return 128 + int(self.signum)

    @property
    def name(self) -> str:
        return signal.Signals(self.signum).name


_STATE = {"signum": None, "frozen": False, "reason": None}


def _on_signal(signum, frame):
    if _STATE["signum"] is not None or _STATE["frozen"]:
        return                       # already unwinding, or exiting with its outcome: no second
    _STATE["signum"] = signum
    raise Terminated(signum)


def install() -> dict:
    """Handle :data:`HANDLED` signals for a fresh command (main thread only; elsewhere nothing
    is changed); a signal this process was started ignoring (``nohup``) stays ignored. The
    previous handlers, for :func:`restore`."""
    _STATE.update(signum=None, frozen=False, reason=None)
    if threading.current_thread() is not threading.main_thread():
        return {}
    return {signum: signal.signal(signum, _on_signal) for signum in HANDLED
            if signal.getsignal(signum) is not signal.SIG_IGN}


def restore(previous: dict) -> None:
    """Put back the handlers :func:`install` replaced (a command run inside another program)."""
    for signum, handler in previous.items():
        if handler is not None:
            signal.signal(signum, handler)


def freeze() -> None:
    """The outcome is decided: signals from now on are ignored (the process exits with it)."""
    _STATE["frozen"] = True


def exiting() -> None:
    """This process is on its way out with its outcome: the handled signals are ignored by the
    system from now on (Python's own shutdown, which can take a while after torch, puts the
    default action back for a signal with a Python handler, and that would end it silently)."""
    freeze()
    if threading.current_thread() is threading.main_thread():
        for signum in HANDLED:
            signal.signal(signum, signal.SIG_IGN)


def received() -> int | None:
    """The signal being handled, if any."""
    return _STATE["signum"]


def request_stop(reason: str) -> None:
    """End the command from any thread as if terminated, ``reason`` being its error line (one
    line, without the ``deapnn: error:`` prefix)."""
    if _STATE["reason"] is None:
        _STATE["reason"] = reason
    os.kill(os.getpid(), signal.SIGTERM)


def stop_reason() -> str | None:
    """The reason given to :func:`request_stop`, when the command was stopped that way."""
    return _STATE["reason"]
