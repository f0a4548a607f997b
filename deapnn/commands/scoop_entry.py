"""Entry script that SCOOP runs when ``deapnn ... --workers N`` re-launches itself.

``python -m scoop -n N scoop_entry.py --deapnn-supervisor PORT:TOKEN <deapnn argv>``: every SCOOP
process of the run first attaches to the supervisor in the deapnn process that started it
(:mod:`deapnn.heartbeat`: it exits when that process is gone or unreachable). The origin then runs
the command (``__main__``), its SIGTERM/SIGHUP handlers installed first, and reports its exit
code to the supervisor, because SCOOP's launcher exits 0 whatever the program returned (and
prints a traceback for ``sys.exit``). Every other worker imports this module, which also applies
the run's ``--device`` so remote workers, which get no environment from the origin, evaluate on
the same kind of device.
"""
import os
import sys

_HERE = os.path.dirname(os.path.abspath(__file__))
# SCOOP appends this script's directory to sys.path; its modules (gls.py, train.py, datasets.py…)
# must not shadow top-level packages of the same names
sys.path[:] = [p for p in sys.path if os.path.abspath(p or ".") != _HERE]
_ROOT = os.path.dirname(os.path.dirname(_HERE))
if _ROOT not in sys.path:
    sys.path.append(_ROOT)

SUPERVISOR_FLAG = "--deapnn-supervisor"      # deapnn.heartbeat.FLAG (not imported: see below)


def _split(argv):
    """(the supervisor's PORT:TOKEN or None, the deapnn argv)."""
    if len(argv) >= 2 and argv[0] == SUPERVISOR_FLAG:
        return argv[1], argv[2:]
    return None, argv


def _apply_device(argv) -> None:
    for i, a in enumerate(argv):
        value = a.split("=", 1)[1] if a.startswith("--device=") else \
            argv[i + 1] if a == "--device" and i + 1 < len(argv) else None
        if value:
            from deapnn.runtime import set_device
            try:
                set_device(value)
            except ValueError:       # the origin reports bad values
                pass


def _run(argv) -> int:
    import traceback
    from deapnn.signals import Terminated
    try:
        from deapnn.cli import main
        code = main(argv, program=True)
    except SystemExit as exc:        # argparse errors and friends
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
        if not isinstance(exc.code, (int, type(None))):
            print(exc.code, file=sys.stderr)
    except KeyboardInterrupt:
        print("deapnn: interrupted", file=sys.stderr)
        code = 130
    except Terminated as exc:        # before the command's own handling began
        print(f"deapnn: terminated ({exc.name})", file=sys.stderr)
        code = exc.exit_code
    except BaseException:            # noqa: BLE001 - reported, then turned into an exit code
        traceback.print_exc()
        code = 1
    sys.stdout.flush()
    sys.stderr.flush()
    return int(code or 0)


_SUPERVISOR, _ARGV = _split(sys.argv[1:])

if __name__ == "__main__":
    from deapnn import heartbeat, signals
    signals.install()                 # first: a TERM from now on ends the run in one line
    if _SUPERVISOR:
        heartbeat.attach(_SUPERVISOR, origin=True)
    _code = _run(_ARGV)
    if _SUPERVISOR:
        heartbeat.report_exit(_code)
    elif _code:                       # run by hand under scoop without the flag
        print(f"deapnn: exit status {_code}", file=sys.stderr)
else:
    if _SUPERVISOR:
        from deapnn import heartbeat
        heartbeat.attach(_SUPERVISOR, origin=False)
    _apply_device(_ARGV)
