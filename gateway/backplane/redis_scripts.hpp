// The Lua scripts the Redis backplane runs (one round trip each), loaded once per connection.
#pragma once

#include <string_view>

namespace ssegw::backplane {

// KEYS: stream, notification channel, byte count, channels. ARGV: max events, id ("*" or
// explicit), ttl ms, max bytes, max channels, channel, size, then field/value pairs. One round
// trip, and no instance can see the entry before its notification is on its way.
//
// - Channels (limits.max_channels, across the instances): a sorted set of channel names scored
//   by when their stream expires. Expired ones are removed first; a channel not in it is refused
//   (0, not an id) when it already holds max channels.
// - Bytes (history.max_bytes): each entry records in `n` its serialised size without the id
//   line (size; the line is "id: " id "\n", so 5 + #id more); the byte count key holds the sum
//   over the stream, and is rebuilt from the entries when it is missing (lost, or a stream
//   written before it existed; entries without `n` are estimated from their fields).
// - Trimming is exact: the oldest entries go until at most max events and max bytes are left,
//   except that the newest entry always stays (an event larger than max bytes is kept until the
//   next one comes). An end marker (size empty) counts nothing and trims nothing: it is the last
//   entry of a generation.
// - Every key expires ttl after the last publish, on the one clock of TIME: a stream and its
//   member expire together (the key once TIME passes the score, the member then too). The set
//   expires when its last member does.
inline constexpr std::string_view kPublishScript = R"lua(
local now = redis.call('TIME')
now = tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000)
local ttl = tonumber(ARGV[3])
redis.call('ZREMRANGEBYSCORE', KEYS[4], '-inf', string.format('(%d', now))
if not redis.call('ZSCORE', KEYS[4], ARGV[6]) and
    redis.call('ZCARD', KEYS[4]) >= tonumber(ARGV[5]) then
  return 0
end
local function size_of(entry)
  local n, data, event, is_end = nil, '', nil, false
  local fields = entry[2]
  for i = 1, #fields, 2 do
    local name = fields[i]
    if name == 'n' then n = fields[i + 1]
    elseif name == 'data' then data = fields[i + 1]
    elseif name == 'event' then event = fields[i + 1]
    elseif name == 'end' then is_end = true end
  end
  if n then return tonumber(n) + #entry[1] + 5 end
  if is_end then return 0 end
  local size = #entry[1] + 5 + 6 + #data + 2
  if event then size = size + 8 + #event end
  return size
end
local bytes = 0
if redis.call('EXISTS', KEYS[1]) == 1 then
  local counted = redis.call('GET', KEYS[3])
  if counted then
    bytes = tonumber(counted)
  else
    for _, entry in ipairs(redis.call('XRANGE', KEYS[1], '-', '+')) do
      bytes = bytes + size_of(entry)
    end
  end
end
local id
if ARGV[7] == '' then
  id = redis.call('XADD', KEYS[1], ARGV[2], unpack(ARGV, 8))
else
  id = redis.call('XADD', KEYS[1], ARGV[2], 'n', ARGV[7], unpack(ARGV, 8))
  bytes = bytes + tonumber(ARGV[7]) + #id + 5
  local max_events, max_bytes = tonumber(ARGV[1]), tonumber(ARGV[4])
  local len, drop, from = redis.call('XLEN', KEYS[1]), 0, '-'
  local function over()
    return len - drop > max_events or (bytes > max_bytes and len - drop > 1)
  end
  while over() do
    local page = redis.call('XRANGE', KEYS[1], from, '+', 'COUNT', 32)
    if #page == 0 then break end
    for _, entry in ipairs(page) do
      if not over() then break end
      drop = drop + 1
      bytes = bytes - size_of(entry)
      from = '(' .. entry[1]
    end
  end
  if drop > 0 then redis.call('XTRIM', KEYS[1], 'MAXLEN', len - drop) end
end
local expiry = string.format('%d', now + ttl)
redis.call('SET', KEYS[3], string.format('%d', bytes), 'PXAT', expiry)
redis.call('PEXPIREAT', KEYS[1], expiry)
redis.call('ZADD', KEYS[4], expiry, ARGV[6])
local newest = redis.call('ZRANGE', KEYS[4], -1, -1, 'WITHSCORES')
redis.call('PEXPIREAT', KEYS[4], newest[2])
redis.call('PUBLISH', KEYS[2], id)
return id
)lua";

// KEYS: lease, interest. ARGV: owner, ttl ms, "1" when the owner has subscribers itself. Renews
// the lease while anyone is interested, else releases it; 0 when it is not ours (any more).
inline constexpr std::string_view kRenewScript =
    "if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end\n"
    "if ARGV[3] == '1' or redis.call('EXISTS', KEYS[2]) == 1 then\n"
    "  redis.call('PEXPIRE', KEYS[1], ARGV[2]) return 1 end\n"
    "redis.call('DEL', KEYS[1]) return 0\n";

}  // namespace ssegw::backplane
