"""Start-up costs, each in a fresh process: `rag ask` to its answer, `rag info`, and `python app.py`.

Every child runs against the store the ingest phase left, with the embedded model and no Ollama.
The app is ready when its `/ask` API (the same `RAG.ask` the page calls) has answered a question.
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.measure import ChildRun, child_env, python_child, run_child

QUESTION = "Where did Lavrov and Kishida hold talks?"
APP = Path(__file__).resolve().parent.parent / "app.py"
# Which heavy modules a command imported: `rag info` should need neither the LLM nor Gradio.
PROBE = """
import json, sys, time
started = time.perf_counter()
from rag.cli import main
try:
    main(sys.argv[1:], standalone_mode=False)
finally:
    loaded = {m: m in sys.modules for m in ("torch", "llama_cpp", "gradio", "sentence_transformers")}
    print(json.dumps({"seconds": time.perf_counter() - started, "imported": loaded}))
"""


def env_for(home: str, corpus: str) -> dict[str, str]:
    """A child environment on the given store, answering with the built-in model."""
    return child_env(RAG_HOME=home, RAG_CORPUS=corpus, RAG_BACKEND="embedded")


def cold_start(home: str, corpus: str, runs: int) -> dict:
    """Seconds and peak memory of `rag ask` from process start to its printed answer."""
    results: list[ChildRun] = []
    for _ in range(runs):
        child = run_child(python_child("rag", "ask", "--json", QUESTION), env_for(home, corpus))
        results.append(child)
        if child.returncode != 0:
            break
    answer = results[-1].json() if results[-1].returncode == 0 else {}
    return {
        "first_s": results[0].seconds,
        "seconds": [r.seconds for r in results],
        "peak_rss_mb": max(r.peak_rss_mb for r in results),
        "backend": answer.get("backend"),
        "abstained": answer.get("abstained"),
        "error": results[-1].stderr[-500:] if results[-1].returncode else None,
    }


def command_probe(home: str, corpus: str, *args: str) -> dict:
    """Seconds, memory and heavy imports of one `rag` command in a fresh process."""
    child = run_child([sys.executable, "-c", PROBE, *args], env_for(home, corpus))
    result = child.json() if child.returncode == 0 else {"error": child.stderr[-500:]}
    return {"process_s": child.seconds, "peak_rss_mb": child.peak_rss_mb, **result}


def reingest_cli(home: str, corpus: str) -> dict:
    """`rag ingest CORPUS` on an unchanged corpus, in a fresh process (model load included)."""
    child = run_child(python_child("rag", "ingest", corpus), env_for(home, corpus))
    return {"seconds": child.seconds, "peak_rss_mb": child.peak_rss_mb, "summary": child.stdout.strip()[-200:]}


def free_port() -> int:
    """A TCP port on the loopback address that nothing listens on right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def app_ready(home: str, corpus: str, timeout: float = 300) -> dict:
    """Seconds from `python app.py` to a page that loads and an answer from its `/ask` API."""
    if not APP.exists():
        return {"ready_s": None, "page_s": None, "peak_rss_mb": None, "note": "app.py does not exist"}
    port = free_port()
    with tempfile.TemporaryFile("w+") as log:
        started = time.perf_counter()
        proc = subprocess.Popen(
            [sys.executable, str(APP), "--port", str(port)],
            stdout=log,
            stderr=log,
            cwd=APP.parent,
            env=env_for(home, corpus),
        )
        try:
            result = _drive_app(f"http://127.0.0.1:{port}/", started, proc, timeout)
        finally:
            proc.terminate()
            _, _, rusage = _reap(proc)
        if result.get("note"):
            log.seek(0)
            result["log_tail"] = log.read()[-800:]
    return {**result, "peak_rss_mb": rusage.ru_maxrss / 1024 if rusage else None}


def _drive_app(url: str, started: float, proc: subprocess.Popen, timeout: float) -> dict:
    import httpx

    deadline = started + timeout
    page_s = None
    while page_s is None:
        if proc.poll() is not None or time.perf_counter() > deadline:
            return {"ready_s": None, "page_s": None, "note": f"app exited ({proc.returncode}) or timed out"}
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                page_s = time.perf_counter() - started
        except httpx.HTTPError:
            time.sleep(0.2)
    try:
        answer = _ask(url)
    except Exception as exc:  # gradio_client raises many types; the note carries it to the table
        return {"ready_s": None, "page_s": page_s, "note": f"the page loaded but /ask failed: {exc}"}
    return {"ready_s": time.perf_counter() - started, "page_s": page_s, "backend": answer.get("backend")}


def _ask(url: str) -> dict:
    from gradio_client import Client

    client = Client(url, verbose=False)
    reply = client.predict(QUESTION, api_name="/ask")
    return reply if isinstance(reply, dict) else json.loads(reply)


def _reap(proc: subprocess.Popen, grace: float = 20) -> tuple[int, int, object]:
    """Wait for our child to exit (killing it after `grace` seconds); its rusage gives its peak RSS."""
    import os

    deadline = time.perf_counter() + grace
    while True:
        pid, status, rusage = os.wait4(proc.pid, os.WNOHANG)
        if pid:
            proc.returncode = os.waitstatus_to_exitcode(status)
            return pid, status, rusage
        if time.perf_counter() > deadline:
            proc.kill()
        time.sleep(0.05)


def run(home: str, corpus: str, quick: bool) -> dict:
    """The start-up phase."""
    return {
        "cold_start": cold_start(home, corpus, runs=1 if quick else 2),
        "info": command_probe(home, corpus, "info"),
        "help": command_probe(home, corpus, "--help"),
        "reingest_cli": reingest_cli(home, corpus),
        "app": app_ready(home, corpus),
    }
