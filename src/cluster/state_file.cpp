// Host state file: format and rationale in docs/state-file.md.
//
//   # comment lines
//   format = nlbd-state 1
//   cluster = "mail.ehlo.dk"
//   host_id = 2
//   host = suspended
//   rule "10.0.0.10:443/tcp" = disabled
//   checksum = sha256:<64 hex digits: SHA-256 of every byte before this line>

#include "nlbd/cluster/state_file.hpp"

#include <fcntl.h>
#include <openssl/evp.h>
#include <sys/stat.h>
#include <unistd.h>

#include <array>
#include <cctype>
#include <cerrno>
#include <cstring>
#include <stdexcept>
#include <string_view>
#include <utility>
#include <vector>

namespace nlbd::cluster {
namespace {

// The file's own names, a persistent contract: not name_of(), whose display
// names may change without breaking files already written.
struct HostName {
    HostState state;
    std::string_view name;
};
constexpr std::array<HostName, 3> kHostNames{{
    {HostState::stopped, "stopped"},
    {HostState::started, "started"},
    {HostState::suspended, "suspended"},
}};
struct RuleName {
    RuleState state;
    std::string_view name;
};
constexpr std::array<RuleName, 2> kRuleNames{{
    {RuleState::draining, "draining"},
    {RuleState::disabled, "disabled"},
}};

constexpr std::string_view kFormatKey = "format";
constexpr std::string_view kFormatName = "nlbd-state";
constexpr std::string_view kChecksumPrefix = "checksum = sha256:";
constexpr size_t kSha256Hex = 64;

constexpr std::string_view kHeader =
    "# nlbd host state (docs/state-file.md), restored when nlbd starts.\n"
    "# Written by nlbd: an edited file fails its checksum and is ignored with a\n"
    "# warning. Delete it to start from the configured initial state.\n";

std::string sha256_hex(std::string_view bytes) {
    std::array<unsigned char, 32> md{};
    unsigned len = 0;
    if (EVP_Digest(bytes.data(), bytes.size(), md.data(), &len, EVP_sha256(), nullptr) != 1 ||
        len != md.size())
        throw std::runtime_error("state file: SHA-256 (OpenSSL EVP_Digest) failed");
    static constexpr char kHex[] = "0123456789abcdef";
    std::string out;
    out.reserve(kSha256Hex);
    for (unsigned char b : md) {
        out += kHex[b >> 4];
        out += kHex[b & 0xf];
    }
    return out;
}

// "..." with \\ \" and \xHH for control bytes: any byte string round-trips,
// and a line never holds a raw newline.
std::string quote(std::string_view s) {
    static constexpr char kHex[] = "0123456789abcdef";
    std::string out = "\"";
    for (char ch : s) {
        const auto c = static_cast<unsigned char>(ch);
        if (ch == '"' || ch == '\\') {
            out += '\\';
            out += ch;
        } else if (c < 0x20 || c == 0x7f) {
            out += "\\x";
            out += kHex[c >> 4];
            out += kHex[c & 0xf];
        } else {
            out += ch;
        }
    }
    out += '"';
    return out;
}

std::string host_state_name(HostState h) {
    if (h == HostState::draining) h = HostState::stopped;  // a drainstop's end state
    for (const auto& n : kHostNames)
        if (n.state == h) return std::string(n.name);
    throw std::invalid_argument("host state " + std::to_string(static_cast<unsigned>(h)) +
                                " is not a HostState");
}

std::string format_state(const PersistedState& s) {
    if (s.host_id == kNoHost) throw std::invalid_argument("host id 0 is not a host id");
    std::string text(kHeader);
    text += std::string(kFormatKey) + " = " + std::string(kFormatName) + " " +
            std::to_string(kStateFileVersion) + "\n";
    text += "cluster = " + quote(s.cluster) + "\n";
    text += "host_id = " + std::to_string(s.host_id) + "\n";
    text += "host = " + host_state_name(s.host) + "\n";
    for (const auto& [name, state] : s.rules) {
        if (state == RuleState::enabled) continue;
        if (name.empty()) throw std::invalid_argument("a rule has an empty name");
        std::string_view state_name;
        for (const auto& n : kRuleNames)
            if (n.state == state) state_name = n.name;
        if (state_name.empty())
            throw std::invalid_argument("rule " + name + ": state " +
                                        std::to_string(static_cast<unsigned>(state)) +
                                        " is not a RuleState");
        text += "rule " + quote(name) + " = " + std::string(state_name) + "\n";
    }
    text += std::string(kChecksumPrefix) + sha256_hex(text) + "\n";
    return text;
}

// ---- Writing ----------------------------------------------------------------

[[gnu::cold]] [[noreturn]] void fail(const std::string& path, const std::string& step, int err) {
    throw std::runtime_error("state file " + path + ": " + step + ": " + std::strerror(err));
}

class Fd {
public:
    explicit Fd(int fd) noexcept : fd_(fd) {}
    Fd(const Fd&) = delete;
    Fd& operator=(const Fd&) = delete;
    ~Fd() {
        if (fd_ >= 0) ::close(fd_);
    }
    int get() const noexcept { return fd_; }
    // close() reports the last write-back error on some file systems.
    int close() noexcept {
        const int rc = ::close(fd_);
        fd_ = -1;
        return rc;
    }

private:
    int fd_;
};

std::string parent_of(const std::string& path) {
    const size_t slash = path.find_last_of('/');
    if (slash == std::string::npos) return ".";
    if (slash == 0) return "/";
    return path.substr(0, slash);
}

// mkdir -p with mode 0700 for the directories it creates (existing ones keep
// theirs).
void make_directories(const std::string& path, const std::string& dir) {
    struct stat st {};
    if (::stat(dir.c_str(), &st) == 0) {
        if (!S_ISDIR(st.st_mode)) fail(path, "directory " + dir + " is not a directory", ENOTDIR);
        return;
    }
    if (errno != ENOENT) fail(path, "stat of directory " + dir, errno);
    const std::string up = parent_of(dir);
    if (up != dir) make_directories(path, up);
    if (::mkdir(dir.c_str(), 0700) != 0) {
        if (errno != EEXIST) fail(path, "create directory " + dir, errno);
        return;  // made meanwhile by someone else: theirs, mode included
    }
    // Exactly 0700 whatever the umask.
    if (::chmod(dir.c_str(), 0700) != 0) fail(path, "chmod 0700 directory " + dir, errno);
}

void write_all(const std::string& path, const std::string& tmp, int fd, std::string_view bytes) {
    while (!bytes.empty()) {
        const ssize_t n = ::write(fd, bytes.data(), bytes.size());
        if (n < 0) {
            if (errno == EINTR) continue;
            fail(path, "write " + tmp, errno);
        }
        bytes.remove_prefix(static_cast<size_t>(n));
    }
}

// ---- Reading ----------------------------------------------------------------

struct Problem {
    std::string text;
};

// One line of the body, read left to right; every failure names the line.
class Cursor {
public:
    Cursor(std::string_view line, unsigned number) : rest_(line), number_(number) {}

    [[gnu::cold]] Problem problem(const std::string& what) const {
        return Problem{"line " + std::to_string(number_) + ": " + what};
    }
    void skip_spaces() {
        while (!rest_.empty() && (rest_.front() == ' ' || rest_.front() == '\t')) rest_.remove_prefix(1);
    }
    // A bare word: letters, digits, '_' and '-'.
    std::string_view word() {
        skip_spaces();
        size_t n = 0;
        while (n < rest_.size() && (std::isalnum(static_cast<unsigned char>(rest_[n])) ||
                                    rest_[n] == '_' || rest_[n] == '-'))
            ++n;
        const std::string_view w = rest_.substr(0, n);
        rest_.remove_prefix(n);
        return w;
    }
    void expect(char c) {
        skip_spaces();
        if (rest_.empty() || rest_.front() != c)
            throw problem(std::string("expected '") + c + "' before '" + std::string(rest_) + "'");
        rest_.remove_prefix(1);
    }
    std::string quoted() {
        skip_spaces();
        if (rest_.empty() || rest_.front() != '"') throw problem("expected a quoted string");
        rest_.remove_prefix(1);
        std::string out;
        while (true) {
            if (rest_.empty()) throw problem("unterminated string");
            const char c = rest_.front();
            rest_.remove_prefix(1);
            if (c == '"') return out;
            if (c != '\\') {
                out += c;
                continue;
            }
            if (rest_.empty()) throw problem("unterminated string");
            const char e = rest_.front();
            rest_.remove_prefix(1);
            if (e == '"' || e == '\\') {
                out += e;
            } else if (e == 'x' && rest_.size() >= 2 && std::isxdigit(static_cast<unsigned char>(rest_[0])) &&
                       std::isxdigit(static_cast<unsigned char>(rest_[1]))) {
                out += static_cast<char>(hex_digit(rest_[0]) * 16 + hex_digit(rest_[1]));
                rest_.remove_prefix(2);
            } else {
                throw problem(std::string("bad escape '\\") + e + "' in a string");
            }
        }
    }
    void end() {
        skip_spaces();
        if (!rest_.empty()) throw problem("unexpected '" + std::string(rest_) + "' at the end of the line");
    }

private:
    static int hex_digit(char c) noexcept {
        return c <= '9' ? c - '0' : (c | 0x20) - 'a' + 10;
    }

    std::string_view rest_;
    unsigned number_;
};

unsigned parse_number(Cursor& c, std::string_view w, unsigned max, const char* what) {
    if (w.empty() || w.size() > 3 || (w.size() > 1 && w.front() == '0'))
        throw c.problem(std::string(what) + " '" + std::string(w) + "' is not a number from 1 to " +
                        std::to_string(max));
    unsigned v = 0;
    for (char ch : w) {
        if (ch < '0' || ch > '9')
            throw c.problem(std::string(what) + " '" + std::string(w) + "' is not a number from 1 to " +
                            std::to_string(max));
        v = v * 10 + static_cast<unsigned>(ch - '0');
    }
    if (v < 1 || v > max)
        throw c.problem(std::string(what) + " " + std::to_string(v) + " is not from 1 to " + std::to_string(max));
    return v;
}

// The lines of text, numbered from 1, without comments and blank lines.
struct Line {
    std::string_view text;
    unsigned number;
};
std::vector<Line> body_lines(std::string_view text) {
    std::vector<Line> lines;
    unsigned number = 0;
    while (!text.empty()) {
        ++number;
        const size_t nl = text.find('\n');
        const std::string_view line = text.substr(0, nl);
        text.remove_prefix(nl == std::string_view::npos ? text.size() : nl + 1);
        const size_t first = line.find_first_not_of(" \t");
        if (first == std::string_view::npos || line[first] == '#') continue;
        lines.push_back({line, number});
    }
    return lines;
}

// Returns the state or throws Problem; checks the format line, then the
// checksum, then every line.
PersistedState parse_state(std::string_view text) {
    if (text.empty()) throw Problem{"the file is empty (truncated?)"};
    if (text.back() != '\n') throw Problem{"the last line is incomplete (truncated?)"};

    const std::vector<Line> lines = body_lines(text);
    if (lines.empty()) throw Problem{"no format line (truncated?)"};
    {
        Cursor c(lines.front().text, lines.front().number);
        if (c.word() != kFormatKey) throw c.problem("expected 'format = nlbd-state 1' first");
        c.expect('=');
        if (c.word() != kFormatName) throw c.problem("expected 'format = nlbd-state 1' first");
        const std::string_view v = c.word();
        if (v != std::to_string(kStateFileVersion))
            throw c.problem("format version '" + std::string(v) + "' is not supported (this nlbd reads " +
                            std::to_string(kStateFileVersion) + ")");
        c.end();
    }

    // The checksum line is the last line; it covers every byte before it.
    const size_t last_start = text.find_last_of('\n', text.size() - 2);
    const size_t body_len = last_start == std::string_view::npos ? 0 : last_start + 1;
    const std::string_view last = text.substr(body_len, text.size() - 1 - body_len);
    if (last.substr(0, kChecksumPrefix.size()) != kChecksumPrefix)
        throw Problem{"no checksum line at the end (truncated?)"};
    const std::string_view sum = last.substr(kChecksumPrefix.size());
    const std::string want = sha256_hex(text.substr(0, body_len));
    if (sum != want)
        throw Problem{"checksum mismatch (the file is corrupt or was edited): the file says " +
                      std::string(sum.substr(0, kSha256Hex + 1)) + ", its content hashes to " + want};

    PersistedState s;
    bool have_cluster = false, have_host_id = false, have_host = false;
    const Line* const end = &lines.back();  // the checksum line
    for (const Line* l = &lines[1]; l != end; ++l) {
        Cursor c(l->text, l->number);
        const std::string_view key = c.word();
        if (key == "cluster") {
            if (have_cluster) throw c.problem("a second 'cluster'");
            c.expect('=');
            s.cluster = c.quoted();
            have_cluster = true;
        } else if (key == "host_id") {
            if (have_host_id) throw c.problem("a second 'host_id'");
            c.expect('=');
            s.host_id = static_cast<HostId>(parse_number(c, c.word(), 255, "host_id"));
            have_host_id = true;
        } else if (key == "host") {
            if (have_host) throw c.problem("a second 'host'");
            c.expect('=');
            const std::string_view w = c.word();
            const HostName* found = nullptr;
            for (const auto& n : kHostNames)
                if (n.name == w) found = &n;
            if (found == nullptr)
                throw c.problem("host state '" + std::string(w) +
                                "' is not one of stopped, started, suspended");
            s.host = found->state;
            have_host = true;
        } else if (key == "rule") {
            std::string name = c.quoted();
            if (name.empty()) throw c.problem("a rule with an empty name");
            c.expect('=');
            const std::string_view w = c.word();
            const RuleName* found = nullptr;
            for (const auto& n : kRuleNames)
                if (n.name == w) found = &n;
            if (found == nullptr)
                throw c.problem("rule " + name + ": state '" + std::string(w) +
                                "' is not one of draining, disabled");
            if (s.rules.count(name) != 0) throw c.problem("rule " + quote(name) + " is listed twice");
            s.rules.emplace(std::move(name), found->state);
        } else {
            throw c.problem("unknown key '" + std::string(key.empty() ? l->text : key) + "'");
        }
        c.end();
    }
    if (!have_cluster) throw Problem{"no 'cluster' line"};
    if (!have_host_id) throw Problem{"no 'host_id' line"};
    if (!have_host) throw Problem{"no 'host' line"};
    return s;
}

}  // namespace

void save_state(const std::string& path, const PersistedState& s) {
    std::string text;
    try {
        text = format_state(s);
    } catch (const std::invalid_argument& e) {
        throw std::runtime_error("state file " + path + ": cannot save: " + e.what());
    }
    const std::string dir = parent_of(path);
    make_directories(path, dir);

    std::string tmp = path + ".tmp.XXXXXX";
    Fd fd(::mkstemp(tmp.data()));
    if (fd.get() < 0) fail(path, "create temp file " + tmp, errno);
    // Until the rename, a failure removes the temp file.
    struct Unlink {
        const std::string& name;
        bool armed = true;
        ~Unlink() {
            if (armed) ::unlink(name.c_str());
        }
    } unlink_tmp{tmp};
    if (::fchmod(fd.get(), 0600) != 0) fail(path, "chmod 0600 " + tmp, errno);
    write_all(path, tmp, fd.get(), text);
    if (::fsync(fd.get()) != 0) fail(path, "fsync " + tmp, errno);
    if (fd.close() != 0) fail(path, "close " + tmp, errno);
    if (::rename(tmp.c_str(), path.c_str()) != 0) fail(path, "rename " + tmp + " to " + path, errno);
    unlink_tmp.armed = false;

    // The rename is durable only once the directory is.
    Fd d(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (d.get() < 0) fail(path, "open directory " + dir + " to fsync it", errno);
    if (::fsync(d.get()) != 0) fail(path, "fsync directory " + dir, errno);
}

LoadedState load_state(const std::string& path, const std::string& cluster, HostId host_id) {
    const auto ignored = [&](const std::string& problem) {
        return LoadedState{std::nullopt, "state file " + path + " ignored: " + problem};
    };
    Fd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
    if (fd.get() < 0) {
        if (errno == ENOENT) return {};  // first start
        return ignored(std::string("cannot open: ") + std::strerror(errno));
    }
    struct stat st {};
    if (::fstat(fd.get(), &st) != 0) return ignored(std::string("cannot stat: ") + std::strerror(errno));
    if (!S_ISREG(st.st_mode)) return ignored("not a regular file");
    if (static_cast<uint64_t>(st.st_size) > kMaxStateFileBytes)
        return ignored(std::to_string(st.st_size) + " bytes, more than the " +
                       std::to_string(kMaxStateFileBytes) + " a state file may have");

    std::string text;
    std::array<char, 8192> buf{};
    while (true) {
        const ssize_t n = ::read(fd.get(), buf.data(), buf.size());
        if (n < 0) {
            if (errno == EINTR) continue;
            return ignored(std::string("cannot read: ") + std::strerror(errno));
        }
        if (n == 0) break;
        text.append(buf.data(), static_cast<size_t>(n));
        if (text.size() > kMaxStateFileBytes)
            return ignored("more than the " + std::to_string(kMaxStateFileBytes) +
                           " bytes a state file may have");
    }

    PersistedState s;
    try {
        s = parse_state(text);
    } catch (const Problem& p) {
        return ignored(p.text);
    }
    if (s.cluster != cluster)
        return ignored("written for cluster " + quote(s.cluster) + ", this host is in cluster " +
                       quote(cluster));
    if (s.host_id != host_id)
        return ignored("written for host id " + std::to_string(s.host_id) + ", this host is host id " +
                       std::to_string(host_id));
    return {std::move(s), {}};
}

}  // namespace nlbd::cluster
