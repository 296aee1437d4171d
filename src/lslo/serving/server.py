"""Run an app under uvicorn in a background thread (for embedding, tests and the serving benchmark)."""

from __future__ import annotations

import socket
import threading
import time

import uvicorn


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


class BackgroundServer:
    """``with BackgroundServer(app) as srv: httpx.get(srv.url + "/health")``; leaving drains and stops it."""

    def __init__(self, app, host: str = "127.0.0.1", port: int | None = None, startup_timeout: float = 30.0,
                 **config):
        self.host, self.port = host, port or free_port(host)
        config.setdefault("log_level", "warning")
        self.server = uvicorn.Server(uvicorn.Config(app, host=self.host, port=self.port, **config))
        self.thread = threading.Thread(target=self.server.run, name="lslo-uvicorn", daemon=True)
        self.startup_timeout = startup_timeout

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self) -> BackgroundServer:
        self.thread.start()
        deadline = time.monotonic() + self.startup_timeout
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError(f"the server on {self.url} did not start")
            time.sleep(0.01)
        return self

    def stop(self, timeout: float = 60.0) -> None:
        self.server.should_exit = True
        self.thread.join(timeout)

    def __enter__(self) -> BackgroundServer:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
