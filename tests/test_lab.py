"""`make lab` as a researcher starts it: its kernels use IPC sockets (no warning about an
unencrypted TCP port in the output) and JupyterLab opens without the "get notified about
Jupyter news?" toast (the project's lab/settings/overrides.json)."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import urllib.request
from pathlib import Path

import pytest
import zmq
from jupyter_client import BlockingKernelClient

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.e2e


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _get(url: str, data: bytes | None = None) -> dict:
    with urllib.request.urlopen(urllib.request.Request(url, data=data), timeout=10) as r:
        return json.loads(r.read())


def test_make_lab_uses_ipc_kernels_and_shows_no_news_toast(tmp_path, browser) -> None:
    port, token = _free_port(), "ppss-lab-test"
    # A short runtime folder: a socket's path has at most 107 bytes (pytest's tmp_path is longer).
    runtime = Path(tempfile.mkdtemp(prefix="ppss-rt-"))
    env = {
        **os.environ,
        "JUPYTER_CONFIG_DIR": str(tmp_path / "cfg"),
        "JUPYTER_RUNTIME_DIR": str(runtime),
        "JUPYTER_DATA_DIR": str(tmp_path / "data"),
    }
    log = (tmp_path / "lab.log").open("w+", encoding="utf-8")
    args = f"--no-browser --port={port} --ServerApp.ip=127.0.0.1 --IdentityProvider.token={token}"
    lab = subprocess.Popen(
        ["make", "--no-print-directory", "lab", f"LAB_ARGS={args}"],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,  # make and its jupyter: one process group, ended together below
    )
    base = f"http://127.0.0.1:{port}"
    page = browser.new_page(viewport={"width": 1400, "height": 900})
    try:
        deadline = time.time() + 120
        while True:
            try:
                _get(f"{base}/api/status?token={token}")
                break
            except OSError:
                assert lab.poll() is None and time.time() < deadline, "make lab did not start"
                time.sleep(0.5)
        kernel = _get(f"{base}/api/kernels?token={token}", data=b"{}")
        connection_file = runtime / f"kernel-{kernel['id']}.json"
        connection = json.loads(connection_file.read_text(encoding="utf-8"))
        assert connection["transport"] == "ipc"
        assert connection["ip"].startswith(str(runtime)), "the sockets sit beside the connection file"
        # A context whose sockets never linger, closed here: one left for the garbage collector
        # with a message for the kernel (gone by then) blocked a later test for good.
        ctx = zmq.Context()
        ctx.linger = 0
        client = BlockingKernelClient(connection_file=str(connection_file), context=ctx)
        client.load_connection_file()
        client.start_channels()
        try:
            client.wait_for_ready(timeout=120)  # the kernel answers: it has started (and warned, if it would)
        finally:
            client.stop_channels()
            ctx.destroy(linger=0)

        settings = _get(f"{base}/lab/api/settings/@jupyterlab/apputils-extension:notification?token={token}")
        props = settings["schema"]["properties"]
        assert props["fetchNews"]["default"] == "false" and props["checkForUpdates"]["default"] is False
        page.goto(f"{base}/lab?token={token}")
        page.wait_for_selector(".jp-LauncherCard, .jp-Launcher", timeout=120_000)
        page.wait_for_timeout(3_000)  # the news question came a moment after the launcher
        assert not page.get_by_text("Jupyter news").count(), "the news toast is shown"
    finally:
        page.close()
        os.killpg(lab.pid, signal.SIGTERM)  # JupyterLab shuts its kernels down on SIGTERM
        try:
            lab.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(lab.pid, signal.SIGKILL)
            lab.wait(timeout=10)
        shutil.rmtree(runtime, ignore_errors=True)
    log.seek(0)
    output = log.read()
    assert "Kernel started" in output
    assert "TCP" not in output and "Traceback" not in output and "WARNING" not in output, output[-2000:]
