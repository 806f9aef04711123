-- lib_chain.lua: ledger entries chained by hash, for every script that
-- writes a ledger entry. Not a script of its own: the server puts it in
-- front of a script's text (server/store/scripts.py).
--
-- Each entry carries, as its first field `prev`, the hash of the entry
-- before it in the same ledger ("" for the first), and the wallet keeps the
-- hash of the last one (its field `chain`). An entry's hash is the SHA-1 of
-- its id and then each field's name and value, in order (prev first), all
-- joined by newlines: "<id>\nprev\n<prev>\nkind\ngift\n...". No value may
-- hold a newline (checked here, before the entry is written; every value
-- the scripts write is an id, digits or printable text), so the joined text
-- reads back one way only. server/core/ledger_chain.py computes the same,
-- for `giftstream ledger verify` and reconcile. The id is Redis's: an
-- entry's time is covered too. (Joining is about a fifth of the cost of
-- length-prefixing each value in Lua, and this runs twice a gift.)
--
-- chained_entry(ledger, prev, ...) appends the entry whose fields (after
-- prev) are `...` (name, value, name, value...) and returns its hash, which
-- the caller writes to the wallet's `chain` in the same call. Every value
-- must be a string: Lua and Redis write a number's digits differently
-- (1e14 is "1e+14" to Lua), and the hash must be of the bytes stored. A
-- script that writes several entries to one ledger passes each hash on as
-- the next entry's prev.

local chain_find, NEWLINE = string.find, string.char(10)

local function chained_entry(ledger, prev, ...)
  local fields = { ... }
  for i = 2, #fields, 2 do
    local value = fields[i]
    if type(value) ~= "string" or chain_find(value, NEWLINE, 1, true) then
      error("chained_entry: the value of " .. tostring(fields[i - 1])
        .. " is not a string without newlines")
    end
  end
  local id = redis.call("XADD", ledger, "*", "prev", prev, ...)
  return redis.sha1hex(id .. NEWLINE .. "prev" .. NEWLINE .. prev .. NEWLINE
    .. table.concat(fields, NEWLINE))
end
