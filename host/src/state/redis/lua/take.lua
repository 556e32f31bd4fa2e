-- Take ARGV cost tokens from every bucket in KEYS[3..], or from none.
-- KEYS[1] LRU zset (member: bucket key, score: tick), KEYS[2] tick counter.
-- ARGV: now_ms (0: server time), cost, capacity, refill_per_second,
--       max_keys, idle_ttl_ms (hard quotas: kept this long after last use).
-- Reply: {1, remaining} taken, or {0, key_index (0-based), retry_after_ms}.
local now = tonumber(ARGV[1])
if now == 0 then
  local t = redis.call('TIME')
  now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
local cost = tonumber(ARGV[2])
local cap = tonumber(ARGV[3])
local rate = tonumber(ARGV[4])
local max_keys = tonumber(ARGV[5])
local idle_ttl = tonumber(ARGV[6])
local n = #KEYS - 2
local state = {}
local worst_i, worst_wait = nil, nil
local remaining = nil
for i = 1, n do
  local v = redis.call('HMGET', KEYS[i + 2], 't', 'l')
  local t, last = tonumber(v[1]), tonumber(v[2])
  if t == nil or last == nil then
    t, last = cap, now
  end
  if now > last then
    t = math.min(t + (now - last) * rate / 1000, cap)
    last = now
  end
  state[i] = { t, last }
  if t + 1e-9 < cost then
    local wait = 0
    if rate > 0 then
      wait = math.max(math.ceil((cost - t) / rate * 1000), 1)
    end
    -- A hard quota (wait 0 = never) is the worst of all.
    if worst_i == nil or (worst_wait ~= 0 and (wait == 0 or wait > worst_wait)) then
      worst_i, worst_wait = i, wait
    end
  end
  if remaining == nil or t - cost < remaining then
    remaining = t - cost
  end
end
local taken = worst_i == nil
local tick = redis.call('INCRBY', KEYS[2], n)
local longest = idle_ttl
if rate > 0 then
  longest = math.ceil(cap / rate * 1000) + 1000
end
for i = 1, n do
  local k = KEYS[i + 2]
  local t, last = state[i][1], state[i][2]
  if taken then
    t = t - cost
  end
  redis.call('HSET', k, 't', string.format('%.17g', t), 'l', string.format('%d', last))
  -- A refilling bucket is dropped once it would be full again (a missing
  -- bucket starts full); a hard quota is kept idle_ttl after its last use.
  local ttl = idle_ttl
  if rate > 0 then
    ttl = math.ceil((cap - t) / rate * 1000) + 1000
  end
  redis.call('PEXPIRE', k, ttl)
  redis.call('ZADD', KEYS[1], tick - n + i, k)
end
redis.call('PEXPIRE', KEYS[1], longest)
redis.call('PEXPIRE', KEYS[2], longest)
-- Least recently used buckets beyond max_keys are evicted (never one of ours).
local card = redis.call('ZCARD', KEYS[1])
if card > max_keys then
  local ours = {}
  for i = 1, n do
    ours[KEYS[i + 2]] = true
  end
  for _, victim in ipairs(redis.call('ZRANGE', KEYS[1], 0, card - max_keys - 1)) do
    if ours[victim] then
      break
    end
    redis.call('DEL', victim)
    redis.call('ZREM', KEYS[1], victim)
  end
end
if taken then
  return { 1, math.floor(math.max(remaining or 0, 0)) }
end
return { 0, worst_i - 1, worst_wait }
