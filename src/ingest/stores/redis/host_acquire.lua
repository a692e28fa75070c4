-- A request to a host may start now (0), or: milliseconds to wait before asking again.
-- Per host, on the Redis server's clock so that every worker agrees:
--   next      the earliest time (ms) a request may start; pushed forward by a 429/503 pause;
--   holder    the one request that was granted and has not had its answer yet (a lease, so a crashed worker
--             does not block the host for longer than hold_ms);
--   inflight  leases of the requests in flight (until their body is read), at most max_inflight.
-- The interval runs from the moment the previous request got its answer, not from its grant: that moment
-- is after the server saw the request, so the server sees starts at least `interval` apart however late the
-- client actually sent (a busy event loop can delay a granted request by 100 ms and more).
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local max_inflight, hold_ms, token = tonumber(ARGV[1]), tonumber(ARGV[2]), ARGV[3]
local poll_ms = tonumber(ARGV[4])
if redis.call('EXISTS', KEYS[2]) == 1 then
  return poll_ms
end
redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', now)
if redis.call('ZCARD', KEYS[3]) >= max_inflight then
  return poll_ms
end
local next_ms = tonumber(redis.call('GET', KEYS[1]) or '0')
if next_ms > now then
  return next_ms - now
end
redis.call('SET', KEYS[2], token, 'PX', hold_ms)
redis.call('ZADD', KEYS[3], now + hold_ms, token)
redis.call('PEXPIRE', KEYS[3], hold_ms)
return 0
