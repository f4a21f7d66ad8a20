"""The package builds without warnings and ships what a site needs (the browser client's bundle)."""

import re
import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_wheel_builds_quietly_and_ships_the_client(tmp_path):
    out = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-v", "--no-deps", "--no-build-isolation", "--no-cache-dir",
         "-w", str(tmp_path), str(ROOT)],
        capture_output=True, text=True, timeout=300, check=True)
    log = out.stdout + out.stderr
    # setuptools says "byte-compiling is disabled" when PYTHONDONTWRITEBYTECODE is set: the
    # environment's choice, not a packaging problem
    warnings = [line.strip() for line in log.splitlines()
                if re.search(r"warn", line, re.I) and "byte-compiling is disabled" not in line]
    assert warnings == []
    [wheel] = tmp_path.glob("djwamp-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    assert "realtime/static/realtime/djwamp.js" in names
    assert {"router/bridge.py", "realtime/management/commands/publish.py"} <= names
    assert not any(name.startswith(("tests/", "django_site/", "bench/")) for name in names)
