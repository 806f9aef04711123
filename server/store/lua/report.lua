-- report.lua: add one chunk of a run of a creator's credits to their
-- earnings reports, once: only if the report cursor still says where the run
-- began and the run's progress says this chunk is next.
--
-- The sums are made by the server from the credit entries of the creator's
-- ledger after the cursor (server/core/report_sums.py) and cut into chunks,
-- so that a run of many credits (a second of a storm) is written in calls
-- of a millisecond or so while still counting each supporter once per run.
-- The run's progress (KEYS[2]) says which chunk comes next; the last chunk
-- moves the cursor to the run's last entry and clears the progress. A
-- process that dies between chunks leaves the progress behind: the next one
-- makes the same sums again (the entries of the run never change, and the
-- stream as it was before the run is kept in the progress) and goes on from
-- the chunk it names. Two processes that count the same run race on the
-- cursor and the progress: the second finds them moved and writes nothing.
--
-- KEYS[1]        cursor    STRING {w:creator}:earn:cursor  last ledger entry id counted
-- KEYS[2]        progress  STRING {w:creator}:earn:run     "<run's last id>|<next chunk>|<chunks>|<stream before>"
-- KEYS[3..5]     all time: HASH {w:creator}:earn:all, ZSETs :coins and :diamonds
-- KEYS[6..8]     stream:   HASH {w:creator}:earn:stream, ZSETs :coins and :diamonds
-- KEYS[9..8+3D]  the D days counted, three keys a day: HASH {w:creator}:earn:d:<day>,
--                ZSETs :coins and :diamonds
-- ARGV[1] the cursor the run began after ("" when none yet)
-- ARGV[2] the run's last ledger entry id (the new cursor)
-- ARGV[3] this chunk (0-based)   ARGV[4] the run's number of chunks
-- ARGV[5] the stream before the run, "<started>|<last>" ("" when none): kept
--         in the progress for a process that takes the run over
-- ARGV[6] retention of the stream's keys after this write, s
-- ARGV[7] "1" when a new stream began in the run: the stream keys are
--         cleared by the first chunk
-- ARGV[8] the stream's first gift, ms ("" when unchanged)  ARGV[9] its latest, ms
-- ARGV[10] D   ARGV[11..10+D] when each day's keys expire, ms
-- then four values per addition: "h" (HINCRBY) or "z" (ZINCRBY), the key's
-- place in KEYS, the field or supporter, the amount (digits)
-- The stream's new state, the expiries and the cursor are written by the
-- last chunk.
--
-- Returns 1 when written, 0 when the cursor or the progress had moved
-- (nothing written).

local days = tonumber(ARGV[10])
local first_op = 11 + (days or 0)
local chunk, chunks = tonumber(ARGV[3]), tonumber(ARGV[4])
if not days or not chunk or not chunks or chunk >= chunks or #KEYS ~= 8 + 3 * days
    or (#ARGV - first_op + 1) % 4 ~= 0 then
  return redis.error_reply("ERR report.lua: key and argument counts do not match")
end
if (redis.call("GET", KEYS[1]) or "") ~= ARGV[1] then
  return 0
end
local progress = redis.call("GET", KEYS[2])
if chunk == 0 then
  if progress then
    return 0  -- a run is under way: it is to be finished first
  end
  if ARGV[7] == "1" then
    redis.call("DEL", KEYS[6], KEYS[7], KEYS[8])
  end
elseif progress ~= string.format("%s|%d|%d|%s", ARGV[2], chunk, chunks, ARGV[5]) then
  return 0
end
for i = first_op, #ARGV, 4 do
  local key = KEYS[tonumber(ARGV[i + 1])]
  if ARGV[i] == "h" then
    redis.call("HINCRBY", key, ARGV[i + 2], ARGV[i + 3])
  else
    redis.call("ZINCRBY", key, ARGV[i + 3], ARGV[i + 2])
  end
end
if chunk + 1 < chunks then
  redis.call("SET", KEYS[2], string.format("%s|%d|%d|%s", ARGV[2], chunk + 1, chunks, ARGV[5]))
  return 1
end
if ARGV[8] ~= "" then
  redis.call("HSET", KEYS[6], "started", ARGV[8], "last", ARGV[9])
end
for d = 1, days do
  for k = 0, 2 do
    redis.call("PEXPIREAT", KEYS[8 + 3 * (d - 1) + 1 + k], ARGV[10 + d])
  end
end
-- All time never expires; a stream's keys outlive its last write by the retention.
for i = 6, 8 do
  redis.call("EXPIRE", KEYS[i], ARGV[6])
end
redis.call("SET", KEYS[1], ARGV[2])
redis.call("DEL", KEYS[2])
return 1
