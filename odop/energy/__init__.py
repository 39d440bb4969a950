"""odop.energy."""
