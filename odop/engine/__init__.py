"""odop.engine."""
