-- lib_msgpack.lua: the few MessagePack values the scripts write into room
-- events (server/rooms/room_log.py reads them): text, whole numbers, nil and
-- small maps. Not a script of its own: the server puts it in front of a
-- script's text (server/store/scripts.py).
--
-- Numbers here are whole and 0 to 2^53 (counts, timestamps in ms), which a
-- double holds exactly; the big-endian bytes are taken by division.

local function mp_bytes(n, width)
  local out = {}
  for i = width, 1, -1 do
    out[i] = string.char(n % 256)
    n = math.floor(n / 256)
  end
  return table.concat(out)
end

local function mp_uint(n)
  if n < 128 then
    return string.char(n)
  elseif n < 65536 then
    return "\205" .. mp_bytes(n, 2)
  elseif n < 4294967296 then
    return "\206" .. mp_bytes(n, 4)
  end
  return "\207" .. mp_bytes(n, 8)
end

local function mp_str(s)
  local n = #s
  if n < 32 then
    return string.char(160 + n) .. s
  elseif n < 256 then
    return "\217" .. string.char(n) .. s
  end
  return "\218" .. mp_bytes(n, 2) .. s
end

local MP_NIL = "\192"

-- The header of a map of `n` (below 16) entries, which follow as key, value.
local function mp_map(n)
  return string.char(128 + n)
end
