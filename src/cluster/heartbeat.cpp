// Heartbeat codec (docs/heartbeat.md). Control plane: allocates, may throw
// from encode/load_secret; decode never throws and never reads outside the
// frame it is given.

#include "nlbd/cluster/heartbeat.hpp"

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/params.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <iterator>
#include <mutex>
#include <stdexcept>

namespace nlbd::cluster {
namespace {

// ---- Payload offsets (relative to the first payload byte) -----------------
constexpr size_t kOffMagic = 0;        // "NLBh"
constexpr size_t kOffVersion = 4;      // u8
constexpr size_t kOffFlags = 5;        // u8
constexpr size_t kOffHeaderLen = 6;    // u16
constexpr size_t kOffTotalLen = 8;     // u16
constexpr size_t kOffClusterId = 10;   // u64
constexpr size_t kOffHost = 18;        // u8
constexpr size_t kOffState = 19;       // u8
constexpr size_t kOffBootId = 20;      // u64
constexpr size_t kOffSequence = 28;    // u64
constexpr size_t kOffEpoch = 36;       // u64
constexpr size_t kOffView = 44;        // u64
constexpr size_t kOffRulesFp = 52;     // u64
constexpr size_t kOffMapDigest = 60;   // u64
constexpr size_t kOffBuckets = 68;     // u32
constexpr size_t kOffHeldForeign = 72; // u32
constexpr size_t kOffRuleCount = 76;   // u16
constexpr size_t kOffHealthDown = 78;  // u16 (reserved before: senders wrote 0)
static_assert(kOffHealthDown + 2 == kHeartbeatMinHeaderLen);
constexpr size_t kOffHeard = 80;       // u64 (absent from 80-byte headers: 0)
static_assert(kOffHeard + 8 == kHeartbeatHeaderLen);
// Map chunk, relative to its start.
constexpr size_t kChunkOffEpoch = 0;    // u64
constexpr size_t kChunkOffClass = 8;    // u16
constexpr size_t kChunkOffClasses = 10; // u16
constexpr size_t kChunkOffOffset = 12;  // u32
constexpr size_t kChunkOffCount = 16;   // u16
constexpr size_t kChunkOffReserved = 18;// u16, sent 0, ignored
static_assert(kChunkOffReserved + 2 == kChunkHeaderLen);
// Rule-list section, relative to its start.
constexpr size_t kRulesOffFingerprint = 0; // u64
constexpr size_t kRulesOffOffset = 8;      // u16
constexpr size_t kRulesOffTotal = 10;      // u16
constexpr size_t kRulesOffCount = 12;      // u16
constexpr size_t kRulesOffReserved = 14;   // u16, sent 0, ignored
// Command section (kFlagCommand), then verb, args (u8 length + bytes each), text.
constexpr size_t kCmdOffRequest = 0;   // u32
constexpr size_t kCmdOffTarget = 4;    // u8
constexpr size_t kCmdOffKind = 5;      // u8: 0 request, 1 result
constexpr size_t kCmdOffOk = 6;        // u8: result applied
constexpr size_t kCmdOffArgs = 7;      // u8: argument count
constexpr size_t kCmdOffVerbLen = 8;   // u8
constexpr size_t kCmdOffReserved = 9;  // u8, sent 0
constexpr size_t kCmdOffTextLen = 10;  // u16
static_assert(kCmdOffTextLen + 2 == kCommandHeaderLen);
static_assert(kCmdOffReserved == 9);

// Printable ASCII (commands, arguments and their texts are operator text).
bool printable(std::string_view s) noexcept {
    for (unsigned char c : s)
        if (c < 0x20 || c == 0x7f) return false;
    return true;
}
size_t command_bytes(const OperatorCommand& c) noexcept {
    size_t n = kCommandHeaderLen + c.verb.size() + c.text.size();
    for (const std::string& a : c.args) n += 1 + a.size();
    return n;
}
static_assert(kRulesOffReserved + 2 == kRulesHeaderLen);

constexpr std::array<uint8_t, 4> kMagic = {'N', 'L', 'B', 'h'};
constexpr uint16_t kVlan8021Q = 0x8100;
constexpr uint16_t kVlan8021ad = 0x88A8;
constexpr uint8_t kMaxWeight = 100;
constexpr uint8_t kMaxPriority = 64;

static_assert(kMaxHeartbeatPayload <= 0xffff, "total length is a u16");

uint16_t get16(const uint8_t* p) noexcept { return static_cast<uint16_t>(p[0] << 8 | p[1]); }
uint32_t get32(const uint8_t* p) noexcept {
    return uint32_t{p[0]} << 24 | uint32_t{p[1]} << 16 | uint32_t{p[2]} << 8 | uint32_t{p[3]};
}
uint64_t get64(const uint8_t* p) noexcept { return uint64_t{get32(p)} << 32 | get32(p + 4); }
void put16(uint8_t* p, uint16_t v) noexcept {
    p[0] = static_cast<uint8_t>(v >> 8);
    p[1] = static_cast<uint8_t>(v);
}
void put32(uint8_t* p, uint32_t v) noexcept {
    put16(p, static_cast<uint16_t>(v >> 16));
    put16(p + 2, static_cast<uint16_t>(v));
}
void put64(uint8_t* p, uint64_t v) noexcept {
    put32(p, static_cast<uint32_t>(v >> 32));
    put32(p + 4, static_cast<uint32_t>(v));
}

// ---- HMAC ------------------------------------------------------------------
// EVP_MAC "HMAC" is fetched once per process. Each thread keeps a keyed
// EVP_MAC_CTX template for the last key it used; a frame dups it (copies the
// precomputed inner/outer pads) instead of re-keying.
EVP_MAC* hmac_algorithm() {
    static EVP_MAC* mac = EVP_MAC_fetch(nullptr, "HMAC", nullptr);  // thread-safe init
    return mac;
}

struct MacTemplate {
    std::vector<uint8_t> key;
    EVP_MAC_CTX* ctx = nullptr;
    MacTemplate() = default;
    MacTemplate(const MacTemplate&) = delete;
    MacTemplate& operator=(const MacTemplate&) = delete;
    ~MacTemplate() { EVP_MAC_CTX_free(ctx); }
};

// Returns a fresh keyed context (caller frees) or nullptr on OpenSSL failure.
EVP_MAC_CTX* keyed_context(const HmacKey& key) {
    thread_local MacTemplate tmpl;
    if (tmpl.ctx == nullptr || tmpl.key != key.bytes) {
        EVP_MAC_CTX_free(tmpl.ctx);
        tmpl.ctx = nullptr;
        tmpl.key.clear();
        EVP_MAC* mac = hmac_algorithm();
        if (mac == nullptr) return nullptr;
        EVP_MAC_CTX* c = EVP_MAC_CTX_new(mac);
        if (c == nullptr) return nullptr;
        char digest[] = "SHA256";
        OSSL_PARAM params[] = {
            OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, digest, 0),
            OSSL_PARAM_construct_end(),
        };
        if (EVP_MAC_init(c, key.bytes.data(), key.bytes.size(), params) != 1) {
            EVP_MAC_CTX_free(c);
            return nullptr;
        }
        tmpl.ctx = c;
        tmpl.key = key.bytes;
    }
    return EVP_MAC_CTX_dup(tmpl.ctx);
}

// HMAC-SHA256 over the concatenation of `parts`. False on OpenSSL failure.
bool hmac(const HmacKey& key, std::initializer_list<std::span<const uint8_t>> parts,
          uint8_t (&out)[kHeartbeatMacLen]) {
    EVP_MAC_CTX* c = keyed_context(key);
    if (c == nullptr) return false;
    bool ok = true;
    for (auto p : parts) ok = ok && EVP_MAC_update(c, p.data(), p.size()) == 1;
    size_t len = 0;
    ok = ok && EVP_MAC_final(c, out, &len, kHeartbeatMacLen) == 1 && len == kHeartbeatMacLen;
    EVP_MAC_CTX_free(c);
    return ok;
}

// SHA-256 of `data`, first 8 bytes big-endian.
uint64_t sha256_64(std::span<const uint8_t> data) {
    uint8_t md[EVP_MAX_MD_SIZE];
    unsigned len = 0;
    if (EVP_Digest(data.data(), data.size(), md, &len, EVP_sha256(), nullptr) != 1 || len < 8)
        throw std::runtime_error("heartbeat: SHA-256 failed (OpenSSL)");
    return get64(md);
}

void append32(std::vector<uint8_t>& v, uint32_t x) {
    uint8_t b[4];
    put32(b, x);
    v.insert(v.end(), b, b + 4);
}

bool valid_state(uint8_t s) noexcept { return s <= static_cast<uint8_t>(HostState::suspended); }
bool valid_rule_state(uint8_t s) noexcept { return s <= static_cast<uint8_t>(RuleState::disabled); }

}  // namespace

std::string_view name_of(HeartbeatError e) noexcept {
    switch (e) {
#define NLBD_X(n, d) \
    case HeartbeatError::n: return #n;
        NLBD_HEARTBEAT_ERRORS(NLBD_X)
#undef NLBD_X
    case HeartbeatError::count_: break;
    }
    return "unknown";
}

std::string_view description_of(HeartbeatError e) noexcept {
    switch (e) {
#define NLBD_X(n, d) \
    case HeartbeatError::n: return d;
        NLBD_HEARTBEAT_ERRORS(NLBD_X)
#undef NLBD_X
    case HeartbeatError::count_: break;
    }
    return "unknown";
}

HmacKey load_secret(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    if (!in) throw std::runtime_error(path + ": cannot open secret file: " + std::strerror(errno));
    HmacKey key;
    char buf[1024];
    while (in.read(buf, sizeof buf) || in.gcount() > 0) {
        key.bytes.insert(key.bytes.end(), buf, buf + in.gcount());
        if (key.bytes.size() > kMaxSecretLen + 2)
            throw std::runtime_error(path + ": secret file larger than " +
                                     std::to_string(kMaxSecretLen) + " bytes");
    }
    if (in.bad()) throw std::runtime_error(path + ": cannot read secret file");
    if (!key.bytes.empty() && key.bytes.back() == '\n') {
        key.bytes.pop_back();
        if (!key.bytes.empty() && key.bytes.back() == '\r') key.bytes.pop_back();
    }
    if (key.bytes.size() < kMinSecretLen)
        throw std::runtime_error(path + ": secret is " + std::to_string(key.bytes.size()) +
                                 " bytes; at least " + std::to_string(kMinSecretLen) +
                                 " are required");
    if (key.bytes.size() > kMaxSecretLen)
        throw std::runtime_error(path + ": secret file larger than " +
                                 std::to_string(kMaxSecretLen) + " bytes");
    return key;
}

uint64_t cluster_identity(const std::string& name, std::span<const IpAddr> vips, uint8_t mode) {
    std::array<uint8_t, 17> k{};
    for (const IpAddr& a : vips)
        if (a.family == Family::v4) {
            k[0] = static_cast<uint8_t>(a.family);
            std::copy(a.b.begin(), a.b.end(), k.begin() + 1);
            break;
        }
    static constexpr char kDomain[] = "nlbd cluster identity v2";
    std::vector<uint8_t> buf(kDomain, kDomain + sizeof kDomain);  // includes the NUL
    append32(buf, static_cast<uint32_t>(name.size()));
    buf.insert(buf.end(), name.begin(), name.end());
    buf.push_back(mode);
    buf.insert(buf.end(), k.begin(), k.end());
    return sha256_64(buf);
}

std::vector<uint32_t> canonical_rule_order(std::span<const PortRule> rules) {
    std::vector<RuleRecord> content;
    content.reserve(rules.size());
    for (const PortRule& r : rules) content.push_back(rule_record(r));
    std::vector<uint32_t> order(rules.size());
    for (uint32_t i = 0; i < order.size(); ++i) order[i] = i;
    std::stable_sort(order.begin(), order.end(),
                     [&](uint32_t a, uint32_t b) { return content[a] < content[b]; });
    return order;
}

uint64_t rules_fingerprint(std::span<const PortRule> rules) {
    std::vector<RuleRecord> content;
    content.reserve(rules.size());
    for (const PortRule& r : rules) content.push_back(rule_record(r));
    return rules_fingerprint(std::span<const RuleRecord>(content));
}

uint64_t rules_fingerprint(std::span<const RuleRecord> records) {
    std::vector<RuleRecord> content(records.begin(), records.end());
    std::sort(content.begin(), content.end());
    static constexpr char kDomain[] = "nlbd port rules v1";
    std::vector<uint8_t> buf(kDomain, kDomain + sizeof kDomain);
    append32(buf, static_cast<uint32_t>(content.size()));
    for (const auto& c : content) {  // fixed-size records: no separator needed
        buf.insert(buf.end(), c.begin(), c.end());
    }
    return sha256_64(buf);
}

uint64_t map_digest(std::span<const std::vector<HostId>> maps) {
    static constexpr char kDomain[] = "nlbd bucket maps v1";
    std::vector<uint8_t> buf(kDomain, kDomain + sizeof kDomain);
    size_t total = 0;
    for (const auto& m : maps) total += m.size();
    buf.reserve(buf.size() + 4 + 4 * maps.size() + total);
    append32(buf, static_cast<uint32_t>(maps.size()));
    for (const auto& m : maps) {
        append32(buf, static_cast<uint32_t>(m.size()));
        buf.insert(buf.end(), m.begin(), m.end());
    }
    return sha256_64(buf);
}

std::vector<uint8_t> encode_heartbeat(const Heartbeat& hb, const MacAddr& dst, const MacAddr& src,
                                      uint16_t ethertype, const HmacKey& key) {
    auto fail = [](const std::string& what) {
        throw std::invalid_argument("encode_heartbeat: " + what);
    };
    const size_t n = hb.weights.size();
    if (hb.host == kNoHost || hb.host > kMaxHosts)
        fail("host id " + std::to_string(hb.host) + " not in 1.." + std::to_string(kMaxHosts));
    if (!valid_state(static_cast<uint8_t>(hb.state))) fail("invalid host state");
    if (n > kMaxRules) fail(std::to_string(n) + " rules > " + std::to_string(kMaxRules));
    if (hb.priorities.size() != n || hb.rule_states.size() != n)
        fail("weights, priorities and rule_states differ in size");
    if (hb.buckets > kMaxBuckets) fail("buckets > " + std::to_string(kMaxBuckets));
    for (size_t i = 0; i < n; ++i) {
        if (hb.weights[i] > kMaxWeight) fail("rule " + std::to_string(i) + ": weight > 100");
        if (hb.priorities[i] > kMaxPriority) fail("rule " + std::to_string(i) + ": priority > 64");
        if (!valid_rule_state(static_cast<uint8_t>(hb.rule_states[i])))
            fail("rule " + std::to_string(i) + ": invalid rule state");
    }
    const bool chunk = hb.chunk.has_value();
    const size_t owners = chunk ? hb.chunk->owners.size() : 0;
    if (chunk) {
        const MapChunk& c = *hb.chunk;
        if (owners > max_chunk_owners(n))
            fail("chunk of " + std::to_string(owners) + " owners > max_chunk_owners(" +
                 std::to_string(n) + ") = " + std::to_string(max_chunk_owners(n)));
        if (c.map_class >= c.map_classes) fail("chunk map_class >= map_classes");
        if (uint64_t{c.offset} + owners > hb.buckets) fail("chunk extends past buckets");
        for (HostId h : c.owners)
            if (h > kMaxHosts) fail("chunk owner " + std::to_string(h) + " > 64");
    }
    const bool rules = hb.rule_list.has_value();
    const size_t records = rules ? hb.rule_list->records.size() : 0;
    if (rules) {
        const RuleList& l = *hb.rule_list;
        if (n != 0 || chunk) fail("a rule-list frame carries no per-rule arrays and no chunk");
        if (records > kMaxRuleRecordsPerFrame) fail("more than kMaxRuleRecordsPerFrame rule records");
        if (l.total > kMaxRules || uint64_t{l.offset} + records > l.total)
            fail("rule list extends past its total");
    }
    const bool command = hb.command.has_value();
    if (command) {
        const OperatorCommand& c = *hb.command;
        if (n != 0 || chunk || rules) fail("a command frame carries no per-rule arrays, chunk or rule list");
        if (c.verb.size() > kMaxCommandVerb || c.args.size() > kMaxCommandArgs || c.text.size() > kMaxCommandText)
            fail("command verb, arguments or text too long");
        if (!printable(c.verb) || !printable(c.text)) fail("command text is not printable");
        for (const std::string& a : c.args)
            if (a.size() > kMaxCommandArg || !printable(a)) fail("command argument too long or not printable");
        if (c.target == kNoHost || (c.target > kMaxHosts && c.target != kAllHosts)) fail("command target");
    }
    const bool mac = !key.empty();
    const size_t frame_len = heartbeat_frame_size(n, chunk, owners, mac) +
                             (rules ? kRulesHeaderLen + records * kRuleRecordLen : 0) +
                             (command ? command_bytes(*hb.command) : 0);
    const size_t total = frame_len - kEthHeaderLen;

    std::vector<uint8_t> f(frame_len, 0);
    std::copy(dst.b.begin(), dst.b.end(), f.begin());
    std::copy(src.b.begin(), src.b.end(), f.begin() + 6);
    put16(&f[12], ethertype);
    uint8_t* p = f.data() + kEthHeaderLen;
    std::copy(kMagic.begin(), kMagic.end(), p + kOffMagic);
    p[kOffVersion] = kHeartbeatVersion;
    p[kOffFlags] = static_cast<uint8_t>((mac ? kFlagMac : 0) | (chunk ? kFlagChunk : 0) |
                                        (rules ? kFlagRules : 0) | (command ? kFlagCommand : 0));
    put16(p + kOffHeaderLen, static_cast<uint16_t>(kHeartbeatHeaderLen));
    put16(p + kOffTotalLen, static_cast<uint16_t>(total));
    put64(p + kOffClusterId, hb.cluster_id);
    p[kOffHost] = hb.host;
    p[kOffState] = static_cast<uint8_t>(hb.state);
    put64(p + kOffBootId, hb.boot_id);
    put64(p + kOffSequence, hb.sequence);
    put64(p + kOffEpoch, hb.epoch);
    put64(p + kOffView, hb.view);
    put64(p + kOffRulesFp, hb.rules_fingerprint);
    put64(p + kOffMapDigest, hb.map_digest);
    put32(p + kOffBuckets, hb.buckets);
    put32(p + kOffHeldForeign, hb.held_foreign);
    put16(p + kOffHealthDown, hb.health_down);
    put64(p + kOffHeard, hb.heard);
    put16(p + kOffRuleCount, static_cast<uint16_t>(n));
    uint8_t* q = p + kHeartbeatHeaderLen;
    for (size_t i = 0; i < n; ++i)
        q[i] = hb.priorities[i] != 0 ? static_cast<uint8_t>(kPriorityTag | hb.priorities[i])
                                     : hb.weights[i];
    q += n;
    for (size_t i = 0; i < n; ++i)
        q[i / 4] |= static_cast<uint8_t>(static_cast<uint8_t>(hb.rule_states[i]) << (2 * (i % 4)));
    q += (n + 3) / 4;
    if (chunk) {
        const MapChunk& c = *hb.chunk;
        put64(q + kChunkOffEpoch, c.epoch);
        put16(q + kChunkOffClass, c.map_class);
        put16(q + kChunkOffClasses, c.map_classes);
        put32(q + kChunkOffOffset, c.offset);
        put16(q + kChunkOffCount, static_cast<uint16_t>(owners));
        q += kChunkHeaderLen;
        std::copy(c.owners.begin(), c.owners.end(), q);
        q += owners;
    }
    if (rules) {
        const RuleList& l = *hb.rule_list;
        put64(q + kRulesOffFingerprint, l.fingerprint);
        put16(q + kRulesOffOffset, l.offset);
        put16(q + kRulesOffTotal, l.total);
        put16(q + kRulesOffCount, static_cast<uint16_t>(records));
        q += kRulesHeaderLen;
        for (const RuleRecord& r : l.records) q = std::copy(r.begin(), r.end(), q);
    }
    if (command) {
        const OperatorCommand& c = *hb.command;
        put32(q + kCmdOffRequest, c.request);
        q[kCmdOffTarget] = c.target;
        q[kCmdOffKind] = c.result ? 1 : 0;
        q[kCmdOffOk] = c.ok ? 1 : 0;
        q[kCmdOffArgs] = static_cast<uint8_t>(c.args.size());
        q[kCmdOffVerbLen] = static_cast<uint8_t>(c.verb.size());
        put16(q + kCmdOffTextLen, static_cast<uint16_t>(c.text.size()));
        q += kCommandHeaderLen;
        q = std::copy(c.verb.begin(), c.verb.end(), q);
        for (const std::string& a : c.args) {
            *q++ = static_cast<uint8_t>(a.size());
            q = std::copy(a.begin(), a.end(), q);
        }
        q = std::copy(c.text.begin(), c.text.end(), q);
    }
    if (mac) {
        uint8_t tag[kHeartbeatMacLen];
        const size_t covered = static_cast<size_t>(q - f.data());
        if (!hmac(key, {std::span<const uint8_t>(f.data(), covered)}, tag))
            throw std::runtime_error("encode_heartbeat: HMAC-SHA256 failed (OpenSSL)");
        std::copy(std::begin(tag), std::end(tag), q);
        q += kHeartbeatMacLen;
    }
    if (static_cast<size_t>(q - f.data()) != frame_len)
        throw std::logic_error("encode_heartbeat: layout size mismatch");
    return f;
}

HeartbeatError decode_heartbeat(std::span<const uint8_t> frame, uint16_t ethertype,
                                uint64_t cluster_id, const HmacKey& key, Heartbeat& out) {
    using E = HeartbeatError;
    // Ethernet header, one optional 802.1Q / 802.1ad tag.
    if (frame.size() < kEthHeaderLen) return E::truncated;
    size_t eth_len = kEthHeaderLen;
    uint16_t type = get16(&frame[12]);
    if (type == kVlan8021Q || type == kVlan8021ad) {
        if (type == ethertype) return E::bad_magic;  // misconfiguration; never ours
        if (frame.size() < kEthHeaderLen + 4) return E::truncated;
        type = get16(&frame[16]);
        eth_len += 4;
    }
    if (type != ethertype) return E::bad_magic;
    const std::span<const uint8_t> pl = frame.subspan(eth_len);

    // Fixed header.
    if (pl.size() < kOffVersion + 1) {
        // Too short for magic + version: still say bad_magic when what is
        // there already differs.
        for (size_t i = 0; i < pl.size() && i < kMagic.size(); ++i)
            if (pl[i] != kMagic[i]) return E::bad_magic;
        return E::truncated;
    }
    if (!std::equal(kMagic.begin(), kMagic.end(), pl.begin())) return E::bad_magic;
    if (pl[kOffVersion] != kHeartbeatVersion) return E::bad_version;
    if (pl.size() < kHeartbeatMinHeaderLen) return E::truncated;
    const uint8_t flags = pl[kOffFlags];
    const size_t header_len = get16(&pl[kOffHeaderLen]);
    const size_t total = get16(&pl[kOffTotalLen]);
    // Senders before the `heard` field write 80 bytes (kHeartbeatMinHeaderLen);
    // a longer header than ours (a compatible extension) is skipped, but it
    // stays inside the MAC.
    if (header_len < kHeartbeatMinHeaderLen || total < header_len || total > kMaxHeartbeatPayload)
        return E::bad_length;
    if (total > pl.size()) return E::truncated;  // bytes after `total` are padding
    if ((flags & ~(kFlagMac | kFlagChunk | kFlagRules | kFlagCommand)) != 0) return E::bad_field;
    if (get64(&pl[kOffClusterId]) != cluster_id) return E::foreign_cluster;

    // Authentication: the MAC is the last 32 bytes of the payload; it covers
    // dst + src MAC, the heartbeat EtherType and the payload before it (not
    // the VLAN tag).
    const bool has_mac = (flags & kFlagMac) != 0;
    if (!key.empty() && !has_mac) return E::missing_mac;
    if (key.empty() && has_mac) return E::unexpected_mac;
    size_t body_end = total;
    if (has_mac) {
        if (total < header_len + kHeartbeatMacLen) return E::bad_length;
        body_end = total - kHeartbeatMacLen;
        uint8_t tag[kHeartbeatMacLen];
        const bool ok =
            hmac(key,
                 {frame.first(12), frame.subspan(eth_len - 2, 2), pl.first(body_end)}, tag);
        if (!ok || CRYPTO_memcmp(tag, &pl[body_end], kHeartbeatMacLen) != 0) return E::bad_mac;
    }

    // Body: counts must add up exactly to body_end.
    const size_t n = get16(&pl[kOffRuleCount]);
    if (n > kMaxRules) return E::bad_length;
    const bool has_chunk = (flags & kFlagChunk) != 0;
    size_t need = header_len + heartbeat_rule_bytes(n);
    size_t owners = 0;
    if (has_chunk) {
        if (need + kChunkHeaderLen > body_end) return E::bad_length;
        owners = get16(&pl[need + kChunkOffCount]);
        if (owners > max_chunk_owners(n)) return E::bad_length;
        need += kChunkHeaderLen + owners;
    }
    const bool has_rules = (flags & kFlagRules) != 0;
    size_t records = 0;
    if (has_rules) {
        if (n != 0 || has_chunk) return E::bad_field;
        if (need + kRulesHeaderLen > body_end) return E::bad_length;
        records = get16(&pl[need + kRulesOffCount]);
        if (records > kMaxRuleRecordsPerFrame) return E::bad_length;
        need += kRulesHeaderLen + records * kRuleRecordLen;
    }
    const bool has_command = (flags & kFlagCommand) != 0;
    const size_t command_at = need;
    if (has_command) {
        if (n != 0 || has_chunk || has_rules) return E::bad_field;
        if (need + kCommandHeaderLen > body_end) return E::bad_length;
        const uint8_t* c = &pl[need];
        const size_t nargs = c[kCmdOffArgs], verb_len = c[kCmdOffVerbLen], text_len = get16(c + kCmdOffTextLen);
        if (nargs > kMaxCommandArgs || verb_len > kMaxCommandVerb || text_len > kMaxCommandText) return E::bad_length;
        need += kCommandHeaderLen + verb_len;
        for (size_t a = 0; a < nargs; ++a) {
            if (need + 1 > body_end) return E::bad_length;
            const size_t len = pl[need];
            if (len > kMaxCommandArg) return E::bad_length;
            need += 1 + len;
        }
        need += text_len;
        if (need > body_end) return E::bad_length;
    }
    if (need != body_end) return E::bad_length;

    const HostId host = pl[kOffHost];
    const uint8_t state = pl[kOffState];
    const uint32_t buckets = get32(&pl[kOffBuckets]);
    if (host == kNoHost || host > kMaxHosts || !valid_state(state) || buckets > kMaxBuckets)
        return E::bad_field;

    out.cluster_id = cluster_id;
    out.host = host;
    out.state = static_cast<HostState>(state);
    out.boot_id = get64(&pl[kOffBootId]);
    out.sequence = get64(&pl[kOffSequence]);
    out.epoch = get64(&pl[kOffEpoch]);
    out.view = get64(&pl[kOffView]);
    out.rules_fingerprint = get64(&pl[kOffRulesFp]);
    out.map_digest = get64(&pl[kOffMapDigest]);
    out.buckets = buckets;
    out.held_foreign = get32(&pl[kOffHeldForeign]);
    out.health_down = get16(&pl[kOffHealthDown]);
    out.heard = header_len >= kOffHeard + 8 ? get64(&pl[kOffHeard]) : 0;

    const uint8_t* q = &pl[header_len];
    out.weights.assign(n, 0);
    out.priorities.assign(n, 0);
    out.rule_states.assign(n, RuleState::enabled);
    for (size_t i = 0; i < n; ++i) {
        const uint8_t v = q[i];
        if ((v & kPriorityTag) != 0) {
            const uint8_t prio = v & static_cast<uint8_t>(~kPriorityTag);
            if (prio == 0 || prio > kMaxPriority) return E::bad_field;
            out.priorities[i] = prio;
        } else {
            if (v > kMaxWeight) return E::bad_field;
            out.weights[i] = v;
        }
    }
    q += n;
    for (size_t i = 0; i < n; ++i) {
        const uint8_t s = (q[i / 4] >> (2 * (i % 4))) & 3;
        if (!valid_rule_state(s)) return E::bad_field;
        out.rule_states[i] = static_cast<RuleState>(s);
    }
    q += (n + 3) / 4;

    if (has_chunk) {
        MapChunk c;
        c.epoch = get64(q + kChunkOffEpoch);
        c.map_class = get16(q + kChunkOffClass);
        c.map_classes = get16(q + kChunkOffClasses);
        c.offset = get32(q + kChunkOffOffset);
        q += kChunkHeaderLen;
        if (c.map_class >= c.map_classes || uint64_t{c.offset} + owners > buckets)
            return E::bad_field;
        c.owners.assign(q, q + owners);
        for (HostId h : c.owners)
            if (h > kMaxHosts) return E::bad_field;
        out.chunk = std::move(c);
        q += owners;
    } else {
        out.chunk.reset();
    }
    if (has_rules) {
        RuleList l;
        l.fingerprint = get64(q + kRulesOffFingerprint);
        l.offset = get16(q + kRulesOffOffset);
        l.total = get16(q + kRulesOffTotal);
        q += kRulesHeaderLen;
        if (l.total > kMaxRules || size_t{l.offset} + records > l.total) return E::bad_field;
        l.records.resize(records);
        for (RuleRecord& r : l.records) {
            std::copy(q, q + kRuleRecordLen, r.begin());
            q += kRuleRecordLen;
            if (!rule_from_record(r)) return E::bad_field;
        }
        out.rule_list = std::move(l);
    } else {
        out.rule_list.reset();
    }
    if (has_command) {
        const uint8_t* c = &pl[command_at];
        OperatorCommand oc;
        oc.request = get32(c + kCmdOffRequest);
        oc.target = c[kCmdOffTarget];
        if (c[kCmdOffKind] > 1 || c[kCmdOffOk] > 1) return E::bad_field;
        oc.result = c[kCmdOffKind] == 1;
        oc.ok = c[kCmdOffOk] == 1;
        if (oc.target == kNoHost || (oc.target > kMaxHosts && oc.target != kAllHosts)) return E::bad_field;
        const uint8_t* s = c + kCommandHeaderLen;
        oc.verb.assign(reinterpret_cast<const char*>(s), c[kCmdOffVerbLen]);
        s += c[kCmdOffVerbLen];
        for (size_t a = 0; a < c[kCmdOffArgs]; ++a) {
            const size_t len = *s++;
            oc.args.emplace_back(reinterpret_cast<const char*>(s), len);
            s += len;
        }
        oc.text.assign(reinterpret_cast<const char*>(s), get16(c + kCmdOffTextLen));
        if (!printable(oc.verb) || !printable(oc.text)) return E::bad_field;
        for (const std::string& a : oc.args)
            if (!printable(a)) return E::bad_field;
        out.command = std::move(oc);
    } else {
        out.command.reset();
    }
    return E::none;
}

bool ReplayGuard::accept(HostId host, uint64_t boot_id, uint64_t sequence) {
    if (host == kNoHost || host > kMaxHosts) return false;
    Seen& s = seen_[host];
    for (int k = 0; k < 2; ++k) {
        if (s.used[k] && s.boot_id[k] == boot_id) {
            if (sequence <= s.last[k]) return false;
            s.last[k] = sequence;
            s.newest = std::max(s.newest, sequence);
            return true;
        }
    }
    // A boot id not tracked: must be newer than (newest - window).
    const uint64_t floor = s.newest > window_ ? s.newest - window_ : 0;
    if (s.newest != 0 && sequence <= floor) return false;
    int slot = !s.used[0] ? 0 : !s.used[1] ? 1 : (s.last[0] <= s.last[1] ? 0 : 1);
    s.used[slot] = true;
    s.boot_id[slot] = boot_id;
    s.last[slot] = sequence;
    s.newest = std::max(s.newest, sequence);
    return true;
}

uint64_t ReplayGuard::newest(HostId host) const noexcept {
    if (host == kNoHost || host > kMaxHosts) return 0;
    return seen_[host].newest;
}

HeartbeatError receive_heartbeat(std::span<const uint8_t> frame, const ReceiveContext& ctx,
                                 ReplayGuard& guard, Heartbeat& out) {
    static const HmacKey kNoKey;
    const HeartbeatError e = decode_heartbeat(frame, ctx.ethertype, ctx.cluster_id,
                                              ctx.key != nullptr ? *ctx.key : kNoKey, out);
    if (e != HeartbeatError::none) return e;
    if (out.host == ctx.self_host && out.boot_id == ctx.self_boot_id)
        return HeartbeatError::own_frame;
    if (!guard.accept(out.host, out.boot_id, out.sequence)) return HeartbeatError::replayed;
    return HeartbeatError::none;
}

}  // namespace nlbd::cluster
