"""Colours shared by the charts (plotext takes RGB) and mirrored in app.tcss."""

from __future__ import annotations

#: Per answer source; app.tcss uses the same hex values for the badges.
SOURCE_RGB: dict[str, tuple[int, int, int]] = {
    "neural": (198, 120, 221),    # #c678dd
    "learned": (97, 175, 239),    # #61afef
    "template": (229, 192, 123),  # #e5c07b
    "forward": (224, 108, 117),   # #e06c75
}
#: Per local model, for the loss curves.
MODEL_RGB: dict[str, tuple[int, int, int]] = {
    "generator": (152, 195, 121),  # #98c379
    "router": (86, 182, 194),      # #56b6c2
    "validator": (209, 154, 102),  # #d19a66
}


def hex_colour(rgb: tuple[int, int, int]) -> str:
    """`#rrggbb` for an RGB triple (for Content styles)."""
    r, g, b = rgb
    return f"#{r:02x}{g:02x}{b:02x}"
