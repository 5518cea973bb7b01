"""The claudine home as the headless server finds it: usable, or said why not in one line.

A home the server cannot write is reported on stderr before anything is served (exit
status 1): the engine could not keep its store or lock there. One that breaks later, as
the engine starts, ends the run the same way, after each request waiting for an answer
has been told why (:class:`HomeUnusable`).
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

EXIT_BAD_HOME = 1  # as every other "claudine: error: ..." of the CLI
HOME_ADVICE = ("Point CLAUDINE_HOME at a directory this user can write (or fix the "
               "permissions of this one) and start the server again.")


class HomeUnusable(Exception):
    """The engine could not open its store or lock in the home (said in one line)."""


def home_problem(home: Path) -> str | None:
    """Why the engine could not keep its store and lock in ``home``, in a sentence; or None.

    Checked before the first answer, so a host sees the server exit with the reason
    rather than a handshake followed by a dead server. A real file is written and
    removed: permission bits say nothing when running as root, and a read-only mount
    or a file in the way only shows when something tries.
    """
    try:
        home.mkdir(mode=0o700, parents=True, exist_ok=True)
        probe, name = tempfile.mkstemp(prefix=".write-test-", dir=home)
        os.close(probe)
        os.unlink(name)
    except OSError as exc:
        reason = exc.strerror or str(exc)
        where = f" ({exc.filename})" if exc.filename and str(exc.filename) != str(home) else ""
        return f"the claudine home {home} is not usable: {reason}{where}. {HOME_ADVICE}"
    return None

