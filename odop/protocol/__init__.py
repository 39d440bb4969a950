"""odop.protocol."""
