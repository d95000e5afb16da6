"""A missing extra gives an install hint, never a traceback, in every subcommand
(issue 28). Each case runs ``linreg`` in a fresh interpreter where the extras'
modules cannot be imported (``sys.modules[name] = None``), as with only the runtime
installed (``pip install 'linreg-onnx[cpu]'``: numpy and onnxruntime)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
MODEL = ROOT / "exported_models" / "plant_richness_mlr"
DATA = ROOT / "training" / "data" / "bundled" / "plant_richness_mlr.tsv"

#: every module an extra brings (linreg.common.EXTRAS), and the test tools
EXTRA_MODULES = [
    "torch",
    "onnx",
    "onnxscript",
    "scipy",
    "sklearn",
    "matplotlib",
    "threadpoolctl",
    "pandas",
    "pyarrow",
    "tqdm",
    "dask",
    "distributed",
    "uvicorn",
    "starlette",
    "orjson",
    "prometheus_client",
    "polars",
    "duckdb",
    "statsmodels",
    "isal",
]

PROBE = """
import sys
for name in sys.argv[1].split(","):
    sys.modules[name] = None
from linreg.main import main
sys.exit(main(sys.argv[2:]))
"""


def linreg_without(blocked: list[str], *args: object) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", PROBE, ",".join(blocked), *map(str, args)],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
    )


CASES = [
    (["train"], "training"),
    (["train", "--data", DATA, "--target", "ntv_rich"], "training"),
    (["regenerate", "--dir", "{tmp}"], "training"),
    (["predict", MODEL, DATA, "-o", "{tmp}/out.csv"], "tables"),
    (["bench", "--quick", "--out", "{tmp}"], "training"),
    (["serve", MODEL], "serve"),
]


@pytest.mark.slow
@pytest.mark.parametrize(
    ("args", "extra"), CASES, ids=[c[0][0] + str(i) for i, c in enumerate(CASES)]
)
def test_a_missing_extra_gives_the_install_line(args, extra, tmp_path):
    done = linreg_without(EXTRA_MODULES, *(str(a).format(tmp=tmp_path) for a in args))
    assert done.returncode == 1, done.stderr
    assert "Traceback" not in done.stderr, done.stderr
    assert done.stderr.startswith(f"linreg {args[0]}: error: "), done.stderr
    assert f"pip install 'linreg-onnx[{extra}]'" in done.stderr, done.stderr


@pytest.mark.slow
def test_the_runtime_alone_runs_info_and_help():
    for args in (["--help"], ["info", MODEL], ["info", MODEL / "model.onnx"], ["train", "--help"]):
        done = linreg_without(EXTRA_MODULES, *args)
        assert done.returncode == 0, (args, done.stderr)


@pytest.mark.slow
@pytest.mark.parametrize(
    "args", [["info", MODEL / "model.onnx"], ["predict", MODEL, DATA, "-o", "x.csv"]]
)
def test_without_onnxruntime_the_hint_names_the_cpu_extra(args):
    done = linreg_without([*EXTRA_MODULES, "onnxruntime"], *args)
    assert done.returncode == 1 and "Traceback" not in done.stderr, done.stderr
    assert "pip install 'linreg-onnx[cpu]'" in done.stderr or "[tables]" in done.stderr
