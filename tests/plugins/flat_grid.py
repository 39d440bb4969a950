"""A new grid provider for odop in one file: a flat 123 gCO2/kWh, whatever the time."""

from odop.energy.signals.static import StaticSignal
from odop.plugins import GRID_PROVIDERS


class FlatGrid(StaticSignal):
    """``[energy] provider = "flat_test"``."""

    provider = "flat_test"

    @classmethod
    def from_settings(cls, s, **_):
        return cls(carbon=123.0, name="flat-test")


GRID_PROVIDERS.register(FlatGrid)
