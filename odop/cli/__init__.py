"""odop.cli."""
