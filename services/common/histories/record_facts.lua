-- Record the facts of a batch of events, each atomically with its dedupe mark and, on one
-- Redis, with the HistoryUpdated entry telling what it changed (so an effect is never recorded
-- without its history update, nor its update written twice).
-- This script is the one builder of a fact HistoryUpdated entry: on one Redis it appends the
-- entry itself; on a cluster it returns the entry and the caller appends those very bytes
-- (the history stream lives on another slot than the company's keys).
-- KEYS: for event i (1-based), KEYS[4i-3] latest-value hash, KEYS[4i-2] versions hash,
--       KEYS[4i-1] the event's dedupe mark, KEYS[4i] the history stream to append to (a
--       repeat of the dedupe mark when the caller appends: a cluster)
--       and, on one Redis, a last key: the set of known companies, to which each event's company
--       is added (a cluster adds them from the client: the set lives on another slot)
-- ARGV[1] dedupe-mark TTL in seconds
-- ARGV[2] "1": append each history update here (one Redis); "0": return it to the caller
-- ARGV[3] JSON of the envelope fields every history update of the batch shares
-- ARGV[4...] per event, flat (no JSON to build or parse on the hot path): its history update's
--         event id ("" for none: a caller recording facts without telling), company, the event's own id, the digest of its content (64 hex digits),
--         the number of facts, then per fact: "metric|period", value, precision, known_at,
--         event id, currency
-- Returns, per event: "duplicate" | "applied", its changes as JSON {"f","k","v","prev","c"}, the
-- kinds of those changes joined by commas (so the caller decodes the JSON only when needed), and
-- the HistoryUpdated entry the caller is to append ("" when this script appended it, or there is
-- no change); or "conflict", the digest recorded under this event id, the digest received (the
-- same id with other content: nothing is written), and "".
-- The dedupe mark holds the content's digest followed by the changes JSON (a mark written before
-- digests were kept starts with "[" and matches any content).
-- Values equal within half the coarser precision are one fact (the same figure published
-- twice, or once rounded in prose and once exact in a table): no new version unless more precise.
-- A version with "x" set is an operator's retraction (`guidepost history retract`): from its time
-- on the fact has no value, so a later figure is recorded afresh and an earlier one learned late
-- stays history.

local shared = cjson.decode(ARGV[3])

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
  return position
end

local function change_kind(versions, fact)
  local latest = latest_of(versions)
  if latest == nil then return "recorded", nil end
  if latest.x and fact.t >= latest.t then return "recorded", nil end
  if fact.t >= latest.t then
    if not same_value(fact, latest) then return "restated", latest end
    if tonumber(fact.p) < tonumber(latest.p) then return "refined", latest end
    return nil, latest
  end
  for _, version in ipairs(versions) do
    if not version.x and same_value(fact, version) then return nil, latest end
  end
  return "late", latest
end

local function record(latest_key, versions_key, facts)
  local changes = {}
  for _, fact in ipairs(facts) do
    local raw = redis.call("HGET", versions_key, fact.f)
    local versions = raw and cjson.decode(raw) or {}
    local kind, latest = change_kind(versions, fact)
    if kind ~= nil then
      local position = insert_in_time_order(versions, fact)
      redis.call("HSET", versions_key, fact.f, cjson.encode(versions))
      if kind ~= "late" then
        redis.call("HSET", latest_key, fact.f, cjson.encode(fact))
        local previous = latest and latest.v or false
        table.insert(changes, {f = fact.f, k = kind, v = fact.v, prev = previous, c = fact.c})
      elseif position == #versions - 1 and not latest.x and not same_value(fact, latest) then
        -- a version learned late, just before the current one: the current value now
        -- restates it (whatever order the two arrived in, the story is the same)
        table.insert(changes, {f = fact.f, k = "restated", v = latest.v, prev = fact.v, c = latest.c})
      end
    end
  end
  return changes
end

local function split_field(field)
  local bar = string.find(field, "|", 1, true)
  return string.sub(field, 1, bar - 1), string.sub(field, bar + 1)
end

local function history_update(envelope, changes)
  local facts = {}
  for _, change in ipairs(changes) do
    local metric, period = split_field(change.f)
    table.insert(facts, {
      metric = metric, period = period, value = change.v,
      kind = (change.k == "restated") and "restated" or "recorded",
      previous = change.prev or cjson.null,
      currency = (change.c ~= "" and change.c) or cjson.null,
    })
  end
  envelope.facts = facts
  return cjson.encode(envelope)
end

local function envelope_of(event)
  local envelope = {
    event_id = event.update_id, company = event.company, cause_event_id = event.cause,
  }
  for name, value in pairs(shared) do envelope[name] = value end
  return envelope
end

local function read_event(cursor)
  local event = {
    update_id = ARGV[cursor], company = ARGV[cursor + 1], cause = ARGV[cursor + 2],
    digest = ARGV[cursor + 3],
  }
  local count = tonumber(ARGV[cursor + 4])
  local facts = {}
  cursor = cursor + 5
  for _ = 1, count do
    table.insert(facts, {
      f = ARGV[cursor], v = ARGV[cursor + 1], p = ARGV[cursor + 2],
      t = ARGV[cursor + 3], e = ARGV[cursor + 4], c = ARGV[cursor + 5],
    })
    cursor = cursor + 6
  end
  event.facts = facts
  return event, cursor
end

local function kinds_of(changes)
  local kinds = {}
  for _, change in ipairs(changes) do table.insert(kinds, change.k) end
  return table.concat(kinds, ",")
end

local registry = (#KEYS % 4 == 1) and KEYS[#KEYS] or nil
local appends = ARGV[2] == "1"
local results = {}
local cursor, i = 4, 0
while cursor <= #ARGV do
  local event
  event, cursor = read_event(cursor)
  local base = 4 * i
  i = i + 1
  local seen_key = KEYS[base + 3]
  local seen = redis.call("GET", seen_key)
  local recorded_digest, seen_changes = "", seen
  if seen and string.sub(seen, 1, 1) ~= "[" then
    recorded_digest, seen_changes = string.sub(seen, 1, 64), string.sub(seen, 65)
  end
  if seen and recorded_digest ~= "" and recorded_digest ~= event.digest then
    table.insert(results, "conflict")
    table.insert(results, recorded_digest)
    table.insert(results, event.digest)
    table.insert(results, "")
  elseif seen then
    local changes = cjson.decode(seen_changes)
    table.insert(results, "duplicate")
    table.insert(results, seen_changes)
    table.insert(results, kinds_of(changes))
    -- one Redis appended it with the facts; a cluster's caller may not have yet
    local owed = not appends and #changes > 0 and event.update_id ~= ""
    table.insert(results, owed and history_update(envelope_of(event), changes) or "")
  else
    local changes = record(KEYS[base + 1], KEYS[base + 2], event.facts)
    local encoded = (#changes == 0) and "[]" or cjson.encode(changes)
    local updates = #changes > 0 and event.update_id ~= ""
    local entry = updates and history_update(envelope_of(event), changes) or ""
    if appends and entry ~= "" then
      redis.call("XADD", KEYS[base + 4], "*", "__data__", entry)
      entry = ""
    end
    redis.call("SET", seen_key, event.digest .. encoded, "EX", tonumber(ARGV[1]))
    if registry then redis.call("SADD", registry, event.company) end
    table.insert(results, "applied")
    table.insert(results, encoded)
    table.insert(results, kinds_of(changes))
    table.insert(results, entry)
  end
end
return results
