-- tally_admit.lua: count one more of a thing for a process, only while the
-- total over every process stays within a cap (a user's open room sockets).
-- It moves no money.
--
-- KEYS[1] tally  HASH  {w:user}:sockets  one field per process: "<count>|<ms>"
-- ARGV[1] the process's id (its field)
-- ARGV[2] the process's count with the new one (digits)
-- ARGV[3] now, ms (digits)
-- ARGV[4] a field's time to live, ms (digits): older fields are of processes
--         that died without saying goodbye, and no longer count
-- ARGV[5] the cap (digits)
--
-- Returns {1, total} when admitted (the process's field now holds ARGV[2]),
-- or {0, total held before} when the cap is reached, with nothing counted.
-- Counted here in one step, so that two handshakes of one user at the same
-- moment, on one process or two, cannot both pass a cap that has one place.

local now = tonumber(ARGV[3])
local ttl = tonumber(ARGV[4])
local mine = tonumber(ARGV[2])
local others, stale = 0, {}
local fields = redis.call("HGETALL", KEYS[1])
for i = 1, #fields, 2 do
  if fields[i] ~= ARGV[1] then
    local count, seen = string.match(fields[i + 1], "^(%d+)|(%d+)$")
    if count and tonumber(seen) >= now - ttl then
      others = others + tonumber(count)
    else
      stale[#stale + 1] = fields[i]
    end
  end
end
if others + mine > tonumber(ARGV[5]) then
  return {0, others + mine - 1}
end
if #stale > 0 then
  redis.call("HDEL", KEYS[1], unpack(stale))
end
redis.call("HSET", KEYS[1], ARGV[1], ARGV[2] .. "|" .. ARGV[3])
-- The hash outlives its fields by a little: a live process rewrites its
-- field every third of the time to live, and each write renews this.
redis.call("PEXPIRE", KEYS[1], 3 * ttl)
return {1, others + mine}
