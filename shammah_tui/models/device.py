"""Where the models run: CUDA when available, else CPU."""

from __future__ import annotations

import torch

from shammah_tui.formatting import plural


def pick_device(prefer: str = "auto") -> torch.device:
    """``"auto"``: CUDA if available, else CPU. ``"cpu"``, ``"cuda"``, ``"cuda:N"`` ask for one.

    Raises ``ValueError`` for an unknown name or a CUDA device this machine doesn't have.
    """
    prefer = (prefer or "auto").strip().lower()
    if prefer == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(prefer)
    except RuntimeError:
        raise ValueError(f"unknown device {prefer!r}: use auto, cpu or cuda") from None
    if device.type == "cpu":
        return device
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise ValueError("device cuda was asked for but CUDA is not available on this machine")
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise ValueError(f"device {prefer} does not exist ({torch.cuda.device_count()} CUDA devices)")
        return device
    raise ValueError(f"unsupported device {prefer!r}: use auto, cpu or cuda")


def describe_device(device: torch.device | str) -> str:
    """A short human description, e.g. ``"cpu (2 threads)"`` or ``"cuda: NVIDIA H100"``."""
    device = torch.device(device)
    if device.type == "cuda":
        return f"cuda: {torch.cuda.get_device_name(device)}"
    if device.type == "cpu":
        return f"cpu ({plural(torch.get_num_threads(), 'thread')})"
    return str(device)
