-- Record facts of one company atomically with the event's dedupe mark.
-- KEYS[1] latest-value hash, KEYS[2] versions hash, KEYS[3] the event's dedupe mark
-- ARGV[1] dedupe-mark TTL in seconds, ARGV[2] JSON array of facts
--   {"f": "metric|period", "v": "value", "p": "precision", "t": "known_at", "e": "event id", "c": "currency"}
-- Returns {"duplicate"|"applied", JSON array of changes {"f","k","v","prev"}}
-- Values equal within half the coarser precision are one fact (the same figure published
-- twice, or once rounded in prose and once exact in a table): no new version unless more precise.
if redis.call("EXISTS", KEYS[3]) == 1 then
  return {"duplicate", redis.call("GET", KEYS[3])}
end

local function same_value(a, b)
  local tolerance = math.max(tonumber(a.p), tonumber(b.p)) / 2 + 1e-9 * math.abs(tonumber(a.v))
  return math.abs(tonumber(a.v) - tonumber(b.v)) <= tolerance
end

local function latest_of(versions)
  local latest = nil
  for _, version in ipairs(versions) do
    if latest == nil or version.t >= latest.t then latest = version end
  end
  return latest
end

local function insert_in_time_order(versions, fact)
  local position = #versions + 1
  for i, version in ipairs(versions) do
    if fact.t < version.t then position = i; break end
  end
  table.insert(versions, position, fact)
end

local changes = {}
for _, fact in ipairs(cjson.decode(ARGV[2])) do
  local raw = redis.call("HGET", KEYS[2], fact.f)
  local versions = raw and cjson.decode(raw) or {}
  local latest = latest_of(versions)
  local kind = nil
  if latest == nil then
    kind = "recorded"
  elseif fact.t >= latest.t then
    if not same_value(fact, latest) then
      kind = "restated"
    elseif tonumber(fact.p) < tonumber(latest.p) then
      kind = "refined"
    end
  else
    local known = false
    for _, version in ipairs(versions) do
      if same_value(fact, version) then known = true end
    end
    if not known then kind = "late" end
  end
  if kind ~= nil then
    insert_in_time_order(versions, fact)
    redis.call("HSET", KEYS[2], fact.f, cjson.encode(versions))
    if kind ~= "late" then
      redis.call("HSET", KEYS[1], fact.f, cjson.encode(fact))
      local previous = latest and latest.v or false
      table.insert(changes, {f = fact.f, k = kind, v = fact.v, prev = previous, c = fact.c})
    end
  end
end

local encoded = cjson.encode(changes)
if #changes == 0 then encoded = "[]" end
redis.call("SET", KEYS[3], encoded, "EX", tonumber(ARGV[1]))
return {"applied", encoded}
