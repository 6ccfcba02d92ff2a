"""The embedded AWS emulator: moto in server mode, on 127.0.0.1, holding the stack's resources.

Server mode (rather than moto's in-process mocks) is what lets ``cadenza dev`` serve other
processes: a worker, the CLI or a browser talk to the same endpoint with ordinary boto3 clients
pointed at it by ``AWS_ENDPOINT_URL``. Nothing the handlers do is local-only.

moto runs in a process of its own (:mod:`cadenza.local.moto_server`): it serves every request
under one interpreter lock and is CPU-bound, so beside the handlers and workers of the stack it
gets a core to itself, and its state is its own: it goes away with the process, and two stacks
never share it. ``in_process=True`` (or ``CADENZA_MOTO_IN_PROCESS=1``) runs it in a thread of
this process instead, as before: moto then keeps its state in process-global backends, so every
emulator started in one process sees the same accounts; the emulator deletes what it created
when it stops, and two stacks in one process need different stack names. Either way the
fidelity patches (:mod:`cadenza.local.fidelity`) are applied to the moto that serves, and
connections are kept alive.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import socket
import subprocess
import sys
import threading
from pathlib import Path
from typing import IO

from cadenza.local.endpoint import DUMMY_ACCESS_KEY_ID, DUMMY_SECRET_ACCESS_KEY, AwsEndpoint
from cadenza.local.errors import LocalStackError, PortInUseError
from cadenza.local.template import DEFAULT_REGION

__all__ = ["DUMMY_ACCESS_KEY_ID", "DUMMY_SECRET_ACCESS_KEY", "IN_PROCESS_VARIABLE", "Emulator"]

log = logging.getLogger("cadenza.local.emulator")

#: Set to 1 to run moto in a thread of this process instead of a process of its own.
IN_PROCESS_VARIABLE = "CADENZA_MOTO_IN_PROCESS"
#: How long the moto process may take to listen (it imports moto first: about half a second).
STARTUP_TIMEOUT = 60.0
#: How long it may take to exit once told to, before it is terminated, then killed.
STOP_TIMEOUT = 5.0


class _MotoThread:
    """moto serving from a thread of this process; a failed bind is reported, not waited on."""

    def __init__(self, host: str, port: int) -> None:
        from cadenza.local.moto_server import make_moto_server

        self.server = make_moto_server(host, port)
        self.port = int(self.server.server_address[1])
        self._thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.1},
            name="cadenza-moto", daemon=True,
        )
        self._thread.start()

    def stop(self) -> None:
        from cadenza.local.moto_server import close_connections

        self.server.shutdown()
        self._thread.join(timeout=STOP_TIMEOUT)
        self.server.server_close()
        close_connections(self.server)


class _MotoProcess:
    """``python -m cadenza.local.moto_server`` as a child process, stopped by closing its input.

    It runs in a session of its own, so Ctrl-C in a terminal reaches only this process, which
    stops its stack first and moto last; if this process dies, the child sees its input close
    and exits too.
    """

    def __init__(self, host: str, port: int) -> None:
        import cadenza

        env = dict(os.environ)
        package_root = str(Path(cadenza.__file__).resolve().parent.parent)
        env["PYTHONPATH"] = os.pathsep.join(
            [package_root, *([env["PYTHONPATH"]] if env.get("PYTHONPATH") else [])])
        env.setdefault("PYTHONUNBUFFERED", "1")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "cadenza.local.moto_server", "--host", host,
             "--port", str(port)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=env, start_new_session=True,
        )
        try:
            line = self._first_line(self.process.stdout)
        except BaseException:
            self.stop()
            raise
        words = line.split(maxsplit=3)
        if len(words) >= 3 and words[:2] == ["cadenza-moto", "ready"]:
            self.port = int(words[2])
            return
        self.stop()
        if len(words) >= 3 and words[:2] == ["cadenza-moto", "error"]:
            reason = words[3] if len(words) > 3 else ""
            if int(words[2]) in (errno.EADDRINUSE, errno.EACCES):
                raise PortInUseError("AWS emulator (moto)", host, port, reason)
            raise LocalStackError(f"the AWS emulator failed to start: {reason}")
        raise LocalStackError(
            "the AWS emulator failed to start"
            + (f": it exited with status {self.process.returncode}"
               if self.process.returncode is not None else f": it said {line!r}")
        )

    def _first_line(self, stream: IO[bytes] | None) -> str:
        assert stream is not None
        lines: list[bytes] = []
        reader = threading.Thread(target=lambda: lines.append(stream.readline()), daemon=True)
        reader.start()
        reader.join(STARTUP_TIMEOUT)
        if not lines:
            raise LocalStackError(
                f"the AWS emulator did not start within {STARTUP_TIMEOUT:.0f} s")
        stream.close()
        return lines[0].decode(errors="replace").strip()

    def stop(self) -> None:
        process = self.process
        if process.stdin is not None:
            with contextlib.suppress(OSError):
                process.stdin.close()
        try:
            process.wait(STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            process.terminate()
            try:
                process.wait(STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def _check_port_free(host: str, port: int) -> None:
    """Fail fast, and quietly, when ``port`` is taken (werkzeug would print and exit)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as exc:
            raise PortInUseError("AWS emulator (moto)", host, port, exc.strerror or "") from exc


class Emulator(AwsEndpoint):
    """moto in server mode plus the tables, queues and schedule groups of one stack.

    Unlike an external :class:`~cadenza.local.endpoint.AwsEndpoint`, the emulator owns its
    state: it starts empty, so a table that already exists means another stack of the same
    name shares this process's moto backends (in-process mode only: an error), and what was
    created goes away when it stops (with the moto process; deleted in-process mode).
    """

    embedded = True
    reuse_existing = False

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int | None = None,
        region: str = DEFAULT_REGION,
        in_process: bool | None = None,
    ) -> None:
        super().__init__(f"http://{host}:{port or 0}", region=region)
        self.host = host
        self._requested_port = port or 0
        if in_process is None:
            in_process = os.environ.get(IN_PROCESS_VARIABLE, "").strip() in ("1", "true", "yes")
        #: True when moto serves from a thread of this process (False: its own process).
        self.in_process = in_process
        self._server: _MotoThread | _MotoProcess | None = None
        self._port: int | None = None

    # -- lifecycle

    @property
    def running(self) -> bool:
        return self._server is not None

    @property
    def port(self) -> int:
        if self._port is None:
            raise LocalStackError("the emulator is not running")
        return self._port

    @property
    def endpoint_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self) -> None:
        """Start moto on the requested port (a free one when none was given)."""
        if self._server is not None:
            return
        if self._requested_port:
            _check_port_free(self.host, self._requested_port)
        server: _MotoThread | _MotoProcess
        if self.in_process:
            werkzeug_log = logging.getLogger("werkzeug")
            if werkzeug_log.level == logging.NOTSET:
                # werkzeug prints every request to stderr unless its logger has a level.
                werkzeug_log.setLevel(logging.WARNING)
            from cadenza.local.fidelity import apply_embedded_moto_patches

            apply_embedded_moto_patches()
            try:
                server = _MotoThread(self.host, self._requested_port)
            except OSError as exc:
                raise PortInUseError("AWS emulator (moto)", self.host, self._requested_port,
                                     exc.strerror or str(exc)) from exc
        else:
            server = _MotoProcess(self.host, self._requested_port)
        self._server = server
        self._port = server.port
        self._open_session()
        log.info("moto server listening on %s (%s)", self.endpoint_url,
                 "in this process" if self.in_process else f"process {self.pid}")

    @property
    def pid(self) -> int | None:
        """The moto process's id (None in-process or when not running)."""
        server = self._server
        return server.process.pid if isinstance(server, _MotoProcess) else None

    def stop(self) -> None:
        """Delete what this emulator created (in-process), then stop the server."""
        if self._server is None:
            return
        try:
            if self.in_process:
                self.delete_resources()
            else:
                self._created.clear()  # the moto process's state ends with it
        finally:
            self._server.stop()
            self._server = None
            self._close_session()
