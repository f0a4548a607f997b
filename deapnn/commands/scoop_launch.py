"""SCOOP's launcher as ``deapnn ... --workers N`` runs it:
``python -m deapnn.commands.scoop_launch ARGS`` is ``python -m scoop ARGS``, except that the
error SCOOP's broker thread (in this process) dies of when it sends to a worker that is gone,
``zmq.error.ZMQError: Host unreachable``, is not printed as a traceback: the origin says in one
line what happened (:mod:`deapnn.heartbeat`, :class:`deapnn.parallel.ScoopMap`). Another error
of the broker is one ``deapnn: warning:`` line. Nothing else changes.
"""
import errno
import sys
import threading


def _broker_died(args) -> None:
    try:
        import zmq
    except ImportError:                        # pragma: no cover - SCOOP needs pyzmq
        zmq = None
    if zmq is None or not issubclass(args.exc_type, zmq.ZMQError):
        return _DEFAULT(args)
    if getattr(args.exc_value, "errno", None) == errno.EHOSTUNREACH:
        return                                 # a worker is gone: the origin says so
    print(f"deapnn: warning: SCOOP's broker stopped: {args.exc_value}", file=sys.stderr,
          flush=True)


_DEFAULT = threading.excepthook


def main() -> None:
    threading.excepthook = _broker_died
    sys.argv[0] = "scoop"
    from scoop.launcher import main as launch
    launch()


if __name__ == "__main__":
    main()
