// libFuzzer target for the heartbeat codec (docs/heartbeat.md).
//   tests/fuzz/run_fuzz.sh 60 heartbeat
//
// The first input byte picks a mode:
//   0: the rest is a raw frame, decoded without a key and with the cluster id
//      read from the frame itself (so the fuzzer gets past the identity
//      check); an accepted frame must re-encode to the same bytes.
//   1: the same with a key: anything accepted must carry a valid HMAC, so the
//      fuzzer mostly proves the pre-MAC checks never read out of bounds.
//   2: the rest describes a Heartbeat: it is encoded (with a key when the
//      next byte is odd), must decode to itself, then bytes of the encoded
//      frame are overwritten from the input and the result decoded again:
//      with a key, a changed covered byte must never be accepted.
// Invariant failures abort (a crash libFuzzer reports).

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <stdexcept>

#include "nlbd/cluster/heartbeat.hpp"

using namespace nlbd;
using namespace nlbd::cluster;

namespace {

const HmacKey kKey{std::vector<uint8_t>{'f', 'u', 'z', 'z', '-', 's', 'e', 'c', 'r', 'e', 't',
                                        '-', '0', '1', '2', '3'}};
const HmacKey kNoKey;
const MacAddr kDst{{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}};
const MacAddr kSrc{{0x02, 0, 0, 0, 0, 1}};

[[noreturn]] void fail(const char* what) {
    std::fprintf(stderr, "invariant failed: %s\n", what);
    std::abort();
}

struct Reader {
    const uint8_t* p;
    size_t n;
    uint8_t u8() {
        if (n == 0) return 0;
        --n;
        return *p++;
    }
    uint64_t u64() {
        uint64_t v = 0;
        for (int i = 0; i < 8; ++i) v = v << 8 | u8();
        return v;
    }
};

uint64_t frame_cluster_id(const uint8_t* d, size_t n) {
    // Untagged: payload at 14; tagged: at 18. Cluster id at payload + 10.
    size_t at = 14 + 10;
    if (n >= 14 && ((d[12] == 0x81 && d[13] == 0x00) || (d[12] == 0x88 && d[13] == 0xA8))) at += 4;
    uint64_t v = 0;
    for (size_t i = 0; i < 8; ++i) v = v << 8 | (at + i < n ? d[at + i] : 0);
    return v;
}

void raw(const uint8_t* d, size_t n, const HmacKey& key) {
    const uint64_t cid = frame_cluster_id(d, n);
    Heartbeat hb;
    const HeartbeatError e =
        decode_heartbeat({d, n}, kDefaultHeartbeatEthertype, cid, key, hb);
    if (static_cast<unsigned>(e) >= static_cast<unsigned>(HeartbeatError::count_))
        fail("reason out of range");
    if (e != HeartbeatError::none) return;
    // An accepted frame is a valid Heartbeat: it must re-encode and decode
    // to the same value (the encoder throws on anything the decoder should
    // have refused).
    std::vector<uint8_t> again;
    try {
        again = encode_heartbeat(hb, kDst, kSrc, kDefaultHeartbeatEthertype, key);
    } catch (const std::exception&) {
        fail("decoder accepted what the encoder refuses");
    }
    Heartbeat hb2;
    if (decode_heartbeat(again, kDefaultHeartbeatEthertype, cid, key, hb2) != HeartbeatError::none ||
        !(hb2 == hb))
        fail("re-encoded frame does not round trip");
}

void structured(const uint8_t* d, size_t n) {
    Reader r{d, n};
    const bool use_key = r.u8() & 1;
    Heartbeat hb;
    hb.cluster_id = r.u64();
    hb.host = static_cast<HostId>(1 + r.u8() % kMaxHosts);
    hb.state = static_cast<HostState>(r.u8() % 4);
    hb.boot_id = r.u64();
    hb.sequence = r.u64();
    hb.epoch = r.u64();
    hb.view = r.u64();
    hb.rules_fingerprint = r.u64();
    hb.map_digest = r.u64();
    hb.buckets = 1 + (r.u8() << 8 | r.u8());
    hb.held_foreign = static_cast<uint32_t>(r.u64());
    const size_t rules = (r.u8() << 8 | r.u8()) % (kMaxRules + 1);
    for (size_t i = 0; i < rules; ++i) {
        const uint8_t v = r.u8();
        if (v & 0x80) {
            hb.weights.push_back(0);
            hb.priorities.push_back(static_cast<uint8_t>(1 + v % 64));
        } else {
            hb.weights.push_back(v % 101);
            hb.priorities.push_back(0);
        }
        hb.rule_states.push_back(static_cast<RuleState>(v % 3));
    }
    if (r.u8() & 1) {
        MapChunk c;
        c.epoch = r.u64();
        c.map_classes = static_cast<uint16_t>(1 + r.u8());
        c.map_class = static_cast<uint16_t>(r.u8() % c.map_classes);
        const size_t cap = std::min<size_t>(max_chunk_owners(rules), hb.buckets);
        const size_t owners = cap == 0 ? 0 : (r.u8() << 8 | r.u8()) % (cap + 1);
        c.offset = static_cast<uint32_t>(r.u64() % (hb.buckets - owners + 1));
        for (size_t i = 0; i < owners; ++i) c.owners.push_back(static_cast<HostId>(i % 65));
        hb.chunk = std::move(c);
    }
    const HmacKey& key = use_key ? kKey : kNoKey;
    std::vector<uint8_t> f = encode_heartbeat(hb, kDst, kSrc, kDefaultHeartbeatEthertype, key);
    if (f.size() > kMaxHeartbeatFrame) fail("frame larger than 1514 bytes");
    Heartbeat out;
    if (decode_heartbeat(f, kDefaultHeartbeatEthertype, hb.cluster_id, key, out) !=
            HeartbeatError::none ||
        !(out == hb))
        fail("round trip");
    // Overwrite a few bytes; with a key a changed byte (other than the
    // padding-free tail) must never be accepted.
    const std::vector<uint8_t> orig = f;
    for (int k = 0; k < 4 && r.n >= 3; ++k) {
        const size_t at = (r.u8() << 8 | r.u8()) % f.size();
        f[at] = r.u8();
    }
    if (r.n > 0 && (r.u8() & 1)) f.resize(f.size() - r.u8() % f.size());
    const HeartbeatError e = decode_heartbeat(f, kDefaultHeartbeatEthertype, hb.cluster_id, key, out);
    if (use_key && e == HeartbeatError::none && f != orig) fail("modified frame accepted with key");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    if (size == 0) return 0;
    switch (data[0] % 3) {
    case 0: raw(data + 1, size - 1, kNoKey); break;
    case 1: raw(data + 1, size - 1, kKey); break;
    default: structured(data + 1, size - 1); break;
    }
    return 0;
}
