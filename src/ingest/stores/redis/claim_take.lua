-- Take a URL's claim from a holder whose lease is gone, if the claim still names it (another worker may have
-- taken it meanwhile). KEYS: the claim. ARGV: the dead holder, the new owner, the claim's lifetime in seconds.
if redis.call('GET', KEYS[1]) ~= ARGV[1] then
  return 0
end
redis.call('SET', KEYS[1], ARGV[2], 'EX', tonumber(ARGV[3]))
return 1
