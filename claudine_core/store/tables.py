"""peewee models: the schema of the store (see migrations.py for how it evolves).

The model classes are declared inside :func:`bind_tables`, which each store calls with its
own database, as huey's SqlStorage does: two homes open in one process then each have
their own classes, and no query can reach a database through a process-global binding.
Declaring them costs about 1 ms per opened store, the cost that declaring them at import
had (so start-up is unchanged); subclassing shared classes instead would deep-copy every
field, about twice that.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import peewee


class Tables(NamedTuple):
    """One store's model classes, bound to that store's database."""

    meta: Any
    task: Any


def bind_tables(db: peewee.Database) -> Tables:
    """Declare the model classes bound to ``db`` (and to nothing else)."""

    class BaseModel(peewee.Model):
        class Meta:
            database = db

    class MetaRow(BaseModel):
        """Key/value facts about the store itself."""

        key = peewee.TextField(primary_key=True)
        value = peewee.TextField()

        class Meta:
            table_name = "meta"

    class TaskRow(BaseModel):
        """One delegated task. ``seq`` gives FIFO order within a priority, across restarts."""

        seq = peewee.AutoField()
        id = peewee.TextField(unique=True)
        prompt = peewee.TextField()
        priority = peewee.IntegerField(default=2)
        status = peewee.TextField(default="queued", index=True)
        cwd = peewee.TextField()
        model = peewee.TextField(null=True)
        timeout_s = peewee.FloatField(null=True)
        max_output_bytes = peewee.IntegerField(null=True)
        permission_mode = peewee.TextField(null=True)
        allowed_tools = peewee.TextField(null=True)  # JSON list
        created_at = peewee.FloatField()
        updated_at = peewee.FloatField(index=True)
        started_at = peewee.FloatField(null=True)
        ended_at = peewee.FloatField(null=True)
        exit_code = peewee.IntegerField(null=True)
        error = peewee.TextField(null=True)
        session_id = peewee.TextField(null=True)
        num_turns = peewee.IntegerField(null=True)
        cost_usd = peewee.FloatField(null=True)
        pid = peewee.IntegerField(null=True)
        pid_started_at = peewee.FloatField(null=True)  # process create time: guards pid reuse
        attempt = peewee.IntegerField(default=0)
        not_before = peewee.FloatField(null=True)  # retry back-off: not dispatched before this
        last_activity = peewee.TextField(null=True)
        last_activity_at = peewee.FloatField(null=True)
        result = peewee.TextField(null=True)
        is_error = peewee.BooleanField(null=True)
        api_error_status = peewee.IntegerField(null=True)
        resume_session_id = peewee.TextField(null=True)
        resume_prompt = peewee.TextField(null=True)
        parent_id = peewee.TextField(null=True)
        cancel_requested = peewee.BooleanField(default=False)
        cancel_reason = peewee.TextField(null=True)
        output_bytes = peewee.IntegerField(default=0)
        output_truncated = peewee.BooleanField(default=False)
        # Added by schema version 2 (isolation in git worktrees).
        worktree = peewee.BooleanField(default=False)
        base_branch = peewee.TextField(null=True)
        branch = peewee.TextField(null=True)
        worktree_path = peewee.TextField(null=True)
        merge_strategy = peewee.TextField(null=True)
        merge = peewee.TextField(null=True)  # JSON outcome of the merge step
        # Added by schema version 3: the task's own choice to commit leftovers (NULL: repo's).
        commit_changes = peewee.BooleanField(null=True)
        # Added by schema version 4: the task's own agent settings, fixed at delegate time so
        # that whichever owner runs it runs it as the delegating process asked; and the
        # outcome of every earlier attempt.
        claude_bin = peewee.TextField(null=True)
        agent_env = peewee.TextField(null=True)  # JSON object
        agent_args = peewee.TextField(null=True)  # JSON list
        attempts = peewee.TextField(null=True)  # JSON list of {attempt, started_at, ...}

        class Meta:
            table_name = "task"
            indexes = ((("status", "priority", "seq"), False),)

    return Tables(meta=MetaRow, task=TaskRow)
