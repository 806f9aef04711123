-- lib_budget.lua: a viewer's own spending limits, checked by the gift itself.
-- Not a script of its own: the server puts it in front of the scripts that
-- commit gifts (gift.lua, room_gifts.lua) and of budget.lua.
--
-- A wallet with a budget holds two fields (server/money/budgets.py writes
-- the first through budget.lua; the gift keeps the second):
--   budget        "<daily>|<weekly>|<monthly>", each window
--                 "<limit>,<pending>,<from ms>": the limit in coins ("" for
--                 none), and a raise or removal waiting for its cooling-off
--                 ("" for none; "-" removes the limit) and when it applies
--   budget_spent  "<day>|<coins>|<week>|<coins>|<month>|<coins>": coins spent
--                 in the current UTC day, week (from Monday) and calendar
--                 month, each with the number of its window
-- A wallet without `budget` has no limits and keeps no counts: a gift then
-- costs these two fields of the HMGET it already makes, nothing more.

-- The UTC day, week (Mondays; 1970-01-01 was a Thursday) and month
-- (year * 12 + month - 1) of a time in ms: the civil date from a day
-- number, as in H. Hinnant's "chrono-compatible low-level date algorithms".
local function budget_windows(now)
  local day = math.floor(now / 86400000)
  local week = math.floor((day + 3) / 7)
  local z = day + 719468
  local era = math.floor(z / 146097)
  local doe = z - era * 146097
  local yoe = math.floor((doe - math.floor(doe / 1460) + math.floor(doe / 36524)
    - math.floor(doe / 146096)) / 365)
  local doy = doe - (365 * yoe + math.floor(yoe / 4) - math.floor(yoe / 100))
  local mp = math.floor((5 * doy + 2) / 153)
  local month = mp < 10 and mp + 3 or mp - 9
  local year = yoe + era * 400 + (month <= 2 and 1 or 0)
  return day, week, year * 12 + month - 1
end

-- A window's limit now: its pending change once due, else its limit; nil for none.
local function budget_limit(window, now)
  local limit, pending, from = string.match(window, "^(%d*),([%d-]*),(%d*)$")
  if limit == nil then
    return nil
  end
  if pending ~= "" and from ~= "" and now >= tonumber(from) then
    return pending ~= "-" and tonumber(pending) or nil
  end
  return limit ~= "" and tonumber(limit) or nil
end

-- What the current windows have spent: {day, week, month} counts, 0 for a
-- window the counts are not of (it has ended since).
local function budget_spent_now(spent_text, day, week, month)
  local spent = {0, 0, 0}
  if spent_text then
    local d, dc, w, wc, m, mc = string.match(spent_text,
      "^(%d+)|(%d+)|(%d+)|(%d+)|(%d+)|(%d+)$")
    if d then
      spent[1] = tonumber(d) == day and tonumber(dc) or 0
      spent[2] = tonumber(w) == week and tonumber(wc) or 0
      spent[3] = tonumber(m) == month and tonumber(mc) or 0
    end
  end
  return spent
end

-- Whether `cost` more coins keep within every limit: true and the counts to
-- write after the gift, or false and what is left (the least of the
-- windows'). Spending exactly up to a limit is allowed.
local function budget_check(budget_text, spent_text, now, cost)
  local day, week, month = budget_windows(now)
  local spent = budget_spent_now(spent_text, day, week, month)
  local windows = {string.match(budget_text, "^([^|]*)|([^|]*)|([^|]*)$")}
  local left = nil
  for i = 1, 3 do
    local limit = windows[i] and budget_limit(windows[i], now)
    if limit then
      local this_left = math.max(0, limit - spent[i])
      if left == nil or this_left < left then
        left = this_left
      end
    end
  end
  if left ~= nil and cost > left then
    return false, left
  end
  return true, string.format("%d|%d|%d|%d|%d|%d", day, spent[1] + cost, week,
    spent[2] + cost, month, spent[3] + cost)
end
