"""odop.report."""
