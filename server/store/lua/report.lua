-- report.lua: add one run of a creator's credits to their earnings reports,
-- once: only if the report cursor still says where the run began.
--
-- The sums are made by the server from the credit entries of the creator's
-- ledger after the cursor (server/core/report_sums.py); this script writes
-- them, one command per field or supporter, and moves the cursor to the
-- run's last entry. Two processes that count the same run race on the
-- cursor: the second finds it moved and writes nothing.
--
-- KEYS[1]        cursor  STRING {w:creator}:earn:cursor  last ledger entry id counted
-- KEYS[2..4]     all time: HASH {w:creator}:earn:all, ZSETs :coins and :diamonds
-- KEYS[5..7]     stream:   HASH {w:creator}:earn:stream, ZSETs :coins and :diamonds
-- KEYS[8..7+3D]  the D days counted, three keys a day: HASH {w:creator}:earn:d:<day>,
--                ZSETs :coins and :diamonds
-- ARGV[1] the cursor the run began after ("" when none yet)
-- ARGV[2] the run's last ledger entry id (the new cursor)
-- ARGV[3] retention of the stream's keys after this write, s
-- ARGV[4] "1" when a new stream began in the run: the stream keys are cleared first
-- ARGV[5] the stream's first gift, ms ("" when unchanged)  ARGV[6] its latest, ms
-- ARGV[7] D   ARGV[8..7+D] when each day's keys expire, ms
-- then four values per addition: "h" (HINCRBY) or "z" (ZINCRBY), the key's
-- place in KEYS, the field or supporter, the amount (digits)
--
-- Returns 1 when written, 0 when the cursor had moved (nothing written).

local days = tonumber(ARGV[7])
local first_op = 8 + days
if not days or #KEYS ~= 7 + 3 * days or (#ARGV - first_op + 1) % 4 ~= 0 then
  return redis.error_reply("ERR report.lua: key and argument counts do not match")
end
if (redis.call("GET", KEYS[1]) or "") ~= ARGV[1] then
  return 0
end
if ARGV[4] == "1" then
  redis.call("DEL", KEYS[5], KEYS[6], KEYS[7])
end
for i = first_op, #ARGV, 4 do
  local key = KEYS[tonumber(ARGV[i + 1])]
  if ARGV[i] == "h" then
    redis.call("HINCRBY", key, ARGV[i + 2], ARGV[i + 3])
  else
    redis.call("ZINCRBY", key, ARGV[i + 3], ARGV[i + 2])
  end
end
if ARGV[5] ~= "" then
  redis.call("HSET", KEYS[5], "started", ARGV[5], "last", ARGV[6])
end
for d = 1, days do
  for k = 0, 2 do
    redis.call("PEXPIREAT", KEYS[7 + 3 * (d - 1) + 1 + k], ARGV[7 + d])
  end
end
-- All time never expires; a stream's keys outlive its last write by the retention.
for i = 5, 7 do
  redis.call("EXPIRE", KEYS[i], ARGV[3])
end
redis.call("SET", KEYS[1], ARGV[2])
return 1
