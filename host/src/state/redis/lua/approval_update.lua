-- Compare-and-set on an approval's status.
-- KEYS[1] the record hash, KEYS[2] its dedupe key.
-- ARGV: id, expected status, new status, new JSON, expires_ns, record_ttl_ms.
-- Reply: {0} missing | {1, stored JSON} conflict | {2} updated.
local cur = redis.call('HMGET', KEYS[1], 's', 'j')
if not cur[1] then
  return { 0 }
end
if cur[1] ~= ARGV[2] then
  return { 1, cur[2] or '' }
end
redis.call('HSET', KEYS[1], 's', ARGV[3], 'j', ARGV[4], 'e', ARGV[5], 'k', KEYS[2])
redis.call('PEXPIRE', KEYS[1], ARGV[6])
if ARGV[3] ~= 'pending' and redis.call('GET', KEYS[2]) == ARGV[1] then
  redis.call('DEL', KEYS[2])
end
return { 2 }
