#include "nlbd/core/types.hpp"
#include "nlbd/core/rule_schema.hpp"

#include <arpa/inet.h>

#include <algorithm>
#include <cstdio>

namespace nlbd {

std::string MacAddr::to_string() const {
    char buf[18];
    std::snprintf(buf, sizeof buf, "%02x-%02x-%02x-%02x-%02x-%02x", b[0], b[1], b[2], b[3], b[4],
                  b[5]);
    return buf;
}

std::optional<IpAddr> IpAddr::parse(std::string_view text) {
    std::string s(text);
    IpAddr a;
    if (inet_pton(AF_INET, s.c_str(), a.b.data()) == 1) {
        a.family = Family::v4;
        return a;
    }
    if (inet_pton(AF_INET6, s.c_str(), a.b.data()) == 1) {
        a.family = Family::v6;
        return a;
    }
    return std::nullopt;
}

std::string IpAddr::to_string() const {
    char buf[INET6_ADDRSTRLEN] = {};
    if (family == Family::v4) inet_ntop(AF_INET, b.data(), buf, sizeof buf);
    else if (family == Family::v6) inet_ntop(AF_INET6, b.data(), buf, sizeof buf);
    else return "none";
    return buf;
}

const char* name_of(Protocol p) noexcept { return kProtocolNames[size_t(p)].data(); }
const char* name_of(FilterMode m) noexcept { return kFilterModeNames[size_t(m)].data(); }
const char* name_of(Affinity a) noexcept { return kAffinityNames[size_t(a)].data(); }
const char* name_of(ClusterMode m) noexcept {
    switch (m) {
    case ClusterMode::unicast: return "unicast";
    case ClusterMode::multicast: return "multicast";
    case ClusterMode::igmp: return "igmp";
    }
    return "?";
}

std::string rule_name(const PortRule& r) {
    std::string s;
    if (!r.vip) s = "all";
    else if (r.vip->family == Family::v6) s.append("[").append(r.vip->to_string()).append("]");
    else s = r.vip->to_string();
    s += ':' + std::to_string(r.port_lo);
    if (r.port_hi != r.port_lo) s += '-' + std::to_string(r.port_hi);
    s += '/';
    s += name_of(r.protocol);
    return s;
}

namespace {

// The record bytes of each record field, in table order.
template <class Fn>
void for_each_record_field(Fn fn) {
    size_t offset = 0;
    for (const RuleField& f : kRuleFields) {
        if (f.record == 0) continue;
        fn(f, offset);
        offset += f.record;
    }
}

// n <= 8 (rule_schema.hpp checks the integer widths).
void put_be(uint8_t* p, size_t n, uint64_t v) {
    for (size_t i = 0; i < n && i < 8; ++i) p[i] = static_cast<uint8_t>(v >> (8 * (n - 1 - i)));
}

uint64_t get_be(const uint8_t* p, size_t n) {
    uint64_t v = 0;
    for (size_t i = 0; i < n && i < 8; ++i) v = v << 8 | p[i];
    return v;
}

}  // namespace

RuleRecord rule_record(const PortRule& r) {
    static const HealthCheck kNoCheck;  // record fields are all in PortRule
    RuleRecord rec{};
    for_each_record_field([&](const RuleField& f, size_t offset) {
        uint8_t* p = rec.data() + offset;
        const FieldValue v = f.access.get(r, kNoCheck);
        switch (f.type) {
        case FieldType::vip:
            if (const auto& a = std::get<std::optional<IpAddr>>(v)) {
                p[0] = static_cast<uint8_t>(a->family);
                std::copy(a->b.begin(), a->b.end(), p + 1);
            }
            break;
        case FieldType::ports:
            put_be(p, 2, std::get<PortRange>(v).lo);
            put_be(p + 2, 2, std::get<PortRange>(v).hi);
            break;
        default:  // choice, integer
            put_be(p, f.record, static_cast<uint64_t>(std::get<int64_t>(v)));
            break;
        }
    });
    return rec;
}

std::optional<PortRule> rule_from_record(const RuleRecord& rec) {
    PortRule r;
    HealthCheck unused;
    bool valid = true;
    for_each_record_field([&](const RuleField& f, size_t offset) {
        const uint8_t* p = rec.data() + offset;
        FieldValue v;
        switch (f.type) {
        case FieldType::vip: {
            std::optional<IpAddr> a;
            if (p[0] == static_cast<uint8_t>(Family::v4) || p[0] == static_cast<uint8_t>(Family::v6)) {
                a.emplace();
                a->family = static_cast<Family>(p[0]);
                std::copy(p + 1, p + 17, a->b.begin());
            } else if (p[0] != 0) {
                valid = false;
            }
            v = a;
            break;
        }
        case FieldType::ports: {
            const PortRange range{static_cast<uint16_t>(get_be(p, 2)), static_cast<uint16_t>(get_be(p + 2, 2))};
            valid = valid && range.lo <= range.hi;
            v = range;
            break;
        }
        case FieldType::choice: {
            const auto x = static_cast<int64_t>(get_be(p, f.record));
            valid = valid && x >= f.lo && x <= f.hi;
            v = x;
            break;
        }
        default:  // integer: as sent
            v = static_cast<int64_t>(get_be(p, f.record));
            break;
        }
        if (valid) f.access.set(r, unused, v);
    });
    if (!valid) return std::nullopt;
    return r;
}

}  // namespace nlbd
