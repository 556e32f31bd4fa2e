-- Bind a session to the first owner that uses it; refresh it for that owner.
-- KEYS[1] the session key. ARGV: owner, ttl_ms.
-- Reply: {1} bound | {0, holder} bound to another owner.
local cur = redis.call('GET', KEYS[1])
if not cur then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  return { 1 }
end
if cur == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return { 1 }
end
return { 0, cur }
