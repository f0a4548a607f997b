"""Run by tests/test_worker_loss.py under ``python -m scoop -n 2``: many small maps through
:func:`deapnn.parallel.scoop_map` (torch-free, so a run starts in about a second).

``python -m scoop -n 2 scoop_loss_script.py MAPS ITEMS``: each evaluation of a non-origin
worker writes its pid to ``$LOSS_PIDDIR`` (the test kills that process); the origin prints one JSON
line with every map's results.
"""
import hashlib
import json
import os
import sys
import time


def evaluate(x):
    """A deterministic function of ``x`` that takes a little while."""
    piddir = os.environ.get("LOSS_PIDDIR")
    import scoop
    if piddir and getattr(scoop, "IS_RUNNING", False) and not scoop.IS_ORIGIN:
        open(os.path.join(piddir, str(os.getpid())), "w").close()
    time.sleep(0.04)
    return int.from_bytes(hashlib.sha256(str(x).encode()).digest()[:6], "little")


def expected(maps, items):
    return [[evaluate(g * 1000 + i) for i in range(items)] for g in range(maps)]


if __name__ == "__main__":
    from deapnn.parallel import scoop_map      # what deapnn.runtime.get_map() gives under SCOOP
    maps, items = int(sys.argv[1]), int(sys.argv[2])
    m = scoop_map()
    out = [list(m(evaluate, [g * 1000 + i for i in range(items)])) for g in range(maps)]
    print(json.dumps({"results": out, "lost": bool(getattr(m, "lost", False))}), flush=True)
