"""The Redis cache with one client per connection pool.

Django's RedisCacheClient builds a new `redis.Redis` for every cache call, and each build
fills a table of about 500 response callbacks: three cache calls per API request (the
failed-credential check and the rate limit) spent more time there than talking to Redis.
A `redis.Redis` over a pool is thread-safe, so one per pool is kept and reused.
"""

from django.core.cache.backends.redis import RedisCache as DjangoRedisCache
from django.core.cache.backends.redis import RedisCacheClient
from django.utils.functional import cached_property


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
        return it: one round trip (SET NX EX, then INCR, in one pipeline). With `read`, the
        counter under that key is read in the same round trip: (count, read value or 0)."""
        key = self.make_and_validate_key(key)
        client = self._cache.get_client(key, write=True)
        pipe = client.pipeline()
        pipe.set(key, 0, ex=timeout, nx=True)
        pipe.incr(key)
        if read is not None:
            pipe.get(self.make_and_validate_key(read))
        answers = pipe.execute()
        if read is None:
            return int(answers[1])
        return int(answers[1]), int(answers[2] or 0)
