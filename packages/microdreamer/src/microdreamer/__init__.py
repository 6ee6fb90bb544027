"""MicroDreamer."""
