"""The machine, the servers and the build a benchmark ran on, for its report."""

from __future__ import annotations

import hashlib
import os
import platform
import struct
import subprocess
from pathlib import Path
from typing import Any

import redis

from jobpool import _native


def cpu_count() -> int:
    """What ``nproc`` prints: the CPUs this process may run on."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 0


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def load_average() -> list[float]:
    return [round(value, 2) for value in os.getloadavg()] if hasattr(os, "getloadavg") else []


def elf_section_names(image: bytes) -> set[str]:
    """The section names of a 64-bit little-endian ELF file."""
    if image[:4] != b"\x7fELF" or image[4:6] != b"\x02\x01":
        raise ValueError("not a 64-bit little-endian ELF file")
    (table,) = struct.unpack_from("<Q", image, 0x28)
    entry_size, count, names_index = struct.unpack_from("<HHH", image, 0x3A)
    names_offset = _section_header(image, table + names_index * entry_size)[1]
    names = set()
    for index in range(count):
        name_start = names_offset + _section_header(image, table + index * entry_size)[0]
        names.add(image[name_start : image.index(b"\0", name_start)].decode())
    return names


def _section_header(image: bytes, at: int) -> tuple[int, int]:
    """(name offset, file offset) of the ELF64 section header at byte ``at``."""
    (name,) = struct.unpack_from("<I", image, at)
    (offset,) = struct.unpack_from("<Q", image, at + 0x18)
    return name, offset


def extension_build() -> str:
    """``debug`` or ``release``, from whether jobpool._native carries DWARF debug info (cargo's dev
    profile keeps it, the release profile strips it), or ``unknown``."""
    path = Path(_native.__file__ or "")
    try:
        sections = elf_section_names(path.read_bytes())
    except (OSError, ValueError, struct.error):
        return "unknown"
    return "debug" if ".debug_info" in sections else "release"


def extension_fingerprint() -> str:
    """The SHA-256 of jobpool._native's file, to tell whether it was rebuilt during a run (worker
    subprocesses load whatever is on disk when they start)."""
    try:
        return hashlib.sha256(Path(_native.__file__ or "").read_bytes()).hexdigest()
    except OSError:
        return "unknown"


def source_revision() -> dict[str, Any]:
    """The git commit of the working tree, and the files changed since it outside bench/ (the
    extension is built from rust/, the worker is python/: a figure belongs to that code)."""
    root = Path(__file__).resolve().parent.parent

    def git(*arguments: str) -> str:
        return subprocess.run(
            ["git", *arguments], cwd=root, capture_output=True, text=True, check=True
        ).stdout

    try:
        changed = [line[3:] for line in git("status", "--porcelain").splitlines()]
        return {
            "commit": git("rev-parse", "HEAD").strip(),
            "changed_outside_bench": [path for path in changed if not path.startswith("bench/")],
        }
    except (OSError, subprocess.CalledProcessError):
        return {"commit": "unknown", "changed_outside_bench": []}


def environment(admin: redis.Redis) -> dict[str, Any]:
    return {
        "nproc": cpu_count(),
        "cpu_model": cpu_model(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "redis_server": admin.info("server")["redis_version"],
        "redis_py": redis.__version__,
        "load_average_before": load_average(),
        "extension_build": extension_build(),
    }
