// nlbd-replay-check: proves, packet by packet, what N real nlbd processes
// (one per host of one static cluster) did with the same input capture.
//
// Inputs: the input pcap and manifest written by nlbd-pcapgen, and per host
// its LOCAL_OUT pcap, WIRE_OUT pcap and --stats-json file.
//
// Method: every input frame is unique, and nlbd delivers accepted frames to
// the local port unchanged, so each LOCAL_OUT frame is matched to its input
// frame by its exact bytes. What each host accepted is then compared with the
// manifest's expectation for that frame (see kUsage), group by group, and the
// replies on the wire ports are parsed and checked field by field.
//
// Exit status: 0 = every check passed; 1 = at least one violation (each is
// printed with its frame index and class); 2 = usage or input error.
// --expect-fail inverts 0 and 1 (a negative fixture must be caught).

#include <arpa/inet.h>
#include <pcap/pcap.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <map>
#include <optional>
#include <set>
#include <sstream>
#include <stdexcept>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "mini_json.hpp"
#include "nlbd/core/reasons.hpp"

namespace {

using Bytes = std::string;  // a frame's exact bytes

constexpr const char* kUsage = R"(usage: nlbd-replay-check --in IN.pcap --manifest MANIFEST.tsv
         --host ID:LOCAL_OUT.pcap:WIRE_OUT.pcap:STATS.json  (once per host)
         [--sigma K] [--max-print N] [--expect-fail] [--tamper KIND]

--tamper KIND breaks the real outputs in one known way before checking, to
prove the checker catches it (use with --expect-fail). KIND: modify-frame,
duplicate-frame, reorder-flow, split-group (a frame of a multi-frame group
moves from the first host to the second), drop-reply, extra-reply.

Manifest (TSV, written by nlbd-pcapgen): '#meta mode|members|vip VALUE' and
'#balance RULE HOST:WEIGHT,...' header lines, then one line per input frame:
  index  class  rule  groups  expect  notes
expect: one      exactly one host delivers it to its local port
        none     no host delivers it
        all      every host delivers it
        host=N   host N delivers it, no other host does
        reply    no host delivers it; exactly one ARP reply / ND advertisement
                 for it on the wire, sent by the default host (lowest id)
groups: comma-separated ids ('-' = none); frames sharing an id must never be
        delivered by different hosts. The first id of a frame of a '#balance'
        rule is its affinity key for the balance check. Frames sharing a
        'flow:*' id must also leave each host in input order.
)";

struct ManifestRow {
    size_t index = 0;
    std::string cls;
    std::string rule;
    std::vector<std::string> groups;
    std::string expect;
    std::string notes;
};

struct Manifest {
    std::string mode = "unicast";
    std::vector<int> members;
    std::vector<std::array<uint8_t, 16>> vips4;  // first 4 bytes used
    std::vector<std::array<uint8_t, 16>> vips6;
    std::map<std::string, std::map<int, double>> balance;  // rule -> host -> weight
    std::vector<ManifestRow> rows;
};

struct HostFiles {
    int id = 0;
    std::string local, wire, stats;
};

struct Options {
    std::string in, manifest;
    std::vector<HostFiles> hosts;
    double sigma = 4.0;
    size_t max_print = 60;
    bool expect_fail = false;
    std::string tamper;  // self-test: break the outputs in one way before checking
};

std::vector<std::string> split(std::string_view s, char sep) {
    std::vector<std::string> out;
    size_t start = 0;
    for (;;) {
        size_t p = s.find(sep, start);
        out.emplace_back(s.substr(start, p == std::string_view::npos ? s.npos : p - start));
        if (p == std::string_view::npos) break;
        start = p + 1;
    }
    return out;
}

[[noreturn]] void input_error(const std::string& what) {
    throw std::runtime_error(what);
}

bool parse_ip(const std::string& text, std::array<uint8_t, 16>& out, bool& v6) {
    out.fill(0);
    if (::inet_pton(AF_INET, text.c_str(), out.data()) == 1) {
        v6 = false;
        return true;
    }
    if (::inet_pton(AF_INET6, text.c_str(), out.data()) == 1) {
        v6 = true;
        return true;
    }
    return false;
}

Manifest load_manifest(const std::string& path) {
    std::ifstream f(path);
    if (!f) input_error("cannot open manifest " + path);
    Manifest m;
    std::string line;
    unsigned lineno = 0;
    while (std::getline(f, line)) {
        ++lineno;
        if (line.empty()) continue;
        auto where = [&] { return path + ":" + std::to_string(lineno) + ": "; };
        if (line[0] == '#') {
            std::istringstream is(line);
            std::string tag;
            is >> tag;
            if (tag == "#meta") {
                std::string key, value;
                is >> key >> value;
                if (key == "mode") {
                    m.mode = value;
                } else if (key == "members") {
                    for (const auto& h : split(value, ',')) m.members.push_back(std::stoi(h));
                } else if (key == "vip") {
                    std::array<uint8_t, 16> a;
                    bool v6 = false;
                    if (!parse_ip(value, a, v6)) input_error(where() + "bad vip '" + value + "'");
                    (v6 ? m.vips6 : m.vips4).push_back(a);
                }
            } else if (tag == "#balance") {
                std::string rule, weights;
                is >> rule >> weights;
                for (const auto& hw : split(weights, ',')) {
                    auto p = split(hw, ':');
                    if (p.size() != 2) input_error(where() + "bad #balance weight '" + hw + "'");
                    m.balance[rule][std::stoi(p[0])] = std::stod(p[1]);
                }
            }
            continue;
        }
        auto cols = split(line, '\t');
        if (cols.size() < 5) input_error(where() + "expected at least 5 tab-separated columns");
        if (cols[0] == "index") continue;  // column header
        ManifestRow r;
        r.index = std::stoul(cols[0]);
        if (r.index != m.rows.size())
            input_error(where() + "frame index " + cols[0] + " out of sequence");
        r.cls = cols[1];
        r.rule = cols[2];
        if (cols[3] != "-") r.groups = split(cols[3], ',');
        r.expect = cols[4];
        if (cols.size() > 5) r.notes = cols[5];
        m.rows.push_back(std::move(r));
    }
    if (m.members.empty()) input_error(path + ": no '#meta members' line");
    return m;
}

std::vector<Bytes> read_pcap(const std::string& path) {
    char err[PCAP_ERRBUF_SIZE] = {};
    pcap_t* p = pcap_open_offline(path.c_str(), err);
    if (p == nullptr) input_error("cannot read pcap " + path + ": " + err);
    std::vector<Bytes> frames;
    pcap_pkthdr* h = nullptr;
    const u_char* data = nullptr;
    int rc;
    while ((rc = pcap_next_ex(p, &h, &data)) == 1) {
        if (h->caplen != h->len)
            std::fprintf(stderr, "warning: %s: frame %zu captured %u of %u bytes\n", path.c_str(),
                         frames.size(), h->caplen, h->len);
        frames.emplace_back(reinterpret_cast<const char*>(data), h->caplen);
    }
    if (rc == -1) {
        std::string e = pcap_geterr(p);
        pcap_close(p);
        input_error("error reading " + path + ": " + e);
    }
    pcap_close(p);
    return frames;
}

// ---- violations -------------------------------------------------------------

struct Violations {
    size_t max_print = 60;
    size_t count = 0;
    std::map<std::string, size_t> by_kind;

    void add(const std::string& kind, const std::string& detail) {
        ++count;
        ++by_kind[kind];
        if (count <= max_print) std::printf("VIOLATION %-26s %s\n", kind.c_str(), detail.c_str());
        else if (count == max_print + 1) std::printf("VIOLATION ... (further violations counted, not printed)\n");
    }
};

std::string frame_ref(const ManifestRow& r) {
    return "frame " + std::to_string(r.index) + " [" + r.cls + "]";
}

std::string hosts_str(uint64_t mask) {
    if (mask == 0) return "{}";
    std::string s = "{";
    for (int h = 1; h <= 64; ++h)
        if (mask & (uint64_t{1} << (h - 1))) {
            if (s.size() > 1) s.push_back(',');
            s.append(std::to_string(h));
        }
    s.push_back('}');
    return s;
}

// ---- wire replies -----------------------------------------------------------

uint16_t rd16(const Bytes& b, size_t o) {
    return static_cast<uint16_t>((static_cast<uint8_t>(b[o]) << 8) | static_cast<uint8_t>(b[o + 1]));
}

struct L2 {
    size_t l3 = 0;
    uint16_t ethertype = 0;
    std::vector<uint16_t> vlans;  // TCI & 0x0fff, outer first
    bool ok = false;
};

L2 parse_l2(const Bytes& b) {
    L2 l;
    if (b.size() < 14) return l;
    size_t o = 12;
    uint16_t et = rd16(b, o);
    while ((et == 0x8100 || et == 0x88a8) && b.size() >= o + 6) {
        l.vlans.push_back(rd16(b, o + 2) & 0x0fff);
        o += 4;
        et = rd16(b, o);
    }
    l.ethertype = et;
    l.l3 = o + 2;
    l.ok = b.size() >= l.l3;
    return l;
}

std::string mac_str(const Bytes& b, size_t o) {
    char s[18];
    std::snprintf(s, sizeof s, "%02x-%02x-%02x-%02x-%02x-%02x", static_cast<uint8_t>(b[o]),
                  static_cast<uint8_t>(b[o + 1]), static_cast<uint8_t>(b[o + 2]),
                  static_cast<uint8_t>(b[o + 3]), static_cast<uint8_t>(b[o + 4]),
                  static_cast<uint8_t>(b[o + 5]));
    return s;
}

std::string ip_str(const Bytes& b, size_t o, bool v6) {
    char s[64];
    if (!v6) {
        std::snprintf(s, sizeof s, "%u.%u.%u.%u", static_cast<uint8_t>(b[o]), static_cast<uint8_t>(b[o + 1]),
                      static_cast<uint8_t>(b[o + 2]), static_cast<uint8_t>(b[o + 3]));
        return s;
    }
    std::string r;
    for (int i = 0; i < 8; ++i) {
        std::snprintf(s, sizeof s, "%s%x", i ? ":" : "", rd16(b, o + 2 * i));
        r += s;
    }
    return r;
}

// Expected MACs (SPEC §3), computed here independently of the engine.
std::string cluster_mac(const Manifest& m) {
    const auto& v = m.vips4.at(0);
    char s[18];
    if (m.mode == "igmp")
        std::snprintf(s, sizeof s, "01-00-5e-7f-%02x-%02x", v[2], v[3]);
    else
        std::snprintf(s, sizeof s, "%02x-bf-%02x-%02x-%02x-%02x", m.mode == "multicast" ? 3 : 2, v[0], v[1],
                      v[2], v[3]);
    return s;
}
std::string unicast_source_mac(const Manifest& m, int host) {
    const auto& v = m.vips4.at(0);
    char s[18];
    std::snprintf(s, sizeof s, "02-%02x-%02x-%02x-%02x-%02x", host, v[0], v[1], v[2], v[3]);
    return s;
}

// Internet checksum over the IPv6 pseudo-header and an ICMPv6 message.
uint16_t icmp6_checksum(const Bytes& b, size_t ip6, size_t icmp, size_t len) {
    uint32_t sum = 0;
    auto add = [&](size_t o, size_t n) {
        for (size_t i = 0; i + 1 < n; i += 2) sum += rd16(b, o + i);
        if (n & 1) sum += static_cast<uint8_t>(b[o + n - 1]) << 8;
    };
    add(ip6 + 8, 32);
    sum += static_cast<uint32_t>(len >> 16) + static_cast<uint32_t>(len & 0xffff);
    sum += 58;
    add(icmp, len);
    while (sum >> 16) sum = (sum & 0xffff) + (sum >> 16);
    return static_cast<uint16_t>(~sum & 0xffff);
}

// What a request for a VIP (from the input) asks for, to match replies to it.
struct Request {
    size_t frame = 0;
    bool v6 = false;
    std::string requester_mac;
    std::string requester_ip;
    std::string target_ip;
    std::vector<uint16_t> vlans;
};

struct Reply {
    int host = 0;
    size_t wire_index = 0;
    bool v6 = false;
    std::string key;  // requester_ip|target_ip
};

// Parses a request frame of the input (class arp_*/nd_*).
bool parse_request(const Bytes& b, Request& r) {
    L2 l = parse_l2(b);
    if (!l.ok) return false;
    r.vlans = l.vlans;
    if (l.ethertype == 0x0806 && b.size() >= l.l3 + 28) {
        r.v6 = false;
        r.requester_mac = mac_str(b, l.l3 + 8);
        r.requester_ip = ip_str(b, l.l3 + 14, false);
        r.target_ip = ip_str(b, l.l3 + 24, false);
        return true;
    }
    if (l.ethertype == 0x86dd && b.size() >= l.l3 + 40 + 24) {
        r.v6 = true;
        r.requester_mac = mac_str(b, 6);
        r.requester_ip = ip_str(b, l.l3 + 8, true);
        r.target_ip = ip_str(b, l.l3 + 40 + 8, true);
        return true;
    }
    return false;
}

// ---- stats ------------------------------------------------------------------

struct HostStats {
    bool loaded = false;
    std::map<std::string, uint64_t> verdicts;
    std::map<std::string, uint64_t> parse_errors;
    std::string verdict_path, parse_error_path;
    std::optional<uint64_t> rx_total;
};

// Finds the shallowest object under `key` whose members are all counters.
const nlbd::tools::JsonValue* find_counter_object(const nlbd::tools::JsonValue& v, std::string_view key,
                                                   std::string path, std::string& found_path,
                                                   unsigned depth = 0, unsigned* best_depth = nullptr) {
    using T = nlbd::tools::JsonValue::Type;
    unsigned local_best = ~0u;
    if (best_depth == nullptr) best_depth = &local_best;
    const nlbd::tools::JsonValue* best = nullptr;
    if (v.type != T::object) {
        if (v.type == T::array)
            for (size_t i = 0; i < v.arr.size(); ++i) {
                std::string p;
                auto* r = find_counter_object(v.arr[i], key, path + "[" + std::to_string(i) + "]", p, depth + 1,
                                              best_depth);
                if (r) {
                    best = r;
                    found_path = p;
                }
            }
        return best;
    }
    for (const auto& [k, child] : v.obj) {
        std::string p = path + "." + k;
        if (k == key && child.type == T::object && depth < *best_depth) {
            bool counters = !child.obj.empty();
            for (const auto& [ck, cv] : child.obj) counters = counters && cv.is_uint;
            if (counters) {
                best = &child;
                *best_depth = depth;
                found_path = p;
                continue;
            }
        }
        std::string fp;
        auto* r = find_counter_object(child, key, p, fp, depth + 1, best_depth);
        if (r) {
            best = r;
            found_path = fp;
        }
    }
    return best;
}

HostStats load_stats(const std::string& path, Violations& viol, int host) {
    HostStats hs;
    std::ifstream f(path);
    if (!f) {
        viol.add("stats_missing", "host " + std::to_string(host) + ": cannot open " + path);
        return hs;
    }
    std::stringstream ss;
    ss << f.rdbuf();
    nlbd::tools::JsonValue doc;
    try {
        doc = nlbd::tools::parse_json(ss.str());
    } catch (const std::exception& e) {
        viol.add("stats_bad_json", "host " + std::to_string(host) + ": " + path + ": " + e.what());
        return hs;
    }
    auto* v = find_counter_object(doc, "verdicts", "", hs.verdict_path);
    auto* p = find_counter_object(doc, "parse_errors", "", hs.parse_error_path);
    if (v == nullptr || p == nullptr) {
        viol.add("stats_no_counters", "host " + std::to_string(host) + ": " + path +
                                          " has no 'verdicts' and 'parse_errors' counter objects");
        return hs;
    }
    for (const auto& [k, c] : v->obj) hs.verdicts[k] += c.u;
    if (const auto* rx = doc.get("rx_total"); rx != nullptr && rx->is_uint) hs.rx_total = rx->u;
    for (const auto& [k, c] : p->obj) hs.parse_errors[k] += c.u;
    hs.loaded = true;
    return hs;
}

uint64_t get(const std::map<std::string, uint64_t>& m, std::string_view k) {
    auto it = m.find(std::string(k));
    return it == m.end() ? 0 : it->second;
}

// ---- self-test tampering ------------------------------------------------------

// Index in `local` of the first frame whose flow group has an earlier frame in
// `local` too (so moving/swapping it is visible), or npos.
size_t second_frame_of_a_flow(const std::vector<Bytes>& local,
                              const std::unordered_map<Bytes, size_t>& index_of, const Manifest& man,
                              size_t* first = nullptr) {
    std::unordered_map<std::string, size_t> seen;
    for (size_t j = 0; j < local.size(); ++j) {
        auto it = index_of.find(local[j]);
        if (it == index_of.end()) continue;
        for (const auto& g : man.rows[it->second].groups)
            if (g.rfind("flow:", 0) == 0) {
                if (auto f = seen.find(g); f != seen.end()) {
                    if (first) *first = f->second;
                    return j;
                }
                seen.emplace(g, j);
            }
    }
    return std::string::npos;
}

void tamper_local(const std::string& kind, size_t host_pos, std::vector<Bytes>& local, Bytes& moved,
                  const std::unordered_map<Bytes, size_t>& index_of, const Manifest& man) {
    if (local.empty()) return;
    if (host_pos == 0 && kind == "modify-frame") {
        local[0].back() = static_cast<char>(local[0].back() ^ 0x5a);
    } else if (host_pos == 0 && kind == "duplicate-frame") {
        local.push_back(local[local.size() / 2]);
    } else if (host_pos == 0 && kind == "reorder-flow") {
        size_t first = 0, second = second_frame_of_a_flow(local, index_of, man, &first);
        if (second != std::string::npos) std::swap(local[first], local[second]);
    } else if (host_pos == 0 && kind == "split-group") {
        size_t second = second_frame_of_a_flow(local, index_of, man);
        if (second != std::string::npos) {
            moved = local[second];
            local.erase(local.begin() + static_cast<std::ptrdiff_t>(second));
        }
    } else if (host_pos == 1 && kind == "split-group" && !moved.empty()) {
        local.push_back(moved);
    }
}

void tamper_wire(const std::string& kind, size_t host_pos, std::vector<Bytes>& wire) {
    if (host_pos != 0 || wire.empty()) return;
    if (kind == "drop-reply") wire.pop_back();
    else if (kind == "extra-reply") wire.push_back(wire.front());
}

// ---- main check ---------------------------------------------------------------

int run(const Options& opt) {
    Violations viol;
    viol.max_print = opt.max_print;

    const Manifest man = load_manifest(opt.manifest);
    const std::vector<Bytes> input = read_pcap(opt.in);
    if (input.size() != man.rows.size())
        input_error("input has " + std::to_string(input.size()) + " frames, manifest " +
                    std::to_string(man.rows.size()));
    const size_t n = input.size();

    std::unordered_map<Bytes, size_t> index_of;
    index_of.reserve(n * 2);
    for (size_t i = 0; i < n; ++i) {
        auto [it, fresh] = index_of.emplace(input[i], i);
        if (!fresh)
            input_error("input frames " + std::to_string(it->second) + " and " + std::to_string(i) +
                        " are identical: frames must be unique to be matched");
    }

    std::vector<int> members = man.members;
    std::sort(members.begin(), members.end());
    const int default_host = members.front();
    uint64_t all_mask = 0;
    for (int h : members) all_mask |= uint64_t{1} << (h - 1);
    {
        std::set<int> given;
        for (const auto& h : opt.hosts) given.insert(h.id);
        for (int h : members)
            if (!given.count(h))
                viol.add("host_missing", "member host " + std::to_string(h) + " has no output files");
    }

    std::printf("nlbd-replay-check: %zu input frames, %zu hosts, members %s, mode %s, default host %d\n\n",
                n, opt.hosts.size(), hosts_str(all_mask).c_str(), man.mode.c_str(), default_host);

    // Who delivered each input frame to its local port.
    std::vector<uint64_t> delivered(n, 0);
    std::map<int, size_t> local_count, wire_count;
    std::vector<Reply> replies;
    std::map<int, size_t> replies_by_host;
    std::map<int, std::map<std::string, size_t>> wire_other;  // host -> kind -> count

    // Requests for VIPs and other ARP/ND, from the input.
    std::map<std::string, Request> requests;   // key requester_ip|target_ip -> request (expect=reply)
    std::set<std::string> other_requests;      // ARP/ND not for a VIP
    for (const auto& r : man.rows) {
        if (r.cls.rfind("arp_", 0) != 0 && r.cls.rfind("nd_", 0) != 0) continue;
        Request q;
        q.frame = r.index;
        if (!parse_request(input[r.index], q)) input_error(frame_ref(r) + ": not a parsable ARP/NS request");
        std::string key = q.requester_ip + "|" + q.target_ip;
        if (r.expect == "reply") requests[key] = q;
        else other_requests.insert(key);
    }

    uint8_t cluster_mac_bytes[6] = {};
    {
        const std::string cm = cluster_mac(man);
        for (int k = 0; k < 6; ++k)
            cluster_mac_bytes[k] = static_cast<uint8_t>(std::stoul(cm.substr(3 * k, 2), nullptr, 16));
    }
    if (!opt.tamper.empty()) std::printf("SELF-TEST: outputs tampered with: %s\n\n", opt.tamper.c_str());
    Bytes moved;  // split-group: the frame moved from the first host to the second
    for (size_t hp = 0; hp < opt.hosts.size(); ++hp) {
        const auto& hf = opt.hosts[hp];
        const uint64_t bit = uint64_t{1} << (hf.id - 1);
        std::vector<Bytes> local;
        try {
            local = read_pcap(hf.local);
        } catch (const std::exception& e) {
            viol.add("output_missing", "host " + std::to_string(hf.id) + ": " + e.what());
        }
        // Multicast/igmp modes: a frame the input addressed to the
        // (multicast) cluster MAC is delivered readdressed to the local
        // port's own unicast MAC, or the host stack would drop it. Undo that
        // here (only for unicast destinations) so frames match the input.
        if (man.mode != "unicast") {
            for (Bytes& f : local) {
                if (f.size() >= 6 && std::equal(f.begin(), f.begin() + 6, cluster_mac_bytes,
                                                [](auto a, uint8_t b) { return static_cast<uint8_t>(a) == b; }))
                    viol.add("local_not_readdressed",
                             "host " + std::to_string(hf.id) +
                                 " delivered a frame to its local port still addressed to the multicast cluster MAC");
                if (f.size() < 6 || (f[0] & 1) != 0 || index_of.count(f) != 0) continue;
                Bytes orig = f;
                for (int k = 0; k < 6; ++k) orig[k] = static_cast<typename Bytes::value_type>(cluster_mac_bytes[k]);
                if (index_of.count(orig) != 0) f = std::move(orig);
            }
        }
        if (!opt.tamper.empty()) tamper_local(opt.tamper, hp, local, moved, index_of, man);
        local_count[hf.id] = local.size();
        // Frames of one flow (group "flow:*", unfragmented TCP exchanges)
        // leave in input order: a worker must not reorder a flow.
        std::unordered_map<std::string, size_t> last_of_flow;
        for (size_t j = 0; j < local.size(); ++j) {
            auto it = index_of.find(local[j]);
            if (it == index_of.end()) {
                viol.add("local_unknown_frame", "host " + std::to_string(hf.id) + " local frame " +
                                                    std::to_string(j) + " (" + std::to_string(local[j].size()) +
                                                    " bytes) matches no input frame: modified or invented");
                continue;
            }
            const auto& row = man.rows[it->second];
            if (delivered[it->second] & bit)
                viol.add("local_duplicate", frame_ref(row) + " delivered twice by host " + std::to_string(hf.id));
            delivered[it->second] |= bit;
            for (const auto& g : row.groups) {
                if (g.rfind("flow:", 0) != 0) continue;
                auto [it2, fresh] = last_of_flow.emplace(g, row.index);
                if (!fresh) {
                    if (it2->second > row.index)
                        viol.add("local_reordered", frame_ref(row) + " left host " + std::to_string(hf.id) +
                                                        " after frame " + std::to_string(it2->second) + " of " + g);
                    it2->second = std::max(it2->second, row.index);
                }
            }
        }

        std::vector<Bytes> wire;
        try {
            wire = read_pcap(hf.wire);
        } catch (const std::exception& e) {
            viol.add("output_missing", "host " + std::to_string(hf.id) + ": " + e.what());
        }
        if (!opt.tamper.empty()) tamper_wire(opt.tamper, hp, wire);
        wire_count[hf.id] = wire.size();
        for (size_t j = 0; j < wire.size(); ++j) {
            const Bytes& b = wire[j];
            std::string where = "host " + std::to_string(hf.id) + " wire frame " + std::to_string(j);
            if (auto it = index_of.find(b); it != index_of.end()) {
                viol.add("wire_reflected", where + " is input " + frame_ref(man.rows[it->second]) +
                                               " sent back to the wire");
                continue;
            }
            L2 l = parse_l2(b);
            if (!l.ok) {
                viol.add("wire_garbage", where + ": shorter than an Ethernet header");
                continue;
            }
            bool is_arp_reply = l.ethertype == 0x0806 && b.size() >= l.l3 + 28 && rd16(b, l.l3 + 6) == 2;
            bool is_na = l.ethertype == 0x86dd && b.size() >= l.l3 + 40 + 24 &&
                         static_cast<uint8_t>(b[l.l3 + 6]) == 58 && static_cast<uint8_t>(b[l.l3 + 40]) == 136;
            if (!is_arp_reply && !is_na) {
                char kind[32];
                std::snprintf(kind, sizeof kind, "ethertype 0x%04x", l.ethertype);
                ++wire_other[hf.id][kind];
                continue;
            }
            Reply rep;
            rep.host = hf.id;
            rep.wire_index = j;
            rep.v6 = is_na;
            std::vector<std::string> bad;
            std::string cmac = cluster_mac(man);
            std::string src_mac = mac_str(b, 6);
            if (man.mode == "unicast" && src_mac != unicast_source_mac(man, hf.id))
                bad.push_back("unicast source MAC " + src_mac + " != " + unicast_source_mac(man, hf.id));
            if (static_cast<uint8_t>(b[6]) & 1) bad.push_back("multicast source MAC " + src_mac);
            std::string dst_mac = mac_str(b, 0);
            if (is_arp_reply) {
                size_t a = l.l3;
                if (rd16(b, a) != 1 || rd16(b, a + 2) != 0x0800 || b[a + 4] != 6 || b[a + 5] != 4)
                    bad.push_back("ARP htype/ptype/hlen/plen not Ethernet/IPv4");
                std::string sha = mac_str(b, a + 8), spa = ip_str(b, a + 14, false);
                std::string tha = mac_str(b, a + 18), tpa = ip_str(b, a + 24, false);
                if (sha != cmac) bad.push_back("sender MAC " + sha + " != cluster MAC " + cmac);
                rep.key = tpa + "|" + spa;
                if (auto q = requests.find(rep.key); q != requests.end()) {
                    if (tha != q->second.requester_mac) bad.push_back("target MAC " + tha + " != requester");
                    if (dst_mac != q->second.requester_mac) bad.push_back("dst MAC " + dst_mac + " != requester");
                    if (l.vlans != q->second.vlans) bad.push_back("VLAN tags differ from the request's");
                }
            } else {
                size_t ip = l.l3, ic = l.l3 + 40;
                size_t plen = rd16(b, ip + 4);
                if (b.size() < ic + plen || plen < 24) {
                    bad.push_back("IPv6 payload length " + std::to_string(plen) + " exceeds frame");
                    plen = std::min(plen, b.size() - ic);
                }
                if (static_cast<uint8_t>(b[ip + 7]) != 255) bad.push_back("hop limit != 255");
                if (icmp6_checksum(b, ip, ic, plen) != 0) bad.push_back("bad ICMPv6 checksum");
                if (!(static_cast<uint8_t>(b[ic + 4]) & 0x40)) bad.push_back("solicited flag not set");
                std::string target = ip_str(b, ic + 8, true);
                std::string dst_ip = ip_str(b, ip + 24, true);
                bool tll_ok = false;
                for (size_t o = ic + 24; o + 8 <= ic + plen;) {
                    uint8_t type = static_cast<uint8_t>(b[o]), len8 = static_cast<uint8_t>(b[o + 1]);
                    if (len8 == 0) break;
                    if (type == 2 && mac_str(b, o + 2) == cmac) tll_ok = true;
                    o += len8 * 8u;
                }
                if (!tll_ok) bad.push_back("no target link-layer option with cluster MAC " + cmac);
                rep.key = dst_ip + "|" + target;
                if (auto q = requests.find(rep.key); q != requests.end()) {
                    if (dst_mac != q->second.requester_mac) bad.push_back("dst MAC " + dst_mac + " != requester");
                    if (l.vlans != q->second.vlans) bad.push_back("VLAN tags differ from the request's");
                }
            }
            for (const auto& e : bad) viol.add(is_na ? "nd_reply_malformed" : "arp_reply_malformed", where + ": " + e);
            ++replies_by_host[hf.id];
            replies.push_back(rep);
        }
    }

    // Replies: exactly one per VIP request, from the default host; none otherwise.
    std::map<std::string, std::vector<const Reply*>> replies_for;
    for (const auto& r : replies) replies_for[r.key].push_back(&r);
    for (const auto& [key, q] : requests) {
        const auto& row = man.rows[q.frame];
        auto it = replies_for.find(key);
        size_t cnt = it == replies_for.end() ? 0 : it->second.size();
        if (cnt != 1)
            viol.add(q.v6 ? "nd_reply_count" : "arp_reply_count",
                     frame_ref(row) + " (" + q.target_ip + "): " + std::to_string(cnt) + " replies, expected 1");
        if (it != replies_for.end())
            for (const Reply* r : it->second)
                if (r->host != default_host)
                    viol.add("reply_not_default_host", frame_ref(row) + ": reply sent by host " +
                                                           std::to_string(r->host) + ", default host is " +
                                                           std::to_string(default_host));
    }
    for (const auto& r : replies)
        if (!requests.count(r.key))
            viol.add(other_requests.count(r.key) ? "reply_for_non_vip" : "reply_unsolicited",
                     "host " + std::to_string(r.host) + " wire frame " + std::to_string(r.wire_index) + " (" +
                         r.key + ")");

    // Per-frame expectations and group consistency.
    struct ClassRow {
        size_t frames = 0;
        std::string expect;
        std::map<int, size_t> per_host;
        size_t violations = 0;
    };
    std::map<std::string, ClassRow> classes;
    std::map<std::string, std::pair<uint64_t, size_t>> group_owner;  // group -> (host mask, first frame)
    for (const auto& r : man.rows) {
        const uint64_t d = delivered[r.index];
        auto& cr = classes[r.cls];
        ++cr.frames;
        if (cr.expect.empty()) cr.expect = r.expect;
        else if (cr.expect != r.expect && cr.expect.find(r.expect) == std::string::npos)
            cr.expect += "/" + r.expect;
        for (int h : members)
            if (d & (uint64_t{1} << (h - 1))) ++cr.per_host[h];
        const int pop = __builtin_popcountll(d);
        std::string problem;
        if (r.expect == "one") {
            if (pop != 1) problem = "delivered by " + std::to_string(pop) + " hosts " + hosts_str(d) + ", expected exactly one";
        } else if (r.expect == "none" || r.expect == "reply") {
            if (pop != 0) problem = "delivered by " + hosts_str(d) + ", expected by none";
        } else if (r.expect == "all") {
            if (d != all_mask) problem = "delivered by " + hosts_str(d) + ", expected by all " + hosts_str(all_mask);
        } else if (r.expect.rfind("host=", 0) == 0) {
            int h = std::stoi(r.expect.substr(5));
            uint64_t want = uint64_t{1} << (h - 1);
            if (d != want) problem = "delivered by " + hosts_str(d) + ", expected by host " + std::to_string(h) + " only";
        } else {
            input_error(frame_ref(r) + ": unknown expectation '" + r.expect + "'");
        }
        if (!problem.empty()) {
            ++cr.violations;
            viol.add("expect_" + (r.expect.rfind("host=", 0) == 0 ? std::string("host") : r.expect),
                     frame_ref(r) + " " + problem + (r.notes.empty() ? "" : "  (" + r.notes + ")"));
        }
        if (d == 0) continue;
        for (const auto& g : r.groups) {
            auto [it, fresh] = group_owner.emplace(g, std::make_pair(d, r.index));
            if (!fresh && it->second.first != d) {
                ++cr.violations;
                viol.add("group_split", frame_ref(r) + " group " + g + " delivered by " + hosts_str(d) +
                                            " but frame " + std::to_string(it->second.second) + " of the group by " +
                                            hosts_str(it->second.first));
            }
        }
    }

    std::printf("%-26s %-9s %7s", "class", "expect", "frames");
    for (int h : members) std::printf("  host%-3d", h);
    std::printf("  %s\n", "violations");
    for (const auto& [name, cr] : classes) {
        std::printf("%-26s %-9s %7zu", name.c_str(), cr.expect.c_str(), cr.frames);
        for (int h : members) {
            auto it = cr.per_host.find(h);
            std::printf("  %7zu", it == cr.per_host.end() ? size_t{0} : it->second);
        }
        std::printf("  %zu\n", cr.violations);
    }

    std::printf("\n%-6s %12s %12s %9s %s\n", "host", "local_out", "wire_out", "replies", "other wire frames");
    for (const auto& hf : opt.hosts) {
        std::string other;
        for (const auto& [k, c] : wire_other[hf.id]) other += k + " x" + std::to_string(c) + " ";
        std::printf("%-6d %12zu %12zu %9zu %s\n", hf.id, local_count[hf.id], wire_count[hf.id],
                    replies_by_host[hf.id], other.empty() ? "-" : other.c_str());
    }

    // Balance: per rule, each host's share of distinct affinity keys.
    std::printf("\nbalance (share of distinct affinity keys; bound = expected share +- %.1f sigma, "
                "sigma = sqrt(p(1-p)/keys))\n",
                opt.sigma);
    std::printf("%-14s %6s", "rule", "keys");
    for (int h : members) std::printf("  %-22s", ("host" + std::to_string(h) + " share [bound]").c_str());
    std::printf("\n");
    std::map<std::string, std::map<std::string, uint64_t>> key_owner;  // rule -> key -> mask
    for (const auto& r : man.rows) {
        if (!man.balance.count(r.rule) || r.groups.empty() || r.expect != "one") continue;
        if (__builtin_popcountll(delivered[r.index]) != 1) continue;  // already a violation
        key_owner[r.rule][r.groups.front()] |= delivered[r.index];
    }
    // Aggregate over the equal-weight rules (each rule hashes with its own seed).
    std::map<int, size_t> total_keys_by_host;
    size_t total_keys = 0, equal_rules = 0;
    for (const auto& [rule, weights] : man.balance) {
        double wsum = 0;
        for (const auto& [h, w] : weights) wsum += w;
        std::map<int, size_t> cnt;
        const auto& keys = key_owner[rule];
        for (const auto& [k, mask] : keys)
            for (int h : members)
                if (mask & (uint64_t{1} << (h - 1))) ++cnt[h];
        const size_t nk = keys.size();
        std::printf("%-14s %6zu", rule.c_str(), nk);
        if (nk == 0) {
            viol.add("balance_no_keys", "rule " + rule + ": no accepted affinity keys");
            std::printf("\n");
            continue;
        }
        bool equal = true;
        for (const auto& [h, w] : weights) equal = equal && w == weights.begin()->second;
        for (int h : members) {
            double p = weights.count(h) ? weights.at(h) / wsum : 0.0;
            double share = static_cast<double>(cnt[h]) / static_cast<double>(nk);
            double bound = opt.sigma * std::sqrt(p * (1 - p) / static_cast<double>(nk));
            bool ok = std::fabs(share - p) <= bound + 1e-12;
            char cell[64];
            std::snprintf(cell, sizeof cell, "%5.1f%% [%4.1f..%4.1f]%s", 100 * share, 100 * (p - bound),
                          100 * (p + bound), ok ? "" : " !");
            std::printf("  %-22s", cell);
            if (!ok) {
                char d[160];
                std::snprintf(d, sizeof d, "rule %s host %d: %.2f%% of %zu keys, expected %.2f%% +- %.2f%%",
                              rule.c_str(), h, 100 * share, nk, 100 * p, 100 * bound);
                viol.add("balance", d);
            }
            if (equal) total_keys_by_host[h] += cnt[h];
        }
        if (equal) {
            total_keys += nk;
            ++equal_rules;
        }
        std::printf("\n");
    }
    if (total_keys > 0 && equal_rules > 1) {
        double p = 1.0 / static_cast<double>(members.size());
        double bound = opt.sigma * std::sqrt(p * (1 - p) / static_cast<double>(total_keys));
        std::printf("%-14s %6zu", "(equal rules)", total_keys);
        for (int h : members) {
            double share = static_cast<double>(total_keys_by_host[h]) / static_cast<double>(total_keys);
            bool ok = std::fabs(share - p) <= bound;
            char cell[64];
            std::snprintf(cell, sizeof cell, "%5.1f%% [%4.1f..%4.1f]%s", 100 * share, 100 * (p - bound),
                          100 * (p + bound), ok ? "" : " !");
            std::printf("  %-22s", cell);
            if (!ok) viol.add("balance", "equal-weight rules: host " + std::to_string(h) + " share out of bound");
        }
        std::printf("\n");
    }

    // Stats: each host counted every input frame under exactly one verdict.
    size_t malformed = 0;
    std::map<std::string, uint64_t> expected_errors;  // from "parse_error=NAME" in notes
    for (const auto& r : man.rows) {
        if (r.cls.rfind("malformed", 0) != 0) continue;
        ++malformed;
        if (auto p = r.notes.find("parse_error="); p != std::string::npos) {
            std::string name = r.notes.substr(p + 12, r.notes.find(' ', p) - (p + 12));
            bool known = false;
            for (unsigned i = 0; i < nlbd::kParseErrorCount; ++i)
                known = known || nlbd::name_of(static_cast<nlbd::ParseError>(i)) == name;
            if (!known) input_error(frame_ref(r) + ": unknown parse error '" + name + "'");
            ++expected_errors[name];
        }
    }
    std::printf("\nstats (frames in input %zu, malformed in manifest %zu)\n", n, malformed);
    std::printf("%-6s %10s %10s %10s %10s %10s %10s\n", "host", "verdicts", "to_local", "replied", "malformed",
                "parse_err", "frag_held");
    for (const auto& hf : opt.hosts) {
        HostStats hs = load_stats(hf.stats, viol, hf.id);
        if (!hs.loaded) continue;
        uint64_t total = 0, perr = 0;
        for (const auto& [k, c] : hs.verdicts) total += c;
        for (const auto& [k, c] : hs.parse_errors)
            if (k != "none") perr += c;
        for (const auto& [k, c] : hs.verdicts) {
            bool known = false;
            for (unsigned i = 0; i < nlbd::kVerdictCount; ++i)
                known = known || nlbd::name_of(static_cast<nlbd::Verdict>(i)) == k;
            if (!known) viol.add("stats_unknown_verdict", "host " + std::to_string(hf.id) + ": '" + k + "'");
        }
        const uint64_t to_local = get(hs.verdicts, "accepted") + get(hs.verdicts, "default_host_accepted") +
                                  get(hs.verdicts, "passed_non_vip");
        const uint64_t replied = get(hs.verdicts, "arp_replied") + get(hs.verdicts, "nd_replied");
        const uint64_t held = get(hs.verdicts, "frag_held");
        const uint64_t mal = get(hs.verdicts, "malformed");
        std::printf("%-6d %10lu %10lu %10lu %10lu %10lu %10lu\n", hf.id, static_cast<unsigned long>(total),
                    static_cast<unsigned long>(to_local), static_cast<unsigned long>(replied),
                    static_cast<unsigned long>(mal), static_cast<unsigned long>(perr),
                    static_cast<unsigned long>(held));
        const std::string h = "host " + std::to_string(hf.id) + ": ";
        // Every received frame is counted once, under its final verdict
        // (fragments still held at exit under frag_held).
        if (total != n)
            viol.add("stats_total", h + "verdicts total " + std::to_string(total) + " != " + std::to_string(n) +
                                        " input frames");
        if (hs.rx_total && *hs.rx_total != n)
            viol.add("stats_rx_total", h + "rx_total " + std::to_string(*hs.rx_total) + " != " + std::to_string(n) +
                                           " input frames");
        if (mal != malformed)
            viol.add("stats_malformed", h + "malformed verdicts " + std::to_string(mal) + " != " +
                                            std::to_string(malformed) + " malformed frames in input");
        if (perr != malformed)
            viol.add("stats_parse_errors", h + "parse errors " + std::to_string(perr) + " != " +
                                               std::to_string(malformed) + " malformed frames in input");
        for (const auto& [name, want] : expected_errors)
            if (get(hs.parse_errors, name) != want)
                viol.add("stats_parse_error_reason", h + "parse_errors." + name + " = " +
                                                         std::to_string(get(hs.parse_errors, name)) + ", expected " +
                                                         std::to_string(want));
        if (to_local != local_count[hf.id])
            viol.add("stats_to_local", h + "to-local verdicts " + std::to_string(to_local) + " != " +
                                           std::to_string(local_count[hf.id]) + " frames in its LOCAL_OUT");
        if (replied != replies_by_host[hf.id])
            viol.add("stats_replies", h + "replied verdicts " + std::to_string(replied) + " != " +
                                          std::to_string(replies_by_host[hf.id]) + " replies in its WIRE_OUT");
    }

    std::printf("\n");
    if (viol.count == 0) {
        std::printf("RESULT: PASS (all checks hold for %zu frames x %zu hosts)\n", n, opt.hosts.size());
        return 0;
    }
    std::printf("RESULT: FAIL, %zu violations:", viol.count);
    for (const auto& [k, c] : viol.by_kind) std::printf(" %s=%zu", k.c_str(), c);
    std::printf("\n");
    return 1;
}

}  // namespace

int main(int argc, char** argv) {
    Options opt;
    try {
        for (int i = 1; i < argc; ++i) {
            std::string a = argv[i];
            auto next = [&]() -> std::string {
                if (i + 1 >= argc) input_error(a + " needs a value");
                return argv[++i];
            };
            if (a == "--in") opt.in = next();
            else if (a == "--manifest") opt.manifest = next();
            else if (a == "--sigma") opt.sigma = std::stod(next());
            else if (a == "--max-print") opt.max_print = std::stoul(next());
            else if (a == "--expect-fail") opt.expect_fail = true;
            else if (a == "--tamper") {
                opt.tamper = next();
                static const std::set<std::string> kinds = {"modify-frame", "duplicate-frame", "reorder-flow",
                                                            "split-group", "drop-reply", "extra-reply"};
                if (!kinds.count(opt.tamper)) input_error("unknown --tamper kind '" + opt.tamper + "'");
            }
            else if (a == "--host") {
                auto p = split(next(), ':');
                if (p.size() != 4) input_error("--host wants ID:LOCAL:WIRE:STATS");
                HostFiles h{std::stoi(p[0]), p[1], p[2], p[3]};
                if (h.id < 1 || h.id > 64) input_error("host id " + p[0] + " outside 1..64");
                opt.hosts.push_back(h);
            } else if (a == "-h" || a == "--help") {
                std::fputs(kUsage, stdout);
                return 0;
            } else {
                input_error("unknown argument '" + a + "'");
            }
        }
        if (opt.in.empty() || opt.manifest.empty() || opt.hosts.empty()) input_error("--in, --manifest and --host are required");
        int rc = run(opt);
        if (opt.expect_fail) {
            std::printf("--expect-fail: checker %s\n", rc == 1 ? "caught the fault as it must (exit 0)"
                                                               : "did NOT catch the fault (exit 1)");
            return rc == 1 ? 0 : 1;
        }
        return rc;
    } catch (const std::exception& e) {
        std::fprintf(stderr, "nlbd-replay-check: %s\n%s", e.what(), kUsage);
        return 2;
    }
}
