// The Announcer (src/daemon/announcer.cpp) against fake birdc programs: the
// include file is replaced whole, birdc gets `-s SOCKET configure`, a
// refused configuration, a hung birdc (killed at the timeout) and a missing
// birdc are failures that are reported and retried, never thrown; the
// destructor applies a pending withdrawal. No EAL, no BIRD.

#include <gtest/gtest.h>

#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>

#include "nlbd/daemon/announcer.hpp"

#include "temp_dir.hpp"

namespace fs = std::filesystem;
using nlbd::IpAddr;
using nlbd::daemon::Announcer;
using nlbd::daemon::AnnouncerSettings;
using nlbd::daemon::AnnouncerState;

namespace {

using nlbd::test::TempDir;

std::string slurp(const std::string& p) {
    std::ifstream f(p);
    std::stringstream s;
    s << f.rdbuf();
    return s.str();
}

IpAddr ip(const char* s) { return *IpAddr::parse(s); }

AnnouncerSettings settings(const TempDir& d, const std::string& birdc, uint32_t timeout_ms = 2000) {
    AnnouncerSettings s;
    s.include_file = d.file("announce.conf");
    s.control_socket = d.file("bird.ctl");
    s.birdc = birdc;
    s.next_hop = ip("10.77.1.10");
    s.command_timeout_ms = timeout_ms;
    s.retry_interval_ms = 100;
    s.origin = "test";
    return s;
}

// Polls (bounded: 10 s) until pred(state) holds.
template <class Pred>
AnnouncerState wait_for(Announcer& a, Pred pred) {
    AnnouncerState s = a.state();
    for (int k = 0; k < 1000 && !pred(s); ++k) {
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
        s = a.state();
    }
    return s;
}

}  // namespace

TEST(Announcer, WritesTheIncludeFileAndRunsBirdcConfigure) {
    TempDir d;
    const std::string birdc = d.script("birdc", "echo \"$@\" >> " + d.file("calls") + "\necho 'BIRD 2.0.12 ready.'\necho 'Reconfigured'");
    Announcer a(settings(d, birdc));
    const uint64_t gen = a.want({ip("10.99.0.10")});
    const AnnouncerState s = wait_for(a, [&](const AnnouncerState& x) { return x.applied_generation >= gen; });
    EXPECT_EQ(s.applied, std::vector<IpAddr>{ip("10.99.0.10")});
    EXPECT_TRUE(s.in_sync);
    EXPECT_EQ(s.failures, 0u);
    EXPECT_NE(slurp(d.file("announce.conf")).find("route 10.99.0.10/32 blackhole;"), std::string::npos);
    EXPECT_FALSE(fs::exists(d.file("announce.conf.tmp")));
    EXPECT_NE(slurp(d.file("calls")).find("-s " + d.file("bird.ctl") + " configure"), std::string::npos);
    const auto results = a.take_results();
    ASSERT_FALSE(results.empty());
    EXPECT_TRUE(results.back().ok);
    EXPECT_NE(results.back().detail.find("Reconfigured"), std::string::npos);
}

TEST(Announcer, RefusedConfigurationIsAFailureRetriedUntilBirdTakesIt) {
    TempDir d;
    // Refuses twice (birdc exits 0 with BIRD's error), then accepts.
    const std::string n = d.file("n");
    const std::string birdc = d.script(
        "birdc", "c=$(cat " + n + " 2>/dev/null || echo 0); c=$((c+1)); echo $c > " + n +
                     "\nif [ $c -le 2 ]; then echo 'announce.conf:3:5 syntax error, unexpected CF_SYM_UNDEFINED'; "
                     "else echo 'Reconfigured'; fi");
    Announcer a(settings(d, birdc));
    const uint64_t gen = a.want({ip("10.99.0.10")});
    const AnnouncerState s = wait_for(a, [&](const AnnouncerState& x) { return x.applied_generation >= gen; });
    EXPECT_EQ(s.applied_generation, gen);
    EXPECT_GE(s.failures, 2u);
    EXPECT_TRUE(s.last_error.empty());
    bool saw_error = false;
    for (const auto& r : a.take_results()) saw_error = saw_error || (!r.ok && r.detail.find("syntax error") != std::string::npos);
    EXPECT_TRUE(saw_error);
}

TEST(Announcer, HungBirdcIsKilledAtTheTimeout) {
    TempDir d;
    const std::string birdc = d.script("birdc", "exec sleep 30");
    Announcer a(settings(d, birdc, 200));
    const auto t0 = std::chrono::steady_clock::now();
    a.want({ip("10.99.0.10")});
    const AnnouncerState s = wait_for(a, [](const AnnouncerState& x) { return x.failures >= 1; });
    const auto took = std::chrono::steady_clock::now() - t0;
    EXPECT_GE(s.failures, 1u);
    EXPECT_NE(s.last_error.find("did not answer within 200 ms"), std::string::npos) << s.last_error;
    EXPECT_LT(took, std::chrono::seconds(5));
    EXPECT_TRUE(s.applied.empty());
}

TEST(Announcer, MissingBirdcIsReportedNotThrown) {
    TempDir d;
    Announcer a(settings(d, d.file("no-such-birdc")));
    a.want({ip("10.99.0.10")});
    const AnnouncerState s = wait_for(a, [](const AnnouncerState& x) { return x.failures >= 1; });
    EXPECT_NE(s.last_error.find("cannot run"), std::string::npos) << s.last_error;
}

TEST(Announcer, UnwritableIncludeFileIsReported) {
    TempDir d;
    AnnouncerSettings st = settings(d, d.script("birdc", "echo Reconfigured"));
    st.include_file = d.file("no-such-dir/announce.conf");
    Announcer a(st);
    a.want({ip("10.99.0.10")});
    const AnnouncerState s = wait_for(a, [](const AnnouncerState& x) { return x.failures >= 1; });
    EXPECT_NE(s.last_error.find("cannot write"), std::string::npos) << s.last_error;
}

TEST(Announcer, DestructorAppliesAPendingWithdrawal) {
    TempDir d;
    const std::string birdc = d.script("birdc", "sleep 0.2; echo Reconfigured");
    {
        Announcer a(settings(d, birdc));
        const uint64_t gen = a.want({ip("10.99.0.10")});
        wait_for(a, [&](const AnnouncerState& x) { return x.applied_generation >= gen; });
        ASSERT_NE(slurp(d.file("announce.conf")).find("route 10.99.0.10/32"), std::string::npos);
        a.want({});  // nlbd stops: leave() withdraws
    }
    EXPECT_EQ(slurp(d.file("announce.conf")).find("route "), std::string::npos) << slurp(d.file("announce.conf"));
}
