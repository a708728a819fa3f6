"""The Redis cache with one client per connection pool.

Django's RedisCacheClient builds a new `redis.Redis` for every cache call, and each build
fills a table of about 500 response callbacks: three cache calls per API request (the
failed-credential check and the rate limit) spent more time there than talking to Redis.
A `redis.Redis` over a pool is thread-safe, so one per pool is kept and reused.

Counters (the API rate limit, failed credentials, password-reset limits) are one Lua script
call each: a MULTI/EXEC pipeline cost the client five replies to parse per request.
"""

from django.core.cache.backends.redis import RedisCache as DjangoRedisCache
from django.core.cache.backends.redis import RedisCacheClient
from django.utils.functional import cached_property
from redis.commands.core import Script


class ReusingRedisCacheClient(RedisCacheClient):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._clients = {}

    def get_client(self, key=None, *, write=False):
        pool = self._get_connection_pool(write)
        client = self._clients.get(id(pool))
        if client is None:
            client = self._clients[id(pool)] = self._client(connection_pool=pool)
        return client


class RedisCache(DjangoRedisCache):
    @cached_property
    def _cache(self):
        return ReusingRedisCacheClient(self._servers, **self._options)

    def count_in_window(self, key: str, timeout: int, *, read: str | None = None):
        """Add one to the counter under `key`, created with `timeout` seconds to live, and
        return it. With `read`, the counter under that key is read too: (count, its value or
        0). One command, one round trip: a Lua script (atomic in Redis, so a counter is never
        left without its expiry)."""
        key = self.make_and_validate_key(key)
        keys = [key] if read is None else [key, self.make_and_validate_key(read)]
        answer = _COUNTER(keys=keys, args=[timeout], client=self._cache.get_client(key, write=True))
        if read is None:
            return int(answer[0])
        return int(answer[0]), int(answer[1])


# One Script for every client: it is sent by its SHA1 with the client it is called with
# (loaded on that server the first time, if the server does not know it).
_COUNTER = Script(
    None,
    b"""
local count = redis.call('INCR', KEYS[1])
if count == 1 then redis.call('EXPIRE', KEYS[1], ARGV[1]) end
if #KEYS == 1 then return {count} end
return {count, tonumber(redis.call('GET', KEYS[2]) or '0') or 0}
""",
)
