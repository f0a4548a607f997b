"""A torch-free ``deapnn ... --workers 2`` for tests/test_supervised.py (starts in about a second).

``python supervised_script.py top MAPS ITEMS``: the deapnn process — runs this script under SCOOP's
launcher as ``deapnn.commands.common.relaunch_under_scoop`` does (``deapnn.commands.supervise.
run_supervised``, ``python -m deapnn.commands.scoop_launch -n 2``) and exits with the code the
origin reports. Under SCOOP the script is ``scoop_entry.py``'s stand-in: every process attaches to
the supervisor; the origin runs MAPS maps of ITEMS items through ``deapnn.parallel.scoop_map``
(0.05 s an item; a worker's evaluation writes its pid to ``$LOSS_PIDDIR``), prints one JSON line
and reports its exit code. The caller puts this checkout on ``PYTHONPATH``.
"""
import json
import os
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))


def evaluate(x):
    import scoop
    piddir = os.environ.get("LOSS_PIDDIR")
    if piddir and not scoop.IS_ORIGIN:
        open(os.path.join(piddir, str(os.getpid())), "w").close()
    time.sleep(0.05)
    return x * x


def _top(maps, items) -> int:
    from deapnn import signals
    from deapnn.commands.supervise import run_supervised
    from deapnn.heartbeat import FLAG
    signals.install()
    cmd = [sys.executable, "-m", "deapnn.commands.scoop_launch", "-n", "2", "-q",
           os.path.join(HERE, "supervised_script.py")]
    try:
        return run_supervised(lambda arg: cmd + [FLAG, arg, maps, items],
                              dict(os.environ), local=True)
    except signals.Terminated as exc:
        print(f"top: terminated ({exc.name})", file=sys.stderr)
        return exc.exit_code
    finally:
        signals.exiting()


def _origin(maps, items) -> int:
    from deapnn import signals
    from deapnn.parallel import scoop_map
    m = scoop_map()
    try:
        out = [m(evaluate, range(g * 100, g * 100 + items)) for g in range(maps)]
    except signals.Terminated as exc:
        signals.freeze()
        print(f"deapnn: error: {signals.stop_reason()}" if signals.stop_reason() else
              f"deapnn: terminated ({exc.name})", file=sys.stderr, flush=True)
        return 1 if signals.stop_reason() else exc.exit_code
    signals.freeze()
    print(json.dumps({"results": out, "lost": m.lost}), flush=True)
    return 0


if __name__ == "__main__" and sys.argv[1:2] == ["top"]:
    sys.exit(_top(*sys.argv[2:4]))

_ARGS = sys.argv[1:]
if _ARGS[:1] == ["--deapnn-supervisor"]:
    from deapnn import heartbeat, signals
    if __name__ == "__main__":
        signals.install()
        heartbeat.attach(_ARGS[1], origin=True)
        heartbeat.report_exit(_origin(int(_ARGS[2]), int(_ARGS[3])))
    else:
        heartbeat.attach(_ARGS[1], origin=False)
