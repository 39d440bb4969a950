"""odop.store."""
