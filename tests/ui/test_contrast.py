"""Badges are readable on every theme: WCAG AA, 4.5:1 between a badge's text and its background."""

from __future__ import annotations

import pytest
from textual.color import Color

from shammah_tui.core.kinds import SOURCE_INFO
from shammah_tui.ui.app import ShammahApp
from tests.ui.fakes import FakeEngine
from tests.ui.helpers import make_app, settle

#: WCAG 2 AA for normal text.
AA = 4.5


def contrast(a: Color, b: Color) -> float:
    """The WCAG 2 contrast ratio of two opaque colours."""
    def luminance(c: Color) -> float:
        def channel(v: int) -> float:
            s = v / 255
            return s / 12.92 if s <= 0.03928 else ((s + 0.055) / 1.055) ** 2.4
        return 0.2126 * channel(c.r) + 0.7152 * channel(c.g) + 0.0722 * channel(c.b)

    high, low = sorted((luminance(a), luminance(b)), reverse=True)
    return (high + 0.05) / (low + 0.05)


def test_contrast_of_known_pairs():
    assert contrast(Color(0, 0, 0), Color(255, 255, 255)) == pytest.approx(21.0)
    assert contrast(Color(119, 119, 119), Color(255, 255, 255)) == pytest.approx(4.48, abs=0.01)


@pytest.mark.parametrize("theme", sorted(ShammahApp(FakeEngine()).available_themes))
async def test_each_source_badge_reaches_aa_contrast(engine, clock, theme):
    app = make_app(engine, clock)
    async with app.run_test(size=(80, 24)) as pilot:
        app.theme = theme
        await settle(pilot)
        ratios = {}
        for source in SOURCE_INFO:
            view = app.main.conversation.add_answer(badge=source, state=source, meta="", text="x")
            await pilot.pause()
            styles = view.get_component_styles("answer--badge")
            background = app.screen.styles.background + styles.background  # composited as drawn
            ratios[source] = round(contrast(background + styles.color, background), 2)
        assert all(ratio >= AA for ratio in ratios.values()), ratios
