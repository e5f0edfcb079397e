// SPDX-License-Identifier: Apache-2.0
// libFuzzer target: ChannelData parsing, the first-byte demultiplexer and
// stream framing. The input is read both as one datagram and as a TCP byte
// stream cut into frames by stun::stream_frame_length().
#include <cstdint>

#include "common/stun/message.h"
#include "common/turn/channel_data.h"
#include "tests/fuzz/fuzz_check.h"

using namespace turn;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const Bytes in{data, size};

  // As a datagram.
  ChannelDataView cd;
  const ChannelDataError e = parse_channel_data(in, cd);
  const Demux d = demux_first_byte(in);
  switch (e) {
    case ChannelDataError::Ok:
      TURN_FUZZ_CHECK(d == Demux::ChannelData);
      TURN_FUZZ_CHECK(is_valid_channel(cd.channel));
      TURN_FUZZ_CHECK(cd.data.data() == data + kChannelDataHeaderSize);
      TURN_FUZZ_CHECK(cd.data.size() == load_be16(data + 2));
      TURN_FUZZ_CHECK(cd.data.size() + kChannelDataHeaderSize <= size);
      break;
    case ChannelDataError::TooShort:
      TURN_FUZZ_CHECK(size < kChannelDataHeaderSize);
      break;
    case ChannelDataError::BadChannel:
      TURN_FUZZ_CHECK(d != Demux::ChannelData || !is_valid_channel(load_be16(data)));
      break;
    case ChannelDataError::LengthOverrun:
      TURN_FUZZ_CHECK(d == Demux::ChannelData);
      break;
  }

  const long n = stun::stream_frame_length(in);
  if (size < 4) {
    TURN_FUZZ_CHECK(n == 0);
  } else {
    const size_t len = load_be16(data + 2);
    switch (d) {
      case Demux::Stun:
        // Without the magic cookie (once 8 bytes are there) it is not STUN:
        // stream_frame_length() says so at once rather than wait for a length.
        if (size >= 8 && load_be32(data + 4) != stun::kMagicCookie)
          TURN_FUZZ_CHECK(n == -1);
        else
          TURN_FUZZ_CHECK(n == static_cast<long>(stun::kHeaderSize + len));
        break;
      case Demux::ChannelData:
      case Demux::ReservedChannel:
        TURN_FUZZ_CHECK(n == static_cast<long>(4 + pad4(len)));
        break;
      case Demux::Other:
        TURN_FUZZ_CHECK(n == -1);
        break;
    }
  }

  // As a stream of frames. Every frame is at least 4 bytes, so this ends.
  size_t pos = 0;
  while (pos < size) {
    const Bytes rest = in.subspan(pos);
    const long len = stun::stream_frame_length(rest);
    if (len <= 0 || static_cast<size_t>(len) > rest.size()) break;  // need more / not TURN
    const Bytes frame = rest.first(static_cast<size_t>(len));
    switch (demux_first_byte(frame)) {
      case Demux::Stun: {
        stun::MessageView m;
        if (stun::parse(frame, m) == stun::ParseError::Ok) TURN_FUZZ_CHECK(stun::looks_like_stun(frame));
        break;
      }
      case Demux::ChannelData: {
        // A frame cut by its own length always holds its data.
        ChannelDataView f;
        TURN_FUZZ_CHECK(parse_channel_data(frame, f) == ChannelDataError::Ok);
        TURN_FUZZ_CHECK(f.data.size() == load_be16(frame.data() + 2));
        TURN_FUZZ_CHECK(frame.size() - 4 - f.data.size() < 4);  // padding only
        break;
      }
      case Demux::ReservedChannel: {
        ChannelDataView f;
        TURN_FUZZ_CHECK(parse_channel_data(frame, f) == ChannelDataError::BadChannel);
        break;
      }
      case Demux::Other:
        TURN_FUZZ_CHECK(false);  // stream_frame_length() returned -1 for these
        break;
    }
    pos += static_cast<size_t>(len);
  }
  return 0;
}
