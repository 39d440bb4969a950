"""odop.tasks."""
