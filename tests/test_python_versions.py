"""The supported Python versions are written once, as pyproject.toml's "Programming Language ::
Python :: 3.X" classifiers; everything else that names them must agree: requires-python, ruff's and
mypy's target (the oldest), the README, and the Makefile's PYTHONS (which `make test-matrix`, run by
.ci/run, tests on). And .ci/test-matrix fails, with one line, on a version it has no interpreter for
unless ALLOW_MISSING_PYTHONS=1."""
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
PYPROJECT = (REPO / "pyproject.toml").read_text(encoding="utf-8")


def _key(version):
    return tuple(int(p) for p in version.split("."))


def _classified():
    versions = re.findall(r'^\s*"Programming Language :: Python :: (3\.\d+)",', PYPROJECT,
                          flags=re.M)
    return sorted(versions, key=_key)


def test_classifiers_are_consecutive_minor_versions():
    versions = _classified()
    assert len(versions) >= 2, versions
    minors = [_key(v)[1] for v in versions]
    assert minors == list(range(minors[0], minors[-1] + 1)), versions


def test_requires_python_is_the_oldest_classified_version():
    oldest = _classified()[0]
    assert re.search(r'^requires-python = ">=(3\.\d+)"$', PYPROJECT, flags=re.M).group(1) == oldest
    assert re.search(r'^target-version = "py(\d+)"$', PYPROJECT, flags=re.M).group(1) \
        == oldest.replace(".", "")
    assert re.search(r'^python_version = "(3\.\d+)"$', PYPROJECT, flags=re.M).group(1) == oldest


def test_readme_names_the_classified_range():
    versions = _classified()
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    assert f"Python {versions[0]}–{versions[-1]}" in readme
    assert not re.search(r"Python ≥ ?3\.\d+", readme)


@pytest.mark.skipif(shutil.which("make") is None, reason="no make on PATH")
def test_makefile_matrix_reads_the_classifiers():
    env = {k: v for k, v in os.environ.items()   # no overrides from outside (nor a calling make)
           if k not in ("PYTHONS", "MATRIX_PYTHONS", "MAKEFLAGS", "MFLAGS", "MAKELEVEL")}
    out = subprocess.run(["make", "-n", "--no-print-directory", "test-matrix",
                          "MATRIX_PYTHONS=$(PYTHONS)"], cwd=REPO, capture_output=True,
                         text=True, check=True, env=env).stdout
    assert out.split() == [".ci/test-matrix", *_classified()]


def test_this_interpreter_is_supported():
    """The suite proves support only on a classified version; on another one it says so."""
    if f"{sys.version_info[0]}.{sys.version_info[1]}" not in _classified():
        pytest.skip(f"Python {sys.version_info[0]}.{sys.version_info[1]} is not one of "
                    f"pyproject.toml's classified versions {_classified()}")


@pytest.mark.skipif(shutil.which("bash") is None, reason="no bash on PATH")
@pytest.mark.parametrize("allow", ["0", "1"])
def test_matrix_missing_interpreter_fails_unless_allowed(allow):
    env = {**os.environ, "ALLOW_MISSING_PYTHONS": allow, "PYTHON399": "/nonexistent/python3.99",
           "MAKE": "false"}   # nothing is installed or run for a missing version
    res = subprocess.run(["bash", str(REPO / ".ci" / "test-matrix"), "3.99"], cwd=REPO,
                         capture_output=True, text=True, env=env, timeout=60)
    lines = res.stderr.strip().splitlines()
    if allow == "1":
        assert res.returncode == 0, res.stderr
        assert len(lines) == 1 and "no Python 3.99 interpreter" in lines[0] \
            and "skipped" in lines[0], res.stderr
    else:
        assert res.returncode == 1, res.stderr
        assert "ERROR: no Python 3.99 interpreter" in lines[0], res.stderr
        assert lines[-1] == "test-matrix: FAILED on Python 3.99", res.stderr
    assert not (REPO / ".venv399").exists()
