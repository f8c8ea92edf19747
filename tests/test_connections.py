"""The worker reaches Redis however redis-py does: TCP with a password and database, a unix
socket, and TLS (rediss://), parsed once with redis-py's own rules."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator

import pytest
import redis

import jobs
from jobpool import Queue, Worker
from jobpool.embedded_redis import EmbeddedRedis
from jobpool.exceptions import InvalidRedisUrl, RedisUnavailable
from jobpool.redis_target import connect_core, target_of


def drain_and_check(connection: redis.Redis) -> None:
    connection.flushdb()
    job = Queue("q", connection=connection).enqueue(jobs.add, 20, 22)
    assert Worker(["q"], connection=connection).work(burst=True) is True
    assert job.return_value() == 42


def test_urls_parse_as_redis_py_parses_them() -> None:
    assert target_of("redis://user:pw@example.com:6380/3") == {
        "host": "example.com",
        "port": 6380,
        "db": 3,
        "username": "user",
        "password": "pw",
    }
    assert target_of("unix:///tmp/redis.sock?db=2")["unix_path"] == "/tmp/redis.sock"
    assert target_of("unix:///tmp/redis.sock?db=2")["db"] == 2
    tls = target_of("rediss://localhost:6390/0?ssl_cert_reqs=none")
    assert tls["tls"] is True and tls["tls_verify"] is False
    assert target_of(redis.Redis(host="h", port=1, db=4, password="x")) == {
        "host": "h",
        "port": 1,
        "db": 4,
        "username": None,
        "password": "x",
    }
    with pytest.raises(InvalidRedisUrl):
        target_of("http://example.com")
    with pytest.raises(InvalidRedisUrl):
        target_of("rediss://localhost/0?ssl_ca_certs=/no/such/file.pem")


def test_unreachable_redis_is_a_typed_error() -> None:
    core = connect_core("redis://127.0.0.1:1/0")
    with pytest.raises(RedisUnavailable):
        core.take(["q"], "w", "e", 30)


def test_password_database_and_unix_socket() -> None:
    with EmbeddedRedis(unix_socket=True, password="s3cret") as server:
        drain_and_check(redis.Redis.from_url(server.url.replace("/0", "/5")))
        assert server.unix_path is not None
        drain_and_check(redis.Redis(unix_socket_path=server.unix_path, password="s3cret", db=2))
        drain_and_check(redis.Redis.from_url(f"unix://:s3cret@{server.unix_path}?db=3"))


@pytest.fixture(scope="module")
def tls_files(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, str, str]:
    """A certificate authority and a server certificate for 127.0.0.1 (openssl)."""
    directory = tmp_path_factory.mktemp("tls")
    ca_key, ca_cert = directory / "ca.key", directory / "ca.crt"
    key, request, cert = directory / "server.key", directory / "server.csr", directory / "server.crt"
    extensions = directory / "san.ext"
    extensions.write_text("subjectAltName=IP:127.0.0.1\n")

    def openssl(*args: object) -> None:
        subprocess.run(["openssl", *map(str, args)], check=True, capture_output=True)

    openssl(
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        ca_key,
        "-out",
        ca_cert,
        "-days",
        "2",
        "-subj",
        "/CN=jobpool test CA",
    )
    openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", request, "-subj", "/CN=127.0.0.1")
    openssl(
        "x509",
        "-req",
        "-in",
        request,
        "-CA",
        ca_cert,
        "-CAkey",
        ca_key,
        "-CAcreateserial",
        "-out",
        cert,
        "-days",
        "2",
        "-extfile",
        extensions,
    )
    return str(cert), str(key), str(ca_cert)


@pytest.fixture(scope="module")
def tls_server(tls_files: tuple[str, str, str]) -> Iterator[EmbeddedRedis]:
    with EmbeddedRedis(tls_files=tls_files) as server:
        yield server


def test_tls_without_verification(tls_server: EmbeddedRedis) -> None:
    drain_and_check(redis.Redis.from_url(f"rediss://127.0.0.1:{tls_server.tls_port}/0?ssl_cert_reqs=none"))


def test_tls_verified_against_a_ca(tls_server: EmbeddedRedis, tls_files: tuple[str, str, str]) -> None:
    ca_certificate = tls_files[2]
    drain_and_check(
        redis.Redis(host="127.0.0.1", port=tls_server.tls_port, ssl=True, ssl_ca_certs=ca_certificate)
    )


def test_tls_with_an_untrusted_certificate_is_refused(tls_server: EmbeddedRedis) -> None:
    core = connect_core(f"rediss://127.0.0.1:{tls_server.tls_port}/0")  # verifies against the system's CAs
    with pytest.raises(RedisUnavailable):
        core.take(["q"], "w", "e", 30)
