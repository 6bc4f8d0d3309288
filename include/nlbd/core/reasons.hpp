#pragma once
// Every reason a frame can end up where it did, defined once (STYLE.md).
// Each received frame is counted under exactly one Verdict. Frames counted as
// Verdict::malformed are also counted under exactly one ParseError.

#include <array>
#include <cstdint>
#include <string_view>

namespace nlbd {

// X(name, description)
#define NLBD_PARSE_ERRORS(X)                                                        \
    X(none, "parsed")                                                               \
    X(truncated_ethernet, "frame shorter than an Ethernet header")                  \
    X(truncated_vlan, "VLAN tag cut short")                                         \
    X(too_many_vlans, "more than two stacked VLAN tags")                            \
    X(truncated_arp, "ARP shorter than its fixed header")                           \
    X(bad_arp, "ARP with unsupported hardware/protocol type or lengths")            \
    X(truncated_ipv4, "IPv4 header cut short")                                      \
    X(bad_ipv4_version, "IPv4 EtherType but version field is not 4")                \
    X(bad_ipv4_ihl, "IPv4 header length below 20 bytes")                           \
    X(bad_ipv4_total_length, "IPv4 total length outside the header..frame range")  \
    X(bad_ipv4_options, "IPv4 options overrun the header")                          \
    X(truncated_ipv6, "IPv6 header cut short")                                      \
    X(bad_ipv6_version, "IPv6 EtherType but version field is not 6")                \
    X(bad_ipv6_payload_length, "IPv6 payload length exceeds the frame")             \
    X(truncated_ipv6_ext, "IPv6 extension header cut short")                        \
    X(ipv6_ext_chain_too_long, "IPv6 extension header chain longer than allowed")   \
    X(bad_ipv6_ext_order, "IPv6 fragment header repeated or misplaced")             \
    X(tiny_fragment, "first fragment too short to hold the transport header")      \
    X(bad_fragment_offset, "fragment offset/length overruns 65535")                 \
    X(truncated_tcp, "TCP header cut short")                                        \
    X(bad_tcp_offset, "TCP data offset below 5 words or past the packet")           \
    X(truncated_udp, "UDP header cut short")                                        \
    X(bad_udp_length, "UDP length field outside 8..payload")                        \
    X(truncated_icmp, "ICMP header cut short")                                      \
    X(truncated_icmp_inner, "ICMP error without a usable inner header")             \
    X(bad_nd, "IPv6 neighbour solicitation cut short or malformed")

enum class ParseError : uint8_t {
#define NLBD_X(name, desc) name,
    NLBD_PARSE_ERRORS(NLBD_X)
#undef NLBD_X
    count_
};
inline constexpr unsigned kParseErrorCount = static_cast<unsigned>(ParseError::count_);

// X(name, description)
#define NLBD_VERDICTS(X)                                                                \
    X(accepted, "VIP traffic this host owns: delivered to the local port")              \
    X(not_owner, "VIP traffic owned by another host: dropped")                          \
    X(accepted_conn, "established connection kept after its bucket moved away")         \
    X(conn_elsewhere, "packet of a connection held by the bucket's previous owner: dropped") \
    X(disabled_rule, "matched a disabled port rule: dropped by every host")             \
    X(default_host_accepted, "VIP traffic matching no rule: this host is default host") \
    X(default_host_other, "VIP traffic matching no rule: another host is default host") \
    X(passed_non_vip, "not for a VIP: passed to the local port unfiltered")             \
    X(arp_replied, "ARP request for a VIP answered with the cluster MAC")              \
    X(arp_not_default, "ARP request for a VIP left to the default host")               \
    X(nd_replied, "neighbour solicitation for a VIP answered with the cluster MAC")    \
    X(nd_not_default, "neighbour solicitation for a VIP left to the default host")     \
    X(frag_held, "non-first fragment held until its first fragment decides")           \
    X(frag_timeout, "held fragment whose first fragment never came: dropped")          \
    X(frag_evicted, "fragment state evicted under pressure: dropped")                  \
    X(frag_table_full, "fragment could not be tracked (table full): dropped")          \
    X(malformed, "malformed frame: dropped (see parse error counters)")                \
    X(stopped, "host not started: VIP traffic dropped")                                 \
    X(heartbeat, "cluster heartbeat frame: handed to the control thread (or dropped)")  \
    X(dispatch_full, "RX distributor: the flow's worker ring was full: dropped")

enum class Verdict : uint8_t {
#define NLBD_X(name, desc) name,
    NLBD_VERDICTS(NLBD_X)
#undef NLBD_X
    count_
};
inline constexpr unsigned kVerdictCount = static_cast<unsigned>(Verdict::count_);

constexpr std::string_view name_of(ParseError e) noexcept {
    constexpr std::array<std::string_view, kParseErrorCount> names = {
#define NLBD_X(name, desc) #name,
        NLBD_PARSE_ERRORS(NLBD_X)
#undef NLBD_X
    };
    return names[static_cast<unsigned>(e)];
}
constexpr std::string_view description_of(ParseError e) noexcept {
    constexpr std::array<std::string_view, kParseErrorCount> d = {
#define NLBD_X(name, desc) desc,
        NLBD_PARSE_ERRORS(NLBD_X)
#undef NLBD_X
    };
    return d[static_cast<unsigned>(e)];
}
constexpr std::string_view name_of(Verdict v) noexcept {
    constexpr std::array<std::string_view, kVerdictCount> names = {
#define NLBD_X(name, desc) #name,
        NLBD_VERDICTS(NLBD_X)
#undef NLBD_X
    };
    return names[static_cast<unsigned>(v)];
}
constexpr std::string_view description_of(Verdict v) noexcept {
    constexpr std::array<std::string_view, kVerdictCount> d = {
#define NLBD_X(name, desc) desc,
        NLBD_VERDICTS(NLBD_X)
#undef NLBD_X
    };
    return d[static_cast<unsigned>(v)];
}

// Where a frame goes after the decision. Derived from the Verdict.
enum class Action : uint8_t { drop, to_local, reply_wire, hold };

constexpr Action action_of(Verdict v) noexcept {
    switch (v) {
    case Verdict::accepted:
    case Verdict::accepted_conn:
    case Verdict::default_host_accepted:
    case Verdict::passed_non_vip: return Action::to_local;
    case Verdict::arp_replied:
    case Verdict::nd_replied: return Action::reply_wire;
    case Verdict::frag_held: return Action::hold;
    default: return Action::drop;
    }
}

}  // namespace nlbd
