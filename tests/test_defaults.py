"""``deapnn defaults`` against the configurations, and ``docs/faithfulness.md`` against it.

Every backticked fragment with a flag in a "deapnn default" cell of the faithfulness tables is
a claim about a default (``--lr 0.1``; with ``--dataset X`` inside the fragment, about the
default on that dataset); each must equal what ``deapnn defaults`` prints, so the document
cannot drift from the code (issue 21, "One truth"). A bare flag (``--seeds``, or with an
upper-case placeholder, ``--generations G``) names a flag: it must exist.
"""
import os
import re
import shlex

import pytest

from deapnn.commands.defaults import defaults_lines

DOC = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "docs",
                   "faithfulness.md")
#: table heading prefix -> command
SECTIONS = {"## Gradient Lexicase": "gls", "## NLFS": "nlfs", "## EvoMAL": "evomal"}
#: flags each method's table must state (the settings that decide a result)
REQUIRED = {"gls": {"--population-size", "--lr", "--schedule", "--momentum", "--weight-decay",
                    "--nesterov", "--batch-size", "--epochs", "--init", "--momentum-mode"},
            "nlfs": {"--population-size", "--sample-size", "--pool", "--cycles", "--lr",
                     "--momentum", "--weight-decay", "--batch-size", "--schedule", "--budget"},
            "evomal": {"--population-size", "--generations", "--lr", "--momentum", "--nesterov",
                       "--weight-decay", "--batch-size", "--fitness-steps", "--final-steps",
                       "--final-milestones"}}


def printed(command, dataset=None) -> dict:
    """flag -> value as ``deapnn defaults COMMAND [--dataset D]`` prints it."""
    out = {}
    for line in defaults_lines(command, dataset)[1:]:
        if not line.startswith("  --"):
            continue
        flag, *value = shlex.split(line)
        out[flag] = value[0] if value else ""
    return out


def doc_claims():
    """(command, fragment) for every backticked flag fragment of a "deapnn default" cell."""
    command, column = None, None
    for line in open(DOC, encoding="utf-8"):
        if line.startswith("## "):
            command = next((c for p, c in SECTIONS.items() if line.startswith(p)), None)
            column = None
        elif line.startswith("| element") and command:
            cells = [c.strip() for c in line.strip().strip("|").split("|")]
            column = cells.index("deapnn default") if "deapnn default" in cells else None
        elif column is not None and line.startswith("|") and not line.startswith("|---"):
            cells = [c.strip() for c in line.strip().strip("|").split("|")]
            for fragment in re.findall(r"`([^`]*--[a-z][^`]*)`", cells[column]):
                yield command, fragment


def same(doc: str, code: str) -> bool:
    """Equal as numbers (5e-4 = 0.0005), number lists, or text."""
    a, b = doc.split(","), code.split(",")
    try:
        return len(a) == len(b) and all(float(x) == float(y) for x, y in zip(a, b))
    except ValueError:
        return doc == code


def mismatches(claims) -> list[str]:
    wrong = []
    for command, fragment in claims:
        words = shlex.split(fragment)
        if len(words) == 1 or (len(words) == 2 and words[1].isupper()):
            words = [words[0], None]          # names the flag (`--seeds`, `--generations G`)
        pairs = dict(zip(words[::2], words[1::2])) if len(words) % 2 == 0 else None
        if pairs is None or not all(w.startswith("--") for w in words[::2]):
            wrong.append(f"{command}: `{fragment}` is not `--flag value` pairs")
            continue
        values = printed(command, pairs.get("--dataset"))
        for flag, value in pairs.items():
            if flag not in values:
                wrong.append(f"{command}: `{fragment}`: no flag {flag}")
            elif value is not None and not same(value, values[flag]):
                wrong.append(f"{command}: `{fragment}`: {flag} is {values[flag]} in the code")
    return wrong


def test_faithfulness_default_column_matches_deapnn_defaults():
    claims = list(doc_claims())
    assert len(claims) >= 25
    assert mismatches(claims) == []
    for command, flags in REQUIRED.items():
        stated = {w for c, f in claims if c == command for w in shlex.split(f)[::2]}
        assert flags <= stated, f"{command}: the table states no default for {flags - stated}"


def test_a_default_changed_in_the_code_is_caught(monkeypatch):
    from deapnn.gls.config import GLSConfig
    monkeypatch.setattr(GLSConfig, "SGD_DEFAULTS", {**GLSConfig.SGD_DEFAULTS, "lr": 0.2})
    assert mismatches([("gls", "--lr 0.1 --momentum 0.9")]) == [
        "gls: `--lr 0.1 --momentum 0.9`: --lr is 0.2 in the code"]
    assert mismatches([("gls", "--no-such 1")]) == ["gls: `--no-such 1`: no flag --no-such"]
    assert mismatches([("nlfs", "--no-such")]) == ["nlfs: `--no-such`: no flag --no-such"]


@pytest.mark.parametrize("command, dataset, expected", [
    ("gls", None, {"--lr": "0.1", "--weight-decay": "0.0001", "--population-size": "4",
                   "--compare": "sgd", "--seeds": "0", "--no-augment": "false", "--milestones": "",
                   "--nesterov": "false"}),
    ("train", None, {"--weight-decay": "0.0005", "--seed": "0"}),
    ("nlfs", None, {"--lr": "0.05", "--pool": "40", "--final-steps": "900", "--no-tune": "false"}),
    ("evomal", "mnist", {"--momentum": "0.0", "--nesterov": "false", "--weight-decay": "0.0",
                         "--final-steps": "10000", "--final-milestones": ""}),
    ("evomal", "cifar10", {"--momentum": "0.9", "--nesterov": "true",
                           "--final-milestones": "100000,135000"}),
])
def test_defaults_are_resolved_from_the_configuration(command, dataset, expected):
    values = printed(command, dataset)
    for flag, value in expected.items():
        assert values.get(flag) == value, flag


def test_defaults_command_and_its_bad_input(cli):
    code, out, err = cli("defaults", "evomal", "--dataset", "mnist")
    assert code == 0 and "for dataset mnist" in out and err == ""
    assert re.search(r"^  --momentum\s+0\.0$", out, re.M)
    code, out, _ = cli("defaults")
    assert code == 0 and all(f"deapnn {c}: resolved defaults" in out
                             for c in ("evomal", "gls", "nlfs", "train"))
    code, _, err = cli("defaults", "nosuch")
    assert code == 2 and err == "deapnn: error: unknown command 'nosuch'; valid: evomal, gls, " \
        "nlfs, train\n"
    code, _, err = cli("defaults", "nlfs", "--dataset", "nosuch")
    assert code == 2 and err.startswith("deapnn: error: --dataset: unknown dataset 'nosuch'")
    assert err.count("\n") == 1
