-- lib_numbers.lua: numbers written into strings, for the scripts that build
-- records and messages by concatenation. Not a script of its own: the server
-- puts it in front of a script's text (server/store/scripts.py).
--
-- Lua's `..` formats a number with "%.14g": a balance of 10^14 becomes
-- "1e+14", which no reader of the record parses back. Every amount here is
-- an integer below 2^53 (the scripts refuse larger), which "%d" writes with
-- every digit.

local function digits(n)
  return string.format("%d", n)
end
