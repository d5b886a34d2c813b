#include "gateway/backplane/stream_entry.hpp"

#include <hiredis/hiredis.h>

#include "gateway/hub/sse_frame.hpp"

namespace ssegw::backplane {

std::string_view text(const redisReply* reply) {
  return reply && (reply->type == REDIS_REPLY_STRING || reply->type == REDIS_REPLY_STATUS ||
                   reply->type == REDIS_REPLY_ERROR)
             ? std::string_view(reply->str, reply->len)
             : std::string_view();
}

std::string unnumbered_size(std::string_view type, std::string_view data) {
  return std::to_string(hub::make_unnumbered_event_frame(type, data)->size());
}

bool is_error(const redisReply* reply) {
  return !reply || reply->type == REDIS_REPLY_ERROR;
}

bool parse_entry(const redisReply* reply, hub::EventId& id, std::string_view& data,
                 std::string_view& type, std::optional<hub::EventId>& end) {
  if (reply->type != REDIS_REPLY_ARRAY || reply->elements != 2) return false;
  auto parsed = hub::EventId::parse(text(reply->element[0]));
  const redisReply* fields = reply->element[1];
  if (!parsed || fields->type != REDIS_REPLY_ARRAY) return false;
  id = *parsed;
  for (size_t i = 0; i + 1 < fields->elements; i += 2) {
    std::string_view name = text(fields->element[i]);
    std::string_view value = text(fields->element[i + 1]);
    if (name == "data") data = value;
    if (name == "event") type = value;
    if (name == "end") end = hub::EventId::parse(value);
  }
  return true;
}

}  // namespace ssegw::backplane
