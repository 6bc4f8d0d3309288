// Host state file (state_file.hpp, SPEC §7, docs/state-file.md): what is
// saved comes back; a missing file is a first start without a warning; a
// truncated, corrupted, edited or foreign file is refused with a warning that
// names the file and the problem; the write is atomic, 0600, in a 0700
// directory it creates; a failed write names the path and the step.

#include "nlbd/cluster/state_file.hpp"

#include <gtest/gtest.h>
#include <openssl/evp.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <iomanip>
#include <iterator>
#include <sstream>
#include <stdexcept>
#include <string>

#include "nlbd/core/rules.hpp"

#include "temp_dir.hpp"

using namespace nlbd;
using namespace nlbd::cluster;
namespace fs = std::filesystem;

namespace {

constexpr HostId kSelf = 2;
const std::string kCluster = "mail.ehlo.dk";

using nlbd::test::TempDir;

std::string read_file(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

void write_file(const std::string& path, const std::string& text) {
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    out << text;
}

PortRule rule(const char* vip, uint16_t lo, uint16_t hi, Protocol p) {
    PortRule r;
    if (vip != nullptr) r.vip = *IpAddr::parse(vip);
    r.port_lo = lo;
    r.port_hi = hi;
    r.protocol = p;
    return r;
}

// A state with every character rule names use (':' '[' ']' '/' '-' '.').
PersistedState sample() {
    PersistedState s;
    s.cluster = kCluster;
    s.host_id = kSelf;
    s.host = HostState::suspended;
    s.rules[rule_name(rule("10.0.0.10", 443, 443, Protocol::tcp))] = RuleState::disabled;
    s.rules[rule_name(rule(nullptr, 0, 65535, Protocol::both))] = RuleState::draining;
    s.rules[rule_name(rule("2001:db8::1", 1024, 2048, Protocol::udp))] = RuleState::disabled;
    return s;
}

mode_t mode_of(const std::string& path) {
    struct stat st {};
    EXPECT_EQ(::stat(path.c_str(), &st), 0) << path;
    return st.st_mode & 07777;
}

// The load of a file that must be refused: no state, a warning naming the
// file and containing `problem`.
void expect_refused(const std::string& path, const std::string& problem, const std::string& cluster = kCluster,
                    HostId host = kSelf) {
    const LoadedState l = load_state(path, cluster, host);
    EXPECT_FALSE(l.state.has_value()) << "accepted:\n" << read_file(path);
    EXPECT_NE(l.warning.find(path), std::string::npos) << l.warning;
    EXPECT_NE(l.warning.find(problem), std::string::npos) << "want '" << problem << "' in: " << l.warning;
}

std::string sha256_hex(const std::string& bytes) {
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned len = 0;
    EXPECT_EQ(EVP_Digest(bytes.data(), bytes.size(), md, &len, EVP_sha256(), nullptr), 1);
    std::ostringstream hex;
    for (unsigned i = 0; i < len; ++i) hex << std::hex << std::setw(2) << std::setfill('0') << unsigned{md[i]};
    return hex.str();
}

// Replaces the first `from` in the file by `to`, keeping the old checksum.
void edit(const std::string& path, const std::string& from, const std::string& to) {
    std::string text = read_file(path);
    const size_t at = text.find(from);
    ASSERT_NE(at, std::string::npos) << from << " not in:\n" << text;
    text.replace(at, from.size(), to);
    write_file(path, text);
}

}  // namespace

// ---------------------------------------------------------------- round trips

TEST(StateFile, RoundTripsHostAndRuleStates) {
    TempDir dir;
    const std::string path = dir.file("state-2");
    const PersistedState s = sample();
    ASSERT_EQ(s.rules.size(), 3u);
    save_state(path, s);
    const LoadedState l = load_state(path, kCluster, kSelf);
    EXPECT_EQ(l.warning, "");
    ASSERT_TRUE(l.state.has_value());
    EXPECT_EQ(*l.state, s);
    EXPECT_EQ(l.state->rules.at("10.0.0.10:443/tcp"), RuleState::disabled);
    EXPECT_EQ(l.state->rules.at("all:0-65535/both"), RuleState::draining);
    EXPECT_EQ(l.state->rules.at("[2001:db8::1]:1024-2048/udp"), RuleState::disabled);
}

TEST(StateFile, RoundTripsEverySavedHostState) {
    TempDir dir;
    const std::string path = dir.file("state-2");
    for (HostState h : {HostState::stopped, HostState::started, HostState::suspended}) {
        PersistedState s;
        s.cluster = kCluster;
        s.host_id = kSelf;
        s.host = h;
        save_state(path, s);
        const LoadedState l = load_state(path, kCluster, kSelf);
        ASSERT_TRUE(l.state.has_value()) << l.warning;
        EXPECT_EQ(l.state->host, h);
        EXPECT_TRUE(l.state->rules.empty());
    }
}

TEST(StateFile, DrainingHostIsSavedAsStopped) {
    TempDir dir;
    const std::string path = dir.file("state-2");
    PersistedState s = sample();
    s.host = HostState::draining;
    save_state(path, s);
    const LoadedState l = load_state(path, kCluster, kSelf);
    ASSERT_TRUE(l.state.has_value()) << l.warning;
    EXPECT_EQ(l.state->host, HostState::stopped);
    EXPECT_EQ(l.state->rules, s.rules);
}

TEST(StateFile, EnabledRulesAreNotSaved) {
    TempDir dir;
    const std::string path = dir.file("state-2");
    PersistedState s = sample();
    s.rules["10.0.0.10:80/tcp"] = RuleState::enabled;
    save_state(path, s);
    EXPECT_EQ(read_file(path).find("10.0.0.10:80/tcp"), std::string::npos);
    const LoadedState l = load_state(path, kCluster, kSelf);
    ASSERT_TRUE(l.state.has_value()) << l.warning;
    EXPECT_EQ(l.state->rules, sample().rules);
}

TEST(StateFile, NamesWithQuotesBackslashesAndControlBytesRoundTrip) {
    TempDir dir;
    const std::string path = dir.file("state-2");
    PersistedState s = sample();
    s.cluster = std::string("a \"quoted\" \\ name\twith\nnewline\x7f, a NUL ") + '\0' + " and \xc3\xa6";
    s.rules[std::string("odd \"rule\" \\x41\n\r# not a comment")] = RuleState::draining;
    save_state(path, s);
    const LoadedState l = load_state(path, s.cluster, kSelf);
    ASSERT_TRUE(l.state.has_value()) << l.warning;
    EXPECT_EQ(*l.state, s);
}

TEST(StateFile, FileIsReadableTextWithVersionAndChecksum) {
    TempDir dir;
    const std::string path = dir.file("state-2");
    save_state(path, sample());
    const std::string text = read_file(path);
    EXPECT_NE(text.find("\nformat = nlbd-state 1\n"), std::string::npos) << text;
    EXPECT_NE(text.find("\ncluster = \"mail.ehlo.dk\"\n"), std::string::npos) << text;
    EXPECT_NE(text.find("\nhost_id = 2\n"), std::string::npos) << text;
    EXPECT_NE(text.find("\nhost = suspended\n"), std::string::npos) << text;
    EXPECT_NE(text.find("\nrule \"10.0.0.10:443/tcp\" = disabled\n"), std::string::npos) << text;
    EXPECT_NE(text.find("\nrule \"all:0-65535/both\" = draining\n"), std::string::npos) << text;
    const size_t last = text.rfind('\n', text.size() - 2);
    ASSERT_NE(last, std::string::npos);
    EXPECT_EQ(text.substr(last + 1, 18), "checksum = sha256:") << text;
    EXPECT_EQ(text.size() - (last + 1 + 18), 64u + 1u) << "64 hex digits and a newline";
}

// ------------------------------------------------------------ missing or bad

TEST(StateFile, MissingFileIsFirstStartWithoutWarning) {
    TempDir dir;
    const LoadedState l = load_state(dir.file("state-2"), kCluster, kSelf);
    EXPECT_FALSE(l.state.has_value());
    EXPECT_EQ(l.warning, "");
    const LoadedState in_missing_dir = load_state(dir.file("no/such/dir/state-2"), kCluster, kSelf);
    EXPECT_FALSE(in_missing_dir.state.has_value());
    EXPECT_EQ(in_missing_dir.warning, "");
}

TEST(StateFile, TruncatedFileWarnsAndIsIgnored) {
    TempDir dir;
    const std::string path = dir.file("state-2");
    save_state(path, sample());
    const std::string whole = read_file(path);
    // Every proper prefix is refused: short of the checksum line, inside it,
    // or just before its newline.
    for (size_t len = 0; len < whole.size(); ++len) {
        write_file(path, whole.substr(0, len));
        const LoadedState l = load_state(path, kCluster, kSelf);
        EXPECT_FALSE(l.state.has_value()) << "a " << len << "-byte prefix was accepted";
        EXPECT_NE(l.warning.find(path), std::string::npos) << l.warning;
    }
    write_file(path, whole.substr(0, whole.size() / 2));
    expect_refused(path, "truncated?");
    write_file(path, "");
    expect_refused(path, "empty (truncated?)");
}

TEST(StateFile, FlippedByteIsRejected) {
    TempDir dir;
    const std::string path = dir.file("state-2");
    save_state(path, sample());
    const std::string whole = read_file(path);
    // One bit flipped anywhere, the comment header included: never accepted.
    for (size_t i = 0; i < whole.size(); ++i) {
        std::string bad = whole;
        bad[i] = static_cast<char>(bad[i] ^ 0x01);
        write_file(path, bad);
        const LoadedState l = load_state(path, kCluster, kSelf);
        EXPECT_FALSE(l.state.has_value()) << "byte " << i << " flipped was accepted";
        EXPECT_NE(l.warning.find(path), std::string::npos) << l.warning;
    }
}

TEST(StateFile, EditedFileFailsItsChecksum) {
    TempDir dir;
    const std::string path = dir.file("state-2");
    save_state(path, sample());
    edit(path, "host = suspended", "host = started  ");
    expect_refused(path, "checksum mismatch");
}

TEST(StateFile, UnknownStateNamesAreRejectedEvenWithAGoodChecksum) {
    // A file whose checksum was recomputed by hand (as docs/state-file.md
    // says: SHA-256 of every byte before the checksum line) still has to
    // make sense.
    const auto with_checksum = [](const std::string& body) {
        return body + "checksum = sha256:" + sha256_hex(body) + "\n";
    };
    const std::string head = "format = nlbd-state 1\ncluster = \"mail.ehlo.dk\"\nhost_id = 2\n";
    TempDir dir;
    const std::string path = dir.file("state-2");

    write_file(path, with_checksum(head + "host = started\nrule \"all:0-65535/both\" = disabled\n"));
    ASSERT_TRUE(load_state(path, kCluster, kSelf).state.has_value()) << "the helper makes good files";

    write_file(path, with_checksum(head + "host = paused\n"));
    expect_refused(path, "line 4: host state 'paused' is not one of stopped, started, suspended");
    write_file(path, with_checksum(head + "host = draining\n"));
    expect_refused(path, "host state 'draining'");
    write_file(path, with_checksum(head + "host = started\nrule \"all:0-65535/both\" = off\n"));
    expect_refused(path, "line 5: rule all:0-65535/both: state 'off' is not one of draining, disabled");
    write_file(path, with_checksum(head + "host = started\nrule \"all:0-65535/both\" = enabled\n"));
    expect_refused(path, "state 'enabled'");
    write_file(path, with_checksum(head + "host = started\nweight = 3\n"));
    expect_refused(path, "line 5: unknown key 'weight'");
    write_file(path, with_checksum(head + "host = started\nhost = stopped\n"));
    expect_refused(path, "line 5: a second 'host'");
    write_file(path, with_checksum(head + "host = started\nrule \"a\" = disabled\nrule \"a\" = draining\n"));
    expect_refused(path, "line 6: rule \"a\" is listed twice");
    write_file(path, with_checksum(head));
    expect_refused(path, "no 'host' line");
    write_file(path, with_checksum(head + "host = started\nrule \"x\\q\" = disabled\n"));
    expect_refused(path, "bad escape");
    write_file(path, with_checksum(head + "host = started extra\n"));
    expect_refused(path, "unexpected 'extra'");
    write_file(path, with_checksum("format = nlbd-state 1\ncluster = \"mail.ehlo.dk\"\nhost_id = 0\nhost = started\n"));
    expect_refused(path, "host_id 0 is not from 1 to 255");
}

TEST(StateFile, OtherVersionIsRejectedNamingIt) {
    TempDir dir;
    const std::string path = dir.file("state-2");
    save_state(path, sample());
    edit(path, "format = nlbd-state 1", "format = nlbd-state 2");
    expect_refused(path, "format version '2' is not supported (this nlbd reads 1)");
    write_file(path, "[cluster]\nname = \"x\"\n");
    expect_refused(path, "line 1: expected 'format = nlbd-state 1' first");
}

TEST(StateFile, OtherHostIdWarns) {
    TempDir dir;
    const std::string path = dir.file("state-2");
    save_state(path, sample());
    expect_refused(path, "written for host id 2, this host is host id 3", kCluster, 3);
}

TEST(StateFile, OtherClusterNameWarns) {
    TempDir dir;
    const std::string path = dir.file("state-2");
    save_state(path, sample());
    expect_refused(path, "written for cluster \"mail.ehlo.dk\", this host is in cluster \"lab\"", "lab", kSelf);
}

TEST(StateFile, UnreadablePathWarnsInsteadOfThrowing) {
    TempDir dir;
    // A directory where the file should be, and a path through a file.
    fs::create_directories(dir.path() / "state-2");
    expect_refused(dir.file("state-2"), "not a regular file");
    write_file(dir.file("plain"), "x");
    expect_refused(dir.file("plain/state-2"), "cannot open");
}

TEST(StateFile, OversizedFileIsRefusedUnread) {
    TempDir dir;
    const std::string path = dir.file("state-2");
    write_file(path, std::string(kMaxStateFileBytes + 1, '#'));
    expect_refused(path, "more than the 1048576");
}

// ---------------------------------------------------------------- writing

TEST(StateFile, WriteIsAtomicAndMode0600) {
    TempDir dir;
    const std::string path = dir.file("state-2");
    const mode_t old_umask = ::umask(0);  // a permissive umask must not widen the file
    save_state(path, sample());
    EXPECT_EQ(mode_of(path), 0600u);
    // Overwrite: a new file replaces the old one by rename (a new inode), and
    // no temp file is left next to it.
    struct stat before {};
    ASSERT_EQ(::stat(path.c_str(), &before), 0);
    PersistedState s = sample();
    s.host = HostState::stopped;
    save_state(path, s);
    ::umask(old_umask);
    struct stat after {};
    ASSERT_EQ(::stat(path.c_str(), &after), 0);
    EXPECT_NE(before.st_ino, after.st_ino) << "rewritten in place, not renamed over";
    EXPECT_EQ(mode_of(path), 0600u);
    unsigned entries = 0;
    for (const auto& e : fs::directory_iterator(dir.path())) {
        ++entries;
        EXPECT_EQ(e.path().filename(), "state-2");
    }
    EXPECT_EQ(entries, 1u);
    const LoadedState l = load_state(path, kCluster, kSelf);
    ASSERT_TRUE(l.state.has_value()) << l.warning;
    EXPECT_EQ(l.state->host, HostState::stopped);
}

TEST(StateFile, CreatesMissingDirectoriesMode0700) {
    TempDir dir;
    const std::string path = dir.file("var/lib/nlbd/state-2");
    const mode_t old_umask = ::umask(0);
    save_state(path, sample());
    ::umask(old_umask);
    EXPECT_EQ(mode_of(dir.file("var")), 0700u);
    EXPECT_EQ(mode_of(dir.file("var/lib")), 0700u);
    EXPECT_EQ(mode_of(dir.file("var/lib/nlbd")), 0700u);
    EXPECT_EQ(mode_of(path), 0600u);
    EXPECT_TRUE(load_state(path, kCluster, kSelf).state.has_value());
    // An existing directory keeps its mode.
    fs::permissions(dir.file("var/lib/nlbd"), fs::perms(0755));
    save_state(path, sample());
    EXPECT_EQ(mode_of(dir.file("var/lib/nlbd")), 0755u);
}

TEST(StateFile, RelativePathIsInTheWorkingDirectory) {
    TempDir dir;
    const fs::path cwd = fs::current_path();
    fs::current_path(dir.path());
    save_state("state-2", sample());
    const LoadedState l = load_state("state-2", kCluster, kSelf);
    fs::current_path(cwd);
    ASSERT_TRUE(l.state.has_value()) << l.warning;
    EXPECT_TRUE(fs::exists(dir.path() / "state-2"));
}

TEST(StateFile, FailedWriteNamesThePathAndTheStepAndLeavesNoTempFile) {
    TempDir dir;
    write_file(dir.file("plain"), "x");
    const std::string path = dir.file("plain/sub/state-2");
    try {
        save_state(path, sample());
        FAIL() << "saved under a regular file";
    } catch (const std::runtime_error& e) {
        const std::string w = e.what();
        EXPECT_NE(w.find(path), std::string::npos) << w;
        EXPECT_NE(w.find("stat of directory"), std::string::npos) << w;
        EXPECT_NE(w.find("Not a directory"), std::string::npos) << w;
    }

    // The target is a directory: rename fails, the temp file is removed.
    fs::create_directories(dir.path() / "state-3" / "x");
    try {
        save_state(dir.file("state-3"), sample());
        FAIL() << "renamed over a directory";
    } catch (const std::runtime_error& e) {
        const std::string w = e.what();
        EXPECT_NE(w.find(dir.file("state-3")), std::string::npos) << w;
        EXPECT_NE(w.find("rename"), std::string::npos) << w;
    }
    EXPECT_TRUE(fs::exists(dir.path() / "state-3" / "x")) << "what was at the path is untouched";
    for (const auto& e : fs::directory_iterator(dir.path()))
        EXPECT_EQ(e.path().filename().string().find(".tmp."), std::string::npos) << e.path();
}

TEST(StateFile, StateTheFormatCannotHoldIsRefusedOnSave) {
    TempDir dir;
    const std::string path = dir.file("state-2");
    PersistedState no_host = sample();
    no_host.host_id = kNoHost;
    EXPECT_THROW(save_state(path, no_host), std::runtime_error);
    PersistedState empty_rule = sample();
    empty_rule.rules[""] = RuleState::disabled;
    EXPECT_THROW(save_state(path, empty_rule), std::runtime_error);
    PersistedState bad_host = sample();
    bad_host.host = static_cast<HostState>(9);
    EXPECT_THROW(save_state(path, bad_host), std::runtime_error);
    EXPECT_FALSE(fs::exists(path)) << "nothing is written for a refused state";
}
