-- lib_chain.lua: ledger entries chained by hash, for every script that
-- writes a ledger entry. Not a script of its own: the server puts it in
-- front of a script's text (server/store/scripts.py).
--
-- Each entry carries, as its first field `prev`, the hash of the entry
-- before it in the same ledger ("" for the first), and the wallet keeps the
-- hash of the last one (its field `chain`). An entry's hash is the SHA-1 of
--   <entry id> "\n" then, for each field in order (prev first),
--   <name> "\n" <byte length of the value> "\n" <value> "\n"
-- so that an auditor can check offline that no entry was edited, removed,
-- added or moved since it was written (server/core/ledger_chain.py computes
-- the same; `giftstream ledger verify`). The id is Redis's: an entry's
-- time is covered too.
--
-- chained_entry(ledger, prev, ...) appends the entry whose fields (after
-- prev) are `...` (name, value, name, value...) and returns its hash, which
-- the caller writes to the wallet's `chain` in the same call. Every value
-- must be a string: Lua and Redis write a number's digits differently
-- (1e14 is "1e+14" to Lua), and the hash must be of the bytes stored. It
-- is checked before the entry is written. A script that writes several
-- entries to one ledger passes each hash on as the next entry's prev.

local function chained_entry(ledger, prev, ...)
  local fields = { ... }
  local parts = { "", "\nprev\n", #prev, "\n", prev, "\n" }
  local n = #parts
  for i = 1, #fields, 2 do
    local value = fields[i + 1]
    if type(value) ~= "string" then
      error("chained_entry: the value of " .. tostring(fields[i]) .. " is not a string")
    end
    parts[n + 1], parts[n + 2], parts[n + 3], parts[n + 4], parts[n + 5], parts[n + 6] =
      fields[i], "\n", #value, "\n", value, "\n"
    n = n + 6
  end
  parts[1] = redis.call("XADD", ledger, "*", "prev", prev, ...)
  return redis.sha1hex(table.concat(parts))
end
