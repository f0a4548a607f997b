"""SCOOP processes under watch: every way out of a ``--workers N`` run takes its processes down,
and a dead worker is known within seconds (issue 23, items 6 and 7).

SCOOP 0.7 watches nothing: its launcher dies at SIGTERM without ending what it started; a worker
or origin whose broker is gone waits for it forever (the origin's shutdown blocks on a send to
it); a future routed to a dead worker never comes back; a remote worker outlives a cut link.
``deapnn CMD --workers N`` therefore runs SCOOP under a :class:`Supervisor` in the process the
user started (``deapnn.commands.supervise.run_supervised``):

* SCOOP's launcher runs in a process group of its own (same session), which is ended (TERM,
  then KILL) on every way out: finished, failed, interrupted, terminated, the launcher killed.
  Ctrl-Z stops and ``fg`` continues it with the deapnn process.
* Every SCOOP process of the run, local or remote, connects back to the :class:`Supervisor` as
  it starts (:func:`attach`, from ``scoop_entry.py``, before it joins SCOOP's pool) and both sides
  beat every :data:`BEAT` seconds. A worker whose supervisor is gone (connection closed: the deapnn
  process was killed) or silent for :data:`SILENT_AFTER` seconds (its link cut) exits; the origin
  stops its run with the reason as its error line (:func:`deapnn.signals.request_stop`).
* When a worker's connection closes (its process is gone) or falls silent for
  :data:`SILENT_AFTER` seconds (its host unreachable), the supervisor tells the origin, whose
  :class:`deapnn.parallel.ScoopMap` gives the pool up at once (:func:`lost_worker`) instead of
  after ``--worker-timeout``.
* A signal to the deapnn process is passed to the origin, which ends its run (its one line) and
  reports its exit code over its connection (SCOOP's launcher exits 0 whatever the program
  returned): no exit-code file is left anywhere.

Wire format, one ASCII line a message. To the supervisor: ``hello TOKEN ROLE PID HOST`` (ROLE
``origin`` or ``worker``), ``beat``, ``exit CODE`` (origin). To a process: ``beat``; to the origin
also ``lost TEXT``, ``signal N`` (raise signal N), ``stop TEXT`` (end the run, TEXT its error
line). TOKEN, random per run, keeps strangers out.
"""
from __future__ import annotations

import hmac
import os
import secrets
import selectors
import signal
import socket
import sys
import threading
import time

from . import signals

BEAT = 1.0             #: seconds between heartbeats, both ways
SILENT_AFTER = 10.0    #: seconds without a heartbeat after which a worker's host is unreachable
CONNECT_TIMEOUT = 10.0  #: seconds to connect (a process) or to say hello (the supervisor)
GRACE = 30.0           #: seconds the origin gets to end its run after a signal or a stop
FLAG = "--deapnn-supervisor"   #: the first argument of scoop_entry.py, then PORT and TOKEN


# --- the deapnn process: supervisor ------------------------------------------------------------

class _Peer:
    def __init__(self, sock, now):
        self.sock, self.last, self.since = sock, now, now
        self.hello, self.role, self.pid, self.host, self.buf = False, None, 0, "?", b""


class Supervisor:
    """The listening end (see module); ``local``: only this host's processes (127.0.0.1)."""

    def __init__(self, *, local: bool = True, silent_after: float = SILENT_AFTER):
        self.token, self.silent_after = secrets.token_hex(16), silent_after
        if local:
            self._listener = socket.create_server(("127.0.0.1", 0))
        elif socket.has_dualstack_ipv6():
            self._listener = socket.create_server(("", 0), family=socket.AF_INET6,
                                                  dualstack_ipv6=True)
        else:
            self._listener = socket.create_server(("", 0))
        self.port = self._listener.getsockname()[1]
        self.exit_code: int | None = None
        self.origin: _Peer | None = None
        self.origin_gone = False
        self.lost: list[str] = []                  # one line per worker gone
        self._peers: dict = {}
        self._to_origin: list[str] = []            # said before the origin attached
        self._lock = threading.Lock()
        self._done = threading.Event()             # exit code in, or the origin gone
        self._closing = False
        self._thread = threading.Thread(target=self._serve, name="deapnn-supervisor",
                                        daemon=True)
        self._thread.start()

    @property
    def argument(self) -> str:
        return f"{self.port}:{self.token}"

    # main thread
    def tell_origin(self, line: str) -> bool:
        """Send ``line`` to the origin; False when it is not (or no longer) attached."""
        with self._lock:
            origin = self.origin
            if origin is None or self.origin_gone:
                return False
        return self._send(origin, line)

    def wait(self, timeout: float) -> bool:
        """Until the origin reported its exit code or went away (True), or ``timeout``."""
        return self._done.wait(timeout)

    def close(self) -> None:
        """Close every connection (the processes still attached exit) and stop listening."""
        self._closing = True
        self._thread.join(timeout=2 * BEAT)

    # supervisor thread
    def _send(self, peer, line: str) -> bool:
        try:
            with self._lock:
                peer.sock.sendall(line.encode("ascii", "replace") + b"\n")
            return True
        except OSError:
            return False

    def _serve(self) -> None:
        sel = selectors.DefaultSelector()
        sel.register(self._listener, selectors.EVENT_READ)
        next_beat = last_loop = time.monotonic()
        try:
            while not self._closing:
                events = sel.select(timeout=BEAT / 4)
                now = time.monotonic()
                if now - last_loop > 3 * BEAT:     # this process was stopped: nobody was silent
                    for peer in self._peers.values():
                        peer.last = now
                last_loop = now
                for key, _ in events:
                    if key.fileobj is self._listener:
                        try:
                            conn, _ = self._listener.accept()
                        except OSError:
                            continue
                        conn.settimeout(2.0)
                        self._peers[conn] = _Peer(conn, now)
                        sel.register(conn, selectors.EVENT_READ)
                    elif key.fileobj in self._peers:
                        self._read(self._peers[key.fileobj], now, sel)
                beat = now >= next_beat
                next_beat = now + BEAT if beat else next_beat
                for peer in list(self._peers.values()):
                    if not peer.hello and now - peer.since > CONNECT_TIMEOUT:
                        self._gone(peer, sel, None)
                    elif peer.role == "worker" and now - peer.last > self.silent_after:
                        self._gone(peer, sel, f"stopped answering for {self.silent_after:g} s "
                                              "(its host unreachable?)")
                    elif peer.hello and beat and not self._send(peer, "beat"):
                        self._gone(peer, sel, "exited")
        finally:
            for peer in list(self._peers.values()):
                self._gone(peer, sel, None)
            sel.close()
            self._listener.close()

    def _read(self, peer, now, sel) -> None:
        try:
            data = peer.sock.recv(4096)
        except (TimeoutError, BlockingIOError, InterruptedError):
            return
        except OSError:
            data = b""
        if not data:
            return self._gone(peer, sel, "exited")
        peer.last, peer.buf = now, peer.buf + data
        while b"\n" in peer.buf and peer.sock in self._peers:
            line, peer.buf = peer.buf.split(b"\n", 1)
            self._handle(peer, line.decode("ascii", "replace").strip(), sel)
        if len(peer.buf) > 4096:
            self._gone(peer, sel, None)

    def _handle(self, peer, line: str, sel) -> None:
        words = line.split()
        if not peer.hello:
            if len(words) == 5 and words[0] == "hello" and hmac.compare_digest(
                    words[1], self.token) and words[2] in ("origin", "worker") \
                    and words[3].isdigit() and not (words[2] == "origin" and self.origin):
                peer.hello, peer.role, peer.pid, peer.host = True, words[2], int(words[3]), words[4]
                if peer.role == "origin":
                    with self._lock:
                        self.origin = peer
                    for said in self._to_origin:
                        self._send(peer, said)
            else:
                self._gone(peer, sel, None)          # a stranger
        elif peer is self.origin and len(words) == 2 and words[0] == "exit":
            try:
                self.exit_code = int(words[1])
            except ValueError:
                return
            self._done.set()

    def _gone(self, peer, sel, why: str | None) -> None:
        if self._peers.pop(peer.sock, None) is None:
            return
        sel.unregister(peer.sock)
        peer.sock.close()
        if why is None or not peer.hello:
            return
        if peer is self.origin:
            self.origin_gone = True
            self._done.set()
        elif self.exit_code is None and not self._closing:
            text = f"SCOOP worker {peer.pid} on {peer.host} {why}"
            self.lost.append(text)
            if self.origin is None:
                self._to_origin.append(f"lost {text}")
            elif not self.origin_gone:
                self._send(self.origin, f"lost {text}")


# --- a SCOOP process of the run: its watch -----------------------------------------------------

_WATCH = {"sock": None, "lock": threading.Lock(), "lost": None, "said": False}


def attach(argument: str, *, origin: bool) -> None:
    """Connect this SCOOP process to its run's supervisor (``argument``: PORT:TOKEN) at the
    broker's host and watch it (see module). A process that cannot reach it says so in one
    line and exits (a worker before it joins the pool, so no task is lost with it)."""
    import scoop
    port, _, token = argument.partition(":")
    broker = getattr(scoop, "BROKER", None)
    host = getattr(broker, "hostname", None) or "127.0.0.1"
    me = f"SCOOP {'origin' if origin else 'worker'} {os.getpid()} on {socket.gethostname()}"
    try:
        sock = socket.create_connection((host, int(port)), timeout=CONNECT_TIMEOUT)
        sock.sendall(f"hello {token} {'origin' if origin else 'worker'} {os.getpid()} "
                     f"{socket.gethostname().split()[0] or '?'}\n".encode("ascii", "replace"))
    except (OSError, ValueError) as exc:
        print(f"deapnn: error: {me} cannot reach the deapnn process that started the run at "
              f"{host}:{port} ({getattr(exc, 'strerror', None) or exc}); it exits",
              file=sys.stderr, flush=True)
        os._exit(1)
    sock.settimeout(BEAT)
    _WATCH["sock"] = sock
    threading.Thread(target=_watch, args=(sock, origin), name="deapnn-heartbeat",
                     daemon=True).start()


def _say(line: str) -> bool:
    sock = _WATCH["sock"]
    if sock is None:
        return False
    try:
        with _WATCH["lock"]:
            sock.sendall(line.encode("ascii", "replace") + b"\n")
        return True
    except OSError:
        return False


def _watch(sock, origin: bool) -> None:
    buf, last_heard, next_beat = b"", time.monotonic(), 0.0
    while True:
        started = time.monotonic()
        if started >= next_beat:
            next_beat = started + BEAT
            if not _say("beat"):
                return _gone(origin, "its connection broke")
        try:
            data = sock.recv(4096)                   # waits BEAT at most
        except TimeoutError:
            data = None
        except OSError:
            data = b""
        now = time.monotonic()
        if now - started > 3 * BEAT:                 # this process was stopped (Ctrl-Z)
            last_heard = now
        if data == b"":
            return _gone(origin, "it is gone")
        if data:
            last_heard, buf = now, buf + data
            while b"\n" in buf:
                line, buf = buf.split(b"\n", 1)
                _handle(line.decode("ascii", "replace").strip())
        elif not origin and now - last_heard > SILENT_AFTER:
            return _gone(origin, f"silent for {SILENT_AFTER:g} s")


def _handle(line: str) -> None:
    word, _, text = line.partition(" ")
    if word == "lost" and _WATCH["lost"] is None:
        _WATCH["lost"] = text
    elif word == "signal" and text.isdigit():
        os.kill(os.getpid(), int(text))
        _exit_later(GRACE, 128 + int(text))
    elif word == "stop":
        signals.request_stop(text)
        _exit_later(GRACE, 1)


def _gone(origin: bool, why: str) -> None:
    if not origin:
        os._exit(1)                                  # a worker holds nothing worth keeping
    signals.request_stop(f"the deapnn process that started this SCOOP run stopped answering "
                         f"({why}); the run was stopped")
    _exit_later(GRACE, 1)


def _exit_later(seconds: float, code: int) -> None:
    """End this process in ``seconds`` whatever it is doing (a blocked SCOOP shutdown)."""
    timer = threading.Timer(seconds, os._exit, (code,))
    timer.daemon = True
    timer.start()


def report_exit(code: int) -> None:
    """The origin's exit code, to the supervisor (after the line about a worker gone that no
    map had to say); this process ends within a few seconds even when SCOOP's shutdown then
    blocks on a broker that is gone."""
    if _WATCH["lost"] and not _WATCH["said"]:
        print(f"deapnn: warning: {_WATCH['lost']}; no evaluation was lost with it",
              file=sys.stderr, flush=True)
    _say(f"exit {int(code)}")
    _exit_later(5.0, int(code))
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, signal.SIG_DFL)   # its status is out: ending it is safe


def lost_worker(said: bool = False) -> str | None:
    """In the origin: what the supervisor said about the first worker gone, or None.
    ``said``: the caller tells the user (nothing more is said at the end of the run)."""
    _WATCH["said"] = _WATCH["said"] or (said and _WATCH["lost"] is not None)
    return _WATCH["lost"]
