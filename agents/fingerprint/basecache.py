"""What the embedder derives from the base model alone, kept on disk for the next copy.

Every copy of a base model is trained against the same benign text, so the base model's states
on that text (the hidden states entering the trained block, the block's keys and values, the
last layer's states for the KL teachers) and the null space of the trained weights do not depend
on the copy. The oracle fingerprints many copies of each base model: computing them once saves
about 50 s per copy on SmolLM2 (2 CPU cores, docs/fingerprinting.md).

Files live under ``cache_root()/fingerprint``, named by a hash of everything their content
depends on (the base weights' content hash, the benign rows, the layers, the device), written
atomically. A file that cannot be read is rebuilt, never trusted. Nothing is evicted: another
benign text, block or constraint writes another file; deleting the folder only costs the next
copy the time.
"""

from __future__ import annotations

import hashlib
import logging
import os
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)


def derived_path(kind: str, *parts: object) -> Path:
    """The file for ``kind`` of derived data that depends on exactly ``parts``."""
    from agents.fingerprint.models import cache_root

    stamp = "|".join(str(p) for p in (kind, *parts))
    name = f"{kind}-{hashlib.sha256(stamp.encode()).hexdigest()[:20]}.pt"
    return cache_root() / "fingerprint" / name


def rows_digest(rows: list[list[int]]) -> str:
    """A content hash of token rows (which benign text the derived data was computed on)."""
    digest = hashlib.sha256()
    for row in rows:
        digest.update(len(row).to_bytes(4, "little"))
        digest.update(b"".join(int(t).to_bytes(4, "little") for t in row))
    return digest.hexdigest()[:24]


def load(path: Path) -> Any | None:
    """The tensors saved at ``path``, or None when there are none (or they cannot be read)."""
    import torch

    if not path.exists():
        return None
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # a truncated or foreign file: recompute instead
        log.warning("ignoring unreadable cache file %s (%s); it will be rebuilt", path, error)
        return None


def save(path: Path, content: Any) -> None:
    """Write ``content`` (tensors in dicts/lists) to ``path`` atomically."""
    import torch

    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f"{path.name}.tmp{os.getpid()}")
    try:
        torch.save(content, tmp)
        tmp.replace(path)
    finally:
        tmp.unlink(missing_ok=True)
