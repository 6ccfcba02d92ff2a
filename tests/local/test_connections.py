"""The local stack's connections: moto in its own process, kept-alive HTTP to moto and to the
API, and AWS clients made once per process (not once per concurrent first request)."""

from __future__ import annotations

import concurrent.futures
import http.client
import json
import os
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import botocore.session
import pytest

from cadenza.aws.models import HistoryBatchModel, QueryAnswerModel, bind
from cadenza.aws.settings import AwsSettings
from cadenza.local import LocalStack
from cadenza.local.emulator import Emulator
from cadenza.local.moto_server import main as moto_server_main
from cadenza.service.factory import shared_client

FIXTURE_TEMPLATE = Path(__file__).parent / "fixtures" / "template.yaml"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:  # a zombie (exited, not yet reaped) counts as gone
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:  # no /proc here
        return True


def _requests_on_one_connection(host: str, port: int, path: str, count: int) -> list[str]:
    """Send ``count`` GETs on one TCP connection; the Connection header of each answer."""
    connection = http.client.HTTPConnection(host, port, timeout=10)
    headers = []
    try:
        connection.connect()
        sock = connection.sock
        for _ in range(count):
            connection.request("GET", path)
            response = connection.getresponse()
            response.read()
            headers.append(str(response.getheader("Connection")))
            assert connection.sock is sock, "the connection was closed and reopened"
    finally:
        connection.close()
    return headers


@pytest.fixture(scope="module")
def emulator() -> Iterator[Emulator]:
    running = Emulator(in_process=False)
    running.start()
    yield running
    running.stop()


def test_moto_runs_in_a_process_of_its_own_that_ends_with_the_emulator() -> None:
    emulator = Emulator(in_process=False)
    emulator.start()
    pid = emulator.pid
    try:
        assert pid is not None and pid != os.getpid() and _alive(pid)
        client = emulator.client("dynamodb")
        client.create_table(
            TableName="own-process", BillingMode="PAY_PER_REQUEST",
            KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}])
        assert "own-process" in client.list_tables()["TableNames"]
    finally:
        emulator.stop()
    deadline = time.monotonic() + 10
    while _alive(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _alive(pid)
    # Its state went with it: a new emulator starts empty.
    again = Emulator(in_process=False)
    again.start()
    try:
        assert again.client("dynamodb").list_tables()["TableNames"] == []
    finally:
        again.stop()


def test_the_moto_process_exits_when_its_parent_goes_away(emulator: Emulator) -> None:
    """Its standard input is the emulator's pipe: when it closes, as it does when the process
    holding it dies, moto stops (it never outlives its stack)."""
    other = Emulator(in_process=False)
    other.start()
    server = other._server
    assert server is not None and other.pid is not None
    process = server.process  # type: ignore[union-attr]
    assert process.stdin is not None
    process.stdin.close()  # what the operating system does when this process dies
    assert process.wait(10) == 0
    other._server = None


def test_moto_keeps_connections_alive(emulator: Emulator) -> None:
    assert _requests_on_one_connection(
        emulator.host, emulator.port, "/moto-api/data.json", 3) == ["None"] * 3


def test_moto_reads_chunked_bodies_and_keeps_the_connection(emulator: Emulator) -> None:
    connection = http.client.HTTPConnection(emulator.host, emulator.port, timeout=10)
    try:
        connection.putrequest("POST", "/")
        connection.putheader("Transfer-Encoding", "chunked")
        connection.putheader("Content-Type", "application/x-amz-json-1.0")
        connection.putheader("X-Amz-Target", "DynamoDB_20120810.ListTables")
        connection.putheader(
            "Authorization", "AWS4-HMAC-SHA256 Credential=testing/20260101/us-east-1/dynamodb/"
            "aws4_request, SignedHeaders=host, Signature=0")
        connection.endheaders()
        connection.send(b"2\r\n{}\r\n0\r\n\r\n")
        response = connection.getresponse()
        assert response.status == 200 and b"TableNames" in response.read()
        connection.request("GET", "/moto-api/data.json")
        assert connection.getresponse().status == 200
    finally:
        connection.close()


def test_an_emulator_in_this_process_still_works() -> None:
    emulator = Emulator(in_process=True)
    emulator.start()
    try:
        assert emulator.pid is None
        queue = emulator.client("sqs").create_queue(QueueName="in-process")["QueueUrl"]
        assert queue.endswith("/in-process")
        assert _requests_on_one_connection(
            emulator.host, emulator.port, "/moto-api/data.json", 2) == ["None"] * 2
    finally:
        emulator.stop()


def test_the_moto_server_reports_a_taken_port(capsys: pytest.CaptureFixture[str]) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        assert moto_server_main(["--port", str(port)]) == 2
    words = capsys.readouterr().out.split()
    assert words[:2] == ["cadenza-moto", "error"] and int(words[2]) != 0


@pytest.fixture(scope="module")
def stack() -> Iterator[LocalStack]:
    with LocalStack(api_port=0, template_path=FIXTURE_TEMPLATE, ui=False,
                    stack_name="conn") as running:
        yield running


def test_the_api_keeps_connections_alive(stack: LocalStack) -> None:
    host, port = stack.api_url.removeprefix("http://").rsplit(":", 1)
    assert _requests_on_one_connection(host, int(port), "/no-such-route", 3) == ["None"] * 3


def test_stopping_the_api_ends_its_kept_alive_connections() -> None:
    with LocalStack(api_port=0, template_path=FIXTURE_TEMPLATE, ui=False,
                    stack_name="conn-stop") as local:
        host, port = local.api_url.removeprefix("http://").rsplit(":", 1)
        connection = http.client.HTTPConnection(host, int(port), timeout=10)
        connection.request("GET", "/no-such-route")
        connection.getresponse().read()
    with pytest.raises((ConnectionError, http.client.HTTPException, OSError)):
        connection.request("GET", "/no-such-route")
        connection.getresponse().read()
    connection.close()


def _raw_exchange(stack: LocalStack, request: bytes) -> tuple[bytes, bool]:
    """Send ``request`` as is on a new connection: (the answer, whether the server then closed
    the connection)."""
    host, port = stack.api_url.removeprefix("http://").rsplit(":", 1)
    with socket.create_connection((host, int(port)), timeout=10) as connection:
        connection.sendall(request)
        answer = b""
        while b"\r\n\r\n" not in answer:
            answer += connection.recv(65536)
        head, _, body = answer.partition(b"\r\n\r\n")
        length = int(next(line.split(b":", 1)[1] for line in head.split(b"\r\n")
                          if line.lower().startswith(b"content-length:")))
        while len(body) < length:
            body += connection.recv(65536)
        connection.settimeout(5)
        closed = connection.recv(1) == b""
    return head + b"\r\n\r\n" + body, closed


@pytest.mark.parametrize("framing", [
    b"Content-Length: ten\r\n\r\n{}",
    b"Content-Length: -1\r\n\r\n{}",
    b"Transfer-Encoding: chunked\r\n\r\nzz\r\n{}\r\n0\r\n\r\n",
    b"Transfer-Encoding: chunked\r\n\r\n2\r\n{}XX0\r\n\r\n",
])
def test_a_malformed_body_framing_is_a_400_not_a_dropped_connection(
    stack: LocalStack, framing: bytes
) -> None:
    calls = stack.function("HttpFunction").invocations
    answer, closed = _raw_exchange(
        stack, b"POST /api/v1/anything HTTP/1.1\r\nHost: x\r\n" + framing)
    status_line, _, rest = answer.partition(b"\r\n")
    assert status_line.startswith(b"HTTP/1.1 400")
    error = json.loads(rest.partition(b"\r\n\r\n")[2])
    assert error["code"] == "BadRequestError"
    assert error["details"]["field"] in ("Content-Length", "Transfer-Encoding")
    assert closed  # where a next request would start is unknown
    assert stack.function("HttpFunction").invocations == calls  # nothing reached the function


def test_a_body_over_the_limit_is_refused_before_it_is_read(stack: LocalStack) -> None:
    from cadenza.core.limits import MAX_BODY_BYTES

    answer, _ = _raw_exchange(stack, b"POST /api/v1/anything HTTP/1.1\r\nHost: x\r\n"
                              + f"Content-Length: {MAX_BODY_BYTES + 1}\r\n\r\n".encode())
    assert answer.startswith(b"HTTP/1.1 413")
    error = json.loads(answer.partition(b"\r\n\r\n")[2])
    assert error["code"] == "PayloadTooLargeError"
    assert error["details"]["limit"] == MAX_BODY_BYTES


def test_a_well_framed_chunked_body_reaches_the_function(stack: LocalStack) -> None:
    answer, _ = _raw_exchange(
        stack, b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Type: text/plain\r\n"
        b"Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
        b"3\r\nabc\r\n2;ext=1\r\nde\r\n0\r\n\r\n")
    assert answer.startswith(b"HTTP/1.1 201")
    assert json.loads(answer.partition(b"\r\n\r\n")[2])["event"]["body"] == "abcde"


def _settings(endpoint: str) -> AwsSettings:
    return AwsSettings(history_table="h", visibility_table="v", queue_prefix="p",
                       task_token_secret="s", region="us-east-1", endpoint_url=endpoint)


def test_bound_models_share_one_client_made_when_bound(emulator: Emulator) -> None:
    made: list[object] = []
    stock = botocore.session.Session.create_client
    host = emulator.endpoint_url

    first = bind(HistoryBatchModel, table_name="a", region="us-east-1", host=host)
    second = bind(QueryAnswerModel, table_name="b", region="us-east-1", host=host)
    client = first._get_connection().connection.client
    assert second._get_connection().connection.client is client

    def count(self: object, *args: object, **kwargs: object) -> object:
        made.append(args)
        return stock(self, *args, **kwargs)

    botocore.session.Session.create_client = count  # type: ignore[method-assign,assignment]
    try:
        third = bind(HistoryBatchModel, table_name="c", region="us-east-1", host=host)
        with concurrent.futures.ThreadPoolExecutor(20) as pool:
            clients = list(pool.map(
                lambda _: third._get_connection().connection.client, range(20)))
    finally:
        botocore.session.Session.create_client = stock  # type: ignore[method-assign]
    assert made == [] and all(each is client for each in clients)


def test_service_clients_are_made_once_per_process_and_endpoint(emulator: Emulator) -> None:
    settings = _settings(emulator.endpoint_url)
    barrier = threading.Barrier(10)

    def first_use(_: int) -> object:
        barrier.wait()
        return shared_client("sqs", settings)

    with concurrent.futures.ThreadPoolExecutor(10) as pool:
        clients = list(pool.map(first_use, range(10)))
    assert all(client is clients[0] for client in clients)
    assert shared_client("dynamodb", settings) is shared_client("dynamodb", settings)
    assert shared_client("sqs", _settings("http://127.0.0.1:9")) is not clients[0]
