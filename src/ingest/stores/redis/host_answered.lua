-- The granted request got its answer (or failed): the next one may start `interval` from now.
-- KEYS: next, holder, and inflight when the request is done (its body read, or it failed): its lease then
-- leaves the in-flight set in the same round trip. ARGV: token, interval in ms. (host_acquire.lua explains
-- the keys.)
if KEYS[3] then
  redis.call('ZREM', KEYS[3], ARGV[1])
end
if redis.call('GET', KEYS[2]) ~= ARGV[1] then
  return 0
end
redis.call('DEL', KEYS[2])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local next_ms = now + tonumber(ARGV[2])
if next_ms > tonumber(redis.call('GET', KEYS[1]) or '0') then
  redis.call('SET', KEYS[1], next_ms, 'PX', tonumber(ARGV[2]) + 1000)
end
return 1
