"""The local tiers as plug-ins: one row each, looked up by name in the order the settings give."""

from __future__ import annotations

from shammah_tui.core.kinds import TIERS, Tier
from shammah_tui.pipeline.tiers.base import NEEDS_MODELS, Ask, Outcome, TierPlugin
from shammah_tui.pipeline.tiers.learned import LearnedTier
from shammah_tui.pipeline.tiers.neural import NeuralTier
from shammah_tui.pipeline.tiers.template import TemplateTier

TIER_PLUGINS: dict[Tier, TierPlugin] = {tier.name: tier for tier in (TemplateTier(), LearnedTier(), NeuralTier())}
assert set(TIER_PLUGINS) == set(TIERS), "every tier name has its plug-in"

__all__ = ["NEEDS_MODELS", "TIER_PLUGINS", "Ask", "Outcome", "TierPlugin"]
