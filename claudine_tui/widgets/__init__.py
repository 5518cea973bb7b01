"""Widgets of the console: one widget per module."""
