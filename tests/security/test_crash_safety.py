"""SIGKILL during training and export: the destination holds the complete old model or
the complete new one, never a mix or nothing, and a re-run succeeds.

Two series of child processes, each replacing an exported model A (one feature)
by a model B (three features) at a destination that already holds A:

* random moments: children that train A and B and then export B, A, B, ... over
  the destination in a loop are killed at seeded random delays (some during the
  imports and training, most inside the export loop);
* chosen moments: children killed by a hook at one precise step of
  ``export_model`` (after the ONNX write, inside TorchScript saving, plotting,
  manifest writing, verification, fsync, before and after the atomic exchange,
  while removing the old copy).

After each kill the destination must load through ``Predictor.load`` (every
artifact's sha256 and size checked against the manifest) and be exactly A or B:
same ONNX bytes, same manifest description and the same predictions. What the
killed process left beside it carries its process id in the name, and a re-run
removes it and adds nothing.

Without renameat2 the old model is renamed away before the new one moves in;
a kill between the two renames leaves the destination missing, the complete old
model under ``.model.old-<host>-<pid>-*``, until the next export restores it first.
"""

from __future__ import annotations

import json
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from inference import Predictor
from inference.manifest import MLFLOW_FILES

ROOT = Path(__file__).resolve().parents[2]
EPOCH = "1700000000"  # SOURCE_DATE_EPOCH: A and B have the same created_at in every process
FILES = {"manifest.json", "model.onnx", "model.pt", "regression.png", "loss.png", *MLFLOW_FILES}
RUNS: dict = {}  # the TrainingRuns of A and B, for re-runs
EXPECTED: dict = {}  # their predictions on a fixed batch

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="SIGKILL and renameat2: Linux")

HOOKS = r"""
import json, os, signal, sys
from pathlib import Path

import training.export.exporter as ex
import training.export.publish as pub
from training.data import load_dataset
from training.pipeline import train


def die(*args, **kwargs):
    os.kill(os.getpid(), signal.SIGKILL)


def die_after(function, calls=1):
    seen = []

    def wrapper(*args, **kwargs):
        result = function(*args, **kwargs)
        seen.append(1)
        if len(seen) >= calls:
            die()
        return result

    return wrapper


def die_before(function):
    def wrapper(*args, **kwargs):
        die()

    return wrapper


def install(mode):
    if mode == "write-onnx":
        Path.write_bytes = die_after(Path.write_bytes)
    elif mode == "jit-save":
        ex.torch.jit.save = die_before(ex.torch.jit.save)
    elif mode == "plots":
        import training.export.plots

        training.export.plots.plot_loss = die_before(training.export.plots.plot_loss)
    elif mode == "manifest-write":
        ex.Manifest.write = die_after(ex.Manifest.write)
    elif mode == "verify":
        ex.torch.jit.load = die_before(ex.torch.jit.load)
    elif mode == "fsync":
        os.fsync = die_after(os.fsync, calls=3)
    elif mode == "exchange-before":
        pub.exchange = die_before(pub.exchange)
    elif mode == "exchange-after":
        pub.exchange = die_after(pub.exchange)
    elif mode == "rmtree-old":
        real_move = pub.move_into_place

        def move(*args, **kwargs):
            pub.shutil.rmtree = die_before(pub.shutil.rmtree)
            return real_move(*args, **kwargs)

        pub.move_into_place = move
    elif mode == "no-renameat2":
        pub.exchange = lambda a, b: False
        os.rename = die_after(os.rename)
    elif mode == "fallback-renamed-in":
        pub.exchange = lambda a, b: False
        os.rename = die_after(os.rename, calls=2)


def job(a, dest, mode):
    # train the new model, then export it over the old one ("loop": B, A, B, A, ...)
    progress = open(f"{Path(dest).parent}.progress", "a", buffering=1)
    b = train(load_dataset("plant_richness_mlr"), progress=False)
    progress.write("trained\n")
    install(mode)
    runs = (b, a) if mode == "loop" else (b,)
    for i in range(60 if mode == "loop" else 1):
        ex.export_model(runs[i % len(runs)], dest, name="model", overwrite=True)
        progress.write(f"exported {i}\n")
"""

# Imports torch and trains once, then forks one child per job read from stdin: the
# children skip the 2-second imports, and torch's warm-up.
ZYGOTE = (
    HOOKS
    + r"""
a = train(load_dataset("plant_richness_lr"), progress=False)
train(load_dataset("plant_richness_mlr"), progress=False)
# one export first, so children do not each pay for importing matplotlib and
# onnxruntime: the kills are meant to land inside the export loop
import shutil, tempfile
warm = tempfile.mkdtemp()
ex.export_model(a, Path(warm) / "warm", name="model")
shutil.rmtree(warm)
print("ready", flush=True)
for line in sys.stdin:
    dest, mode = line.split()
    pid = os.fork()
    if pid == 0:
        try:
            job(a, dest, mode)
        except BaseException:
            import traceback

            traceback.print_exc()
            os._exit(1)
        os._exit(0)
    print(json.dumps({"pid": pid}), flush=True)
    _, status = os.waitpid(pid, 0)
    killed = os.WTERMSIG(status) if os.WIFSIGNALED(status) else None
    print(json.dumps({"pid": pid, "signal": killed}), flush=True)
"""
)

# A fresh process from its first line: imports, trains A and B, exports in a loop.
FRESH = (
    HOOKS
    + r"""
a = train(load_dataset("plant_richness_lr"), progress=False)
job(a, sys.argv[1], "loop")
"""
)


class Zygote:
    def __init__(self) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-c", ZYGOTE],
            cwd=ROOT,
            env=_env(),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        self.ready = False  # it imports and trains while the test process does the same
        self.last_pid = 0  # the child of the latest run

    def run(self, dest: Path, mode: str, kill_after: float | None = None) -> int | None:
        """Fork a child for the job; kill it after ``kill_after`` s; return its signal."""
        if not self.ready:
            assert self.proc.stdout.readline().strip() == "ready"
            self.ready = True
        self.proc.stdin.write(f"{dest} {mode}\n")
        self.proc.stdin.flush()
        pid = self.last_pid = json.loads(self.proc.stdout.readline())["pid"]
        if kill_after is not None:
            time.sleep(kill_after)
            os.kill(pid, signal.SIGKILL)  # a "loop" child cannot have finished yet
        result = json.loads(self.proc.stdout.readline())
        assert result["pid"] == pid
        return result["signal"]

    def close(self) -> None:
        self.proc.stdin.close()
        self.proc.wait(timeout=60)


def _env() -> dict[str, str]:
    return {**os.environ, "SOURCE_DATE_EPOCH": EPOCH, "PYTHONPATH": str(ROOT)}


@pytest.fixture(scope="module")
def zygote():
    z = Zygote()
    yield z
    z.close()


@pytest.fixture(scope="module")
def references(tmp_path_factory) -> dict[str, Path]:
    """A and B exported here, as the children export them."""
    pytest.importorskip("torch")
    from training.data import load_dataset
    from training.export import export_model
    from training.pipeline import train

    out = tmp_path_factory.mktemp("references")
    old = os.environ.get("SOURCE_DATE_EPOCH")
    os.environ["SOURCE_DATE_EPOCH"] = EPOCH
    try:
        refs = {}
        for key, dataset in (("A", "plant_richness_lr"), ("B", "plant_richness_mlr")):
            RUNS[key] = train(load_dataset(dataset), progress=False)
            refs[key] = export_model(RUNS[key], out / key / "model", name="model")
    finally:
        if old is None:
            del os.environ["SOURCE_DATE_EPOCH"]
        else:
            os.environ["SOURCE_DATE_EPOCH"] = old
    return refs


def fresh_destination(references: dict[str, Path], root: Path) -> Path:
    root.mkdir(parents=True)
    return Path(shutil.copytree(references["A"], root / "model"))


def state_of(dest: Path, references: dict[str, Path]) -> str:
    """ "A" or "B" when ``dest`` is exactly one of them (all checks passed), else fail."""
    assert dest.is_dir(), f"{dest} is missing"
    assert {p.name for p in dest.iterdir()} == FILES
    predictor = Predictor.load(dest, providers="cpu")  # sha256 and size of every file
    onnx = (dest / "model.onnx").read_bytes()
    manifest = json.loads((dest / "manifest.json").read_text())
    for key, ref in references.items():
        if onnx == (ref / "model.onnx").read_bytes():
            want = json.loads((ref / "manifest.json").read_text())
            for field in ("features", "target", "parameters", "statistics", "created_at"):
                assert manifest[field] == want[field], field
            X = np.random.default_rng(0).normal(size=(50, len(want["features"])))
            if key not in EXPECTED:
                EXPECTED[key] = Predictor.load(ref).predict(X)
            np.testing.assert_array_equal(predictor.predict(X), EXPECTED[key])
            return key
    raise AssertionError(f"{dest} holds neither the old nor the new model")


def leftovers(dest: Path, pid: int | None = None) -> list[str]:
    """Entries beside the destination: staging directories a killed export left, each
    named ``.<name>.tmp-<host>-<pid>-<random>`` or ``.<name>.old-<host>-<pid>-<random>``
    after the writer (``pid`` when given)."""
    others = sorted(p.name for p in dest.parent.iterdir() if p.name != dest.name)
    for name in others:  # hidden, and named after the destination: never mistaken for it
        match = re.fullmatch(rf"\.{re.escape(dest.name)}\.(tmp|old)-[0-9a-f]{{8}}-(\d+)-\w+", name)
        assert match, name
        if pid is not None:
            assert int(match.group(2)) == pid, f"{name}: not the killed process {pid}"
    return others


def rerun(dest: Path, references: dict[str, Path]) -> None:
    """Export B again over whatever the kill left: it must succeed and be B."""
    from training.export import export_model

    os.environ["SOURCE_DATE_EPOCH"] = EPOCH
    try:
        export_model(RUNS["B"], dest, name="model", overwrite=True)
    finally:
        del os.environ["SOURCE_DATE_EPOCH"]
    assert state_of(dest, references) == "B"


def progress(dest: Path) -> list[str]:
    path = Path(f"{dest.parent}.progress")
    return path.read_text().split("\n")[:-1] if path.exists() else []


@pytest.mark.slow
def test_sigkill_at_random_moments_of_training_and_export(references, zygote, tmp_path):
    rng = random.Random(20240607)
    outcomes = []
    # two fresh processes killed during their imports or training
    early = []
    for i in range(2):
        dest = fresh_destination(references, tmp_path / f"early{i}")
        proc = subprocess.Popen(
            [sys.executable, "-c", FRESH, str(dest)],
            cwd=ROOT,
            env=_env(),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        early.append((dest, proc, rng.uniform(2.0, 4.0)))
    started = time.monotonic()
    for dest, proc, delay in sorted(early, key=lambda e: e[2]):
        time.sleep(max(0.0, started + delay - time.monotonic()))
        proc.send_signal(signal.SIGKILL)
        assert proc.wait(timeout=60) == -signal.SIGKILL, proc.stderr.read()
        outcomes.append(("fresh", round(delay, 2), dest, proc.pid))
    # ten children of the zygote, killed while training B and exporting B, A, B, ...
    for i in range(10):
        dest = fresh_destination(references, tmp_path / f"fork{i}")
        delay = rng.uniform(0.0, 1.0)
        assert zygote.run(dest, "loop", kill_after=delay) == signal.SIGKILL
        outcomes.append(("fork", round(delay, 2), dest, zygote.last_pid))
    table = []
    for kind, delay, dest, pid in outcomes:
        state = state_of(dest, references)  # A or B, whichever export the kill interrupted
        exports = sum(line.startswith("exported") for line in progress(dest))
        left = leftovers(dest, pid)
        table.append((kind, delay, exports, state, len(left)))
        rerun(dest, references)
        assert leftovers(dest) == []  # the killed process's are gone, the rerun added none
    print("\nrandom kills (process, delay s, finished exports, state, leftovers):", table)
    assert any(t[2] > 0 for t in table)  # some kills landed inside the export loop


STEPS = {
    "write-onnx": "A",
    "jit-save": "A",
    "plots": "A",
    "manifest-write": "A",
    "verify": "A",
    "fsync": "A",
    "exchange-before": "A",
    "exchange-after": "B",
    "rmtree-old": "B",
    "fallback-renamed-in": "B",  # without renameat2, killed after both renames
}


@pytest.mark.parametrize("step", list(STEPS))
def test_sigkill_at_each_step_of_export(references, zygote, tmp_path, step):
    dest = fresh_destination(references, tmp_path / step)
    assert zygote.run(dest, step) == signal.SIGKILL, f"{step}: the hook did not fire"
    assert progress(dest) == ["trained"]
    assert state_of(dest, references) == STEPS[step]
    left = leftovers(dest, zygote.last_pid)
    assert len(left) == 1  # the staging directory (a complete old copy after the exchange)
    rerun(dest, references)
    assert leftovers(dest) == []  # the killed process's is gone, the rerun added none


def test_sigkill_between_the_fallback_renames(references, zygote, tmp_path):
    """Without renameat2 a kill between the two renames leaves no model at the
    destination; the next export puts the complete old one back before anything else."""
    from training.export import ExportError, export_model

    dest = fresh_destination(references, tmp_path / "fallback")
    assert zygote.run(dest, "no-renameat2") == signal.SIGKILL
    left = leftovers(dest, zygote.last_pid)
    if dest.exists():
        assert state_of(dest, references) in ("A", "B")
    else:  # the old model is complete under its temporary name
        old = [dest.parent / name for name in left if name.startswith(".model.old-")]
        assert len(old) == 1 and state_of(old[0], references) == "A"
        # an export that may not replace restores A, then refuses: A is back as it was
        with pytest.raises(ExportError, match="already exists; pass overwrite=True"):
            export_model(RUNS["B"], dest, name="model")
        assert state_of(dest, references) == "A"
        assert leftovers(dest) == []
    rerun(dest, references)
    assert leftovers(dest) == []
