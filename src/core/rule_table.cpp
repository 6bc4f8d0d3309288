// Port-rule and VIP lookup on the packet path. Reads only the immutable
// snapshot; never allocates. The bodies are in lookup_inline.hpp (decide.cpp
// inlines them).

#include "lookup_inline.hpp"
#include "nlbd/core/snapshot.hpp"

namespace nlbd::core {

uint16_t RuleTable::match(uint16_t vip, uint8_t proto, uint16_t dport) const noexcept {
    return lookup::rule_match(*this, vip, proto, dport);
}

uint32_t detail::vip_slot_hash(const IpAddr& a) noexcept { return lookup::vip_slot_hash(a); }

uint16_t Snapshot::vip_index(const IpAddr& a) const noexcept { return lookup::vip_index(*this, a); }

}  // namespace nlbd::core
