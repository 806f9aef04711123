-- lib_bucket.lua: a token bucket in a key of its own, for rate_take.lua (a
-- gift's bucket is kept in the sender's wallet hash instead: lib_gift.lua). Not a
-- script of its own: the server puts it in front of a script's text
-- (server/store/scripts.py).
--
-- bucket_tokens(key, rate, burst, now) reads: the tokens the bucket holds at
-- `now` (ms), refilled at `rate` a second up to `burst`; a bucket never
-- written holds `burst`.
-- bucket_spend(key, tokens, rate, burst, now) writes: one token spent of the
-- `tokens` that bucket_tokens said, and a time to live after which a full
-- bucket is gone (an empty key is a full bucket).
-- Split in two so that a script can make every check before its first write.

local function bucket_tokens(key, rate, burst, now)
  local bucket = redis.call("HMGET", key, "tokens", "ms")
  local tokens = tonumber(bucket[1]) or burst
  local last_ms = tonumber(bucket[2]) or now
  return math.min(burst, tokens + math.max(0, now - last_ms) * rate / 1000)
end

local function bucket_spend(key, tokens, rate, burst, now)
  redis.call("HSET", key, "tokens", tokens - 1, "ms", now)
  redis.call("PEXPIRE", key, math.ceil(burst / rate * 1000) + 1000)
end
