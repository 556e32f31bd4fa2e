-- Reserve against, or settle, one token budget.
-- KEYS[1] budget hash (fields c:<slot> = charged tokens, r:<id> = "amount:created_ms"),
-- KEYS[2] LRU zset of budget keys, KEYS[3] tick counter.
-- ARGV: op ("reserve" | "settle"), now_ms (0: server time), window_ms,
--       rolling (0/1), max_keys, then
--       reserve: cap, amount, id  -> {1, used, reserved} | {0, used, reserved, retry_after_ms}
--       settle:  id, charge       -> {used, reserved}
local op = ARGV[1]
local now = tonumber(ARGV[2])
if now == 0 then
  local t = redis.call('TIME')
  now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
local len = math.max(tonumber(ARGV[3]), 1)
local rolling = ARGV[4] == '1'
local max_keys = tonumber(ARGV[5])
local key = KEYS[1]
local start = now - now % len

-- Drop what has left the window; total the rest.
local function live(at)
  if rolling then
    return at + len > now
  end
  return at >= start
end
local used, reserved = 0, 0
local charges, holds = {}, {}
local all = redis.call('HGETALL', key)
for i = 1, #all, 2 do
  local f, v = all[i], all[i + 1]
  local kind = string.sub(f, 1, 2)
  if kind == 'c:' then
    local slot = tonumber(string.sub(f, 3))
    if slot ~= nil and live(slot) then
      used = used + tonumber(v)
      charges[#charges + 1] = { slot, tonumber(v) }
    else
      redis.call('HDEL', key, f)
    end
  elseif kind == 'r:' then
    local sep = string.find(v, ':', 1, true)
    local amount = sep and tonumber(string.sub(v, 1, sep - 1))
    local at = sep and tonumber(string.sub(v, sep + 1))
    if amount ~= nil and at ~= nil and live(at) then
      reserved = reserved + amount
      holds[#holds + 1] = { string.sub(f, 3), amount, at }
    else
      redis.call('HDEL', key, f)
    end
  end
end

local function touch()
  local tick = redis.call('INCR', KEYS[3])
  redis.call('ZADD', KEYS[2], tick, key)
  redis.call('PEXPIRE', KEYS[2], len + 1000)
  redis.call('PEXPIRE', KEYS[3], len + 1000)
  -- Whatever is in the hash has left the window one window length from now.
  redis.call('PEXPIRE', key, len + 1000)
  local card = redis.call('ZCARD', KEYS[2])
  if card > max_keys then
    for _, victim in ipairs(redis.call('ZRANGE', KEYS[2], 0, card - max_keys - 1)) do
      if victim == key then
        break
      end
      redis.call('DEL', victim)
      redis.call('ZREM', KEYS[2], victim)
    end
  end
end

if op == 'settle' then
  local id, charge = ARGV[6], tonumber(ARGV[7])
  for _, h in ipairs(holds) do
    if h[1] == id then
      reserved = reserved - h[2]
    end
  end
  redis.call('HDEL', key, 'r:' .. id)
  if charge > 0 then
    local slot = start
    if rolling then
      local g = math.max(math.floor(len / 60), 1)
      slot = now - now % g
    end
    redis.call('HINCRBY', key, 'c:' .. string.format('%d', slot), charge)
    used = used + charge
  end
  touch()
  return { used, reserved }
end

local cap, amount, id = tonumber(ARGV[6]), tonumber(ARGV[7]), ARGV[8]
local total = used + reserved + amount
if total <= cap then
  redis.call('HSET', key, 'r:' .. id, string.format('%d:%d', amount, now))
  touch()
  return { 1, used, reserved + amount }
end
-- Best estimate of when enough will have expired for it to fit.
local need = total - cap
local retry
if not rolling then
  retry = math.max(start + len - now, 1)
else
  table.sort(charges, function(a, b) return a[1] < b[1] end)
  local freed = 0
  for _, c in ipairs(charges) do
    freed = freed + c[2]
    if freed >= need then
      retry = math.max(c[1] + len - now, 1)
      break
    end
  end
  if retry == nil then
    -- Outstanding reservations are in the way: they settle or expire.
    local soonest = nil
    for _, h in ipairs(holds) do
      local left = math.max(h[3] + len - now, 0)
      if soonest == nil or left < soonest then
        soonest = left
      end
    end
    retry = math.max(soonest or len, 1)
  end
end
touch()
return { 0, used, reserved, retry }
