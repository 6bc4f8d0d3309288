// The event log (src/daemon/events.cpp): order, capacity, counts by kind,
// the JSON nlbctl display and Prometheus read.

#include <gtest/gtest.h>

#include <string>

#include "nlbd/daemon/events.hpp"

using nlbd::daemon::EventKind;
using nlbd::daemon::EventLog;
using nlbd::daemon::kEventKinds;
namespace lg = nlbd::log;

TEST(EventLog, KeepsTheLatestInOrderAndCountsEveryKind) {
    lg::set_level(lg::Level::error);  // keep the test's output quiet
    EventLog log;
    log.add(EventKind::host_joined, lg::Level::notice, "host 2 joined");
    log.add(EventKind::command, lg::Level::notice, "drainstop: host started -> draining", "uid 0 pid 42");
    log.add(EventKind::converged, lg::Level::notice, "converged at epoch 3 with hosts [1,2]");
    const auto r = log.recent(2);
    ASSERT_EQ(r.size(), 2u);
    EXPECT_EQ(r[0].kind, EventKind::command);
    EXPECT_EQ(r[0].who, "uid 0 pid 42");
    EXPECT_EQ(r[1].seq, 3u);
    EXPECT_EQ(log.count(EventKind::host_joined), 1u);
    EXPECT_EQ(log.count(EventKind::host_left), 0u);
    EXPECT_EQ(log.total(), 3u);
    lg::set_level(lg::Level::info);
}

TEST(EventLog, DropsTheOldestBeyondItsCapacityButKeepsCounting) {
    lg::set_level(lg::Level::error);
    EventLog log;
    for (size_t i = 0; i < EventLog::kCapacity + 10; ++i)
        log.add(EventKind::health, lg::Level::warning, "rule 0 down " + std::to_string(i));
    const auto all = log.recent(10 * EventLog::kCapacity);
    ASSERT_EQ(all.size(), EventLog::kCapacity);
    EXPECT_EQ(all.front().text, "rule 0 down 10");
    EXPECT_EQ(all.back().seq, EventLog::kCapacity + 10);
    EXPECT_EQ(log.count(EventKind::health), EventLog::kCapacity + 10);
    lg::set_level(lg::Level::info);
}

TEST(EventLog, JsonHasTimeKindSeverityTextWhoAndEveryKindCounted) {
    lg::set_level(lg::Level::error);
    EventLog log;
    log.add(EventKind::reload, lg::Level::warning, "reload refused: x", "CN=ops1 10.0.0.5:4000");
    const nlbd::ctl::Json j = log.to_json(5);
    ASSERT_EQ(j.size(), 1u);
    const nlbd::ctl::Json& e = j.at(0);
    EXPECT_EQ(e.get_string("kind"), "reload");
    EXPECT_EQ(e.get_string("severity"), "warning");
    EXPECT_EQ(e.get_string("who"), "CN=ops1 10.0.0.5:4000");
    EXPECT_EQ(e.get_int("seq"), 1);
    const std::string t = e.get_string("time");  // 2026-12-07T03:04:05.678Z
    ASSERT_EQ(t.size(), 24u) << t;
    EXPECT_EQ(t[10], 'T');
    EXPECT_EQ(t.back(), 'Z');
    const nlbd::ctl::Json c = log.counts_json();
    EXPECT_EQ(c.size(), kEventKinds);
    EXPECT_EQ(c.get_int("reload"), 1);
    EXPECT_EQ(c.get_int("host_joined"), 0);
    lg::set_level(lg::Level::info);
}
