"""Colours shared by the charts (plotext takes RGB) and the stylesheets ($src-* variables)."""

from __future__ import annotations

from shammah_tui.core.kinds import SOURCE_INFO


def rgb(hex_value: str) -> tuple[int, int, int]:
    """An RGB triple for `#rrggbb`."""
    value = hex_value.lstrip("#")
    return int(value[0:2], 16), int(value[2:4], 16), int(value[4:6], 16)


#: Per answer source, from the one source registry.
SOURCE_RGB: dict[str, tuple[int, int, int]] = {name: rgb(info.colour) for name, info in SOURCE_INFO.items()}
#: Per local model, for the loss curves.
MODEL_RGB: dict[str, tuple[int, int, int]] = {
    "generator": (152, 195, 121),  # #98c379
    "adapter": (198, 120, 221),    # #c678dd
    "router": (86, 182, 194),      # #56b6c2
    "validator": (209, 154, 102),  # #d19a66
}


def hex_colour(rgb: tuple[int, int, int]) -> str:
    """`#rrggbb` for an RGB triple (for Content styles)."""
    r, g, b = rgb
    return f"#{r:02x}{g:02x}{b:02x}"
