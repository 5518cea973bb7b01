"""The Ray backend is optional: the engine and the other backends never load ray."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

IMPORTS = ("import claudine_core.engine, claudine_core.backends, claudine_core.backends.local, "
           "claudine_core.backends.fake, sys; print(sorted(m for m in sys.modules "
           "if m == 'ray' or m.startswith('ray.')))")


def test_the_engine_and_the_local_backend_do_not_import_ray() -> None:
    result = subprocess.run([sys.executable, "-c", IMPORTS], capture_output=True, text=True,
                            timeout=60, check=True)
    assert result.stdout.strip() == "[]"


LOCAL_ENGINE = ("import claudine_core.engine, claudine_core.config, sys\n"
                "from claudine_core.engine import Engine\n"
                "engine = Engine(claudine_core.config.Config(home=sys.argv[1]))\n"
                "engine.service.close()\n"
                "print(sorted(m for m in sys.modules if m.startswith('claudine_core.backend')"
                " and m != 'claudine_core.backend_choice'))")


def test_the_local_engine_loads_no_backend_machinery(tmp_path: Path) -> None:
    """The local backend is today's supervisor: not even the seam's types are loaded."""
    result = subprocess.run([sys.executable, "-c", LOCAL_ENGINE, str(tmp_path / "home")],
                            capture_output=True, text=True, timeout=60, check=True,
                            env={**os.environ, "CLAUDINE_CONFIG": "/dev/null"})
    assert result.stdout.strip() == "[]"
