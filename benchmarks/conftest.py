"""pytest-benchmark suites: every backend on the same seeded input, group by group.

Full run (pyproject's addopts disable benchmarks, so enable them)::

    python -m pytest benchmarks/ --benchmark-enable --benchmark-json=bench.json

Smoke run (batch sizes 1 and 64, each benchmark called once; what the test suite
runs)::

    python -m pytest benchmarks/ --smoke

Groups are named ``batch=<n> k=<k>``; each result's ``extra_info`` records the
backend, provider, device, batch, k, seed, this machine's memory-bandwidth
bound for the group, the CPU model and the 1-minute load average before and
after the timing; ``machine_info`` names the CPU model and the load when the
session started. The backends and the timing conventions are those of
``linreg bench`` (the ``training.bench`` package).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from training import bench


def _ints(text: str) -> list[int]:
    return [int(v) for v in text.split(",") if v.strip()]


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("linreg benchmarks")
    group.addoption(
        "--smoke",
        action="store_true",
        help="tiny sizes (batch 1 and 64), one cold start: a check that the benchmarks run",
    )
    group.addoption("--bench-sizes", type=_ints, help="comma-separated batch sizes")
    group.addoption("--bench-features", type=_ints, help="comma-separated feature counts k")
    group.addoption("--bench-models", type=Path, help="directory for the synthetic models")


def pytest_benchmark_update_machine_info(config: pytest.Config, machine_info: dict) -> None:
    """Name the CPU model and the load: figures from two machine kinds, or from a busy
    and a quiet machine, must not be read as one another's."""
    machine_info["cpu_model"] = bench.cpu_model()
    machine_info["cpu_description"] = bench.cpu_description()
    machine_info["load_average_1min"] = bench.load_average()


def _sizes(config: pytest.Config) -> list[int]:
    chosen = config.getoption("--bench-sizes")
    if chosen:
        return chosen
    return [1, 64] if config.getoption("--smoke") else list(bench.BATCH_SIZES)


def _features(config: pytest.Config) -> list[int]:
    return config.getoption("--bench-features") or list(bench.FEATURES)


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "batch" in metafunc.fixturenames:
        metafunc.parametrize("batch", _sizes(metafunc.config), ids=lambda n: f"batch={n}")
    if "k" in metafunc.fixturenames:
        metafunc.parametrize("k", _features(metafunc.config), ids=lambda k: f"k={k}")


@pytest.fixture(scope="session")
def smoke(request: pytest.FixtureRequest) -> bool:
    return bool(request.config.getoption("--smoke"))


@pytest.fixture(scope="session")
def models(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory):
    """k -> model directory, one synthetic exported model per feature count."""
    directory = request.config.getoption("--bench-models") or tmp_path_factory.mktemp("models")
    return bench.make_models(directory, _features(request.config))


@pytest.fixture(scope="session")
def bandwidth(smoke: bool) -> dict:
    """This machine's streaming rate (``np.copyto``, read + write bytes per second)."""
    return bench.measure_bandwidth((32 << 20) if smoke else bench.BANDWIDTH_BYTES)


@pytest.fixture(scope="session")
def backend_for(models):
    """``backend_for(name, k)``: a cached backend, or a skip saying why it cannot run."""
    cache: dict[tuple[str, int], bench.Backend | str] = {}

    def get(name: str, k: int) -> bench.Backend:
        if (name, k) not in cache:
            try:
                cache[name, k] = bench.make_backend(name, models[k])
            except bench.Unavailable as exc:
                cache[name, k] = str(exc)
        found = cache[name, k]
        if isinstance(found, str):
            pytest.skip(f"{name}: {found}")
        return found

    return get


@pytest.fixture(scope="session")
def inputs():
    """``inputs(n, k)``: the seeded (n, k) float32 input every backend gets."""
    cache: dict[tuple[int, int], object] = {}

    def get(n: int, k: int):
        if (n, k) not in cache:
            cache[n, k] = bench.make_input(n, k)
        return cache[n, k]

    return get
