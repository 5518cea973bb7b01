"""The Ray backend is optional: the engine and the other backends never load ray."""

from __future__ import annotations

import subprocess
import sys

IMPORTS = ("import claudine_core.engine, claudine_core.backends, claudine_core.backends.local, "
           "claudine_core.backends.fake, sys; print(sorted(m for m in sys.modules "
           "if m == 'ray' or m.startswith('ray.')))")


def test_the_engine_and_the_local_backend_do_not_import_ray() -> None:
    result = subprocess.run([sys.executable, "-c", IMPORTS], capture_output=True, text=True,
                            timeout=60, check=True)
    assert result.stdout.strip() == "[]"
