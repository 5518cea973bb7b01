"""Adapters that run and read background `claude` agents."""
