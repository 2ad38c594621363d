"""Timing helpers: percentiles, child processes with their peak memory, and what machine this is."""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

NO_OLLAMA = "http://127.0.0.1:9"  # nothing listens here, so `auto` never finds a real Ollama


def percentile(values: Sequence[float], q: float) -> float:
    """The q-th percentile (0-100) by linear interpolation, as numpy computes it."""
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    pos = (len(ordered) - 1) * q / 100
    low = int(pos)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (pos - low)


def timed_ms(call: Callable[[], object], repeat: int) -> list[float]:
    """Milliseconds taken by each of `repeat` calls."""
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        call()
        times.append((time.perf_counter() - started) * 1000)
    return times


@dataclass(frozen=True)
class ChildRun:
    """A finished child process: exit code, wall seconds, peak resident memory and its output."""

    returncode: int
    seconds: float
    peak_rss_mb: float
    stdout: str
    stderr: str

    def json(self) -> dict:
        """The last stdout line parsed as JSON (phases print their result there)."""
        lines = [line for line in self.stdout.splitlines() if line.strip()]
        if self.returncode != 0 or not lines:
            raise RuntimeError(f"child failed ({self.returncode}): {self.stderr[-2000:]}")
        return json.loads(lines[-1])


def child_env(**extra: str) -> dict[str, str]:
    """The environment for a child: ours, never a real Ollama, plus `extra`."""
    env = dict(os.environ, RAG_OLLAMA_HOST=NO_OLLAMA, TOKENIZERS_PARALLELISM="false")
    env.update(extra)
    return env


def run_child(
    args: Sequence[str], env: dict[str, str] | None = None, timeout: float = 1200, show_stderr: bool = False
) -> ChildRun:
    """Run a command to the end, with its own peak resident memory.

    With `show_stderr` the child's stderr (its progress lines) goes to ours as it is written,
    and `ChildRun.stderr` is empty.

    Linux's `ru_maxrss` for a child counts the memory of the parent it was forked from (a child
    doing nothing, started by a bench process holding 1.5 GB, reported 1,514 MB), so the peak is
    the child's own high-water mark (`VmHWM`), read every 20 ms while it runs; growth in its last
    20 ms can be missed. `ru_maxrss` is the fallback where /proc is not there."""
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        started = time.perf_counter()
        proc = subprocess.Popen(list(args), stdout=out, stderr=None if show_stderr else err, env=env or child_env())
        status, rusage, high_water_kb = _wait(proc, started + timeout)
        seconds = time.perf_counter() - started
        proc.returncode = os.waitstatus_to_exitcode(status)  # reaped by wait4, so tell Popen
        out.seek(0)
        err.seek(0)
        peak_kb = high_water_kb or rusage.ru_maxrss
        return ChildRun(proc.returncode, seconds, peak_kb / 1024, out.read(), err.read())


def _wait(proc: subprocess.Popen, deadline: float) -> tuple[int, os.struct_rusage, int]:
    """The child's exit status and resource use once it ends, and the highest `VmHWM` seen (kB)."""
    high_water = 0
    while True:
        pid, status, rusage = os.wait4(proc.pid, os.WNOHANG)
        if pid:
            return status, rusage, high_water
        high_water = max(high_water, high_water_kb(proc.pid))
        if time.perf_counter() > deadline:
            proc.kill()
        time.sleep(0.02)


def high_water_kb(pid: int) -> int:
    """A live process's peak resident memory since it started its program (kB), 0 if unknown."""
    try:
        with open(f"/proc/{pid}/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except (OSError, ValueError):
        pass
    return 0


def python_child(module: str, *args: str) -> list[str]:
    """Command line running `python -m module args` with this interpreter."""
    return [sys.executable, "-m", module, *args]


def machine() -> dict:
    """CPU, cores, memory and load, for the results table."""
    cpu = ""
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        cpu = next((ln.split(":", 1)[1].strip() for ln in cpuinfo.read_text().splitlines() if "model name" in ln), "")
    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return {
        "cpu": cpu or platform.processor(),
        "cores": os.cpu_count(),
        "memory_gib": round(memory, 1),
        "python": platform.python_version(),
        "platform": platform.platform(),
    }


def load_average() -> list[float]:
    """1, 5 and 15 minute load averages (other work on the machine makes figures noisy)."""
    return [round(x, 2) for x in os.getloadavg()]
