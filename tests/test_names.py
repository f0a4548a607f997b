"""One name per meaning (issue 21, docs/glossary.md): the population size is
``population_size`` in every configuration, loop and flag; the former names keep working until
deapnn 0.3.0 with a warning that names the new one, and a setting given under both names with
different values is refused."""
import pytest

from deapnn.config import ConfigError
from deapnn.evomal.config import EvoMALRunConfig
from deapnn.gls import GLSConfig
from deapnn.nlfs.config import NLFSConfig

REMOVED = r"removed in deapnn 0\.3\.0"


@pytest.mark.parametrize("cls, old, value, derived", [
    (GLSConfig, "pop", 3, lambda c: c.generations() == c.epochs * 4),
    (NLFSConfig, "population", 6, lambda c: c.pool == 12),       # the domain default follows
    (EvoMALRunConfig, "population", 5, lambda c: True),
])
def test_former_keyword_warns_and_sets_population_size(cls, old, value, derived):
    with pytest.warns(DeprecationWarning, match=rf"{cls.__name__}\({old}=\).*population_size=.*"
                                                rf"{REMOVED}"):
        cfg = cls(**{old: value})
    assert cfg.population_size == value and derived(cfg)
    assert old not in cfg.to_dict() and cfg.to_dict()["population_size"] == value
    with pytest.raises(ConfigError, match="disagree") as err, pytest.warns(DeprecationWarning):
        cls(**{old: value, "population_size": value + 2})
    assert err.value.field == "population_size"


def test_one_population_name_in_every_configuration_and_loop():
    import inspect

    from deapnn.algorithms.gradient_lexicase import GLSLoopConfig, eaGradientLexicase
    for cls in (GLSConfig, NLFSConfig, EvoMALRunConfig, GLSLoopConfig):
        names = {f for f in cls.__dataclass_fields__ if not f.startswith("_")}
        assert "population_size" in names and not {"pop", "pop_size", "population"} & {
            f.name for f in __import__("dataclasses").fields(cls)}
    assert "population_size" in inspect.signature(eaGradientLexicase).parameters


@pytest.mark.parametrize("command, old", [("gls", "--pop"), ("nlfs", "--population"),
                                          ("evomal", "--population")])
def test_former_flag_warns_once_and_both_names_are_refused(cli, tmp_path, command, old):
    from deapnn.cli import build_parser
    from deapnn.commands import evomal, gls, nlfs
    cmd = {"gls": gls, "nlfs": nlfs, "evomal": evomal}[command].COMMAND
    args = build_parser().parse_args([command, old, "3", "--sample-size", "2"] if command == "nlfs"
                                     else [command, old, "3"])
    assert cmd.config_of(args).population_size == 3
    assert args._warnings == [f"{old} is deprecated: use --population-size (the old name is "
                              "removed in deapnn 0.3.0)"]
    code, out, err = cli(command, old, "3", "--population-size", "4", "--out", tmp_path / "r")
    assert code == 2 and err == (f"deapnn: error: {old} and --population-size set the same "
                                 "setting: give --population-size only\n")
    assert not (tmp_path / "r").exists()


# --- seeds: a list of seeds in every command --------------------------------------------------
def test_seed_readers():
    from deapnn.config import parse_seed_indices, parse_seeds
    assert parse_seeds("0-2,7") == [0, 1, 2, 7] and parse_seeds("4") == [4]
    assert parse_seed_indices("0-4") == [0, 1, 2, 3, 4] and parse_seed_indices("none") == []
    assert parse_seed_indices("3") == 3                  # the former count form, converted later


@pytest.mark.parametrize("cls", [NLFSConfig, EvoMALRunConfig])
def test_a_seed_count_is_the_former_form_of_the_list(cls):
    with pytest.warns(DeprecationWarning,
                      match=r"seeds as a count \(3\).*--seeds 0-2.*from deapnn 0\.3\.0"):
        cfg = cls(seeds=3, tune_seeds=[0, 1])
    assert cfg.seeds == [0, 1, 2] and cfg.tune_seeds == [0, 1]
    assert cls(seeds=[2, 5]).seeds == [2, 5]
    with pytest.raises(ConfigError, match="without repeats"):
        cls(seeds=[1, 1])


def test_the_command_line_takes_lists_and_warns_about_a_count(cli, tmp_path):
    from deapnn.cli import build_parser
    from deapnn.commands.nlfs import COMMAND
    parse = build_parser().parse_args
    assert COMMAND.config_of(parse(["nlfs", "--seeds", "0-2", "--tune-seeds", "0,1"])).seeds == \
        [0, 1, 2]
    assert COMMAND.config_of(parse(["nlfs", "--seeds", "none"])).seeds == []
    code, out, err = cli("nlfs", "--seeds", "3", "--population-size", "0", "--out", tmp_path / "r")
    assert code == 2 and err.count("\n") == 1 and "warning" not in err      # refused: no warning
    code, out, err = cli("evomal", "--seeds", "2", "--population-size", "2", "--generations", "1",
                         "--meta-steps", "1", "--fitness-steps", "2", "--rejection-steps", "1",
                         "--final-steps", "2", "--hidden", "4", "--no-tune", "--quiet",
                         "--out", tmp_path / "e")
    assert code == 0, err
    assert err.splitlines()[0] == ("deapnn: warning: EvoMALRunConfig: seeds as a count (2) is "
                                   "deprecated: give a list of seeds, --seeds 0-1 on the command "
                                   "line or list(range(2)) (a count is refused from deapnn 0.3.0)")


def test_stored_seed_counts_read_as_lists():
    from deapnn.results import CONFIG_FILE, RESULTS_FILE, migrate
    files = migrate({CONFIG_FILE: {"command": "nlfs", "config": {"seeds": 3, "tune_seeds": 1}},
                     RESULTS_FILE: {"tuned": {"seeds": 3, "tune_seeds": 1, "losses": []}}})
    assert files[CONFIG_FILE]["config"]["seeds"] == [0, 1, 2]
    assert files[CONFIG_FILE]["config"]["tune_seeds"] == [0]
    assert files[RESULTS_FILE]["tuned"]["seeds"] == [0, 1, 2]
