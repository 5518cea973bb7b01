"""``claudine send ID MESSAGE``: a message to a task's agent (issue 11).

A running task's agent reads it at its next turn; a finished task's conversation goes on
with it (a resume, a new task). The message is recorded first; ``claudine status ID``
shows whether it has been delivered.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from typing import Any

from claudine_tui.cli.common import ensure_owner, open_service

RESUME_WAITS = "the resume waits until a console or 'claudine serve' runs"


def add_parsers(sub: Any, handlers: dict[str, Callable[[argparse.Namespace], int]]) -> None:
    """Add the ``send`` command to the ``claudine`` parser and its handler to
    ``handlers``."""
    p = sub.add_parser(
        "send", help="send a message to a task's agent (its next turn, or a resume)",
        description="A running task's agent reads the message at its next turn, without "
        "restarting; a finished task's conversation goes on with it as a new task (a "
        "resume). Use '-' to read the message from stdin.")
    p.add_argument("task", help="task id (full, short or unique prefix)")
    p.add_argument("message", help="the text to send ('-': read it from stdin)")
    p.add_argument("--json", action="store_true", help="print the message record as JSON")
    p.add_argument("--no-serve", action="store_true",
                   help="do not start a background owner if none is running (a resume waits "
                   "for one)")
    handlers["send"] = send


def send(args: argparse.Namespace) -> int:
    text = sys.stdin.read() if args.message == "-" else args.message
    service = open_service(args)
    try:
        message = service.send_message(args.task, text)
        if message.resume_task_id and not args.no_serve:
            ensure_owner(service.config, meanwhile=RESUME_WAITS)
    finally:
        service.close()
    # The CLI's convention for scripts: a bare id on stdout (the task that continues the
    # conversation, or the message's), the whole record with --json; words for a person
    # go to stderr at a terminal.
    if args.json:
        print(json.dumps(message.to_json()))
    elif message.resume_task_id:
        print(message.resume_task_id)
        if sys.stderr.isatty():
            print(f"the task had ended: its conversation continues as task "
                  f"{message.resume_task_id}", file=sys.stderr)
    else:
        print(message.id)
        if sys.stderr.isatty():
            print("sent: the agent reads it at its next turn", file=sys.stderr)
    return 0

