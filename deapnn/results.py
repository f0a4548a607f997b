"""Typed run results with a version: the :class:`Summary` every command returns and stores, and
the one migration table every older run directory is read through (README "Exit codes and
run-directory safety"; ``docs/concepts/rundirs.rst``, "Results and versions").

Every runner returns a summary — ``deapnn.baseline.TrainSummary``, ``deapnn.gls.GLSSummary``,
``deapnn.nlfs.NLFSSummary``, ``deapnn.evomal.run.EvoMALSummary`` — and writes its ``to_dict()``
(:meth:`deapnn.rundir.RunDir.write_results`) as the run directory's
``results.json`` (:data:`RESULTS_FILE`); ``config.json`` and ``results.json`` carry
``"schema_version"`` (:data:`SCHEMA_VERSION`). A summary counts the jobs of its run and names
the failed ones, so every command computes its exit code the same way
(``deapnn.commands.common.report_failures``, README "Exit codes"). The jobs:

* ``train`` — the one training; a diverged training failed;
* ``gls`` — every arm × seed;
* ``nlfs`` and ``evomal`` — the search (it failed when it found no loss, or no candidate passed
  the rejection protocol) and every final-comparison training scored on the test split (it
  failed when it gave no finite test value, :func:`training_failures`).

A run directory written before the version existed (no ``schema_version``: version 0) is read
through :data:`MIGRATIONS`: :func:`migrate` turns its JSON files into the current layout, and
every reader (``--resume`` through :meth:`deapnn.rundir.RunDir.resume`, ``deapnn report``,
``deapnn compare``) goes through it; nothing else recognises an old layout.
"""
from __future__ import annotations

import dataclasses
import math
import os
from typing import Protocol, runtime_checkable

#: the run's results, written when it finishes (``to_dict()`` of its :class:`Summary`)
RESULTS_FILE = "results.json"
#: the run's configuration, written first (:class:`deapnn.rundir.RunDir`)
CONFIG_FILE = "config.json"
#: where ``train`` and ``evomal`` wrote their results before version 1 (a GLS job's
#: ``<arm>/seed<k>/result.json`` is a job record, not the run's results, and keeps its name)
LEGACY_RESULTS_FILE = "result.json"
#: the layout of ``config.json`` and ``results.json`` this deapnn writes
SCHEMA_VERSION = 2


@runtime_checkable
class Summary(Protocol):
    """What a command's run returns and stores as ``results.json``.

    ``jobs`` is the number of jobs of the run, ``failures`` one ``"job: reason"`` line per failed
    job (empty when none failed): the exit code is 0, 3 or 1 when none, some or all of the jobs
    failed."""

    jobs: int
    failures: list[str]

    def to_dict(self) -> dict:
        """The summary as plain data, ``schema_version`` included: the run's ``results.json``."""

    @classmethod
    def from_dict(cls, data: dict) -> Summary:
        """The summary stored by :meth:`to_dict` (current layout: read through
        :func:`migrate`); a ``KeyError``, ``TypeError`` or ``ValueError`` when it does not fit."""

    def render(self) -> str:
        """The text the command prints on stdout for the run."""


#: the configuration class and the summary class of each run command, as ``"module:name"``
#: (imported when asked for, so reading one run type does not load every method)
RUN_TYPES = {
    "train": ("deapnn.baseline:TrainRunConfig", "deapnn.baseline:TrainSummary"),
    "gls": ("deapnn.gls.config:GLSConfig", "deapnn.gls.runner:GLSSummary"),
    "nlfs": ("deapnn.nlfs.config:NLFSConfig", "deapnn.nlfs.summary:NLFSSummary"),
    "evomal": ("deapnn.evomal.config:EvoMALRunConfig", "deapnn.evomal.run:EvoMALSummary"),
}


def import_object(path: str):
    """The object a ``"module:name"`` path names (imported now)."""
    import importlib
    module, name = path.split(":")
    return getattr(importlib.import_module(module), name)


def config_class(command):
    """The configuration class of ``command``'s runs (None for an unknown run type)."""
    return import_object(RUN_TYPES[command][0]) if command in RUN_TYPES else None


def summary_class(command):
    """The :class:`Summary` class of ``command``'s results (None for a command without one)."""
    return import_object(RUN_TYPES[command][1]) if command in RUN_TYPES else None


def without_version(data: dict) -> dict:
    """``data`` without its ``schema_version`` (what a summary's fields are made of)."""
    return {k: v for k, v in data.items() if k != "schema_version"}


# --- the final trainings of a loss search ---------------------------------------------------
def tuned_trainings(record: dict) -> list[tuple[str, float]]:
    """``(job, test value)`` of every final training of a tuned comparison record
    (:func:`deapnn.comparison.tuned_comparison`): per loss, its final seeds at the chosen
    learning rate and, when that is not the configured one, at the configured one too (one
    training each when they coincide). The tuning trainings (validation split) only choose the
    learning rate and are not jobs of the run."""
    jobs = []
    for row in record["losses"]:
        runs = [("tuned", row["tuned"]["test"])]
        if row["lr"] != record["lr"]:
            runs.append(("untuned", row["untuned"]["test"]))
        for which, values in runs:
            jobs += [(f"final {row['loss']} {which} seed {s}", v)
                     for s, v in zip(record["seeds"], values)]
    return jobs


def training_failures(trainings: list[tuple[str, float]]) -> list[str]:
    """The failed ones of ``(job, test value)`` trainings: no finite test value (a diverged or
    failed training; the comparison's means leave it out)."""
    return [f"{job}: no finite test value (the training failed or diverged)"
            for job, value in trainings
            if not isinstance(value, (int, float)) or not math.isfinite(value)]


# --- versions and the migration table -------------------------------------------------------------
def stored_version(config: dict) -> int:
    """The schema version of a ``config.json`` (0 when it has none); ``ValueError`` naming the
    file for a version that is not a number or is newer than this deapnn's."""
    version = config.get("schema_version", 0)
    if isinstance(version, bool) or not isinstance(version, int) or version < 0:
        raise ValueError(f"{CONFIG_FILE} has schema_version {version!r}, not a version number")
    if version > SCHEMA_VERSION:
        raise ValueError(f"{CONFIG_FILE} has schema version {version}, newer than this "
                         f"deapnn's {SCHEMA_VERSION}: a newer deapnn wrote it, upgrade to read it")
    return version


def _named_block(files: dict) -> dict:
    """``{"command": C, C: {...}}`` → ``{"command": C, "config": {...}}``."""
    config = files[CONFIG_FILE]
    command = config.get("command")
    if "config" in config or not isinstance(command, str) or command not in config:
        return files
    rest = {k: v for k, v in config.items() if k != command}
    return {**files, CONFIG_FILE: {**rest, "config": config[command]}}


def _run_settings(command) -> set | None:
    """The settings a flat ``config.json`` of ``command`` holds among its flags (None: every
    key is one): ``train``'s ``TrainRunConfig`` fields; ``evomal``'s ``EvoMALRunConfig`` fields
    but the invocation's and the tuned comparison's (the flat layout is older than the tuned
    comparison)."""
    former = set(RENAMED_SETTINGS.get(command, {}))      # a flat layout has the old names
    if command == "train":
        from .baseline import TrainRunConfig
        return {f.name for f in dataclasses.fields(TrainRunConfig)} | former
    if command == "evomal":
        from .evomal.config import EvoMALRunConfig as C
        return ({f.name for f in dataclasses.fields(C)} - set(C.invocation_settings())
                - set(C.TUNING) | former)
    return None


def _flat_flags(files: dict) -> dict:
    """Every command-line flag at the top level → the settings under ``config``, the other
    flags (device, workers, out, ...) beside it; ``train``'s ``no_augment`` becomes ``augment``."""
    config = files[CONFIG_FILE]
    if "config" in config:
        return files
    command = config.get("command")
    names = _run_settings(command)
    block = {k: v for k, v in config.items()
             if k != "command" and (names is None or k in names)}
    moved = set(block)
    if command == "train" and "no_augment" in config:
        block["augment"] = not config["no_augment"]
        moved.add("no_augment")
    rest = {k: v for k, v in config.items() if k not in moved}
    return {**files, CONFIG_FILE: {**rest, "config": block}}


def _results_name(files: dict) -> dict:
    """``result.json`` (``train``, ``evomal``) → ``results.json``; a ``results.json`` a resumed
    run has written since wins."""
    if LEGACY_RESULTS_FILE not in files:
        return files
    files = dict(files)
    legacy = files.pop(LEGACY_RESULTS_FILE)
    if files[CONFIG_FILE].get("command") in ("train", "evomal"):
        files.setdefault(RESULTS_FILE, legacy)
    return files


def _results_fields(files: dict) -> dict:
    """What a summary's ``render`` needs and version 0 did not store: ``gls`` gains the run's
    configuration (the table's title line), ``train`` the device (unknown: null)."""
    results = files.get(RESULTS_FILE)
    if not isinstance(results, dict) or "schema_version" in results:
        return files                 # written by this version (a resumed old run)
    config = files[CONFIG_FILE]
    if config.get("command") == "gls":
        results = {"config": config["config"], **results}
    elif config.get("command") == "train":
        results = {"device": None, **results}
    return {**files, RESULTS_FILE: results}


#: settings renamed in version 1 (``docs/glossary.md``): command -> {former name: name}
RENAMED_SETTINGS = {"gls": {"pop": "population_size"},
                    "nlfs": {"population": "population_size"},
                    "evomal": {"population": "population_size"}}


def _renamed(block, command: str):
    names = RENAMED_SETTINGS.get(command, {})
    if not isinstance(block, dict):
        return block
    return {names.get(k, k): v for k, v in block.items()}


#: settings that were seed counts and are lists of seed indices since version 1
SEED_LISTS = ("seeds", "tune_seeds")


def _seed_lists(block):
    """A count ``n`` of seeds (``seeds``, ``tune_seeds``: nlfs, evomal, their comparison
    records) → the seed indices ``[0 .. n-1]`` it meant."""
    if not isinstance(block, dict):
        return block
    return {k: list(range(v)) if k in SEED_LISTS and isinstance(v, int)
            and not isinstance(v, bool) else v for k, v in block.items()}


def job_row(row, command: str = "gls"):
    """A GLS job's result row (``<arm>/seed<k>/result.json``) in the current layout: its
    regime's ``pop`` is ``population_size`` since version 1."""
    return _renamed(row, command)


def _unified_names(files: dict) -> dict:
    """The names unified in version 1 (``RENAMED_SETTINGS``): in ``config.json``'s block, in
    gls's result rows and in the configuration a ``results.json`` carries."""
    config = files[CONFIG_FILE]
    command = config.get("command")
    files = {**files, CONFIG_FILE: {**config, "config": _seed_lists(
        _renamed(config.get("config"), command))}}
    results = files.get(RESULTS_FILE)
    if isinstance(results, dict):
        results = dict(results)
        if command == "gls" and isinstance(results.get("results"), list):
            results["results"] = [job_row(r) for r in results["results"]]
        if "config" in results:         # the configuration a gls / nlfs summary carries
            results["config"] = _seed_lists(_renamed(results["config"], command))
        if isinstance(results.get("tuned"), dict):   # a tuned comparison's record
            results["tuned"] = _seed_lists(results["tuned"])
        files[RESULTS_FILE] = results
    return files


#: settings added after the first run directories were written, with the value that makes a
#: config.json written before them describe the run it made (``docs/faithfulness.md`` names
#: each earlier behaviour): the untuned final comparison, NLFS's seeds aged best first, failed
#: children inserted and free wiring, EvoMAL's screen before the local search with per-tree
#: seeds
EARLIER_BEHAVIOUR = {
    "nlfs": {"tune": False, "initial_age": "ordered", "failed_child": "insert",
             "wiring": "free"},
    "evomal": {"tune": False},
}


def _changed_block(files: dict, change) -> dict:
    """``files`` with ``config.json``'s settings block replaced by ``change(command, block)``
    (left as it is when the block is not an object)."""
    config = files[CONFIG_FILE]
    block = config.get("config")
    if not isinstance(block, dict):
        return files
    return {**files, CONFIG_FILE: {**config, "config": change(config.get("command"), block)}}


def _earlier_behaviour(files: dict) -> dict:
    """A setting a version-0 ``config.json`` lacks takes the value of the behaviour its run
    had (:data:`EARLIER_BEHAVIOUR`); an EvoMAL configuration without ``rejection`` predates the
    faithful protocol: rejection before the local search, per-tree seeds, 1,000 rejection
    steps, and ``generations`` that counted the populations after the initial one (+1)."""
    def change(command, stored):
        block = {**EARLIER_BEHAVIOUR.get(command, {}), **stored}
        if command == "evomal" and "rejection" not in stored:
            block = {"rejection": "before", "fitness_seed": "per_tree", **block}
            if isinstance(block.get("generations"), int):
                block["generations"] += 1
            if block.get("rejection_steps") is None:
                block["rejection_steps"] = 1000
        return block
    return _changed_block(files, change)


#: settings added in version 2 (issue 22, the second faithfulness pass), with the value of the
#: behaviour a version-1 run had: EvoMAL's PyTorch-default initialisation and fingerprint
#: archive key; NLFS's children diverged after the pre-screen treated as failed and two-bend
#: probe curves flipped when they end falling
EARLIER_BEHAVIOUR_2 = {
    "evomal": {"init": "pytorch", "archive_key": "fingerprint"},
    "nlfs": {"diverged_child": "failed", "flip_rule": "end"},
}
#: the MLP's hidden sizes a run without ``init`` used when its ``hidden`` was unset (the
#: model's default then; EvoMAL's default is now the reference's 1000×1000)
EARLIER_MLP_HIDDEN = [256, 256]


def _earlier_behaviour_2(files: dict) -> dict:
    """A setting a version-1 ``config.json`` lacks takes the value of the behaviour its run had
    (:data:`EARLIER_BEHAVIOUR_2`); an EvoMAL MLP without ``init`` and ``hidden`` had the
    MLP's earlier default width (:data:`EARLIER_MLP_HIDDEN`)."""
    def change(command, stored):
        block = {**EARLIER_BEHAVIOUR_2.get(command, {}), **stored}
        if command == "evomal" and "init" not in stored and stored.get("hidden") is None \
                and stored.get("model", "mlp") == "mlp":
            block["hidden"] = list(EARLIER_MLP_HIDDEN)
        return block
    return _changed_block(files, change)


#: ``(from_version, description, function)``: the steps that turn a run directory's JSON files
#: (``{file name: JSON object}``) of ``from_version`` into the next version, in order
#: (:func:`migrate`). A step leaves files already in its result's layout as they are.
#:
#: :meta hide-value:
MIGRATIONS = [
    (0, "config.json: the configuration block under the command's name (gls, nlfs before the "
        "one layout) moves under 'config'", _named_block),
    (0, "config.json: every command-line flag at the top level (train, evomal before the one "
        "layout): the run's settings move under 'config' (train's no_augment becomes augment), "
        "the invocation's flags stay beside it", _flat_flags),
    (0, "result.json (train, evomal) becomes results.json", _results_name),
    (0, "results.json: gls stores the run's configuration, train the device (null: unknown)",
     _results_fields),
    (0, "one name per setting: gls pop, nlfs and evomal population become population_size "
        "(config.json, gls result rows); nlfs and evomal seeds and tune_seeds become lists of "
        "seeds (a count n: 0 .. n-1)", _unified_names),
    (0, "config.json: a setting added since the run was written takes the value of the "
        "behaviour the run had (EARLIER_BEHAVIOUR; EvoMAL before the faithful rejection "
        "protocol)", _earlier_behaviour),
    (1, "config.json: a setting added in version 2 takes the value of the behaviour the run had "
        "(EARLIER_BEHAVIOUR_2: EvoMAL's PyTorch-default initialisation, its 256x256 MLP and "
        "fingerprint archive key; NLFS's diverged children treated as failed and two-bend "
        "curves flipped by their end)", _earlier_behaviour_2),
]


def migrate(files: dict) -> dict:
    """A run directory's JSON files ``{name: object}`` (``config.json`` and, when present,
    ``results.json`` / ``result.json``) in the current layout: every step of
    :data:`MIGRATIONS` from ``config.json``'s version on, then ``schema_version`` set. The
    input is not changed; ``ValueError`` (:func:`stored_version`) for an unknown version."""
    version = stored_version(files[CONFIG_FILE])
    for start, _, step in MIGRATIONS:
        if start >= version:
            files = step(files)
    return {name: {**data, "schema_version": SCHEMA_VERSION}
            if name in (CONFIG_FILE, RESULTS_FILE) and isinstance(data, dict) else data
            for name, data in files.items()}


# --- reading a run directory ----------------------------------------------------------------
def _read_object(path: str):
    from .rundir import read_json_object
    if not os.path.exists(path):
        return None
    try:
        return read_json_object(path)
    except ValueError as exc:
        raise ValueError(f"{path}: {exc}") from None


def read_run(run_dir: str, read=None) -> dict:
    """``config.json`` and the results of ``run_dir`` in the current layout (:func:`migrate`):
    ``{"config.json": ..., "results.json": ...}``, the results absent before the run wrote them.
    ``read(path)``: the JSON object in ``path``, None when absent (default: a ``ValueError``
    naming the file when it is unreadable or not an object)."""
    read = read or _read_object
    config = read(os.path.join(run_dir, CONFIG_FILE))
    if config is None:
        raise ValueError(f"{run_dir}: no {CONFIG_FILE}")
    files = {CONFIG_FILE: config}
    names = (RESULTS_FILE,) if stored_version(config) else (RESULTS_FILE, LEGACY_RESULTS_FILE)
    for name in names:
        data = read(os.path.join(run_dir, name))
        if data is not None:
            files[name] = data
    return migrate(files)


def read_summary(run_dir: str, read=None):
    """The :class:`Summary` of ``run_dir``'s results (:func:`read_run`), or None when the run
    has not written them or its command stores none; ``ValueError`` naming the file when it
    does not hold a summary of the run's command."""
    files = read_run(run_dir, read)
    command = files[CONFIG_FILE].get("command")
    cls, data = summary_class(command), files.get(RESULTS_FILE)
    if cls is None or data is None:
        return None
    try:
        return cls.from_dict(data)
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        path = os.path.join(run_dir, RESULTS_FILE)
        if not os.path.exists(path):
            path = os.path.join(run_dir, LEGACY_RESULTS_FILE)
        raise ValueError(f"{path} does not hold the results of a {command} run "
                         f"({type(exc).__name__}: {str(exc)[:200]})") from None


__all__ = ["RUN_TYPES", "config_class", "summary_class", "import_object", "Summary", "RESULTS_FILE",
           "CONFIG_FILE", "LEGACY_RESULTS_FILE", "SCHEMA_VERSION", "MIGRATIONS",
           "RENAMED_SETTINGS", "EARLIER_BEHAVIOUR", "EARLIER_BEHAVIOUR_2", "SEED_LISTS", "job_row",
           "migrate",
           "stored_version", "read_run", "read_summary", "tuned_trainings", "training_failures",
           "without_version"]
