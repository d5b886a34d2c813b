// The policy stage's classification of a multi-channel stream (policy.hpp, stage 1;
// docs/protocol.md "Multi-channel streams"): the list of channels it names, each checked as the
// name of a single subscribe is, within limits.max_channels_per_stream.
#include <string>

#include "gateway/api/policy.hpp"
#include "gateway/base/json.hpp"

namespace ssegw::api {

std::optional<Refusal> Policy::classify_channel_list(const http::Request& request,
                                                     Permit& permit) const {
  uint32_t max = config_.limits.max_channels_per_stream;
  ChannelList list = parse_channel_list(request.query(), max);
  switch (list.error) {
    case ChannelList::Error::kNone:
      permit.channels = std::move(list.names);
      return std::nullopt;
    case ChannelList::Error::kMissing:
      return make_refusal(400, "missing_channel",
                          "a stream names its channels as channel= parameters, at least one",
                          permit);
    case ChannelList::Error::kTooMany: {
      std::string message = "a stream may name at most limits.max_channels_per_stream (";
      message += std::to_string(max);
      message += ") channels";
      return make_refusal(400, "too_many_channels_per_stream", std::move(message), permit);
    }
    case ChannelList::Error::kDuplicate: {
      std::string message = "the stream names channel ";
      base::append_json_string(message, list.bad);
      message += " twice";
      return make_refusal(400, "duplicate_channel", std::move(message), permit);
    }
    case ChannelList::Error::kInvalid:
      break;
  }
  return make_refusal(400, "invalid_channel", kChannelNameRule, permit);
}

}  // namespace ssegw::api
