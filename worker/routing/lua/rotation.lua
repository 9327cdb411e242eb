-- One pick for one reply, atomically: remembered per reply, moving the rotation once.
--
-- KEYS[1] SDR cache (JSON [[id, connected], ...] in a stable order)  KEYS[2] credit hash
-- KEYS[3] pick count hash  KEYS[4] pick:{reply}[:{attempt}]  KEYS[5] done:{reply}  KEYS[6] mailbox health
-- KEYS[7] decision stream  KEYS[8..] sticky and daily-cap counters, by the indexes in the policy
-- ARGV[1] reply id  ARGV[2] pick TTL (s)  ARGV[3] policy JSON (see worker/routing/rotation.py)
--
-- Smooth weighted round-robin (nginx): every candidate gains its weight, the richest wins and
-- pays the total. Credits live in Redis; an SDR that leaves the candidates loses its credit and
-- one that (re)joins starts at the candidates' average, so nobody is flooded or starved.

local policy = cjson.decode(ARGV[3])
-- attempt 1 is the handoff; a later attempt (an SLA re-route) has a pick of its own, never
-- returns early on the reply's `done` record, and never picks an SDR in policy.never
local attempt = tonumber(policy.attempt or 1)
if attempt == 1 then
  local done = redis.call('GET', KEYS[5])
  if done then return {'done', done} end
end
local prior = redis.call('GET', KEYS[4])
if prior then return {'prior', prior} end
local raw = redis.call('GET', KEYS[1])
if not raw then return {'refresh'} end
-- the cache's time left (ms): the caller refreshes it ahead of its expiry, in the background
local ttl = tostring(redis.call('PTTL', KEYS[1]))

local roster = cjson.decode(raw)
local never = {}
for _, id in ipairs(policy.never or {}) do never[id] = true end
local weights, off, caps = policy.w or {}, policy.off or {}, policy.cap or {}

local health = {}
if policy.health == 1 then
  local flat = redis.call('HGETALL', KEYS[6])
  for i = 1, #flat, 2 do health[flat[i]] = flat[i + 1] end
end

local cands, excluded, total = {}, {}, 0
for _, entry in ipairs(roster) do
  local id, connected = entry[1], entry[2]
  local cap = caps[id]
  if never[id] then
    excluded[id] = 'had_reply'
  elseif not connected then
    excluded[id] = 'not_connected'
  elseif off[id] then
    excluded[id] = off[id]
  elseif health[id] and health[id] ~= 'active' then
    excluded[id] = 'mailbox:' .. health[id]
  elseif cap and tonumber(redis.call('GET', KEYS[cap[2]]) or '0') >= cap[1] then
    excluded[id] = 'cap'
  else
    local w = tonumber(weights[id] or 1)
    if w > 0 then
      table.insert(cands, {id = id, w = w})
      total = total + w
    else
      excluded[id] = 'weight_zero'
    end
  end
end

local now = redis.call('TIME')
local at = tostring(now[1] * 1000 + math.floor(now[2] / 1000))
local function record(winner, rule, candidates)
  redis.call('XADD', KEYS[7], 'MAXLEN', '~', policy.stream_max or 10000, '*',
    'reply', ARGV[1], 'winner', winner, 'rule', rule, 'candidates', candidates,
    'excluded', cjson.encode(excluded), 'roster', policy.roster or '', 'account',
    policy.account or '', 'attempt', tostring(attempt), 'at', at)
end

local names = {}
for i, c in ipairs(cands) do names[i] = {c.id, c.w} end
local candidates = cjson.encode(names)
if #cands == 0 then
  record('', 'none', '[]')
  return {'none', cjson.encode(excluded), ttl}
end

local winner, rule = nil, 'rotation'
if policy.sticky and policy.sticky > 0 then
  local owner = redis.call('GET', KEYS[policy.sticky])
  if owner then
    for _, c in ipairs(cands) do
      if c.id == owner then winner, rule = owner, 'sticky' end
    end
    if not winner then rule = 'rotation:owner_' .. (excluded[owner] or 'unknown') end
  end
end

if not winner then
  local stored = {}
  local flat = redis.call('HGETALL', KEYS[2])
  for i = 1, #flat, 2 do stored[flat[i]] = tonumber(flat[i + 1]) end
  -- The average credit of the candidates that have one is what a newcomer starts with.
  local sum, known = 0, 0
  for _, c in ipairs(cands) do
    if stored[c.id] then sum, known = sum + stored[c.id], known + 1 end
  end
  local avg = known > 0 and sum / known or 0
  local mean = 0
  for _, c in ipairs(cands) do
    c.credit = stored[c.id] or avg
    mean = mean + c.credit
    stored[c.id] = nil
  end
  mean = mean / #cands
  -- Departed SDRs lose their credit; they rejoin at the average.
  for id, _ in pairs(stored) do redis.call('HDEL', KEYS[2], id) end
  local best = nil
  for _, c in ipairs(cands) do
    c.credit = c.credit - mean + c.w
    -- ties (to float noise) go to the first in the stable order
    if best == nil or c.credit > best.credit + 1e-9 then best = c end
  end
  best.credit = best.credit - total
  local out = {}
  for _, c in ipairs(cands) do
    table.insert(out, c.id)
    table.insert(out, string.format('%.9f', c.credit))
  end
  redis.call('HSET', KEYS[2], unpack(out))
  winner = best.id
end

redis.call('HINCRBY', KEYS[3], winner, 1)
local cap = caps[winner]
if cap then
  redis.call('INCR', KEYS[cap[2]])
  redis.call('EXPIRE', KEYS[cap[2]], 3 * 86400)
end
redis.call('SET', KEYS[4], winner, 'EX', ARGV[2])
if policy.sticky and policy.sticky > 0 then
  redis.call('SET', KEYS[policy.sticky], winner, 'EX', policy.sticky_ttl)
end
record(winner, rule, candidates)
return {'picked', winner, rule, candidates, cjson.encode(excluded), ttl}
