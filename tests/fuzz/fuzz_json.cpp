// libFuzzer target for the control channel's JSON reader (src/ctl/json.cpp).
// Invariants: parse() either returns a value or throws JsonError (nothing
// else, no crash); a parsed value dumps to one line that parses back to an
// equal value, and that second dump is byte-identical.
//
//   clang++-14 -std=c++20 -g -O1 -fsanitize=fuzzer,address,undefined -Iinclude \
//       tests/fuzz/fuzz_json.cpp src/ctl/json.cpp -o /tmp/fuzz_json && /tmp/fuzz_json -max_total_time=60

#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "nlbd/ctl/json.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    using nlbd::ctl::Json;
    std::string_view text(reinterpret_cast<const char*>(data), size);
    nlbd::ctl::ParseLimits lim;
    lim.max_depth = 32;
    lim.max_bytes = 1 << 16;
    Json v;
    try {
        v = Json::parse(text, lim);
    } catch (const nlbd::ctl::JsonError&) {
        return 0;
    }
    std::string once = v.dump();
    if (once.find('\n') != std::string::npos) std::abort();
    Json back = Json::parse(once, lim);  // must not throw
    if (!(back == v)) std::abort();
    if (back.dump() != once) std::abort();
    (void)v.dump_pretty();
    return 0;
}
