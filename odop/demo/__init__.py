"""odop.demo."""
