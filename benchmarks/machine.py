"""What the benchmarks print about the machine: the CPU flags that decide the speed of
low-precision paths (AMX tiles, AVX-512 and its bf16/VNNI extensions)."""

from __future__ import annotations

from pathlib import Path


def cpu_flags() -> str:
    """The AMX and AVX-512 flags of the first CPU in /proc/cpuinfo, space-separated."""
    try:
        flags = Path("/proc/cpuinfo").read_text().split("flags", 1)[1].split("\n", 1)[0].split()
    except (OSError, IndexError):
        return "unknown"
    wanted = [f for f in flags if f.startswith(("amx", "avx512_bf16", "avx512f", "avx512_vnni"))]
    return " ".join(sorted(set(wanted))) or "no AVX-512/AMX"
