"""The only place that issues SQL: opening the database, the schema, migrations, queries."""

from claudine_core.store.db import StoreError, open_database
from claudine_core.store.repo import ListCache, TaskRepo, UnknownTask

__all__ = ["ListCache", "StoreError", "TaskRepo", "UnknownTask", "open_database"]
