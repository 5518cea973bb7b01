"""Modal screens of the console: one screen per module."""
