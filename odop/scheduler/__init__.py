"""odop.scheduler."""
