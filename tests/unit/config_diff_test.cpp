// What a reload changes (config::diff, docs/reload.md): rules compared by key,
// never by position; live keys in params; restart-only keys in restart; and
// the lines nlbctl reload prints.

#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <string>

#include <unistd.h>

#include "nlbd/config/config.hpp"
#include "nlbd/config/diff.hpp"

namespace fs = std::filesystem;
using nlbd::config::Config;
using nlbd::config::ConfigDiff;
using nlbd::config::diff;

namespace {

Config load(const std::string& text) {
    const fs::path p = fs::temp_directory_path() / ("nlbd_diff_test_" + std::to_string(::getpid()) + ".toml");
    std::ofstream(p) << text;
    Config c = nlbd::config::load_config(p.string(), std::nullopt);
    fs::remove(p);
    return c;
}

const std::string kHead = R"([cluster]
name = "mail.ehlo.dk"
vips = ["10.0.0.10", "10.0.0.11"]
heartbeat_interval_ms = 200

[host]
id = 1
)";

std::string rule(const std::string& vip, const std::string& ports, const std::string& extra = "") {
    return "\n[[port_rule]]\nvip = \"" + vip + "\"\nports = \"" + ports +
           "\"\nprotocol = \"tcp\"\nmode = \"multiple\"\naffinity = \"none\"\n" + extra;
}

const nlbd::config::KeyChange* find(const std::vector<nlbd::config::KeyChange>& v, const std::string& key) {
    auto it = std::find_if(v.begin(), v.end(), [&](const auto& k) { return k.key == key; });
    return it == v.end() ? nullptr : &*it;
}

}  // namespace

TEST(ConfigDiff, SameRulesInAnotherOrderAreNoChange) {
    const Config a = load(kHead + rule("10.0.0.10", "80") + rule("10.0.0.10", "443"));
    const Config b = load(kHead + rule("10.0.0.10", "443") + rule("10.0.0.10", "80"));
    const ConfigDiff d = diff(a, b);
    EXPECT_TRUE(d.empty()) << (d.lines().empty() ? "" : d.lines().front());
}

TEST(ConfigDiff, RulesAddedRemovedAndChangedByKey) {
    const Config a = load(kHead + rule("10.0.0.10", "80") + rule("10.0.0.10", "443") + rule("10.0.0.10", "25"));
    const Config b = load(kHead + rule("10.0.0.10", "443", "load_weight = 20\n") + rule("10.0.0.10", "25") +
                          rule("10.0.0.11", "8080"));
    const ConfigDiff d = diff(a, b);
    ASSERT_EQ(d.rules_added.size(), 1u);
    EXPECT_EQ(d.rules_added[0], "10.0.0.11:8080/tcp");
    ASSERT_EQ(d.rules_removed.size(), 1u);
    EXPECT_EQ(d.rules_removed[0], "10.0.0.10:80/tcp");
    ASSERT_EQ(d.rules_changed.size(), 1u);
    EXPECT_EQ(d.rules_changed[0].rule, "10.0.0.10:443/tcp");
    ASSERT_EQ(d.rules_changed[0].fields.size(), 1u);
    EXPECT_EQ(d.rules_changed[0].fields[0].key, "load_weight");
    EXPECT_EQ(d.rules_changed[0].fields[0].before, "equal");
    EXPECT_EQ(d.rules_changed[0].fields[0].after, "20");
    EXPECT_TRUE(d.restart.empty());
    // What nlbctl reload prints: one line per item.
    const auto lines = d.lines();
    ASSERT_EQ(lines.size(), 3u);
    EXPECT_EQ(lines[0], "rule added: 10.0.0.11:8080/tcp");
    EXPECT_EQ(lines[1], "rule removed: 10.0.0.10:80/tcp");
    EXPECT_EQ(lines[2], "rule changed: 10.0.0.10:443/tcp: load_weight equal -> 20");
}

TEST(ConfigDiff, ModeAndAffinityChangesAreNamed) {
    const Config a = load(kHead + rule("10.0.0.10", "80") + rule("10.0.0.10", "443"));
    std::string single = rule("10.0.0.10", "80");
    single.replace(single.find("mode = \"multiple\"\naffinity = \"none\""), 35,
                   "mode = \"single\"\nhandling_priority = 3");
    std::string sticky = rule("10.0.0.10", "443");
    sticky.replace(sticky.find("affinity = \"none\""), 17, "affinity = \"single\"");
    const ConfigDiff d = diff(a, load(kHead + single + sticky));
    ASSERT_EQ(d.rules_changed.size(), 2u);
    // By key, in key order: 10.0.0.10:443 before 10.0.0.10:80.
    EXPECT_EQ(d.rules_changed[0].rule, "10.0.0.10:443/tcp");
    ASSERT_NE(find(d.rules_changed[0].fields, "affinity"), nullptr);
    EXPECT_EQ(find(d.rules_changed[0].fields, "affinity")->before, "none");
    EXPECT_EQ(find(d.rules_changed[0].fields, "affinity")->after, "single");
    const auto& f = d.rules_changed[1].fields;
    EXPECT_EQ(d.rules_changed[1].rule, "10.0.0.10:80/tcp");
    ASSERT_NE(find(f, "mode"), nullptr);
    EXPECT_EQ(find(f, "mode")->before, "multiple");
    EXPECT_EQ(find(f, "mode")->after, "single");
    ASSERT_NE(find(f, "handling_priority"), nullptr);
    EXPECT_EQ(find(f, "handling_priority")->after, "3");
}

TEST(ConfigDiff, LiveKeysAreParams) {
    const Config a = load(kHead);
    std::string t = kHead;
    t.replace(t.find("heartbeat_interval_ms = 200"), 27, "heartbeat_interval_ms = 100");
    t.replace(t.find("\"10.0.0.11\""), 11, "\"10.0.0.12\"");
    t += "\n[dataplane]\nidle_policy = \"adaptive\"\n";
    const ConfigDiff d = diff(a, load(t));
    EXPECT_TRUE(d.restart.empty()) << d.restart.front().key;
    ASSERT_NE(find(d.params, "cluster.heartbeat_interval_ms"), nullptr);
    EXPECT_EQ(find(d.params, "cluster.heartbeat_interval_ms")->before, "200");
    EXPECT_EQ(find(d.params, "cluster.heartbeat_interval_ms")->after, "100");
    ASSERT_NE(find(d.params, "cluster.vips"), nullptr);
    EXPECT_EQ(find(d.params, "cluster.vips")->after, "10.0.0.10,10.0.0.12");
    ASSERT_NE(find(d.params, "dataplane.idle_policy"), nullptr);
    EXPECT_EQ(find(d.params, "dataplane.idle_policy")->before, "poll");
    EXPECT_EQ(find(d.params, "dataplane.idle_policy")->after, "adaptive");
}

TEST(ConfigDiff, RestartOnlyKeysAreNamedWithBothValues) {
    const Config a = load(kHead);
    std::string t = kHead;
    t.replace(t.find("id = 1"), 6, "id = 2");
    t.replace(t.find("\"10.0.0.10\""), 11, "\"10.0.0.20\"");  // the first IPv4 VIP: the cluster MAC
    t += "\n[dataplane]\nconn_table_size = 4096\n";
    const ConfigDiff d = diff(a, load(t));
    ASSERT_NE(find(d.restart, "host.id"), nullptr);
    EXPECT_EQ(find(d.restart, "host.id")->before, "1");
    EXPECT_EQ(find(d.restart, "host.id")->after, "2");
    ASSERT_NE(find(d.restart, "dataplane.conn_table_size"), nullptr);
    EXPECT_EQ(find(d.restart, "dataplane.conn_table_size")->after, "4096");
    bool mac = false;
    for (const auto& k : d.restart) mac |= k.key.rfind("cluster.vips (first IPv4", 0) == 0 && k.after == "10.0.0.20";
    EXPECT_TRUE(mac);
    const auto lines = d.lines();
    EXPECT_NE(std::find(lines.begin(), lines.end(), "host.id: 1 -> 2 (needs a restart)"), lines.end());
}
