-- goal.lua: a creator's goal for their room, set, cleared, and filled from
-- the credits of their ledger, each counted once (server/money/goals.py).
--
-- KEYS[1] goal    HASH   {w:creator}:goal  id, title, kind (coins|gift), gift,
--                        target, progress, created, cursor, reached, announced
-- KEYS[2] ledger  STREAM {w:creator}:ledger (read only: its last id)
-- ARGV[1] the operation:
--   "set":       ARGV[2] goal id, [3] title, [4] kind, [5] gift ("" for
--                coins), [6] target, [7] now ms. Replaces any goal. Counting
--                starts after the ledger's last entry now: a credit written
--                after this call counts, none before it.  -> {"ok"}
--   "clear":     -> {"ok"} ({"gone"} when there was none)
--   "count":     ARGV[2] goal id, [3] the cursor the sum began after, [4] the
--                last entry summed, [5] what they add (digits), [6] now ms.
--                Adds only if the goal and its cursor are still those: two
--                processes that sum the same credits race here, and the
--                second adds nothing. The goal is reached by the call whose
--                sum takes it to its target, once.
--                -> {"ok", progress, 1 when reached by this call else 0}
--                   or {"moved"}
--   "announced": ARGV[2] goal id: its goal_reached event was published.
--                -> {"ok"} or {"moved"}

local op = ARGV[1]
if op == "set" then
  local last = redis.call("XREVRANGE", KEYS[2], "+", "-", "COUNT", 1)
  local cursor = last[1] and last[1][1] or "0-0"
  redis.call("DEL", KEYS[1])
  redis.call("HSET", KEYS[1], "id", ARGV[2], "title", ARGV[3], "kind", ARGV[4], "gift", ARGV[5],
    "target", ARGV[6], "progress", "0", "created", ARGV[7], "cursor", cursor)
  return {"ok"}
elseif op == "clear" then
  return {redis.call("DEL", KEYS[1]) == 1 and "ok" or "gone"}
elseif op == "count" then
  local goal = redis.call("HMGET", KEYS[1], "id", "cursor", "progress", "target", "reached")
  if goal[1] ~= ARGV[2] or goal[2] ~= ARGV[3] then
    return {"moved"}
  end
  local progress = tonumber(goal[3]) + tonumber(ARGV[5])
  local reached_now = 0
  redis.call("HSET", KEYS[1], "cursor", ARGV[4], "progress", string.format("%d", progress))
  if not goal[5] and progress >= tonumber(goal[4]) then
    redis.call("HSET", KEYS[1], "reached", ARGV[6])
    reached_now = 1
  end
  return {"ok", progress, reached_now}
elseif op == "announced" then
  if redis.call("HGET", KEYS[1], "id") ~= ARGV[2] then
    return {"moved"}
  end
  redis.call("HSET", KEYS[1], "announced", "1")
  return {"ok"}
end
return redis.error_reply("goal.lua: no operation " .. tostring(op))
