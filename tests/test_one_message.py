"""Validation at entry, one message everywhere (issue 21, item 2).

For every setting a command's configuration constrains with an interval or a set of options, a
bad value is refused with the same one line naming the setting from Python (making the
configuration), from the runner (a configuration changed after it was made, refused before any
work) and from the command line (the line names the flag instead: ``--weight-decay``, not
``weight_decay``). The bad values are generated from the constraints themselves, so a setting
added later is covered without editing this file.
"""
import importlib

import pytest

from deapnn.commands.defaults import CONFIGS
from deapnn.commands.flags import cli_fields, flag_of
from deapnn.config import ConfigError, Interval, Options
from deapnn.results import config_class, import_object


def runner(command):
    """The runner the command runs (its ``Command``'s)."""
    return import_object(importlib.import_module(f"deapnn.commands.{command}").COMMAND.runner)


def bad_values(constraints):
    """``(suffix, value)`` pairs every constraint refuses: below an interval and above it
    (a float bound doubled: FLOAT32_MAX + 1 is FLOAT32_MAX), or an unknown option."""
    if len(constraints) != 1:
        return []
    (rule,) = constraints
    if isinstance(rule, Options) and all(isinstance(v, str) for v in rule.values):
        return [("", "no-such-choice")]
    out = []
    if isinstance(rule, Interval) and rule.low is not None:
        out.append(("", rule.kind(rule.low - 1)))
    if isinstance(rule, Interval) and rule.high is not None:
        high = rule.high + 1 if rule.kind is int or rule.high <= 0 else rule.high * 2
        out.append(("-above" if out else "", rule.kind(high)))
    return out


def cases():
    for command in sorted(CONFIGS):
        cls = config_class(command)
        for field in cli_fields(cls):
            for suffix, value in bad_values(cls._parameter_constraints.get(field.name, ())):
                yield pytest.param(command, cls, field, value,
                                   id=f"{command}-{field.name}{suffix}")


CASES = list(cases())


def test_the_table_covers_every_command_and_the_sgd_settings():
    covered = {(c.values[0], c.values[2].name) for c in CASES}
    assert {c for c, _ in covered} == set(CONFIGS)
    for command in CONFIGS:
        assert {(command, n) for n in ("lr", "momentum", "batch_size", "schedule")} <= covered
    assert len(CASES) >= 60
    for command in CONFIGS:                 # a bound above, from the same constraint
        assert f"{command}-batch_size-above" in {c.id for c in CASES}


@pytest.mark.parametrize("command, cls, field, value", CASES)
def test_a_bad_value_is_one_message_from_python_the_runner_and_the_cli(cli, tmp_path, command,
                                                                      cls, field, value):
    with pytest.raises(ConfigError) as made:
        cls(**{field.name: value})
    message = str(made.value)
    assert made.value.field == field.name and message.startswith(f"{field.name} must be ")
    assert message.endswith(f"got {value!r}") and "\n" not in message

    cfg = cls()
    object.__setattr__(cfg, field.name, value)       # changed after it was made
    with pytest.raises(ConfigError) as ran:
        runner(command)(cfg, None)
    assert str(ran.value) == message

    code, out, err = cli(command, flag_of(field), str(value), "--out", tmp_path / "run")
    flag_message = flag_of(field) + message[len(field.name):]
    assert (code, out, err) == (2, "", f"deapnn: error: {flag_message}\n")
    assert not (tmp_path / "run").exists()


HUGE = str(10**20)
# issue 23, item 12 and its traceback list: values that cannot work (overflow in torch, a chunk
# above the largest, more children than mini-batches, 10**18 seeds materialised, memory beyond
# the host's) are one line naming the flag, exit 2, nothing written
CANNOT_WORK = [
    ("train", ["--batch-size", HUGE], "--batch-size"),
    ("gls", ["--batch-size", HUGE], "--batch-size"),
    ("gls", ["--chunk-size", HUGE], "--chunk-size"),
    ("gls", ["--chunk-size", "4097"], "--chunk-size"),
    ("gls", ["--pop", "100000"], "--population-size"),
    ("gls", ["--population-size", "100000"], "--population-size"),
    ("gls", ["--population-size", "24"], "--population-size"),       # digits: 23 batches of 64
    ("gls", ["--seeds", "0-4294967295"], "--seeds"),
    ("nlfs", ["--seeds", str(10**18)], "--seeds"),
    ("nlfs", ["--seeds", f"0-{10**18}"], "--seeds"),
    ("nlfs", ["--tune-seeds", f"5-{10**18}"], "--tune-seeds"),
    ("evomal", ["--seeds", str(10**18)], "--seeds"),
    ("nlfs", ["--lr-grid", "1e400"], "--lr-grid"),
    ("nlfs", ["--lr-grid", "1,1e38", "--lr", "10"], "--lr-grid"),
    ("train", ["--schedule", "step", "--milestones", "1,2", "--gamma", "1e30"], "--gamma"),
    ("evomal", ["--hidden", "100000000"], "--hidden"),
    ("evomal", ["--hidden", HUGE], "--hidden"),
    ("gls", ["--dataset", "cifar10", "--model", "resnet18", "--batch-size", "1",
             "--population-size", "10000"], "--population-size"),
]


@pytest.mark.parametrize("command, argv, flag", CANNOT_WORK,
                         ids=[f"{c}{' '.join(a)[:40]}" for c, a, _ in CANNOT_WORK])
def test_values_that_cannot_work_are_refused_up_front(cli, tmp_path, monkeypatch, command, argv,
                                                     flag):
    import deapnn.config
    # the memory estimates meet the same 8 GiB on every host (whatever this one has free)
    monkeypatch.setattr(deapnn.config, "available_memory", lambda: 8 * 2**30, raising=False)
    code, out, err = cli(command, *argv, "--out", tmp_path / "run")
    assert (code, out) == (2, ""), err
    assert len(err.splitlines()) == 1 and err.startswith("deapnn") and flag in err, err
    assert "Traceback" not in err and not (tmp_path / "run").exists()


def test_memory_is_estimated_per_worker_and_named_by_its_flag(monkeypatch):
    from deapnn.evomal.config import EvoMALRunConfig
    from deapnn.gls.config import GLSConfig
    gib = 2**30
    cfg = GLSConfig(dataset="cifar10", model="resnet18", batch_size=1, population_size=100)
    cfg.check_resources(available=64 * gib)        # 100 x 11.2M parameters x 12 bytes: 12.5 GiB
    with pytest.raises(ConfigError, match=r"100 children of 11,173,962 parameters would need "
                                          r"about 12\.5 GiB.*8\.0 GiB") as info:
        cfg.check_resources(available=8 * gib)
    assert info.value.field == "population_size"
    with pytest.raises(ConfigError, match=r"12\.5 GiB of memory each, 8 processes at once"):
        cfg.check_resources(workers=8, available=64 * gib)
    wide = EvoMALRunConfig(hidden=(100_000_000,))
    with pytest.raises(ConfigError, match=r"1,200,000,001 parameters") as info:
        wide.check_resources(available=64 * gib)
    assert info.value.field == "hidden"
    batch = EvoMALRunConfig(batch_size=2**26)       # the reference MLP, huge batches
    with pytest.raises(ConfigError) as info:
        batch.check_resources(available=64 * gib)
    assert info.value.field == "batch_size"
    for default in (GLSConfig(), EvoMALRunConfig(), EvoMALRunConfig(dataset="digits",
                                                                   model="cnn")):
        default.check_resources(available=gib)       # the defaults fit in 1 GiB
    assert GLSConfig(dataset="cifar10", population_size=100).check_resources(available=None)


def test_seed_lists_are_bounded_before_they_are_materialised():
    from deapnn.config import SEEDS_MAX, parse_seeds
    from deapnn.gls.config import GLSConfig
    from deapnn.nlfs import NLFSConfig
    with pytest.raises(ConfigError, match=rf"seeds must be a non-empty list of at most "
                                          rf"{SEEDS_MAX} integers"):
        NLFSConfig(seeds=10**18)                     # the former count form
    with pytest.raises(ValueError, match=rf"must list at most {SEEDS_MAX} seeds"):
        parse_seeds(f"0-{10**18}")
    with pytest.raises(ValueError, match=rf"must list at most {SEEDS_MAX} seeds"):
        parse_seeds(f"0-{SEEDS_MAX // 2},{SEEDS_MAX}-{2 * SEEDS_MAX}")
    with pytest.raises(ConfigError, match=r"seeds must be"):
        GLSConfig(seeds=list(range(SEEDS_MAX + 1)))
    assert parse_seeds(f"0-{SEEDS_MAX - 1}") == list(range(SEEDS_MAX))
    assert parse_seeds("7,0-2") == [7, 0, 1, 2] and parse_seeds("-3") == [-3]
