"""Execution providers: what a caller asks for, turned into an ONNX Runtime providers list.

One normaliser, :func:`resolve_providers`, as onnxruntime's own
``check_and_normalize_provider_args`` is one: it expands the shorthands, refuses
what cannot be asked for, and applies the one rule for a provider this
onnxruntime lacks. :func:`check_session_providers` then checks what a session
really got: onnxruntime falls back to CPU with only a log line when a GPU
provider is available but its libraries fail to load.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import Any

from inference.errors import ProviderError

__all__ = [
    "CPU",
    "CUDA",
    "SHORTHANDS",
    "check_session_providers",
    "provider_name",
    "resolve_providers",
]

CPU = "CPUExecutionProvider"
CUDA = "CUDAExecutionProvider"
#: what ``providers`` may be, besides an explicit list
SHORTHANDS = ("auto", "cpu", "cuda")

_CUDA_HINT = " For CUDA, install the 'cuda' extra (onnxruntime-gpu) in place of onnxruntime."


def provider_name(entry: Any) -> str:
    """The name in a providers-list entry: a name, or a ``(name, options)`` pair."""
    return entry[0] if isinstance(entry, tuple) else str(entry)


def resolve_providers(
    providers: str | Sequence[Any],
    available: Sequence[str],
    *,
    strict: bool = False,
    stacklevel: int = 1,
) -> list[Any]:
    """Map ``"auto"``, ``"cpu"``, ``"cuda"`` or an explicit list to an ORT providers list.

    An explicit list may hold names or ``(name, options)`` pairs, like ORT's own.

    A provider missing from ``available`` is refused with :class:`ProviderError`
    when an explicit list names it, or with ``strict``; when only a shorthand
    (``"cuda"``) stands for it, it is dropped with a ``RuntimeWarning`` and the
    session runs on CPU. The warning points ``stacklevel`` frames above this function.
    """
    wanted = _expand(providers, available)
    missing = [provider_name(p) for p in wanted if provider_name(p) not in available]
    if not missing:
        return wanted
    shorthand = isinstance(providers, str)
    asked = str(missing) if shorthand else ", ".join(missing)
    message = (
        f"Asked to use {asked} as ONNX Runtime execution provider(s), but the available "
        f"execution providers are {list(available)}."
    )
    if CUDA in missing:
        message += _CUDA_HINT
    if strict or not shorthand:
        raise ProviderError(message)
    warnings.warn(message + " Running on CPU.", RuntimeWarning, stacklevel=stacklevel + 1)
    return [p for p in wanted if provider_name(p) in available] or [CPU]


def _expand(providers: str | Sequence[Any], available: Sequence[str]) -> list[Any]:
    """The providers list a shorthand stands for, or the explicit list, unchecked."""
    if isinstance(providers, str):
        choice = providers.lower()
        if choice == "auto":
            return [CUDA, CPU] if CUDA in available else [CPU]
        if choice == "cpu":
            return [CPU]
        if choice == "cuda":
            return [CUDA, CPU]
        raise ProviderError(
            f"providers={providers!r}: expected 'auto', 'cpu', 'cuda' or a list of "
            f"execution providers; the available ones are {list(available)}"
        )
    resolved = list(providers)
    if not resolved:
        raise ProviderError(f"an empty providers list; the available ones are {list(available)}")
    return resolved


def check_session_providers(
    wanted: Sequence[Any], got: Sequence[str], *, strict: bool, stacklevel: int = 1
) -> None:
    """Warn (or, with ``strict``, raise :class:`ProviderError`) when a GPU provider was
    asked for but the session ``got`` runs on CPU only."""
    if all(provider_name(p) == CPU for p in wanted) or any(p != CPU for p in got):
        return
    message = (
        f"asked for {[provider_name(p) for p in wanted]} but the session runs on {list(got)}: "
        "the GPU provider failed to load (see onnxruntime's log above)"
    )
    if strict:
        raise ProviderError(message)
    warnings.warn(message, RuntimeWarning, stacklevel=stacklevel + 1)
