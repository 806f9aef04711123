-- budget.lua: a user sets their own spending limits, against the limits
-- the server read. Not money: no coin moves. The server works out the new
-- limits (a lower one at once, a higher one or a removal after the
-- cooling-off: server/money/budgets.py) from the `budget` it read; this
-- writes them only if `budget` is still that, so that two changes at once
-- cannot undo each other (the caller reads again and retries).
--
-- A wallet's first budget also starts the counts the gift keeps
-- (lib_budget.lua): what the current day, week and month had spent, summed
-- by the server from the ledger up to an entry, plus the gifts after that
-- entry, summed here, so that a gift paid between the two counts once.
--
-- KEYS[1] wallet  HASH   {w:user}:wallet (budget, budget_spent)
-- KEYS[2] ledger  STREAM {w:user}:ledger
-- ARGV[1] the budget the server read ("" for none)
-- ARGV[2] the new budget
-- ARGV[3] now, ms
-- ARGV[4] a first budget: the ledger entry the server summed up to ("" for
--         an empty ledger)
-- ARGV[5] a first budget: the counts to that entry, as budget_spent
--
-- Returns "ok", or "changed" (the budget is no longer what the server
-- read: nothing written).

local held = redis.call("HGET", KEYS[1], "budget") or ""
if held ~= ARGV[1] then
  return "changed"
end
redis.call("HSET", KEYS[1], "budget", ARGV[2])
if held == "" then
  local day, week, month = budget_windows(tonumber(ARGV[3]))
  local spent = budget_spent_now(ARGV[5], day, week, month)
  local after = ARGV[4] == "" and "-" or "(" .. ARGV[4]
  for _, entry in ipairs(redis.call("XRANGE", KEYS[2], after, "+")) do
    local fields = {}
    for i = 1, #entry[2], 2 do
      fields[entry[2][i]] = entry[2][i + 1]
    end
    if fields["kind"] == "gift" and fields["ts"] then
      local d, w, m = budget_windows(tonumber(fields["ts"]))
      local cost = -tonumber(fields["amount"])
      if d == day then spent[1] = spent[1] + cost end
      if w == week then spent[2] = spent[2] + cost end
      if m == month then spent[3] = spent[3] + cost end
    end
  end
  redis.call("HSET", KEYS[1], "budget_spent", string.format("%d|%d|%d|%d|%d|%d",
    day, spent[1], week, spent[2], month, spent[3]))
end
return "ok"
