"""How much memory a device has free, for checks made before long work that would not fit.

A run that outgrows memory is killed by the kernel without a word (on Linux, the OOM killer),
after minutes of work; asking first turns that into an error that says what to change.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch

_MEMINFO = Path("/proc/meminfo")
# cgroup v2, then v1: a container's limit can be far below what the host reports free.
_CGROUP_LIMITS = (
    (Path("/sys/fs/cgroup/memory.max"), Path("/sys/fs/cgroup/memory.current")),
    (
        Path("/sys/fs/cgroup/memory/memory.limit_in_bytes"),
        Path("/sys/fs/cgroup/memory/memory.usage_in_bytes"),
    ),
)


def _read_int(path: Path) -> int | None:
    try:
        text = path.read_text().strip()
    except OSError:
        return None
    return int(text) if text.isdigit() else None  # "max": no limit


def host_available(
    meminfo: Path = _MEMINFO, cgroups: tuple[tuple[Path, Path], ...] = _CGROUP_LIMITS
) -> int | None:
    """Bytes a new allocation on this host can take without swapping or being killed: the
    kernel's ``MemAvailable``, less where a cgroup limit leaves less. None where unknown."""
    found: list[int] = []
    try:
        for line in meminfo.read_text().splitlines():
            if line.startswith("MemAvailable:"):
                found.append(int(line.split()[1]) * 1024)
                break
    except (OSError, ValueError, IndexError):
        pass
    for limit_file, usage_file in cgroups:
        limit, usage = _read_int(limit_file), _read_int(usage_file)
        if limit is not None and usage is not None:
            found.append(max(0, limit - usage))
    return min(found) if found else None


def available_memory(device: torch.device) -> int | None:
    """Free bytes on ``device`` (host memory for the CPU, the card's for CUDA); None where
    this cannot be asked (then no check is made)."""
    if device.type == "cpu":
        return host_available()
    if device.type == "cuda":
        import torch

        free, _total = torch.cuda.mem_get_info(device)
        return int(free)
    return None
