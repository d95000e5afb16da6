"""One grammar for every ``linreg`` subcommand (issue 28, docs/guide/cli.md): every option's
help states its default, options that need another are refused, exit statuses follow
the table in docs/guide/cli.md, one engine spelling, one spelling per API, ``linreg info``
on a bare ``.onnx``."""

from __future__ import annotations

import argparse
import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from linreg.common import EXIT_STATUSES, flag_spelling
from linreg.main import SUBCOMMANDS, build_parser, main

ROOT = Path(__file__).resolve().parents[1]
MODEL = ROOT / "exported_models" / "plant_richness_mlr"
DATA = ROOT / "training" / "data" / "bundled" / "plant_richness_mlr.tsv"


def _is_entry(line: str) -> bool:
    """An option's first line: ``  -x, --long METAVAR  help``, every word of its head an
    option string, a ``{choice,...}`` or a metavar (which holds a capital letter)."""
    if not line.startswith("  -"):
        return False
    head = line[2:].split("  ")[0]
    return all(w.startswith(("-", "{")) or any(c.isupper() for c in w) for w in head.split())


def help_entries(command: str, capsys) -> dict[str, str]:
    """``linreg COMMAND --help`` (``COMMAND`` may be ``"mlflow log"``), parsed: each
    option string -> its help text (one line)."""
    with pytest.raises(SystemExit) as done:
        main([*command.split(), "--help"])
    assert done.value.code == 0
    entries: dict[str, str] = {}
    current: list[str] = []
    for line in [*capsys.readouterr().out.splitlines(), ""]:
        if _is_entry(line) or not line.startswith("  ") or not current:
            if current:
                flat = " ".join(" ".join(current).split())
                head = current[0][2:].split("  ")[0]
                for option in re.findall(r"(?<!\w)(--?[\w-]+)", head):
                    entries[option] = flat
            current = [line] if _is_entry(line) else []
        else:
            current.append(line)
    return entries


def subparser(command: str) -> argparse.ArgumentParser:
    """The parser of ``command`` (``"mlflow log"``: a nested action's)."""
    words = command.split()
    parser = build_parser(words[0])
    for word in words:
        sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
        parser = sub.choices[word]
    return parser


def _commands() -> list[str]:
    """Every subcommand, and each action of one that has actions (``mlflow log``)."""
    found = []
    for command in SUBCOMMANDS:
        actions = [
            a for a in subparser(command)._actions if isinstance(a, argparse._SubParsersAction)
        ]
        found += [f"{command} {name}" for a in actions for name in a.choices] or [command]
    return found


def shown(default: object) -> str:
    if isinstance(default, list | tuple):
        return ",".join(map(str, default))
    return str(default)


@pytest.mark.parametrize("command", _commands())
def test_every_option_states_its_default(command, capsys):
    entries = help_entries(command, capsys)
    options = [
        a
        for a in subparser(command)._actions
        if a.option_strings and not isinstance(a, argparse._HelpAction)
    ]
    assert options
    for action in options:
        text = entries[action.option_strings[-1]]
        stated = re.search(r"\((?:default: (.*?)|required[^)]*)\)", text)
        assert stated, f"linreg {command} {action.option_strings[-1]}: no default in {text!r}"
        default = action.default
        if stated.group(1) is not None and default not in (None, False, True):
            # a stated value is the parser's: "(default: 0.5)", "(default: 1,16)"
            value = stated.group(1)
            if isinstance(default, int | float):
                number = re.match(r"[-+]?[\d.]+(?:e[-+]?\d+)?", value)
                assert number and float(number.group()) == default, (action.dest, text)
            else:
                assert value.startswith(shown(default)), (action.dest, text)


def run(args, capsys) -> tuple[int, str]:
    try:
        code = main([str(a) for a in args])
    except SystemExit as exc:  # argparse's own usage errors
        code = int(exc.code or 0)
    return code, capsys.readouterr().err


def test_the_exit_status_table_is_the_documented_one():
    doc = (ROOT / "docs" / "guide" / "cli.md").read_text(encoding="utf-8")
    table = dict(re.findall(r"^\| (\d) \| (.+?) \|$", doc, re.M))
    assert {int(k): v for k, v in table.items()} == EXIT_STATUSES


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    d = tmp_path_factory.mktemp("cli")
    frame = pd.read_csv(DATA, sep="\t")
    frame.to_csv(d / "good.csv", index=False)
    bad = frame.astype(object)
    bad.loc[3, "latitude"] = "north"
    bad.to_csv(d / "bad.csv", index=False)
    (d / "exists.csv").write_text("x\n")
    return d


EXIT_CASES = {
    "train": [
        (0, ["--dataset", "plant_richness_lr"]),
        (1, ["--data", "{d}/bad.csv", "--target", "ntv_rich"]),
        (1, ["--dataset", "plant_richness_mlr", "--preset", "tutorial"]),  # diverges
        (1, ["--preset", "tutorial", "--epochs", "5", "--out", "{d}/new", "--no-plots"]),
        (2, ["--data", "{d}/good.csv"]),  # no --target
        (2, ["--name", "x"]),  # needs --out
        (2, ["--out", "{d}/exists.csv"]),  # exists, no --overwrite
        (2, ["--epochs", "0"]),
        (2, ["--level", "0.9"]),  # not an option of train
    ],
    "regenerate": [(1, ["--dir", "{d}/exists.csv/sub"]), (2, ["--dir"])],
    "predict": [
        (0, [MODEL, "{d}/good.csv", "-o", "{d}/out.csv", "--overwrite"]),
        (1, [MODEL, "{d}/bad.csv", "-o", "{d}/out2.csv"]),
        (1, ["{d}/nowhere", "{d}/good.csv", "-o", "{d}/out3.csv"]),
        (2, [MODEL, "{d}/good.csv", "-o", "{d}/exists.csv"]),
        (2, [MODEL, "{d}/good.csv", "-o", "{d}/o.csv", "--level", "0.9"]),
        (2, [MODEL, "{d}/good.csv", "-o", "{d}/o.xlsx"]),
    ],
    "info": [
        (0, [MODEL]),
        (0, [MODEL / "model.onnx"]),
        (1, ["{d}/nowhere"]),
        (1, ["{d}/good.csv"]),  # not an ONNX model
        (2, []),
    ],
    "bench": [(2, ["--rounds", "3", "--budget", "1"]), (2, ["--quick", "--budget", "1"])],
    "serve": [
        (1, ["{d}/nowhere"]),
        (1, ["--model-dir", "{d}/nowhere"]),
        (1, ["--model-repository", "{d}/exists.csv"]),
        (2, [MODEL, "--workers", "0"]),
        (2, []),
        (2, [MODEL, "--model-repository", "{d}"]),
        (2, ["--model-repository", "{d}", "--model-control-mode", "explicit", "--workers", "2"]),
    ],
    "mlflow": [(1, ["log", "{d}/nowhere"]), (2, ["log"]), (2, [])],
    "keygen": [
        (0, ["--private-key", "{d}/k.pem", "--public-key", "{d}/k.pub", "--overwrite"]),
        (2, ["--curve", "P-999"]),
    ],
    "sign": [(1, ["{d}/nowhere", "--key", "{d}/k.pem"]), (2, [MODEL])],
    "verify": [(1, [MODEL, "--public-key", "{d}/k.pub"]), (2, [])],
}


@pytest.mark.parametrize(
    ("command", "status", "args"),
    [(c, s, a) for c, cases in EXIT_CASES.items() for s, a in cases],
    ids=[f"{c}-{s}-{i}" for c, cases in EXIT_CASES.items() for i, (s, _) in enumerate(cases)],
)
def test_exit_status_per_command(command, status, args, files, capsys):
    if command == "serve":
        pytest.importorskip("uvicorn")
    code, err = run([command, *(str(a).format(d=files) for a in args)], capsys)
    assert code == status, err
    if status:
        assert "Traceback" not in err and "error:" in err, err


def test_every_command_has_exit_cases():
    assert set(EXIT_CASES) == set(SUBCOMMANDS)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["train", "--data", DATA], "--data needs --target, the column to predict"),
        (["train", "--target", "y", "--engine", "chunked"], "need --data FILE"),
        (["train", "--overwrite", "--no-plots"], "--overwrite and --no-plots need --out"),
        (
            ["train", "--streaming", "--engine", "memory", "--data", DATA, "--target", "y"],
            "--streaming needs --engine auto",
        ),
        (["train", "--workers", "3"], "--workers needs --engine dask"),
        (["predict", MODEL, DATA, "-o", "x.csv", "--level", "0.9"], "--level needs --interval"),
        (
            ["predict", MODEL, DATA, "-o", "x.csv", "--engine", "dask", "--bad-rows", "skip"],
            "--bad-rows needs --engine streaming",
        ),
        (["bench", "--rounds", "2", "--budget", "1"], "--budget needs automatic rounds"),
        (
            ["serve", "--model-repository", ROOT, "--model-name", "m"],
            "--model-name needs --model-dir",
        ),
        (
            ["serve", MODEL, "--load-model", "m"],
            "--load-model needs --model-control-mode explicit",
        ),
    ],
)
def test_options_that_need_another_are_usage_errors(args, message, capsys):
    code, err = run(args, capsys)
    assert code == 2 and message in err, err


def test_engine_names_are_one_spelling_and_stream_still_works(files, capsys):
    out = files / "engine.csv"
    for engine in ("streaming", "stream"):
        args = ["predict", MODEL, files / "good.csv", "-o", out, "--engine", engine]
        assert run([*args, "--overwrite"], capsys)[0] == 0
    assert subparser("predict")._option_string_actions["--engine"].choices == (
        "streaming",
        "dask",
        "spark",
    )
    code, err = run(["train", "--engine", "stream", "--data", DATA, "--target", "y"], capsys)
    assert code == 1 and "missing column" in err  # accepted as streaming; y is no column


def test_flags_replace_the_python_spelling():
    assert flag_spelling("x: exists; pass overwrite=True to replace it") == (
        "x: exists; pass --overwrite to replace it"
    )
    assert flag_spelling("test_size=0.5 holds out") == "--test-size 0.5 holds out"
    assert "--input-format csv, tsv or parquet" in flag_spelling(
        "name the format with input_format='csv', 'tsv' or 'parquet'"
    )
    assert flag_spelling("my_overwrite=True") == "my_overwrite=True"


def test_the_command_line_words_errors_with_its_flags(files, capsys):
    code, err = run(["predict", MODEL, files / "good.csv", "-o", files / "exists.csv"], capsys)
    assert code == 2 and "pass --overwrite" in err and "overwrite=True" not in err
    (files / "part.dat").write_text("a\n1\n")
    code, err = run(["predict", MODEL, files / "part.dat", "-o", files / "o.csv"], capsys)
    assert code == 2 and "--input-format csv, tsv or parquet" in err, err


def test_messages_that_say_more(files, capsys):
    code, err = run(["train", "--dataset", "plant_richness_mlr", "--test-size", "0.999"], capsys)
    assert code == 1 and "--test-size 0.999 holds out 22 of 22 rows, leaving 0 to fit" in err
    rej = files / "rej.csv"
    args = ["predict", MODEL, files / "good.csv", "-o", rej, "--bad-rows", rej]
    code, err = run(args, capsys)
    assert code == 2 and "is both the output and the bad-rows file" in err, err
    code, err = run(["train", "--dataset", "plant_richness_mlr", "--features", "area"], capsys)
    assert code == 2 and "--features needs --data" in err


def test_info_reads_a_bare_onnx_file_as_onnx_does(capsys):
    onnx = pytest.importorskip("onnx")
    path = MODEL / "model.onnx"
    assert main(["info", str(path), "--json"]) == 0
    got = json.loads(capsys.readouterr().out)
    model = onnx.load(str(path))
    meta = {p.key: p.value for p in model.metadata_props}
    assert got["features"] == json.loads(meta["linreg.features"])
    assert got["target"] == meta["linreg.target"] and got["dtype"] == meta["linreg.dtype"]
    assert got["opsets"] == {(o.domain or "ai.onnx"): o.version for o in model.opset_import}
    assert got["operators"] == [n.op_type for n in model.graph.node]
    assert main(["info", str(path)]) == 0
    text = capsys.readouterr().out
    assert "predicts    ntv_rich from area, latitude, dist_mainland" in text
    assert "a bare ONNX file" in text


def test_info_of_an_old_manifest_shows_what_it_has(tmp_path, capsys):
    """The committed models' manifests predate the scaled condition number and VIFs."""
    manifest = json.loads((MODEL / "manifest.json").read_text())
    assert "vif" not in manifest["statistics"]
    assert main(["info", str(MODEL)]) == 0
    text = capsys.readouterr().out
    assert "condition   1.36e+03 (statsmodels', unscaled)" in text
    assert "dist_mainland" in text and "VIF" not in text


def test_info_shows_whole_names(tmp_path, capsys):
    pytest.importorskip("torch")
    from training.export import export_model
    from training.pipeline import train

    rng = np.random.default_rng(0)
    frame = pd.DataFrame(
        {"sqft_living_totala": rng.normal(size=40), "sqft_living_totalb": rng.normal(size=40)}
    )
    frame["price"] = frame.sum(axis=1) + rng.normal(size=40)
    out = export_model(train(frame, target="price", progress=False), tmp_path / "m", plots=False)
    assert main(["info", str(out)]) == 0
    text = capsys.readouterr().out
    assert "sqft_living_totala" in text and "sqft_living_totalb" in text
    assert re.search(r"condition   \S+ \(Belsley-Kuh-Welsch", text)
    assert re.search(r"VIF         sqft_living_totala \S+, sqft_living_totalb", text)


def test_an_export_error_is_worded_with_the_flag(tmp_path, capsys):
    """Filip cannot be exported in float32: the Python error says dtype='float64', the
    command line --dtype float64."""
    pytest.importorskip("torch")
    from training.data.nist import load_nist

    problem = load_nist("Filip")
    frame = pd.DataFrame(problem.X, columns=[f"x{i}" for i in range(1, 11)])
    frame["y"] = problem.y
    frame.to_csv(tmp_path / "filip.csv", index=False)
    args = ["train", "--data", tmp_path / "filip.csv", "--target", "y", "--out", tmp_path / "m"]
    code, err = run([*args, "--dtype", "float32", "--no-plots"], capsys)
    assert code == 1 and "export with --dtype float64; nothing was written" in err, err
    assert "dtype='float64'" not in err and not (tmp_path / "m").exists()
