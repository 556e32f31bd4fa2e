-- Retained approvals, newest first, at most ARGV[2]; index entries whose
-- record has aged out are removed on the way.
-- KEYS[1] index zset. ARGV: record key prefix, limit.
local out = {}
local limit = tonumber(ARGV[2])
for _, id in ipairs(redis.call('ZREVRANGE', KEYS[1], 0, -1)) do
  if #out >= limit then
    break
  end
  local j = redis.call('HGET', ARGV[1] .. id, 'j')
  if j then
    out[#out + 1] = j
  else
    redis.call('ZREM', KEYS[1], id)
  end
end
return out
