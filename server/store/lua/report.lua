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
-- makes the same sums again (the entries of the run never change) and goes
-- on from the chunk it names. Two processes that count the same run race on
-- the cursor and the progress: the second finds them moved and writes nothing.
--
-- KEYS[1]        cursor    STRING {w:creator}:earn:cursor  last ledger entry id counted
-- KEYS[2]        progress  STRING {w:creator}:earn:run     "<run's last id>|<next chunk>|<chunks>"
-- KEYS[3..5]     all time: HASH {w:creator}:earn:all, ZSETs :coins and :diamonds
-- KEYS[6..5+3S]  the S days and streams the run counts in, three keys each:
--                HASH {w:creator}:earn:d:<day> or :earn:s:<stream id>, ZSETs
--                :coins and :diamonds
-- ARGV[1] the cursor the run began after ("" when none yet)
-- ARGV[2] the run's last ledger entry id (the new cursor)
-- ARGV[3] this chunk (0-based)   ARGV[4] the run's number of chunks
-- ARGV[5] S   ARGV[6..5+S] when each day's or stream's keys expire, ms
-- then four values per addition: "h" (HINCRBY) or "z" (ZINCRBY), the key's
-- place in KEYS, the field or supporter, the amount (digits)
-- The expiries and the cursor are written by the last chunk.
--
-- Returns 1 when written, 0 when the cursor or the progress had moved
-- (nothing written).

local scopes = tonumber(ARGV[5])
local first_op = 6 + (scopes or 0)
local chunk, chunks = tonumber(ARGV[3]), tonumber(ARGV[4])
if not scopes or not chunk or not chunks or chunk >= chunks or #KEYS ~= 5 + 3 * scopes
    or (#ARGV - first_op + 1) % 4 ~= 0 then
  return redis.error_reply("ERR report.lua: key and argument counts do not match")
end
if (redis.call("GET", KEYS[1]) or "") ~= ARGV[1] then
  return 0
end
local progress = redis.call("GET", KEYS[2])
-- A progress written before runs stopped keeping a stream state has two
-- fields more after these three: the same run.
local function is_next(expected)
  return progress == expected or (progress ~= nil
    and string.sub(progress, 1, #expected + 1) == expected .. "|")
end
if chunk == 0 then
  if progress then
    return 0  -- a run is under way: it is to be finished first
  end
elseif not is_next(string.format("%s|%d|%d", ARGV[2], chunk, chunks)) then
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
  redis.call("SET", KEYS[2], string.format("%s|%d|%d", ARGV[2], chunk + 1, chunks))
  return 1
end
for d = 1, scopes do
  for k = 0, 2 do
    redis.call("PEXPIREAT", KEYS[5 + 3 * (d - 1) + 1 + k], ARGV[5 + d])
  end
end
redis.call("SET", KEYS[1], ARGV[2])
redis.call("DEL", KEYS[2])
return 1
