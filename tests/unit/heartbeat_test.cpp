// Heartbeat codec: round trips, size bound, one test per rejection reason,
// replay guard, identities and fingerprints (docs/heartbeat.md).

#include "nlbd/cluster/heartbeat.hpp"

#include <gtest/gtest.h>

#include <cstdio>
#include <fstream>
#include <set>
#include <stdexcept>
#include <string>
#include <unistd.h>

namespace nlbd::cluster {
namespace {

constexpr uint64_t kCluster = 0x1122334455667788ull;
const MacAddr kDst{{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}};
const MacAddr kSrc{{0x02, 0x01, 0x0a, 0x00, 0x00, 0x01}};

HmacKey key_of(const std::string& s) { return HmacKey{std::vector<uint8_t>(s.begin(), s.end())}; }
const HmacKey kKey = key_of("correct horse battery staple");
const HmacKey kNoKey;

Heartbeat sample(size_t rules = 3) {
    Heartbeat hb;
    hb.cluster_id = kCluster;
    hb.host = 7;
    hb.state = HostState::draining;
    hb.boot_id = 0xdeadbeefcafef00dull;
    hb.sequence = 1'700'000'000'123'456'789ull;
    hb.epoch = 42;
    hb.view = 0x8000'0000'0000'0041ull;
    hb.rules_fingerprint = 0x0102030405060708ull;
    hb.map_digest = 0xa1a2a3a4a5a6a7a8ull;
    hb.buckets = 4096;
    hb.held_foreign = 12345;
    hb.heard = 0x4000'0000'0000'0005ull;
    for (size_t i = 0; i < rules; ++i) {
        const bool single = i % 3 == 1;
        hb.weights.push_back(single ? 0 : static_cast<uint8_t>(i % 101));
        hb.priorities.push_back(single ? static_cast<uint8_t>(1 + i % 64) : 0);
        hb.rule_states.push_back(static_cast<RuleState>(i % 3));
    }
    return hb;
}

MapChunk sample_chunk(size_t owners, uint32_t offset = 100) {
    MapChunk c;
    c.epoch = 41;
    c.map_class = 1;
    c.map_classes = 3;
    c.offset = offset;
    for (size_t i = 0; i < owners; ++i) c.owners.push_back(static_cast<HostId>(1 + i % 64));
    return c;
}

HeartbeatError decode(std::span<const uint8_t> f, const HmacKey& key, Heartbeat& out,
                      uint64_t cluster = kCluster) {
    return decode_heartbeat(f, kDefaultHeartbeatEthertype, cluster, key, out);
}

std::vector<uint8_t> encode(const Heartbeat& hb, const HmacKey& key) {
    return encode_heartbeat(hb, kDst, kSrc, kDefaultHeartbeatEthertype, key);
}

// Payload offsets used to forge specific fields (docs/heartbeat.md).
constexpr size_t kP = kEthHeaderLen;
void put16(std::vector<uint8_t>& f, size_t at, uint16_t v) {
    f[at] = static_cast<uint8_t>(v >> 8);
    f[at + 1] = static_cast<uint8_t>(v);
}
std::vector<uint8_t> tagged(const std::vector<uint8_t>& f, uint16_t tpid) {
    std::vector<uint8_t> t(f.begin(), f.begin() + 12);
    t.push_back(static_cast<uint8_t>(tpid >> 8));
    t.push_back(static_cast<uint8_t>(tpid));
    t.push_back(0x00);
    t.push_back(0x2a);  // VLAN 42
    t.insert(t.end(), f.begin() + 12, f.end());
    return t;
}

TEST(Heartbeat, RoundTripWithoutMacIsExact) {
    const Heartbeat hb = sample(10);
    const auto f = encode(hb, kNoKey);
    EXPECT_EQ(f.size(), heartbeat_frame_size(10, false, 0, false));
    Heartbeat out;
    ASSERT_EQ(decode(f, kNoKey, out), HeartbeatError::none);
    EXPECT_EQ(out, hb);
}

// Senders before the `heard` field wrote an 80-byte header: still accepted,
// `heard` reads 0, everything else is intact.
TEST(Heartbeat, EightyByteHeaderOfEarlierSendersDecodesWithHeardZero) {
    Heartbeat hb = sample(10);
    auto f = encode(hb, kNoKey);
    ASSERT_EQ(kHeartbeatHeaderLen, kHeartbeatMinHeaderLen + 8);
    f.erase(f.begin() + static_cast<ptrdiff_t>(kP + kHeartbeatMinHeaderLen),
            f.begin() + static_cast<ptrdiff_t>(kP + kHeartbeatHeaderLen));
    put16(f, kP + 6, static_cast<uint16_t>(kHeartbeatMinHeaderLen));
    put16(f, kP + 8, static_cast<uint16_t>(f.size() - kP));
    Heartbeat out;
    ASSERT_EQ(decode(f, kNoKey, out), HeartbeatError::none);
    EXPECT_EQ(out.heard, 0u);
    hb.heard = 0;
    EXPECT_EQ(out, hb);
    // A header shorter than that is refused.
    put16(f, kP + 6, static_cast<uint16_t>(kHeartbeatMinHeaderLen - 1));
    EXPECT_EQ(decode(f, kNoKey, out), HeartbeatError::bad_length);
}

TEST(Heartbeat, RoundTripWithMacIsExact) {
    const Heartbeat hb = sample(10);
    const auto f = encode(hb, kKey);
    EXPECT_EQ(f.size(), heartbeat_frame_size(10, false, 0, true));
    Heartbeat out;
    ASSERT_EQ(decode(f, kKey, out), HeartbeatError::none);
    EXPECT_EQ(out, hb);
}

TEST(Heartbeat, RoundTripWithMapChunkIsExact) {
    Heartbeat hb = sample(5);
    hb.chunk = sample_chunk(max_chunk_owners(5));
    for (const HmacKey* k : {&kNoKey, &kKey}) {
        const auto f = encode(hb, *k);
        EXPECT_LE(f.size(), kMaxHeartbeatFrame);
        Heartbeat out;
        ASSERT_EQ(decode(f, *k, out), HeartbeatError::none);
        EXPECT_EQ(out, hb);
    }
}

TEST(Heartbeat, RoundTripWithoutRules) {
    Heartbeat hb = sample(0);
    const auto f = encode(hb, kKey);
    Heartbeat out;
    ASSERT_EQ(decode(f, kKey, out), HeartbeatError::none);
    EXPECT_EQ(out, hb);
}

TEST(Heartbeat, DecodeClearsStaleChunkInOutput) {
    Heartbeat with = sample(2);
    with.chunk = sample_chunk(4);
    Heartbeat out;
    ASSERT_EQ(decode(encode(with, kKey), kKey, out), HeartbeatError::none);
    ASSERT_TRUE(out.chunk.has_value());
    ASSERT_EQ(decode(encode(sample(2), kKey), kKey, out), HeartbeatError::none);
    EXPECT_FALSE(out.chunk.has_value());
}

TEST(Heartbeat, MaxRulesWithMacAndMaxChunkFitOneFrame) {
    Heartbeat hb = sample(kMaxRules);
    hb.chunk = sample_chunk(max_chunk_owners(kMaxRules));
    const auto f = encode(hb, kKey);
    EXPECT_EQ(f.size(), kMaxHeartbeatFrame);
    Heartbeat out;
    ASSERT_EQ(decode(f, kKey, out), HeartbeatError::none);
    EXPECT_EQ(out, hb);
    EXPECT_EQ(out.weights.size(), kMaxRules);
}

TEST(Heartbeat, MaxChunkOwnersKeepsEveryRuleCountWithinOneFrame) {
    for (size_t n = 0; n <= kMaxRules; ++n) {
        EXPECT_EQ(heartbeat_frame_size(n, true, max_chunk_owners(n), true), kMaxHeartbeatFrame)
            << n;
    }
}

TEST(Heartbeat, OneLoadBytePerRuleCarriesPriorityOrWeight) {
    Heartbeat hb = sample(2);
    hb.weights = {60, 50};
    hb.priorities = {0, 3};  // rule 1 is single-host: its weight is not sent
    Heartbeat out;
    ASSERT_EQ(decode(encode(hb, kNoKey), kNoKey, out), HeartbeatError::none);
    EXPECT_EQ(out.weights, (std::vector<uint8_t>{60, 0}));
    EXPECT_EQ(out.priorities, (std::vector<uint8_t>{0, 3}));
}

TEST(Heartbeat, OneVlanTagIsAcceptedAndNotCoveredByMac) {
    const Heartbeat hb = sample(4);
    const auto f = encode(hb, kKey);
    for (uint16_t tpid : {uint16_t{0x8100}, uint16_t{0x88A8}}) {
        Heartbeat out;
        ASSERT_EQ(decode(tagged(f, tpid), kKey, out), HeartbeatError::none) << tpid;
        EXPECT_EQ(out, hb);
    }
    // Two tags: the inner EtherType is not ours.
    Heartbeat out;
    EXPECT_EQ(decode(tagged(tagged(f, 0x88A8), 0x8100), kKey, out), HeartbeatError::bad_magic);
}

TEST(Heartbeat, TrailingPaddingIsIgnored) {
    const Heartbeat hb = sample(1);
    auto f = encode(hb, kKey);
    f.insert(f.end(), 20, 0);
    Heartbeat out;
    ASSERT_EQ(decode(f, kKey, out), HeartbeatError::none);
    EXPECT_EQ(out, hb);
}

TEST(Heartbeat, ConfiguredEthertypeIsUsed) {
    const auto f = encode_heartbeat(sample(1), kDst, kSrc, 0x88B6, kKey);
    EXPECT_EQ(f[12], 0x88);
    EXPECT_EQ(f[13], 0xB6);
    Heartbeat out;
    EXPECT_EQ(decode_heartbeat(f, 0x88B6, kCluster, kKey, out), HeartbeatError::none);
    EXPECT_EQ(decode_heartbeat(f, 0x88B5, kCluster, kKey, out), HeartbeatError::bad_magic);
}

// ---- One test per rejection reason -----------------------------------------

TEST(HeartbeatReject, TruncationAtEveryLengthIsTruncatedOrBadLengthNeverAccepted) {
    Heartbeat hb = sample(9);
    hb.chunk = sample_chunk(7);
    for (const HmacKey* k : {&kNoKey, &kKey}) {
        for (const auto& full : {encode(hb, *k), tagged(encode(hb, *k), 0x8100)}) {
            for (size_t len = 0; len < full.size(); ++len) {
                // Exact-size copy so that ASan sees any read past the end.
                std::vector<uint8_t> cut(full.begin(), full.begin() + static_cast<long>(len));
                Heartbeat out;
                const HeartbeatError e = decode(cut, *k, out);
                EXPECT_TRUE(e == HeartbeatError::truncated || e == HeartbeatError::bad_length)
                    << "len " << len << ": " << name_of(e);
            }
        }
    }
}

TEST(HeartbeatReject, WrongMagicIsBadMagic) {
    auto f = encode(sample(), kNoKey);
    f[kP + 3] = 'X';
    Heartbeat out;
    EXPECT_EQ(decode(f, kNoKey, out), HeartbeatError::bad_magic);
}

TEST(HeartbeatReject, OtherEthertypeIsBadMagic) {
    auto f = encode(sample(), kNoKey);
    put16(f, 12, 0x0800);
    Heartbeat out;
    EXPECT_EQ(decode(f, kNoKey, out), HeartbeatError::bad_magic);
}

TEST(HeartbeatReject, OtherVersionIsBadVersion) {
    for (uint8_t v : {0, 1, 3, 255}) {
        auto f = encode(sample(), kKey);
        f[kP + 4] = v;
        Heartbeat out;
        EXPECT_EQ(decode(f, kKey, out), HeartbeatError::bad_version) << int(v);
    }
}

TEST(HeartbeatReject, OtherClusterIdIsForeignCluster) {
    const auto f = encode(sample(), kKey);
    Heartbeat out;
    EXPECT_EQ(decode(f, kKey, out, kCluster + 1), HeartbeatError::foreign_cluster);
}

TEST(HeartbeatReject, InconsistentLengthsAreBadLength) {
    const auto good = encode(sample(8), kNoKey);
    Heartbeat out;
    auto f = good;
    put16(f, kP + 6, 79);  // header length below the version-1 header
    EXPECT_EQ(decode(f, kNoKey, out), HeartbeatError::bad_length);
    f = good;
    put16(f, kP + 8, 60);  // total length below the header length
    EXPECT_EQ(decode(f, kNoKey, out), HeartbeatError::bad_length);
    f = good;
    put16(f, kP + 8, 0xffff);  // total length over one frame
    EXPECT_EQ(decode(f, kNoKey, out), HeartbeatError::bad_length);
    f = good;
    put16(f, kP + 76, 9);  // rule count does not match the bytes
    EXPECT_EQ(decode(f, kNoKey, out), HeartbeatError::bad_length);
    f = good;
    put16(f, kP + 76, 0xffff);  // hostile rule count
    EXPECT_EQ(decode(f, kNoKey, out), HeartbeatError::bad_length);
    f = good;
    f[kP + 5] |= kFlagChunk;  // chunk flag without a chunk
    EXPECT_EQ(decode(f, kNoKey, out), HeartbeatError::bad_length);
    f = good;
    f.push_back(0);  // one byte more than the counts say, with total grown too
    put16(f, kP + 8, static_cast<uint16_t>(f.size() - kP));
    EXPECT_EQ(decode(f, kNoKey, out), HeartbeatError::bad_length);
}

TEST(HeartbeatReject, HostileChunkCountIsBadLength) {
    Heartbeat hb = sample(kMaxRules);
    hb.chunk = sample_chunk(max_chunk_owners(kMaxRules));
    auto f = encode(hb, kNoKey);
    const size_t count_at = kP + kHeartbeatHeaderLen + heartbeat_rule_bytes(kMaxRules) + 16;
    put16(f, count_at, 0xffff);
    Heartbeat out;
    EXPECT_EQ(decode(f, kNoKey, out), HeartbeatError::bad_length);
}

TEST(HeartbeatReject, OutOfRangeFieldsAreBadField) {
    Heartbeat hb = sample(2);
    hb.chunk = sample_chunk(3);
    const auto good = encode(hb, kNoKey);
    const size_t rules_at = kP + kHeartbeatHeaderLen;
    const size_t chunk_at = rules_at + heartbeat_rule_bytes(2);
    struct Case {
        const char* what;
        size_t at;
        uint8_t value;
    } cases[] = {
        {"host 0", kP + 18, 0},
        {"host 65", kP + 18, 65},
        {"state 4", kP + 19, 4},
        {"unknown flag", kP + 5, kFlagChunk | 0x80},
        {"weight 101", rules_at, 101},
        {"priority 0", rules_at, kPriorityTag},
        {"priority 65", rules_at, kPriorityTag | 65},
        {"rule state 3", rules_at + 2, 0x03},
        {"class >= classes", chunk_at + 9, 3},
        {"owner 65", chunk_at + kChunkHeaderLen, 65},
        {"chunk past buckets", chunk_at + 12, 0xff},
    };
    for (const Case& c : cases) {
        auto f = good;
        f[c.at] = c.value;
        Heartbeat out;
        EXPECT_EQ(decode(f, kNoKey, out), HeartbeatError::bad_field) << c.what;
    }
}

TEST(HeartbeatReject, NoMacWhenSecretConfiguredIsMissingMac) {
    const auto f = encode(sample(), kNoKey);
    Heartbeat out;
    EXPECT_EQ(decode(f, kKey, out), HeartbeatError::missing_mac);
}

TEST(HeartbeatReject, MacWithoutSecretIsUnexpectedMac) {
    const auto f = encode(sample(), kKey);
    Heartbeat out;
    EXPECT_EQ(decode(f, kNoKey, out), HeartbeatError::unexpected_mac);
}

TEST(HeartbeatReject, WrongKeyIsBadMac) {
    const auto f = encode(sample(), key_of("another secret of enough length"));
    Heartbeat out;
    EXPECT_EQ(decode(f, kKey, out), HeartbeatError::bad_mac);
}

TEST(HeartbeatReject, StrippingMacAndFlagIsMissingMac) {
    auto f = encode(sample(), kKey);
    f.resize(f.size() - kHeartbeatMacLen);
    f[kP + 5] &= static_cast<uint8_t>(~kFlagMac);
    put16(f, kP + 8, static_cast<uint16_t>(f.size() - kP));
    Heartbeat out;
    EXPECT_EQ(decode(f, kKey, out), HeartbeatError::missing_mac);
}

// Flipping any single bit of an authenticated frame never yields an accepted
// frame; where the header checks before the MAC do not catch it (everything
// but EtherType, magic, version, flags, lengths and cluster id), it is bad_mac.
TEST(HeartbeatReject, AnySingleBitFlipIsRejectedAndMostlyBadMac) {
    Heartbeat hb = sample(6);
    hb.chunk = sample_chunk(5);
    const auto good = encode(hb, kKey);
    const std::set<size_t> pre_mac = {12,     13,     kP + 0, kP + 1, kP + 2,  kP + 3,
                                      kP + 4, kP + 5, kP + 6, kP + 7, kP + 8,  kP + 9,
                                      kP + 10, kP + 11, kP + 12, kP + 13, kP + 14, kP + 15,
                                      kP + 16, kP + 17};
    for (size_t i = 0; i < good.size(); ++i) {
        for (int bit = 0; bit < 8; ++bit) {
            auto f = good;
            f[i] ^= static_cast<uint8_t>(1u << bit);
            Heartbeat out;
            const HeartbeatError e = decode(f, kKey, out);
            EXPECT_NE(e, HeartbeatError::none) << "byte " << i << " bit " << bit;
            if (!pre_mac.count(i)) {
                EXPECT_EQ(e, HeartbeatError::bad_mac) << "byte " << i << " bit " << bit;
            }
        }
    }
}

TEST(HeartbeatReject, ChangedSourceMacIsBadMac) {
    auto f = encode(sample(), kKey);
    f[11] ^= 0x01;
    Heartbeat out;
    EXPECT_EQ(decode(f, kKey, out), HeartbeatError::bad_mac);
}

TEST(HeartbeatReject, OwnLoopedBackFrameIsOwnFrame) {
    const Heartbeat hb = sample();
    const auto f = encode(hb, kKey);
    ReplayGuard guard(1'000'000'000);
    ReceiveContext ctx{kDefaultHeartbeatEthertype, kCluster, &kKey, hb.host, hb.boot_id};
    Heartbeat out;
    EXPECT_EQ(receive_heartbeat(f, ctx, guard, out), HeartbeatError::own_frame);
    EXPECT_EQ(guard.newest(hb.host), 0u);  // own frames do not touch the guard
}

TEST(HeartbeatReject, ReplayedFrameIsReplayed) {
    const Heartbeat hb = sample();
    const auto f = encode(hb, kKey);
    ReplayGuard guard(1'000'000'000);
    ReceiveContext ctx{kDefaultHeartbeatEthertype, kCluster, &kKey, 1, 99};
    Heartbeat out;
    EXPECT_EQ(receive_heartbeat(f, ctx, guard, out), HeartbeatError::none);
    EXPECT_EQ(receive_heartbeat(f, ctx, guard, out), HeartbeatError::replayed);
}

TEST(HeartbeatReject, SameHostIdOtherBootIsAcceptedForDuplicateDetection) {
    Heartbeat hb = sample();
    ReplayGuard guard(1'000'000'000);
    ReceiveContext ctx{kDefaultHeartbeatEthertype, kCluster, &kKey, hb.host, hb.boot_id + 1};
    Heartbeat out;
    EXPECT_EQ(receive_heartbeat(encode(hb, kKey), ctx, guard, out), HeartbeatError::none);
    EXPECT_EQ(out.host, ctx.self_host);
}

TEST(HeartbeatReject, ForgedFrameDoesNotAdvanceReplayState) {
    Heartbeat hb = sample();
    ReplayGuard guard(1'000'000'000);
    ReceiveContext ctx{kDefaultHeartbeatEthertype, kCluster, &kKey, 1, 99};
    Heartbeat forged = hb;
    forged.sequence = ~uint64_t{0};
    Heartbeat out;
    EXPECT_EQ(receive_heartbeat(encode(forged, key_of("attacker's own key 123")), ctx, guard, out),
              HeartbeatError::bad_mac);
    EXPECT_EQ(receive_heartbeat(encode(hb, kKey), ctx, guard, out), HeartbeatError::none);
}

TEST(HeartbeatReject, EveryReasonHasANameAndDescription) {
    std::set<std::string_view> names;
    for (unsigned e = 0; e < static_cast<unsigned>(HeartbeatError::count_); ++e) {
        const auto r = static_cast<HeartbeatError>(e);
        EXPECT_NE(name_of(r), "unknown");
        EXPECT_FALSE(description_of(r).empty());
        names.insert(name_of(r));
    }
    EXPECT_EQ(names.size(), static_cast<size_t>(HeartbeatError::count_));
}

// ---- Encoder preconditions -------------------------------------------------

Heartbeat command_frame(OperatorCommand c) {
    Heartbeat hb = sample(0);
    hb.health_down = 2;
    hb.command = std::move(c);
    return hb;
}

TEST(HeartbeatCommand, RequestAndResultRoundTripExactlyWithTheMac) {
    OperatorCommand req;
    req.request = 77;
    req.target = 3;
    req.verb = "drain";
    req.args = {"10.0.0.10:443"};
    req.text = "uid 0 pid 4242";
    OperatorCommand res;
    res.request = 77;
    res.target = 7;
    res.result = true;
    res.ok = true;
    res.text = "host started -> draining";
    OperatorCommand all;
    all.request = 1;
    all.target = kAllHosts;
    all.verb = "stop";
    for (const OperatorCommand& c : {req, res, all}) {
        const Heartbeat hb = command_frame(c);
        const auto f = encode(hb, kKey);
        Heartbeat out;
        ASSERT_EQ(decode(f, kKey, out), HeartbeatError::none);
        EXPECT_EQ(out, hb);
        ASSERT_TRUE(out.command);
        EXPECT_FALSE(out.rule_list);
        // Unauthenticated or wrongly keyed: refused like any heartbeat.
        EXPECT_EQ(decode(f, key_of("another secret of enough length"), out), HeartbeatError::bad_mac);
        EXPECT_EQ(decode(f, kNoKey, out), HeartbeatError::unexpected_mac);
    }
}

TEST(HeartbeatCommand, EveryTruncationOrHostileLengthIsRefused) {
    OperatorCommand c;
    c.request = 9;
    c.target = 2;
    c.verb = "enable";
    c.args = {"all"};
    c.text = "CN=ops1 10.0.0.5:4000";
    const auto f = encode(command_frame(c), kNoKey);
    Heartbeat out;
    for (size_t len = 0; len < f.size(); ++len)
        EXPECT_NE(decode(std::span<const uint8_t>(f.data(), len), kNoKey, out), HeartbeatError::none) << len;
    // The section starts right after the 80-byte header (no per-rule bytes).
    const size_t sec = kP + kHeartbeatHeaderLen;
    auto g = f;
    g[sec + 7] = 3;  // three arguments: more than the format carries
    EXPECT_EQ(decode(g, kNoKey, out), HeartbeatError::bad_length);
    g = f;
    g[sec + 8] = 40;  // verb longer than the frame holds
    EXPECT_EQ(decode(g, kNoKey, out), HeartbeatError::bad_length);
    g = f;
    g[sec + 5] = 2;  // neither a request nor a result
    EXPECT_EQ(decode(g, kNoKey, out), HeartbeatError::bad_field);
    g = f;
    g[sec + 4] = 0;  // no target
    EXPECT_EQ(decode(g, kNoKey, out), HeartbeatError::bad_field);
    g = f;
    g[sec + kCommandHeaderLen] = '\n';  // not printable
    EXPECT_EQ(decode(g, kNoKey, out), HeartbeatError::bad_field);
}

TEST(HeartbeatCommand, EncodeRefusesWhatTheSectionCannotCarry) {
    OperatorCommand c;
    c.target = 2;
    c.verb = "drain";
    Heartbeat hb = command_frame(c);
    hb.command->args = {"a", "b", "c"};
    EXPECT_THROW(encode(hb, kNoKey), std::invalid_argument);
    hb.command->args = {std::string(65, 'x')};
    EXPECT_THROW(encode(hb, kNoKey), std::invalid_argument);
    hb.command->args = {};
    hb.command->text = "line\nbreak";
    EXPECT_THROW(encode(hb, kNoKey), std::invalid_argument);
    hb.command->text = "";
    hb.weights = {1};
    hb.priorities = {0};
    hb.rule_states = {RuleState::enabled};
    EXPECT_THROW(encode(hb, kNoKey), std::invalid_argument);  // no per-rule arrays with a command
}

TEST(HeartbeatEncode, RejectsWhatTheFormatCannotCarry) {
    auto bad = [](auto mutate) {
        Heartbeat hb = sample(3);
        mutate(hb);
        EXPECT_THROW(encode(hb, kKey), std::invalid_argument);
    };
    bad([](Heartbeat& h) { h.host = 0; });
    bad([](Heartbeat& h) { h.host = 65; });
    bad([](Heartbeat& h) { h.weights[0] = 101; });
    bad([](Heartbeat& h) { h.priorities[0] = 65; });
    bad([](Heartbeat& h) { h.priorities.pop_back(); });
    bad([](Heartbeat& h) { h.rule_states.push_back(RuleState::enabled); });
    bad([](Heartbeat& h) {
        h.weights.assign(kMaxRules + 1, 1);
        h.priorities.assign(kMaxRules + 1, 0);
        h.rule_states.assign(kMaxRules + 1, RuleState::enabled);
    });
    bad([](Heartbeat& h) { h.chunk = sample_chunk(max_chunk_owners(3) + 1); });
    bad([](Heartbeat& h) { h.chunk = sample_chunk(10, h.buckets - 5); });
    bad([](Heartbeat& h) {
        h.chunk = sample_chunk(1);
        h.chunk->map_class = h.chunk->map_classes;
    });
}

// ---- Replay guard -----------------------------------------------------------

TEST(ReplayGuard, SameOrOlderSequenceOfSameBootIsRejected) {
    ReplayGuard g(1000);
    EXPECT_TRUE(g.accept(3, 0xb0, 5000));
    EXPECT_FALSE(g.accept(3, 0xb0, 5000));
    EXPECT_FALSE(g.accept(3, 0xb0, 4999));
    EXPECT_TRUE(g.accept(3, 0xb0, 5001));
    EXPECT_EQ(g.newest(3), 5001u);
}

TEST(ReplayGuard, HostsAreIndependent) {
    ReplayGuard g(1000);
    EXPECT_TRUE(g.accept(3, 0xb0, 5000));
    EXPECT_TRUE(g.accept(4, 0xb0, 10));
    EXPECT_FALSE(g.accept(0, 0xb0, 10));
    EXPECT_FALSE(g.accept(kMaxHosts + 1, 0xb0, 10));
    EXPECT_TRUE(g.accept(kMaxHosts, 0xb0, 10));
}

TEST(ReplayGuard, NewBootWithinWindowIsAccepted) {
    ReplayGuard g(1000);
    EXPECT_TRUE(g.accept(3, 0xb0, 5000));
    EXPECT_TRUE(g.accept(3, 0xb1, 4500));  // restarted; clock slightly behind
}

TEST(ReplayGuard, NewBootWithSequenceBeyondWindowIsRejected) {
    ReplayGuard g(1000);
    EXPECT_TRUE(g.accept(3, 0xb0, 5000));
    EXPECT_FALSE(g.accept(3, 0xb1, 4000));  // e.g. a captured frame of an old boot
    EXPECT_FALSE(g.accept(3, 0xb1, 1));
    EXPECT_TRUE(g.accept(3, 0xb1, 4001));
}

TEST(ReplayGuard, DuplicateHostIdStreamsAreBothAccepted) {
    ReplayGuard g(1000);
    // Two processes with host id 5, interleaved, each strictly increasing.
    uint64_t a = 10'000, b = 10'003;
    for (int i = 0; i < 50; ++i) {
        EXPECT_TRUE(g.accept(5, 0xaaaa, a += 7)) << i;
        EXPECT_TRUE(g.accept(5, 0xbbbb, b += 7)) << i;
    }
    // ...and each stream still rejects its own replays.
    EXPECT_FALSE(g.accept(5, 0xaaaa, a));
    EXPECT_FALSE(g.accept(5, 0xbbbb, b - 7));
}

TEST(ReplayGuard, OldBootReplayAfterTwoRestartsIsRejectedBeyondWindow) {
    ReplayGuard g(1000);
    EXPECT_TRUE(g.accept(2, 1, 10'000));
    EXPECT_TRUE(g.accept(2, 2, 20'000));
    EXPECT_TRUE(g.accept(2, 3, 30'000));  // evicts boot 1 (oldest)
    EXPECT_FALSE(g.accept(2, 1, 10'001)); // boot 1's frames are now far outside the window
    EXPECT_TRUE(g.accept(2, 2, 20'001));  // boot 2 still tracked exactly
    EXPECT_FALSE(g.accept(2, 2, 20'001));
}

// ---- Identities and digests -------------------------------------------------

PortRule rule(uint16_t lo, uint16_t hi, FilterMode m, uint8_t w, uint8_t prio) {
    PortRule r;
    r.port_lo = lo;
    r.port_hi = hi;
    r.mode = m;
    r.equal_weight = false;
    r.load_weight = w;
    r.handling_priority = prio;
    return r;
}

TEST(RulesFingerprint, IndependentOfOrder) {
    std::vector<PortRule> a = {rule(80, 80, FilterMode::multiple, 50, 0),
                               rule(443, 443, FilterMode::single, 0, 2),
                               rule(1000, 2000, FilterMode::disabled, 0, 0)};
    a[1].vip = IpAddr::parse("10.0.0.5");
    std::vector<PortRule> b = {a[2], a[0], a[1]};
    EXPECT_EQ(rules_fingerprint(a), rules_fingerprint(b));
}

TEST(RulesFingerprint, IgnoresWeightsAndPriorities) {
    std::vector<PortRule> a = {rule(80, 80, FilterMode::multiple, 50, 0),
                               rule(443, 443, FilterMode::single, 0, 2)};
    std::vector<PortRule> b = {rule(80, 80, FilterMode::multiple, 90, 0),
                               rule(443, 443, FilterMode::single, 0, 7)};
    b[0].equal_weight = true;
    b[0].line = 99;
    EXPECT_EQ(rules_fingerprint(a), rules_fingerprint(b));
}

TEST(RulesFingerprint, ChangesWithRuleContent) {
    const std::vector<PortRule> base = {rule(80, 80, FilterMode::multiple, 50, 0)};
    const uint64_t fp = rules_fingerprint(base);
    std::vector<std::vector<PortRule>> variants(7, base);
    variants[0][0].port_hi = 81;
    variants[1][0].port_lo = 79;
    variants[2][0].protocol = Protocol::tcp;
    variants[3][0].mode = FilterMode::single;
    variants[4][0].affinity = Affinity::none;
    variants[5][0].affinity_timeout_s = 30;
    variants[6][0].vip = IpAddr::parse("10.0.0.1");
    for (size_t i = 0; i < variants.size(); ++i)
        EXPECT_NE(rules_fingerprint(variants[i]), fp) << i;
    EXPECT_NE(rules_fingerprint(std::vector<PortRule>{}), fp);
    std::vector<PortRule> twice = {base[0], base[0]};
    EXPECT_NE(rules_fingerprint(twice), fp);
}

TEST(RulesFingerprint, CanonicalOrderIsIndependentOfConfiguredOrder) {
    std::vector<PortRule> a = {rule(443, 443, FilterMode::single, 0, 2),
                               rule(80, 80, FilterMode::multiple, 50, 0),
                               rule(22, 22, FilterMode::disabled, 0, 0)};
    std::vector<PortRule> b = {a[1], a[2], a[0]};
    const auto oa = canonical_rule_order(a);
    const auto ob = canonical_rule_order(b);
    ASSERT_EQ(oa.size(), 3u);
    for (size_t k = 0; k < 3; ++k) EXPECT_EQ(a[oa[k]].port_lo, b[ob[k]].port_lo) << k;
}

TEST(ClusterIdentity, CoversNameModeAndTheClusterMacVipOnly) {
    const IpAddr v1 = *IpAddr::parse("10.0.0.10");
    const IpAddr v2 = *IpAddr::parse("fd00::10");
    const IpAddr v3 = *IpAddr::parse("10.0.0.11");
    const std::vector<IpAddr> ab = {v1, v2}, ba = {v2, v1}, a = {v1}, abc = {v1, v2, v3}, c = {v3};
    const uint64_t id = cluster_identity("web", ab, 0);
    EXPECT_EQ(id, cluster_identity("web", ba, 0));
    // VIPs after the first IPv4 one (which gives the cluster MAC) change live.
    EXPECT_EQ(id, cluster_identity("web", a, 0));
    EXPECT_EQ(id, cluster_identity("web", abc, 0));
    EXPECT_NE(id, cluster_identity("web", c, 0));
    EXPECT_NE(id, cluster_identity("web2", ab, 0));
    EXPECT_NE(id, cluster_identity("web", ab, 1));
}

TEST(RuleRecord, RoundTripsEveryClusterWideField) {
    PortRule r = rule(1024, 65535, FilterMode::multiple, 30, 0);
    r.vip = IpAddr::parse("2001:db8::7");
    r.protocol = Protocol::udp;
    r.affinity = Affinity::network;
    r.affinity_timeout_s = 0x01020304;
    const RuleRecord rec = rule_record(r);
    const std::optional<PortRule> back = rule_from_record(rec);
    ASSERT_TRUE(back);
    EXPECT_EQ(back->vip, r.vip);
    EXPECT_EQ(back->port_lo, r.port_lo);
    EXPECT_EQ(back->port_hi, r.port_hi);
    EXPECT_EQ(back->protocol, r.protocol);
    EXPECT_EQ(back->mode, r.mode);
    EXPECT_EQ(back->affinity, r.affinity);
    EXPECT_EQ(back->affinity_timeout_s, r.affinity_timeout_s);
    EXPECT_EQ(rule_record(*back), rec);
    EXPECT_EQ(rule_name(r), "[2001:db8::7]:1024-65535/udp");
    // Per-host fields are not content.
    PortRule w = r;
    w.load_weight = 90;
    w.handling_priority = 3;
    EXPECT_EQ(rule_record(w), rec);
    // Hostile records are refused.
    RuleRecord bad = rec;
    bad[22] = 9;
    EXPECT_FALSE(rule_from_record(bad));
    bad = rec;
    bad[19] = 0;  // port_hi 0 < port_lo
    bad[20] = 0;
    EXPECT_FALSE(rule_from_record(bad));
}

TEST(RuleList, RoundTripsThroughTheWireWithAndWithoutMac) {
    Heartbeat hb = sample();
    hb.weights.clear();
    hb.priorities.clear();
    hb.rule_states.clear();
    hb.chunk.reset();
    std::vector<PortRule> rules;
    for (uint16_t p = 1; p <= 60; ++p) rules.push_back(rule(p, p, FilterMode::multiple, 50, 0));
    RuleList l;
    for (const PortRule& r : rules) l.records.push_back(rule_record(r));
    std::sort(l.records.begin(), l.records.end());
    l.fingerprint = rules_fingerprint(std::span<const RuleRecord>(l.records));
    EXPECT_EQ(l.fingerprint, rules_fingerprint(rules));
    l.total = static_cast<uint16_t>(l.records.size());
    l.offset = 10;
    l.records.assign(l.records.begin() + 10, l.records.begin() + 10 + kMaxRuleRecordsPerFrame);
    hb.rule_list = l;
    for (const HmacKey& key : {HmacKey{}, HmacKey{std::vector<uint8_t>(32, 7)}}) {
        const auto f = encode_heartbeat(hb, MacAddr{}, MacAddr{}, kDefaultHeartbeatEthertype, key);
        EXPECT_LE(f.size(), kMaxHeartbeatFrame);
        Heartbeat out;
        ASSERT_EQ(decode_heartbeat(f, kDefaultHeartbeatEthertype, hb.cluster_id, key, out), HeartbeatError::none);
        EXPECT_EQ(out, hb);
    }
    // A list running past its total cannot be encoded.
    hb.rule_list->offset = 50;
    EXPECT_THROW(encode_heartbeat(hb, MacAddr{}, MacAddr{}, kDefaultHeartbeatEthertype, HmacKey{}),
                 std::invalid_argument);
}

TEST(MapDigest, EqualMapsEqualDigestAnyChangeDiffers) {
    std::vector<std::vector<HostId>> m = {{1, 2, 3, 1}, {2, 2, 1, 3}};
    const uint64_t d = map_digest(m);
    EXPECT_EQ(d, map_digest(std::vector<std::vector<HostId>>(m)));
    auto m2 = m;
    m2[1][3] = 1;
    EXPECT_NE(map_digest(m2), d);
    auto m3 = m;
    std::swap(m3[0], m3[1]);
    EXPECT_NE(map_digest(m3), d);
    // Same owners, different split between classes.
    std::vector<std::vector<HostId>> m4 = {{1, 2, 3}, {1, 2, 2, 1, 3}};
    EXPECT_NE(map_digest(m4), d);
}

// ---- Secret files -----------------------------------------------------------

std::string write_temp(const std::string& content) {
    char name[] = "/tmp/nlbd-secret-XXXXXX";
    const int fd = mkstemp(name);
    EXPECT_GE(fd, 0);
    EXPECT_EQ(write(fd, content.data(), content.size()), static_cast<ssize_t>(content.size()));
    close(fd);
    return name;
}

TEST(LoadSecret, StripsOneTrailingNewline) {
    const std::string p = write_temp("0123456789abcdef-secret\r\n");
    EXPECT_EQ(load_secret(p).bytes.size(), 23u);
    std::remove(p.c_str());
}

TEST(LoadSecret, ShortMissingOrHugeSecretThrowsNamingTheFile) {
    const std::string shorty = write_temp("short\n");
    const std::string huge = write_temp(std::string(kMaxSecretLen + 10, 'x'));
    for (const std::string& p : {shorty, huge, std::string("/nonexistent/nlbd-secret")}) {
        try {
            load_secret(p);
            ADD_FAILURE() << p << " accepted";
        } catch (const std::runtime_error& e) {
            EXPECT_NE(std::string(e.what()).find(p), std::string::npos) << e.what();
        }
    }
    std::remove(shorty.c_str());
    std::remove(huge.c_str());
}

}  // namespace
}  // namespace nlbd::cluster
