// The port-rule schema (core/rule_schema.hpp): every field of kRuleFields
// parses, reaches its peers as the table says (canonical record through a
// rule-list frame, or the heartbeat's per-rule load byte) and displays back
// to what the file wrote; range and "where it applies" errors come from the
// table; the canonical record's bytes, hash seeds and fingerprint are pinned;
// the docs' key tables are the table's.

#include "nlbd/core/rule_schema.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <string>

#include <unistd.h>

#include "nlbd/cluster/heartbeat.hpp"
#include "nlbd/cluster/membership.hpp"
#include "nlbd/config/config.hpp"
#include "nlbd/config/diff.hpp"
#include "nlbd/config/rule_keys.hpp"
#include "nlbd/core/snapshot.hpp"

#include "temp_dir.hpp"

namespace nlbd {
namespace {

namespace fs = std::filesystem;
using config::ConfigError;

using nlbd::test::TempDir;

const std::string kDynamic = R"([cluster]
name = "mail.ehlo.dk"
vips = ["10.0.0.10", "2001:db8::10"]
[host]
id = 1
)";

const std::string kStatic = R"([cluster]
name = "mail.ehlo.dk"
vips = ["10.0.0.10"]
static_members = [1, 2, 3]
[host]
id = 1
)";

// One value per field that differs from the default rule's, and the other
// keys of its [[port_rule]] that it needs. A field without a sample fails
// EveryFieldHasASample: a new field needs one here.
struct Sample {
    std::string context;  // lines of the same [[port_rule]], before the sample
    std::string value;    // TOML value of the key
    const std::string* base = &kDynamic;
    HealthKind other_check = HealthKind::none;  // a check the key does not apply to (none: any applies)
};

const std::map<std::string_view, Sample>& samples() {
    static const std::map<std::string_view, Sample> s = {
        {"vip", {"", "\"10.0.0.10\""}},
        {"ports", {"", "\"1024-2047\""}},
        {"protocol", {"", "\"udp\""}},
        {"mode", {"", "\"disabled\""}},
        {"affinity", {"", "\"network\""}},
        {"load_weight", {"", "30"}},
        {"handling_priority", {"mode = \"single\"\n", "7"}},
        {"affinity_timeout_s", {"", "600"}},
        {"static_weights", {"load_weight = 20\n", "[20, 30, 50]", &kStatic}},
        {"static_priorities", {"mode = \"single\"\nhandling_priority = 2\n", "[2, 1, 3]", &kStatic}},
        {"health_check", {"ports = 443\n", "\"tls\""}},
        {"health_port", {"ports = 443\nhealth_check = \"tcp\"\n", "8443"}},
        {"health_address", {"ports = 443\nhealth_check = \"tcp\"\n", "\"192.0.2.7\""}},
        {"health_path", {"ports = 443\nhealth_check = \"http\"\n", "\"/owa/healthcheck.htm\"", &kDynamic,
                         HealthKind::tls}},
        {"health_expect_status", {"ports = 443\nhealth_check = \"https\"\n", "[200, 204]", &kDynamic,
                                  HealthKind::tcp}},
        {"health_sni", {"ports = 443\nhealth_check = \"tls\"\n", "\"sni.ehlo.dk\"", &kDynamic, HealthKind::http}},
        {"health_name", {"ports = 443\nhealth_check = \"tls\"\n", "\"cas01.ehlo.dk\"", &kDynamic, HealthKind::tcp}},
        {"health_ca", {"ports = 443\nhealth_check = \"tls\"\n", "\"ca.pem\"", &kDynamic, HealthKind::http}},
        {"health_interval_ms", {"ports = 443\nhealth_check = \"tcp\"\n", "2000"}},
        {"health_timeout_ms", {"ports = 443\nhealth_check = \"tcp\"\n", "700"}},
        {"health_rise", {"ports = 443\nhealth_check = \"tcp\"\n", "5"}},
        {"health_fall", {"ports = 443\nhealth_check = \"tcp\"\n", "4"}},
    };
    return s;
}

const Sample& sample_of(const RuleField& f) {
    static const Sample kNone{"", ""};
    const auto it = samples().find(f.key);
    return it == samples().end() ? kNone : it->second;
}

// Loads base + one [[port_rule]] with context and `key = value`.
config::Config load_rule(const TempDir& dir, const Sample& s, std::string_view key, const std::string& value) {
    dir.write("ca.pem", "not parsed by the config loader\n");
    const std::string text = *s.base + "[[port_rule]]\n" + s.context + std::string(key) + " = " + value + "\n";
    return config::load_config(dir.write("cluster.toml", text), std::nullopt);
}

const HealthCheck& health_of(const config::Config& cfg) {
    static const HealthCheck kNoCheck;
    return cfg.health.empty() ? kNoCheck : cfg.health[0];
}

FieldValue default_value(const RuleField& f) { return f.access.get(default_port_rule(), HealthCheck{}); }

// The text of the error load_config raises, or "" when it loads.
std::string load_error(const TempDir& dir, const Sample& s, std::string_view key, const std::string& value,
                       std::string* error_key = nullptr) {
    try {
        load_rule(dir, s, key, value);
    } catch (const ConfigError& e) {
        if (error_key) *error_key = e.key();
        return e.what();
    }
    return "";
}

TEST(RuleSchema, EveryFieldHasASample) {
    for (const RuleField& f : kRuleFields) EXPECT_TRUE(samples().count(f.key)) << f.key << " has no sample";
    for (const auto& [key, s] : samples())
        EXPECT_LT(size_t(std::find_if(std::begin(kRuleFields), std::end(kRuleFields),
                                      [&](const RuleField& f) { return f.key == key; }) -
                         std::begin(kRuleFields)),
                  std::size(kRuleFields))
            << key << " is not a field";
}

// parse -> canonical record -> rule-list frame on the wire -> record -> the
// same value, for every cluster-wide field; its bytes are its slice of the
// record and nothing else.
TEST(RuleSchema, ClusterWideFieldsRoundTripThroughTheRecordAndARuleListFrame) {
    size_t offset = 0, tested = 0;
    const RuleRecord default_record = rule_record(default_port_rule());
    for (const RuleField& f : kRuleFields) {
        if (f.record == 0) {
            EXPECT_FALSE(cluster_wide(f)) << f.key;
            continue;
        }
        SCOPED_TRACE(std::string(f.key));
        const Sample& s = sample_of(f);
        TempDir dir;
        const config::Config cfg = load_rule(dir, s, f.key, s.value);
        ASSERT_EQ(cfg.rules.size(), 1u);
        const FieldValue parsed = f.access.get(cfg.rules[0], health_of(cfg));
        EXPECT_NE(parsed, default_value(f)) << "the sample must not be the default";

        const RuleRecord rec = rule_record(cfg.rules[0]);
        for (size_t i = 0; i < kRuleRecordLen; ++i) {
            const bool inside = i >= offset && i < offset + f.record;
            if (!inside) {
                EXPECT_EQ(rec[i], default_record[i]) << "byte " << i;
            }
        }
        EXPECT_NE(std::vector<uint8_t>(rec.begin() + offset, rec.begin() + offset + f.record),
                  std::vector<uint8_t>(default_record.begin() + offset, default_record.begin() + offset + f.record));

        cluster::Heartbeat hb;
        hb.cluster_id = 42;
        hb.host = 2;
        hb.state = cluster::HostState::started;
        hb.boot_id = 7;
        hb.sequence = 1;
        hb.buckets = kDefaultBuckets;
        const uint64_t fingerprint = cluster::rules_fingerprint(std::span<const RuleRecord>(&rec, 1));
        hb.rule_list = cluster::RuleList{fingerprint, 0, 1, {rec}};
        const auto frame = cluster::encode_heartbeat(hb, MacAddr{}, MacAddr{}, cluster::kDefaultHeartbeatEthertype,
                                                     cluster::HmacKey{});
        cluster::Heartbeat out;
        ASSERT_EQ(cluster::decode_heartbeat(frame, cluster::kDefaultHeartbeatEthertype, 42, cluster::HmacKey{}, out),
                  cluster::HeartbeatError::none);
        ASSERT_TRUE(out.rule_list && out.rule_list->records.size() == 1);
        const std::optional<PortRule> back = rule_from_record(out.rule_list->records[0]);
        ASSERT_TRUE(back);
        EXPECT_EQ(f.access.get(*back, HealthCheck{}), parsed);
        EXPECT_EQ(rule_record(*back), rec);
        offset += f.record;
        ++tested;
    }
    EXPECT_EQ(offset, kRuleRecordLen);
    EXPECT_GE(tested, 6u);
}

// parse -> membership -> heartbeat on the wire -> the per-rule load byte, for
// every advertised field (weight of a multiple-host rule, priority of a
// single-host one: the byte carries whichever the rule uses).
TEST(RuleSchema, AdvertisedFieldsRoundTripThroughTheHeartbeat) {
    size_t tested = 0;
    for (const RuleField& f : kRuleFields) {
        if (f.scope != Scope::advertised) continue;
        SCOPED_TRACE(std::string(f.key));
        const Sample& s = sample_of(f);
        TempDir dir;
        const config::Config cfg = load_rule(dir, s, f.key, s.value);
        const FieldValue parsed = f.access.get(cfg.rules[0], health_of(cfg));
        ASSERT_NE(parsed, default_value(f));

        cluster::MembershipConfig mc;
        mc.self = cfg.host.id;
        mc.cluster_id = 42;
        mc.boot_id = 7;
        mc.rules = cfg.rules;
        cluster::Membership m(mc, 0);
        const auto frames = m.frames_to_send(m.next_send_ns(), 1);
        const auto hb = std::find_if(frames.begin(), frames.end(),
                                     [](const cluster::Heartbeat& h) { return !h.rule_list; });
        ASSERT_NE(hb, frames.end());
        const auto frame = cluster::encode_heartbeat(*hb, MacAddr{}, MacAddr{}, cluster::kDefaultHeartbeatEthertype,
                                                     cluster::HmacKey{});
        cluster::Heartbeat out;
        ASSERT_EQ(cluster::decode_heartbeat(frame, cluster::kDefaultHeartbeatEthertype, 42, cluster::HmacKey{}, out),
                  cluster::HeartbeatError::none);
        ASSERT_EQ(out.weights.size(), 1u);
        const int64_t load_byte = out.priorities[0] != 0 ? out.priorities[0] : out.weights[0];
        EXPECT_EQ(FieldValue(load_byte), parsed);
        ++tested;
    }
    EXPECT_EQ(tested, 2u);
}

// What params and diffs show is what the file wrote: written() as TOML
// parses back to the same value, for every field.
TEST(RuleSchema, EveryFieldDisplaysAsAValueThatParsesBack) {
    for (const RuleField& f : kRuleFields) {
        SCOPED_TRACE(std::string(f.key));
        const Sample& s = sample_of(f);
        TempDir dir;
        const config::Config cfg = load_rule(dir, s, f.key, s.value);
        const FieldValue parsed = f.access.get(cfg.rules[0], health_of(cfg));
        const std::string shown = config::toml_value(config::written(f, cfg.rules[0], health_of(cfg)));
        TempDir again;
        const config::Config cfg2 = load_rule(again, s, f.key, shown);
        EXPECT_EQ(f.access.get(cfg2.rules[0], health_of(cfg2)), parsed) << shown;
    }
}

// Values just outside the table's range are refused naming the key, with the
// table's "allowed" text; the edges are accepted.
TEST(RuleSchema, RangeErrorsComeFromTheTable) {
    size_t tested = 0;
    for (const RuleField& f : kRuleFields) {
        const bool ranged = f.type == FieldType::integer || f.type == FieldType::weight ||
                            f.type == FieldType::integers || f.type == FieldType::ports;
        if (!ranged) continue;
        SCOPED_TRACE(std::string(f.key));
        const Sample& s = sample_of(f);
        auto as_value = [&](int64_t x) {
            if (f.type != FieldType::integers) return std::to_string(x);
            std::string v = s.value;  // the sample's array with its first element replaced
            return "[" + std::to_string(x) + v.substr(v.find(','));
        };
        const std::string prefix = std::string("port_rule[1].") + std::string(f.key);
        for (int64_t bad : {f.lo - 1, f.hi + 1}) {
            TempDir dir;
            std::string key;
            const std::string e = load_error(dir, s, f.key, as_value(bad), &key);
            EXPECT_EQ(key.rfind(prefix, 0), 0u) << e;
            const std::string allowed = f.type == FieldType::integers
                                            ? "integers " + std::to_string(f.lo) + ".." + std::to_string(f.hi)
                                            : config::allowed_text(f);
            EXPECT_NE(e.find("allowed: " + allowed), std::string::npos) << e;
        }
        // The edges parse (the other checks of the sample's context permitting).
        for (int64_t good : {f.lo, f.hi}) {
            if (f.key == "health_timeout_ms" && good >= 1000) continue;  // below the interval (1000)
            if (f.key == "health_interval_ms" && good <= 500) continue;  // above the timeout (500)
            if (f.type == FieldType::integers || f.key == "load_weight") continue;  // tied to other keys
            TempDir dir;
            EXPECT_EQ(load_error(dir, s, f.key, as_value(good)), "") << good;
        }
        ++tested;
    }
    EXPECT_GE(tested, 10u);
}

// Choices accept exactly the table's names.
TEST(RuleSchema, ChoicesAcceptTheTablesNamesOnly) {
    for (const RuleField& f : kRuleFields) {
        if (f.type != FieldType::choice) continue;
        SCOPED_TRACE(std::string(f.key));
        Sample s = sample_of(f);
        for (int64_t v = f.lo; v <= f.hi; ++v) {
            if (f.key == "mode" && v == int64_t(FilterMode::single)) s.context = "handling_priority = 1\n";
            else s.context = sample_of(f).context;
            TempDir dir;
            const std::string value = std::string("\"").append(f.names[size_t(v)]).append("\"");
            EXPECT_EQ(load_error(dir, s, f.key, value), "");
        }
        TempDir dir;
        std::string key;
        const std::string e = load_error(dir, s, f.key, "\"bogus\"", &key);
        EXPECT_EQ(key, "port_rule[1]." + std::string(f.key));
        EXPECT_NE(e.find("'bogus' is not a valid value; allowed: " + config::allowed_text(f)), std::string::npos) << e;
    }
}

// A key set where it does not apply is refused, saying where it does.
TEST(RuleSchema, KeysOutsideTheirModesOrChecksAreRefused) {
    for (const RuleField& f : kRuleFields) {
        SCOPED_TRACE(std::string(f.key));
        const Sample& s = sample_of(f);
        const std::string key = "port_rule[1]." + std::string(f.key);
        for (FilterMode m : {FilterMode::multiple, FilterMode::single, FilterMode::disabled}) {
            if (f.modes & mode_bit(m)) continue;
            Sample other = s;
            other.context = "mode = \"" + std::string(name_of(m)) + "\"\n" +
                            (m == FilterMode::single ? "handling_priority = 1\n" : "");
            TempDir dir;
            std::string k;
            const std::string e = load_error(dir, other, f.key, s.value, &k);
            EXPECT_EQ(k, key) << e;
            EXPECT_NE(e.find("allowed: only in " + config::modes_text(f.modes)), std::string::npos) << e;
        }
        if (f.checks == 0) continue;
        {
            Sample none = s;
            none.context = "ports = 443\n";
            TempDir dir;
            std::string k;
            const std::string e = load_error(dir, none, f.key, s.value, &k);
            EXPECT_EQ(k, key) << e;
            EXPECT_NE(e.find("is set without health_check"), std::string::npos) << e;
        }
        if (s.other_check != HealthKind::none) {
            ASSERT_EQ(f.checks & check_bit(s.other_check), 0) << "the sample's other_check applies";
            Sample other = s;
            other.context = "ports = 443\nhealth_check = \"" + std::string(config::name_of(s.other_check)) + "\"\n";
            TempDir dir;
            std::string k;
            const std::string e = load_error(dir, other, f.key, s.value, &k);
            EXPECT_EQ(k, key) << e;
            EXPECT_NE(e.find("allowed: only with " + config::checks_text(f.checks)), std::string::npos) << e;
        } else {
            EXPECT_EQ(f.checks, kAnyCheck) << "the sample needs an other_check";
        }
    }
}

// validate() applies the same table to a Config built in code.
TEST(RuleSchema, ValidateChecksRangesOfAConfigBuiltInCode) {
    for (const RuleField& f : kRuleFields) {
        if (f.type != FieldType::integer && f.type != FieldType::weight) continue;
        SCOPED_TRACE(std::string(f.key));
        const Sample& s = sample_of(f);
        TempDir dir;
        config::Config cfg = load_rule(dir, s, f.key, s.value);
        if (cfg.health.empty()) cfg.health.resize(1);
        EXPECT_NO_THROW(config::validate(cfg));
        f.access.set(cfg.rules[0], cfg.health[0], f.hi + 1);
        try {
            config::validate(cfg);
            ADD_FAILURE() << "accepted " << f.hi + 1;
        } catch (const ConfigError& e) {
            EXPECT_EQ(e.key(), "port_rule[1]." + std::string(f.key)) << e.what();
            EXPECT_NE(std::string(e.what()).find("allowed: " + config::allowed_text(f)), std::string::npos)
                << e.what();
        }
    }
}

// A reload diff names each changed field by its key, before and after as
// written; a change of the key is another rule.
TEST(RuleSchema, DiffNamesEachChangedFieldByItsKey) {
    for (const RuleField& f : kRuleFields) {
        SCOPED_TRACE(std::string(f.key));
        const Sample& s = sample_of(f);
        TempDir dir;
        const config::Config after = load_rule(dir, s, f.key, s.value);
        config::Config before = after;
        if (before.health.empty()) before.health.resize(1);
        f.access.set(before.rules[0], before.health[0], default_value(f));
        const config::ConfigDiff d = config::diff(before, after);
        if (f.scope == Scope::key) {
            EXPECT_EQ(d.rules_added.size(), 1u);
            EXPECT_EQ(d.rules_removed.size(), 1u);
            continue;
        }
        ASSERT_EQ(d.rules_changed.size(), 1u);
        ASSERT_EQ(d.rules_changed[0].fields.size(), 1u);
        const config::KeyChange& c = d.rules_changed[0].fields[0];
        EXPECT_EQ(c.key, f.key);
        EXPECT_EQ(c.before, config::text(config::written(f, before.rules[0], before.health[0])));
        EXPECT_EQ(c.after, config::text(config::written(f, after.rules[0], health_of(after))));
    }
}

TEST(RuleSchema, UnknownKeyErrorListsEveryKey) {
    TempDir dir;
    const std::string e = load_error(dir, Sample{}, "weight", "5");
    std::string keys;
    for (const RuleField& f : kRuleFields) keys += (keys.empty() ? "" : ", ") + std::string(f.key);
    EXPECT_NE(e.find("port_rule[1].weight: unknown key; allowed: " + keys), std::string::npos) << e;
}

// ---- The canonical record: a wire format shared by every host ---------------

std::vector<PortRule> pinned_rules() {
    std::vector<PortRule> rules(4);
    PortRule& b = rules[1];
    b.vip = IpAddr::parse("2001:db8::7");
    b.port_lo = 1024;
    b.port_hi = 65535;
    b.protocol = Protocol::udp;
    b.affinity = Affinity::network;
    b.affinity_timeout_s = 0x01020304;
    PortRule& c = rules[2];
    c.vip = IpAddr::parse("10.0.0.10");
    c.port_lo = c.port_hi = 443;
    c.protocol = Protocol::tcp;
    c.mode = FilterMode::single;
    c.handling_priority = 3;
    c.affinity_timeout_s = 600;
    PortRule& d = rules[3];
    d.vip = IpAddr::parse("10.0.0.10");
    d.port_lo = d.port_hi = 25;
    d.mode = FilterMode::disabled;
    return rules;
}

// Bytes, identities and seeds computed by the code before the schema
// (commit 44f23b4). If this fails, hosts of this version and of earlier ones
// no longer agree on any rule: their clusters do not converge.
TEST(RuleSchema, CanonicalRecordHashSeedAndFingerprintArePinned) {
    const std::vector<PortRule> rules = pinned_rules();
    const RuleRecord expected[4] = {
        {0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
         0x00, 0x00, 0x00, 0x00, 0x00, 0xff, 0xff, 0x02, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00},
        {0x06, 0x20, 0x01, 0x0d, 0xb8, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
         0x00, 0x00, 0x07, 0x04, 0x00, 0xff, 0xff, 0x01, 0x00, 0x02, 0x01, 0x02, 0x03, 0x04},
        {0x04, 0x0a, 0x00, 0x00, 0x0a, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
         0x00, 0x00, 0x00, 0x01, 0xbb, 0x01, 0xbb, 0x00, 0x01, 0x01, 0x00, 0x00, 0x02, 0x58},
        {0x04, 0x0a, 0x00, 0x00, 0x0a, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
         0x00, 0x00, 0x00, 0x00, 0x19, 0x00, 0x19, 0x02, 0x02, 0x01, 0x00, 0x00, 0x00, 0x00},
    };
    const uint64_t identity[4] = {0xb6960776e68ff5dcull, 0x9758dd8599647d41ull, 0xfadd9f691aca12eeull,
                                  0x8b28c5ed3d706154ull};
    const uint32_t seed[4] = {0x5019f2aa, 0x0e3ca0c4, 0xe0178d87, 0xb658a4b9};
    for (size_t i = 0; i < rules.size(); ++i) {
        EXPECT_EQ(rule_record(rules[i]), expected[i]) << i;
        EXPECT_EQ(core::rule_identity(rules[i]), identity[i]) << i;
        EXPECT_EQ(core::rule_seed(core::rule_identity(rules[i])), seed[i]) << i;
        const std::optional<PortRule> back = rule_from_record(expected[i]);
        ASSERT_TRUE(back);
        EXPECT_EQ(rule_record(*back), expected[i]);
    }
    EXPECT_EQ(cluster::rules_fingerprint(std::span<const PortRule>(rules)), 0x3fb8b7fc892a412cull);
}

// Exactly the seeded fields move a rule's hash seed.
TEST(RuleSchema, SeededFieldsAndOnlyThoseChangeTheHashSeed) {
    for (const RuleField& f : kRuleFields) {
        SCOPED_TRACE(std::string(f.key));
        const Sample& s = sample_of(f);
        TempDir dir;
        const config::Config cfg = load_rule(dir, s, f.key, s.value);
        PortRule base = cfg.rules[0];
        HealthCheck h = health_of(cfg);
        f.access.set(base, h, default_value(f));
        EXPECT_EQ(core::rule_identity(cfg.rules[0]) != core::rule_identity(base), f.seeded);
    }
}

TEST(RuleSchema, HostileRecordsAreRefused) {
    const RuleRecord good = rule_record(pinned_rules()[1]);
    size_t offset = 0;
    for (const RuleField& f : kRuleFields) {
        if (f.record == 0) continue;
        SCOPED_TRACE(std::string(f.key));
        const size_t at = offset;
        offset += f.record;
        RuleRecord bad = good;
        switch (f.type) {
        case FieldType::vip: bad[at] = 5; break;                         // no such family
        case FieldType::ports: bad[at + 2] = bad[at + 3] = 0; break;     // last port 0 < first port
        case FieldType::choice: bad[at] = uint8_t(f.hi + 1); break;      // no such value
        default: continue;                                               // integers: as sent
        }
        EXPECT_FALSE(rule_from_record(bad));
    }
}

// ---- Docs ------------------------------------------------------------------

std::string read_file(const fs::path& p) {
    std::ifstream in(p);
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
}

// "line N: <was> / <wanted>" for the first line where a and b differ, "" if none.
std::string first_difference(const std::string& a, const std::string& b) {
    std::istringstream x(a), y(b);
    std::string l, m;
    for (unsigned n = 1;; ++n) {
        const bool more_a = static_cast<bool>(std::getline(x, l));
        const bool more_b = static_cast<bool>(std::getline(y, m));
        if (!more_a && !more_b) return "";
        if (more_a != more_b || l != m)
            return "line " + std::to_string(n) + ": '" + (more_a ? l : "<end>") + "', schema: '" +
                   (more_b ? m : "<end>") + "'";
    }
}

// Every generated block of the docs is what the schema generates now
// (regenerate with: build/src/tools/nlbd-rule-keys docs/*.md
// configs/cluster.example.toml).
TEST(RuleKeyDocs, DocsTablesAreTheSchemas) {
    const fs::path root(NLBD_SOURCE_ROOT);
    const std::map<std::string, std::string> required = {{"docs/port-rules.md", "port_rule"},
                                                         {"docs/health.md", "health"},
                                                         {"docs/heartbeat.md", "record"},
                                                         {"configs/cluster.example.toml", "port_rule_toml"}};
    for (const auto& [file, table] : required) {
        const std::string text = read_file(root / file);
        EXPECT_NE(text.find(std::string(config::kKeyTableBegin) + table + " -->"), std::string::npos)
            << file << " lacks its generated " << table << " table";
    }
    std::vector<fs::path> files = {root / "README.md", root / "configs/cluster.example.toml"};
    for (const auto& entry : fs::directory_iterator(root / "docs"))
        if (entry.path().extension() == ".md") files.push_back(entry.path());
    size_t blocks = 0;
    for (const fs::path& p : files) {
        const std::string text = read_file(p);
        for (size_t at = text.find(config::kKeyTableBegin); at != std::string::npos;
             at = text.find(config::kKeyTableBegin, at + 1))
            ++blocks;
        EXPECT_EQ(first_difference(text, config::refresh_key_tables(text)), "")
            << p << " differs from the rule schema; run build/src/tools/nlbd-rule-keys " << p;
    }
    EXPECT_GE(blocks, required.size());
}

TEST(RuleKeyDocs, AnEditedTableOrAWrongBlockIsCaught) {
    const std::string doc = std::string("intro\n") + std::string(config::kKeyTableBegin) + "port_rule -->\n" +
                            config::key_table("port_rule") + std::string(config::kKeyTableEnd) + "\noutro\n";
    EXPECT_EQ(config::refresh_key_tables(doc), doc);
    std::string edited = doc;
    const size_t at = edited.find("0..86400");
    ASSERT_NE(at, std::string::npos);
    edited.replace(at, 8, "0..86401");
    EXPECT_EQ(config::refresh_key_tables(edited), doc);
    std::string missing_row = doc;
    const size_t row = missing_row.find("| `affinity_timeout_s`");
    missing_row.erase(row, missing_row.find('\n', row) + 1 - row);
    EXPECT_EQ(config::refresh_key_tables(missing_row), doc);
    EXPECT_THROW(config::refresh_key_tables(std::string(config::kKeyTableBegin) + "nope -->\n" +
                                            std::string(config::kKeyTableEnd)),
                 std::runtime_error);
    EXPECT_THROW(config::refresh_key_tables(std::string(config::kKeyTableBegin) + "health -->\nno end\n"),
                 std::runtime_error);
    for (const RuleField& f : kRuleFields)
        EXPECT_NE(doc.find("| `" + std::string(f.key) + "` |"), std::string::npos) << f.key;
}

}  // namespace
}  // namespace nlbd
