-- Retract the current value of one fact (`guidepost history retract`): append a retraction
-- version (the withdrawn value, flagged "x") to its versions and remove its latest value, so
-- that as of now the fact has no value while `--as-of` an earlier time still shows the old one.
-- KEYS[1] latest-value hash, KEYS[2] versions hash (one company: one slot)
-- ARGV[1] "metric|period", ARGV[2] the retraction's known_at (fixed-width UTC text), ARGV[3] its id
-- Returns the retracted version as JSON, or false when there is no current value to retract.
local raw = redis.call("HGET", KEYS[2], ARGV[1])
if not raw then return false end
local versions = cjson.decode(raw)
local latest = nil
for _, version in ipairs(versions) do
  if latest == nil or version.t >= latest.t then latest = version end
end
if latest == nil or latest.x then return false end
-- never before the version it retracts, or that version would stay current
local known_at = (ARGV[2] >= latest.t) and ARGV[2] or latest.t
table.insert(versions, {
  f = ARGV[1], v = latest.v, p = latest.p, t = known_at, e = ARGV[3], c = latest.c, x = 1,
})
redis.call("HSET", KEYS[2], ARGV[1], cjson.encode(versions))
redis.call("HDEL", KEYS[1], ARGV[1])
return cjson.encode(latest)
