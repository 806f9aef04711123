-- follow.lua: a viewer follows a creator, or stops, once: the creator's
-- follower count moves only when the viewer's place in the creator's set of
-- followers does. Not money: kept atomic so that the count and the set agree
-- whatever follows, unfollows and retries race.
--
-- KEYS[1]  followers SET  {w:creator}:followers (user ids)
-- KEYS[2]  profile   HASH {w:creator}:creator (its `followers` field)
-- ARGV[1]  the follower's user id
-- ARGV[2]  "1" to follow, "0" to unfollow
--
-- Returns {followers now, 1 when this call changed it else 0}. The count
-- may exceed the set's size: a profile may hold followers from before the
-- set (the demo seeds counts); an unfollow never takes it below 0.

local following = ARGV[2] == "1"
local changed
if following then
  changed = redis.call("SADD", KEYS[1], ARGV[1])
else
  changed = redis.call("SREM", KEYS[1], ARGV[1])
end
local count = tonumber(redis.call("HGET", KEYS[2], "followers") or "0") or 0
if changed == 1 then
  count = math.max(0, count + (following and 1 or -1))
  redis.call("HSET", KEYS[2], "followers", string.format("%d", count))
end
return {count, changed}
