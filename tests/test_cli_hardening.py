"""Hardened command line (issue 14): bad input and a hostile environment give one line, never a
traceback. Bad input (a flag, a file the user gave, a tampered run directory): one
``deapnn: error:`` line naming it, exit 2, before any training. An environment fault (disk
full, read-only file system, file-size limit): exit 1 with the cause and the file named.
``deapnn report`` on corrupted copies of real run directories of every command: exit 0 or one
line exit 2, never a traceback."""
import os
import resource
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest

import report_fuzz
from deapnn.cli import main

SEED_MAX = 2**32 - 1        # the largest seed every seeded library takes (--seed's bound)

REPO = Path(__file__).resolve().parents[1]
TRAIN = ["train", "--dataset", "iris", "--model", "mlp", "--epochs", "1", "--quiet"]
GLS = ["gls", "--dataset", "iris", "--model", "mlp", "--population-size", "2", "--epochs", "1",
       "--compare", "sgd", "--quiet"]
EVOMAL = ["evomal", "--population-size", "2", "--generations", "1", "--meta-steps", "1",
          "--fitness-steps", "2", "--rejection-steps", "1", "--seeds", "0-0", "--final-steps", "2",
          "--quiet"]
NLFS = ["nlfs", "--dataset", "iris", "--model", "mlp", "--population-size", "2", "--cycles", "1",
        "--quiet"]


def one_line(code, out, err, expected=2):
    """The single ``deapnn: error:`` line of a refused command (asserting there is no other)."""
    lines = err.strip("\n").splitlines()
    assert code == expected, (code, out, err)
    assert len(lines) == 1 and lines[0].startswith("deapnn: error:"), err
    assert "Traceback" not in out + err
    return lines[0]


# --- bad input: one line naming the flag, exit 2, nothing trained or created ----------------------

BAD_INPUT = [
    # a classification loss on a regression task trains a network that learns nothing
    ("loss on regression", ["train", "--dataset", "diabetes", "--model", "mlp", "--loss", "baikal"],
     "--loss"),
    ("ce on regression", ["train", "--dataset", "diabetes", "--model", "mlp", "--loss", "ce"],
     "regression"),
    # duplicates would be counted as independent seeds / arms
    ("duplicate seeds", GLS + ["--seeds", "0,0"], "--seeds"),
    ("duplicate arms", GLS + ["--compare", "sgd,sgd"], "--compare"),
    ("--seed with --seeds", GLS + ["--seed", "5", "--seeds", "0"], "--seeds"),
    # a base network that cannot take the data fails every candidate of the search
    ("evomal cnn on tabular", EVOMAL + ["--model", "cnn", "--dataset", "diabetes"], "--model"),
    ("evomal vgg on iris", EVOMAL + ["--model", "vgg19_bn", "--dataset", "iris"], "--model"),
    ("evomal --hidden without mlp", EVOMAL + ["--hidden", "7,7", "--model", "cnn",
                                              "--dataset", "digits"], "--hidden"),
    # seeds every library accepts
    ("negative seed", TRAIN + ["--seed", "-1"], "--seed"),
    ("seed 2**64", TRAIN + ["--seed", str(2**64)], "--seed"),
    ("seed above 2**32", TRAIN + ["--seed", str(SEED_MAX + 1)], "--seed"),
    ("negative gls seed", GLS + ["--seeds", "0,-1"], "--seeds"),
    ("nlfs negative seed", NLFS + ["--seed", "-3"], "--seed"),
    ("evomal negative seed", EVOMAL + ["--seed", "-3"], "--seed"),
    # devices
    ("cuda:abc", TRAIN + ["--device", "cuda:abc"], "cuda:abc"),
    ("cpu:0", TRAIN + ["--device", "cpu:0"], "--device"),
    # a learning rate no float32 kernel takes
    ("lr 1e308", TRAIN + ["--lr", "1e308"], "--lr"),
    ("gls lr 1e308", GLS + ["--lr", "1e308"], "--lr"),
    ("evomal lr 1e308", EVOMAL + ["--lr", "1e308"], "--lr"),
    ("weight decay 1e308", TRAIN + ["--weight-decay", "1e308"], "--weight-decay"),
    # a formula too deep to parse
    ("5000-term loss", TRAIN + ["--loss", "+".join(["yhat"] * 5000)], "--loss"),
]


@pytest.mark.parametrize("argv,word", [c[1:] for c in BAD_INPUT], ids=[c[0] for c in BAD_INPUT])
def test_bad_input_is_one_line_exit_2_before_any_work(cli, tmp_path, argv, word):
    out_dir = tmp_path / "run"
    code, out, err = cli(*argv, "--out", out_dir)
    assert word in one_line(code, out, err)
    assert out == "" and not out_dir.exists()


@pytest.mark.parametrize("argv,message", [
    (GLS + ["--seeds", "0,x"],
     "argument --seeds/--seed: must be seeds like 0,1,2 or a range 0-4, got '0,x'"),
    (GLS + ["--epsilon", "foo"], "argument --epsilon: must be a number or auto, got 'foo'"),
    (NLFS + ["--baselines", ","], "argument --baselines: must list loss names, got ','"),
    (EVOMAL + ["--final-milestones", "0"],
     "argument --final-milestones: must list positive step numbers, got '0'"),
], ids=["gls seeds", "gls epsilon", "nlfs baselines", "evomal milestones"])
def test_a_value_argparse_cannot_read_is_one_line_with_the_reason(cli, tmp_path, argv, message):
    """The list and number readers (commands.common.argument_type) fail as argparse's one
    line naming the flag and saying why, not argparse's bare 'invalid parse value'."""
    code, out, err = cli(*argv, "--out", tmp_path / "run")
    lines = err.strip("\n").splitlines()
    assert code == 2 and len(lines) == 1 and lines[0].startswith("deapnn ")
    assert lines[0].endswith(message) and "Traceback" not in out + err
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("argv,gpus,word", [
    (["--device", "cuda"], "0", "CUDA is not available"),
    (["--device", "cuda:0"], "0", "CUDA is not available"),
    (["--device", "cuda:99"], "2", "2 CUDA device"),
])
def test_a_cuda_device_the_host_lacks_is_one_line(cli, tmp_path, monkeypatch, argv, gpus, word):
    monkeypatch.setenv("DEAPNN_FAKE_GPUS", gpus)
    code, out, err = cli(*TRAIN, *argv, "--out", tmp_path / "run")
    line = one_line(code, out, err)
    assert "--device" in line and word in line
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("command", [TRAIN, GLS, NLFS, EVOMAL + ["--dataset", "diabetes"]],
                         ids=["train", "gls", "nlfs", "evomal"])
@pytest.mark.parametrize("where", ["file", "under a file", "unwritable"])
def test_an_out_that_cannot_be_a_run_directory_is_one_line(cli, tmp_path, monkeypatch, command,
                                                           where):
    a_file = tmp_path / "a_file"
    a_file.write_text("kept")
    out = {"file": a_file, "under a file": a_file / "run", "unwritable": tmp_path / "ro" / "run"}
    if where == "unwritable":       # root ignores chmod: the check is os.access (W_OK)
        (tmp_path / "ro").mkdir()
        real = os.access
        monkeypatch.setattr(os, "access", lambda p, mode, **kw: False
                            if os.path.abspath(p) == str(tmp_path / "ro") else real(p, mode, **kw))
    code, stdout, err = cli(*command, "--out", out[where])
    line = one_line(code, stdout, err)
    assert "--out" in line
    assert a_file.read_text() == "kept"


@pytest.fixture(scope="module")
def train_run(tmp_path_factory):
    run = tmp_path_factory.mktemp("hardening") / "train"
    assert main([*TRAIN, "--device", "cpu", "--out", str(run)]) == 0
    return run


@pytest.fixture(scope="module")
def gls_run(tmp_path_factory):
    run = tmp_path_factory.mktemp("hardening") / "gls"
    assert main([*GLS, "--device", "cpu", "--seeds", "0", "--out", str(run)]) == 0
    return run


@pytest.mark.parametrize("out", ["dir", "under a file", "unwritable"])
def test_report_out_that_cannot_be_written_is_one_line(cli, tmp_path, monkeypatch, train_run,
                                                       out):
    (tmp_path / "a_file").write_text("kept")
    target = {"dir": tmp_path / "x.md", "under a file": tmp_path / "a_file" / "r.md",
              "unwritable": tmp_path / "ro" / "r.md"}[out]
    if out == "dir":
        target.mkdir()
    if out == "unwritable":
        (tmp_path / "ro").mkdir()
        real = os.access
        monkeypatch.setattr(os, "access", lambda p, mode, **kw: False
                            if os.path.abspath(p) == str(tmp_path / "ro") else real(p, mode, **kw))
    assert "--out" in one_line(*cli("report", train_run, "--out", target))


@pytest.mark.parametrize("flags,word", [
    (["--epochs", "99"], "--epochs 99 differs from the run's 1"),
    (["--out", "elsewhere"], "--out and --resume exclude each other"),
    (["--seed", "3"], "--seed 3 differs from the run's 0"),
    (["--lr", "0.5"], "--lr 0.5 differs from the run's 0.1"),
    (["--loss", "baikal"], "--loss baikal differs from the run's None"),
    (["--epo", "99"], "--epochs 99 differs"),          # argparse's abbreviations count too
])
def test_resume_refuses_flags_that_differ_from_the_run(cli, tmp_path, train_run, flags, word):
    run = tmp_path / "run"
    shutil.copytree(train_run, run)
    before = sorted(os.listdir(run))
    line = one_line(*cli("train", "--resume", run, *flags))
    assert word in line and ("--resume" in line)
    assert sorted(os.listdir(run)) == before and not (tmp_path / "elsewhere").exists()


def test_resume_accepts_the_invocation_flags_and_flags_equal_to_the_run(cli, tmp_path,
                                                                       train_run):
    run = tmp_path / "run"
    shutil.copytree(train_run, run)
    code, out, err = cli("train", "--resume", run, "--quiet", "--device", "cpu", "--workers", "1",
                         "--epochs", "1", "--lr", "0.1", "--dataset", "iris", "--seed", "0")
    assert code == 0, err


def test_evomal_resume_takes_final_eval_every_but_not_the_search_flags(cli, tmp_path):
    from deapnn.cli import build_parser
    from deapnn.commands.evomal import COMMAND
    run = tmp_path / "run"
    shutil.copytree(REPO / "tests" / "fixtures" / "rundirs" / "evomal_v0", run)
    parser = build_parser()
    args = parser.parse_args(["evomal", "--resume", str(run), "--final-eval-every", "5"])
    COMMAND.check(args)
    assert COMMAND.configure(args)[1].final_eval_every == 5     # the invocation's, not stored
    args = parser.parse_args(["evomal", "--resume", str(run), "--population-size", "9"])
    with pytest.raises(Exception,
                       match=r"^--population-size 9 differs from the run's \d+: --resume"):
        COMMAND.check(args)


def test_evomal_root_and_download_reach_the_configuration(tmp_path):
    from deapnn.cli import build_parser
    from deapnn.commands import evomal
    args = build_parser().parse_args([*EVOMAL, "--dataset", "diabetes", "--root",
                                      str(tmp_path), "--download"])
    cfg = evomal.COMMAND.configure(args)[1]
    assert cfg.root == str(tmp_path) and cfg.download is True
    assert cfg.evaluation().root == str(tmp_path)       # the workers load from there too


HOSTFILES = {
    "binary": b"\x00\xff\xfe garbage\n",
    "free text": b"please run on the big machine\n",
    "empty": b"# no hosts\n\n",
    "bad count": b"node1 four\n",
}


@pytest.mark.parametrize("name", list(HOSTFILES))
def test_a_malformed_hostfile_is_one_line_before_scoop_starts(cli, tmp_path, name):
    hosts = tmp_path / "hosts"
    hosts.write_bytes(HOSTFILES[name])
    line = one_line(*cli(*GLS, "--workers", "2", "--hostfile", hosts, "--out", tmp_path / "r"))
    assert "--hostfile" in line
    assert not (tmp_path / "r").exists()


def test_a_valid_hostfile_passes_the_check(tmp_path):
    from deapnn.commands.common import check_hostfile
    hosts = tmp_path / "hosts"
    hosts.write_text("# cluster\nnode1 4\nnode-2.example.org\nnode[3-4] 2\n")
    check_hostfile(str(hosts))


@pytest.mark.parametrize("registry,word", [
    ("[1, 2]", "not a deapnn loss registry"),
    ('{"format": "deapnn-losses-1", "losses": {"bad": {"genome": {"format": '
     '"deapnn-lossgraph-1", "nodes": [[1, 0, 0, 1, 0], [0, Infinity, 1, 0, 4], [0, 0, 0, 0, 1], '
     '[0, 0, 0, 0, 1], [0, 0, 0, 5, 0]], "flip": false}}}}', "invalid genome"),
    ('{"format": "deapnn-losses-1", "losses": {"bad": "a string"}}', "not a deapnn loss registry"),
])
def test_a_broken_loss_registry_is_one_line(cli, tmp_path, monkeypatch, registry, word):
    (tmp_path / "losses.json").write_text(registry)
    monkeypatch.setenv("DEAPNN_LOSSES", str(tmp_path / "losses.json"))
    line = one_line(*cli(*TRAIN, "--loss", "bad", "--out", tmp_path / "run"))
    assert "--loss" in line and word in line and "losses.json" in line


# --- a run directory whose files were tampered with: one line naming the file, exit 2 -------------

def _replace_checkpoint(path, state):
    from deapnn.checkpoint import save_checkpoint
    save_checkpoint(path, state)


@pytest.mark.parametrize("state", [{"epoch": 1}, [1, 2], {"model": {}, "optimizer": {},
                                                          "losses": [], "history": [],
                                                          "epoch": 1},
                                   {"model": "x", "optimizer": 1, "losses": 3, "history": 4,
                                    "epoch": "one"}],
                         ids=["missing keys", "a list", "empty weights", "wrong types"])
def test_train_resume_of_a_checkpoint_with_wrong_contents_is_one_line(cli, tmp_path, train_run,
                                                                      state):
    run = tmp_path / "run"
    shutil.copytree(train_run, run)
    (run / "results.json").unlink()       # unfinished: a finished run resumed reads nothing
    _replace_checkpoint(run / "checkpoint.pt", state)
    line = one_line(*cli("train", "--resume", run, "--quiet"))
    assert str(run / "checkpoint.pt") in line


@pytest.mark.parametrize("result", ['[1, 2]', '{"arm": "gls"}', '{"arm": "sgd", "seed": 0, '
                                    '"test_acc": 0.5, "val_acc": 0.5, "seconds": 1}',
                                    '{"arm": "gls", "seed": 0, "test_acc": "high", '
                                    '"val_acc": null, "seconds": 1}', '{"arm": '],
                         ids=["a list", "missing keys", "another job", "text accuracy",
                              "truncated"])
def test_gls_resume_of_a_tampered_job_result_is_one_line(cli, tmp_path, gls_run, result):
    run = tmp_path / "run"
    shutil.copytree(gls_run, run)
    (run / "results.json").unlink()       # unfinished: a finished run resumed reads nothing
    (run / "gls" / "seed0" / "result.json").write_text(result)
    line = one_line(*cli("gls", "--resume", run, "--quiet"))
    assert str(run / "gls" / "seed0" / "result.json") in line


@pytest.mark.parametrize("state", [{"generation": "x"}, ["a"], {"parent": {}, "generation": 1,
                                                                 "logbook": []}],
                         ids=["bad generation", "a list", "empty weights"])
def test_gls_resume_of_a_job_checkpoint_with_wrong_contents_is_one_line(cli, tmp_path, gls_run,
                                                                        state):
    run = tmp_path / "run"
    shutil.copytree(gls_run, run)
    job = run / "gls" / "seed0"
    (run / "results.json").unlink()       # unfinished: a finished run resumed reads nothing
    (job / "result.json").unlink()
    _replace_checkpoint(job / "checkpoint.pt", state)
    line = one_line(*cli("gls", "--resume", run, "--quiet"))
    assert str(job / "checkpoint.pt") in line


# --- the environment fails mid-run: exit 1, the cause and the file named --------------------------

@pytest.mark.parametrize("err,words", [(28, "No space left on device"),
                                       (30, "Read-only file system"),
                                       (13, "Permission denied")],
                         ids=["ENOSPC", "EROFS", "EACCES"])
def test_a_write_the_system_refuses_mid_run_is_exit_1_naming_the_file(cli, tmp_path, monkeypatch,
                                                                     err, words):
    """``os.replace`` of the checkpoint (after config.json was written) fails as on a full disk,
    a file system remounted read-only or a directory made read-only mid-run (``chmod -w`` does
    not stop root, so the failure is simulated)."""
    real = os.replace

    def refuse(src, dst, *a, **kw):
        if str(dst).endswith("checkpoint.pt"):
            raise OSError(err, os.strerror(err))
        return real(src, dst, *a, **kw)
    monkeypatch.setattr(os, "replace", refuse)
    run = tmp_path / "run"
    line = one_line(*cli(*TRAIN, "--out", run), expected=1)
    assert words in line and str(run / "checkpoint.pt") in line
    assert "--resume" in line
    assert not [p for p in os.listdir(run) if p.startswith(".ckpt-")]   # no temporary left


def _limit_file_size(limit):
    def preexec():
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)     # writes then fail with EFBIG
    return preexec


def test_a_file_size_limit_mid_run_is_exit_1_not_torch_unexpected_pos(tmp_path):
    """``ulimit -f``: config.json fits, the checkpoint does not. torch's zip writer reported
    this as ``RuntimeError: ... unexpected pos``; the real cause is named now."""
    run = tmp_path / "run"
    env = dict(os.environ, PYTHONPATH=str(REPO), DEAPNN_DEVICE="cpu", DEAPNN_THREADS="1",
               PYTHONDONTWRITEBYTECODE="1")
    proc = subprocess.run([sys.executable, "-m", "deapnn", *TRAIN, "--out", str(run)],
                          capture_output=True, text=True, timeout=300, cwd=REPO, env=env,
                          preexec_fn=_limit_file_size(16 * 1024))
    line = one_line(proc.returncode, proc.stdout, proc.stderr, expected=1)
    assert "File too large" in line and str(run / "checkpoint.pt") in line
    assert "unexpected pos" not in proc.stderr


# --- report on corrupted run directories: exit 0, or one line exit 2 naming the file ------------

_RUNS = {
    "train": TRAIN,
    "gls": GLS + ["--seeds", "0,1"],
    "nlfs": NLFS[:-1] + ["--sample-size", "2", "--pool", "3", "--budget", "10", "--seeds", "0-0",
                         "--final-steps", "10", "--top", "1", "--quiet"],
    "evomal": EVOMAL[:-1] + ["--dataset", "diabetes", "--fitness-steps", "10",
                             "--rejection-steps", "20", "--final-steps", "10", "--quiet"],
}
#: corruptions checked per run type (a deterministic spread over all of them; the whole set is
#: several hundred per run type)
FUZZ_CASES = 30


@pytest.fixture(scope="module")
def tiny_runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("fuzz")

    def get(kind):
        run = root / kind
        if not (run / "config.json").exists():
            assert main([*_RUNS[kind], "--device", "cpu", "--out", str(run)]) == 0
        return run
    return get


@pytest.mark.parametrize("kind", list(_RUNS))
def test_report_on_corrupted_run_directories_never_crashes(cli, tmp_path, tiny_runs, kind):
    run = tiny_runs(kind)
    cases = report_fuzz.corruptions(run, retypes=[None, "x", [], {"a": {}}, -1])
    step = max(1, len(cases) // FUZZ_CASES)
    crashed = []
    for i, (label, _) in enumerate(cases[::step]):
        copy = tmp_path / f"c{i}"
        shutil.copytree(run, copy)
        dict(report_fuzz.corruptions(copy, retypes=[None, "x", [], {"a": {}}, -1]))[label]()
        try:
            code, out, err = cli("report", copy, "--out", tmp_path / f"c{i}.md")
        except Exception as exc:       # noqa: BLE001 - the failure being tested for
            crashed.append(f"{label}: {type(exc).__name__}: {exc}")
            continue
        lines = err.strip().splitlines()
        if code == 0:
            continue
        if code != 2 or len(lines) != 1 or not lines[0].startswith("deapnn: error:") \
                or str(copy) not in lines[0]:
            crashed.append(f"{label}: exit {code}: {err[-300:]}")
        shutil.rmtree(copy)
    assert not crashed, "\n".join(crashed)
