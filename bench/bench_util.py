"""Helpers shared by the benchmarks: the machine's load, and results written atomically."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path


def load_average():
    """``uptime`` output (1/5/15-minute load averages), or the load averages alone."""
    try:
        return subprocess.run(["uptime"], capture_output=True, text=True,
                              check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return [float(v) for v in os.getloadavg()]


def write_json(data, path) -> Path:
    """Write ``data`` as indented JSON to ``path`` via a temporary file and a rename."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(data, indent=2) + "\n")
    os.replace(tmp, path)
    return path
