"""Schedules: tasks created by cron or at a set time (issue 10)."""
