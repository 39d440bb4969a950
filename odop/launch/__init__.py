"""odop.launch."""
