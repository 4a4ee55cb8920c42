"""Every user error of the foundation: one clear message, exit code 2, no traceback."""

import json

import pytest

SMALL = ["--set", "n_train=300", "--set", "n_test=100", "--no-progress", "--device", "cpu"]


def _error(cli, *argv):
    code, out, err = cli(*argv)
    assert code == 2, (code, out, err)
    assert "Traceback" not in err
    return err


def test_help_explains(cli):
    code, out, _ = cli("train", "--help")
    assert code == 0 and "--resume" in out and "examples:" in out


def test_models_lists_parameter_counts(cli):
    code, out, _ = cli("models")
    assert code == 0 and "tutorial" in out and "62,006" in out


def test_train_then_runs(cli, tmp_path):
    code, out, _ = cli("train", "tutorial", "--epochs", "1", "--name", "one", *SMALL)
    assert code == 0 and "test accuracy" in out
    code, out, _ = cli("runs")
    assert code == 0 and "one" in out and "finished" in out


def test_unknown_model(cli):
    err = _error(cli, "train", "tutorail")
    assert "unknown model 'tutorail'; did you mean 'tutorial'?" in err and "mlp" in err


def test_unknown_dataset(cli):
    err = _error(cli, "train", "tutorial", "--dataset", "imagenet21k", *SMALL)
    assert "unknown dataset 'imagenet21k'" in err and "shapes" in err


def test_dataset_folder_without_splits(cli, tmp_path):
    (tmp_path / "imgs").mkdir()
    err = _error(cli, "train", "tutorial", "--dataset", str(tmp_path / "imgs"), *SMALL)
    assert "no train/ or test/ subfolder" in err


def test_bad_set_key_and_value(cli):
    err = _error(cli, "train", "tutorial", "--set", "kernal_size=3", *SMALL)
    assert "unknown --set key 'kernal_size'; did you mean 'kernel_size'" in err and "Valid --set keys:" in err
    err = _error(cli, "train", "tutorial", "--set", "kernel_size=three", *SMALL)
    assert "expected int" in err
    err = _error(cli, "train", "tutorial", "--set", "pooling", *SMALL)
    assert "expected key=value" in err


@pytest.mark.parametrize("flag,value,message", [("--epochs", "0", "must be from 1 to 100,000, got 0"),
                                                ("--lr", "-0.1", "must be a finite number more than 0 to 100"),
                                                ("--batch-size", "0", "must be from 1 to 65,536, got 0")])
def test_non_positive_numbers(cli, flag, value, message):
    err = _error(cli, "train", "tutorial", flag, value, *SMALL)
    assert f"argument {flag}: {message}" in err


def test_unknown_run_suggests_close_matches(cli):
    cli("train", "tutorial", "--epochs", "1", "--name", "tutorial-avg", *SMALL)
    err = _error(cli, "train", "--resume", "tutorial-agv")
    assert "no run called 'tutorial-agv'" in err and "did you mean 'tutorial-avg'" in err


def test_resume_finished_run(cli):
    cli("train", "tutorial", "--epochs", "1", "--name", "fin", *SMALL)
    err = _error(cli, "train", "--resume", "fin", "--no-progress")
    assert "is finished" in err


def test_corrupt_run_files_are_named(cli, tmp_path):
    from interp.runs import load_run
    from interp.errors import InterpError

    cli("train", "tutorial", "--epochs", "1", "--name", "c", *SMALL)
    run_dir = tmp_path / "models" / "c"
    weights = run_dir / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:100])  # truncated
    with pytest.raises(InterpError, match=r"model\.safetensors is truncated or corrupt"):
        load_run("c")
    weights.unlink()
    with pytest.raises(InterpError, match=r"model\.safetensors is missing"):
        load_run("c")
    (run_dir / "config.json").write_text("{not json")
    with pytest.raises(InterpError, match=r"config\.json is corrupt"):
        load_run("c")
    (run_dir / "config.json").write_text(json.dumps({"model": "tutorial"}))
    with pytest.raises(InterpError, match=r"config\.json is not a valid run config"):
        load_run("c")


def test_debug_shows_traceback(cli):
    code, _, err = cli("--debug", "train", "nonexistent-model")
    assert code == 2 and "Traceback" in err
    code, _, err = cli("train", "nonexistent-model", "--debug")
    assert code == 2 and "Traceback" in err


def test_argparse_errors_exit_2(cli):
    """argparse's own errors are one line too, naming the option, the range and where the help is."""
    code, _, err = cli("train", "tutorial", "--epochs", "many")
    assert code == 2 and err.strip().splitlines() == [
        "interp train: error: argument --epochs: expected a whole number from 1 to 100,000, got 'many' "
        "(see: interp train --help)"]


def test_zoo_subset(cli, tmp_path):
    code, out, _ = cli("zoo", "--epochs", "1", "--only", "tutorial-avg,mlp-small", "--dataset", "shapes",
                       "--set", "n_train=300", "--set", "n_test=100", "--no-progress", "--device", "cpu")
    assert code == 0, out
    assert "tutorial-avg" in out and "mlp-small" in out
    rows = json.loads((tmp_path / "models" / "zoo.json").read_text())["rows"]
    assert [r["entry"] for r in rows] == ["tutorial-avg", "mlp-small"]
    assert all(0 <= r["test_acc"] <= 1 for r in rows)


def test_every_command_help_ends_with_examples():
    import argparse

    from interp.cli import build_parser

    missing = []

    def walk(parser, prefix):
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                for name, sub in action.choices.items():
                    if "examples" not in sub.format_help().lower():
                        missing.append(prefix + name)
                    walk(sub, prefix + name + " ")

    walk(build_parser(), "")
    assert missing == []


def test_a_closed_pipe_is_quiet():
    """`interp models | head -1`: the reader stops early; no BrokenPipeError traceback, exit 0."""
    import subprocess
    import sys

    p = subprocess.Popen([sys.executable, "-c", "import sys; from interp.cli import main; sys.exit(main(['models']))"],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    p.stdout.readline()
    p.stdout.close()
    err = p.stderr.read().decode()
    assert p.wait(timeout=120) == 0 and "Traceback" not in err and "BrokenPipe" not in err


@pytest.mark.parametrize("command", ["sample", "attention", "lens", "attribute tokens"])
def test_prompt_escapes_mean_the_same_in_every_command(command):
    """The help's own `--prompt 'ROMEO:\\nWhat say'` is a newline wherever a prompt is taken."""
    from interp.cli import build_parser

    args = build_parser().parse_args([*command.split(), "--prompt", r"ROMEO:\nWhat say\tthere \\n"])
    assert args.prompt == "ROMEO:\nWhat say\tthere \\n"


@pytest.mark.parametrize("argv, message", [
    (["train", "tutorial", "--lr", "nan"], "argument --lr: must be a finite number more than 0 to 100, got nan"),
    (["train", "tutorial", "--seed", str(2**64)], "argument --seed: must be from 0 to"),
    (["train", "tutorial", "--epochs", "0"], "argument --epochs: must be from 1 to"),
    (["sample", "--temperature", "inf"], "argument --temperature: must be a finite number"),
    (["sample", "--tokens", "100000000"], "argument --tokens: must be from 0 to 100,000"),
    (["visualize", "--layer", "conv2", "--size", "100000"], "argument --size: must be from 8 to 2,048"),
    (["heads", "--sequences", "1000000000"], "argument --sequences: must be from 1 to 4,096"),
    (["claims", "check", "--null-models", "1"], "argument --null-models: must be from 2 to 256"),
    (["attribute", "--noise", "-1"], "argument --noise: must be a finite number from 0 to 10"),
])
def test_numeric_options_are_checked_at_parse_time(cli, argv, message):
    """Bad values stop before any work with one message naming the range (exit 2, no traceback)."""
    code, _, err = cli(*argv)
    assert code == 2 and message in err and "Traceback" not in err, err


@pytest.mark.parametrize("setting, message", [
    ("n_train=-5", "--set n_train=-5: expected a whole number from 0 to"),
    ("lr=nan", "--set lr=nan: expected a finite number from 0 to"),
    ("seed=99999999999999999999", "--set seed=99999999999999999999: expected a whole number from 0 to"),
])
def test_bad_set_numbers_are_one_clear_error(cli, setting, message):
    code, _, err = cli("train", "tutorial", *SMALL, "--set", setting)  # the last --set of a key wins
    assert code == 2 and message in err and "Traceback" not in err, err


def test_terminal_output_escapes_control_characters():
    """Class names and words come from users' files: a terminal must not run their escape sequences."""
    from interp.terminal import printable, table

    assert printable("cat\x1b[31m\x07") == "cat\\x1b[31m\\x07" and printable("naïve 猫") == "naïve 猫"
    out = table([{"name": "dog\x1b[2J"}], [("name", "class")])
    assert "\x1b" not in out and "dog\\x1b[2J" in out


@pytest.mark.parametrize("argv, expected", [
    (["attribute-units", "--layer", "conv2"], ["attribute", "units", "--layer", "conv2"]),
    (["--debug", "attribute-tokens", "--prompt", "a"], ["--debug", "attribute", "tokens", "--prompt", "a"]),
    (["attribute", "--index", "0"], ["attribute", "pixels", "--index", "0"]),
    (["attribute", "--debug", "--index", "0"], ["attribute", "pixels", "--debug", "--index", "0"]),
    (["attribute", "trust", "--sample", "2"], ["attribute", "trust", "--sample", "2"]),
    (["attribute", "--help"], ["attribute", "--help"]),
    (["models"], ["models"]),
    ([], []),
])
def test_one_grammar_keeps_the_first_spellings(argv, expected):
    """`interp attribute units` is the spelling; `attribute-units` and a bare `attribute --index 0`
    (pixels) still mean what they meant."""
    from interp.cli import build_parser, normalize_argv

    assert normalize_argv(argv) == expected
    if argv and argv != ["attribute", "--help"]:
        build_parser().parse_args(normalize_argv(argv))  # every normalised line parses


def test_alias_and_new_spelling_run_the_same_handler(cli):
    for argv in (["attribute-gallery", "--per-class", "0"], ["attribute", "gallery", "--per-class", "0"]):
        code, _, err = cli(*argv)
        assert code == 2 and "interp attribute gallery: error: argument --per-class" in err, err


def test_transformer_layer_options_take_the_module_name_too():
    """`--layer` names a module everywhere: `blocks.1` (TransformerLens's) is layer 1."""
    from interp.cli.transformers import _index_list
    from interp.errors import InterpError

    assert _index_list("blocks.0,blocks.1", "layer") == [0, 1] == _index_list("0,1", "layer")
    with pytest.raises(InterpError, match="or blocks.1"):
        _index_list("blocks.x", "layer")
    with pytest.raises(InterpError):
        _index_list("blocks.1", "head")  # heads are indices only


def test_every_help_and_interp_runs_start_without_torch(tmp_path):
    """`interp --help`, every command's and verb's --help, and `interp runs` never import torch (#21)."""
    import subprocess
    import sys

    code = """
import argparse, contextlib, io, sys
from interp.cli import build_parser, main
def helps(parser):
    yield parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub in action.choices.values():
                yield from helps(sub)
count = sum(1 for p in helps(build_parser()) if p.format_help())
with contextlib.redirect_stdout(io.StringIO()):
    main(["runs"])
print(count, "torch" in sys.modules)
"""
    env = {"PATH": "/usr/bin:/bin", "INTERP_MODELS_DIR": str(tmp_path)}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True).stdout
    count, imported = out.split()
    assert int(count) > 30 and imported == "False", out
