-- Store a new pending approval unless a pending, unexpired one with the same
-- dedupe key exists; keep at most max records (terminal ones evicted oldest
-- first, then the oldest of all; never the new one).
-- KEYS[1] the new record's hash (s = status, j = JSON, e = expires_ns, k = dedupe key),
-- KEYS[2] the dedupe key (-> id of the pending approval), KEYS[3] index zset (score: created µs).
-- ARGV: id, json, created_ns, expires_ns, score, max, record_ttl_ms,
--       dedupe_ttl_ms, index_ttl_ms, record key prefix.
-- Reply: {0, existing JSON} | {1, json}.
local id, json, created, expires = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
local max, rec_prefix = tonumber(ARGV[6]), ARGV[10]

-- a > b for decimal integer strings (ns timestamps do not fit a double exactly).
local function gt(a, b)
  if #a ~= #b then
    return #a > #b
  end
  return a > b
end

local existing = redis.call('GET', KEYS[2])
if existing then
  local v = redis.call('HMGET', rec_prefix .. existing, 's', 'e', 'j')
  if v[1] == 'pending' and v[2] and v[3] and gt(v[2], created) then
    return { 0, v[3] }
  end
end
redis.call('HSET', KEYS[1], 's', 'pending', 'j', json, 'e', expires, 'k', KEYS[2])
redis.call('PEXPIRE', KEYS[1], ARGV[7])
redis.call('SET', KEYS[2], id, 'PX', ARGV[8])
redis.call('ZADD', KEYS[3], ARGV[5], id)
redis.call('PEXPIRE', KEYS[3], ARGV[9])

local card = redis.call('ZCARD', KEYS[3])
if card <= max then
  return { 1, json }
end
local function drop(victim)
  local rk = rec_prefix .. victim
  local dk = redis.call('HGET', rk, 'k')
  if dk and redis.call('GET', dk) == victim then
    redis.call('DEL', dk)
  end
  redis.call('DEL', rk)
  redis.call('ZREM', KEYS[3], victim)
  card = card - 1
end
local ids = redis.call('ZRANGE', KEYS[3], 0, -1)
-- Aged out (record expired) or terminal: oldest first.
for _, victim in ipairs(ids) do
  if card <= max then
    break
  end
  if victim ~= id then
    local s = redis.call('HGET', rec_prefix .. victim, 's')
    if not s or s == 'denied' or s == 'expired' or s == 'consumed' then
      drop(victim)
    end
  end
end
-- Then the oldest of all.
for _, victim in ipairs(ids) do
  if card <= max then
    break
  end
  if victim ~= id and redis.call('ZSCORE', KEYS[3], victim) then
    drop(victim)
  end
end
return { 1, json }
