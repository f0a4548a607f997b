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


def bad_value(constraints):
    """A value every constraint refuses, with its command-line text (None: none to make)."""
    if len(constraints) != 1:
        return None
    (rule,) = constraints
    if isinstance(rule, Options) and all(isinstance(v, str) for v in rule.values):
        return "no-such-choice"
    if isinstance(rule, Interval) and rule.low is not None:
        return rule.kind(rule.low - 1)
    if isinstance(rule, Interval) and rule.high is not None:
        return rule.kind(rule.high + 1)
    return None


def cases():
    for command in sorted(CONFIGS):
        cls = config_class(command)
        for field in cli_fields(cls):
            value = bad_value(cls._parameter_constraints.get(field.name, ()))
            if value is not None:
                yield pytest.param(command, cls, field, value, id=f"{command}-{field.name}")


CASES = list(cases())


def test_the_table_covers_every_command_and_the_sgd_settings():
    covered = {(c.values[0], c.values[2].name) for c in CASES}
    assert {c for c, _ in covered} == set(CONFIGS)
    for command in CONFIGS:
        assert {(command, n) for n in ("lr", "momentum", "batch_size", "schedule")} <= covered
    assert len(CASES) >= 60


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
