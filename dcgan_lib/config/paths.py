"""Where the project lives on disk: the repository (ROOT), the data folder (DCGAN_DATA) and the offline mirror.

The one home of these three paths: records write paths relative to them (records.results), the dataset
registry finds and fetches archives under them (data.datasets), and every run folder hangs off ROOT.
"""
from __future__ import annotations

import os
from pathlib import Path

ROOT = Path(os.environ.get("DCGAN_ROOT", Path(__file__).resolve().parents[2]))


def data_root() -> Path:
    """Where fetched archives, official downloads and caches live (DCGAN_DATA, default data/)."""
    return Path(os.environ.get("DCGAN_DATA", ROOT / "data"))


def mirror_root() -> Path | None:
    """The offline mirror folder named by DCGAN_MIRROR, if any."""
    value = os.environ.get("DCGAN_MIRROR")
    return Path(value).expanduser().resolve() if value else None
