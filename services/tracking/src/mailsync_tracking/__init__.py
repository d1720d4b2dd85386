"""Records opens and clicks."""
