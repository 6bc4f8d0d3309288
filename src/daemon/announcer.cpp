// Announcer (include/nlbd/daemon/announcer.hpp): the include file and birdc.

#include "nlbd/daemon/announcer.hpp"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>

#include "nlbd/cluster/announce.hpp"
#include "nlbd/log/log.hpp"

extern char** environ;

namespace nlbd::daemon {
namespace {

using Clock = std::chrono::steady_clock;

uint32_t ms_since(Clock::time_point t0) {
    return static_cast<uint32_t>(
        std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - t0).count());
}

// Writes `text` to path.tmp, then renames it over path. Empty = done, else why not.
std::string write_atomically(const std::string& path, const std::string& text) {
    const std::string tmp = path + ".tmp";
    const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) return "cannot write " + tmp + ": " + std::strerror(errno);
    size_t off = 0;
    while (off < text.size()) {
        const ssize_t n = ::write(fd, text.data() + off, text.size() - off);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) {
            const std::string e = "cannot write " + tmp + ": " + std::strerror(errno);
            ::close(fd);
            ::unlink(tmp.c_str());
            return e;
        }
        off += static_cast<size_t>(n);
    }
    if (::close(fd) != 0) return "cannot write " + tmp + ": " + std::strerror(errno);
    if (::rename(tmp.c_str(), path.c_str()) != 0) {
        const std::string e = "cannot rename " + tmp + " to " + path + ": " + std::strerror(errno);
        ::unlink(tmp.c_str());
        return e;
    }
    return {};
}

std::string one_line(std::string s) {
    for (char& c : s)
        if (c == '\n' || c == '\r') c = ' ';
    while (!s.empty() && s.back() == ' ') s.pop_back();
    if (s.size() > 300) s = s.substr(0, 300) + "...";
    return s;
}

}  // namespace

int run_bounded(const std::vector<std::string>& argv, uint32_t timeout_ms, std::string& out) {
    out.clear();
    int pipefd[2];
    if (::pipe2(pipefd, O_CLOEXEC) != 0) {
        out = std::string("pipe: ") + std::strerror(errno);
        return -1;
    }
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, pipefd[1], 1);
    posix_spawn_file_actions_adddup2(&fa, pipefd[1], 2);
    posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
    std::vector<char*> args;
    for (const std::string& a : argv) args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    // The child starts with no blocked signal and default SIGPIPE, whatever
    // the calling thread blocks (nlbd's threads may block SIGTERM/SIGHUP).
    posix_spawnattr_t attr;
    posix_spawnattr_init(&attr);
    sigset_t none, defaults;
    sigemptyset(&none);
    sigemptyset(&defaults);
    sigaddset(&defaults, SIGPIPE);
    posix_spawnattr_setsigmask(&attr, &none);
    posix_spawnattr_setsigdefault(&attr, &defaults);
    posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
    pid_t pid = -1;
    const int rc = ::posix_spawn(&pid, args[0], &fa, &attr, args.data(), environ);
    posix_spawnattr_destroy(&attr);
    posix_spawn_file_actions_destroy(&fa);
    ::close(pipefd[1]);
    if (rc != 0) {
        ::close(pipefd[0]);
        out = "cannot run " + argv[0] + ": " + std::strerror(rc);
        return -1;
    }
    const Clock::time_point deadline = Clock::now() + std::chrono::milliseconds(timeout_ms);
    bool timed_out = false;
    char buf[512];
    for (;;) {
        const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
        if (left <= 0) {
            timed_out = true;
            break;
        }
        pollfd p{pipefd[0], POLLIN, 0};
        const int n = ::poll(&p, 1, static_cast<int>(left));
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) continue;  // timeout: the loop's check ends it
        const ssize_t r = ::read(pipefd[0], buf, sizeof buf);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) break;  // EOF: the child closed its output
        if (out.size() < 4096) out.append(buf, static_cast<size_t>(r));
    }
    ::close(pipefd[0]);
    if (timed_out) ::kill(pid, SIGKILL);
    int status = 0;
    // The child closed its output: it exits now (bounded wait, then kill).
    for (int k = 0;; ++k) {
        const pid_t w = ::waitpid(pid, &status, k < 200 ? WNOHANG : 0);
        if (w == pid) break;
        if (w < 0 && errno != EINTR) return -1;
        if (k == 199) ::kill(pid, SIGKILL);
        ::usleep(1000);
    }
    if (timed_out) {
        out = argv[0] + " did not answer within " + std::to_string(timeout_ms) + " ms (killed)";
        return -1;
    }
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

Announcer::Announcer(AnnouncerSettings s) : settings_(std::move(s)) {
    // Generation 1: nothing announced until the gate says so. This also
    // clears what a crashed predecessor may have left in the include file.
    state_.wanted_generation = 1;
    thread_ = std::thread([this] { run(); });
}

Announcer::~Announcer() {
    {
        std::lock_guard<std::mutex> lk(mu_);
        stop_ = true;
    }
    cv_.notify_all();
    if (thread_.joinable()) thread_.join();
}

uint64_t Announcer::want(std::vector<IpAddr> vips) {
    std::lock_guard<std::mutex> lk(mu_);
    if (vips != state_.wanted) {
        state_.wanted = std::move(vips);
        ++state_.wanted_generation;
        state_.in_sync = false;
        cv_.notify_all();
    }
    return state_.wanted_generation;
}

void Announcer::settings(AnnouncerSettings s) {
    std::lock_guard<std::mutex> lk(mu_);
    const bool content = !(s.next_hop == settings_.next_hop);
    settings_ = std::move(s);
    if (content) {
        ++state_.wanted_generation;
        state_.in_sync = false;
        cv_.notify_all();
    }
}

AnnouncerState Announcer::state() const {
    std::lock_guard<std::mutex> lk(mu_);
    return state_;
}

std::vector<AnnounceResult> Announcer::take_results() {
    std::lock_guard<std::mutex> lk(mu_);
    std::vector<AnnounceResult> r;
    r.swap(results_);
    return r;
}

AnnounceResult Announcer::apply(const std::vector<IpAddr>& vips, const AnnouncerSettings& s) {
    const Clock::time_point t0 = Clock::now();
    AnnounceResult r;
    r.vips = vips;
    std::string err = write_atomically(s.include_file, cluster::render_bird_include(vips, s.next_hop, s.origin));
    if (!err.empty()) {
        r.detail = err;
        r.took_ms = ms_since(t0);
        return r;
    }
    std::string out;
    const int rc = run_bounded({s.birdc, "-s", s.control_socket, "configure"}, s.command_timeout_ms, out);
    r.took_ms = ms_since(t0);
    out = one_line(out);
    // birdc exits 0 even when BIRD refuses the configuration: judge the answer.
    const bool accepted = out.find("Reconfigured") != std::string::npos ||
                          out.find("Reconfiguration in progress") != std::string::npos ||
                          out.find("queueing") != std::string::npos;
    r.ok = rc == 0 && accepted;
    r.detail = out.empty() ? "birdc exit status " + std::to_string(rc) : out;
    return r;
}

void Announcer::run() {
    std::unique_lock<std::mutex> lk(mu_);
    uint64_t tried_generation = 0;
    Clock::time_point retry_at{};
    for (;;) {
        const bool pending = state_.applied_generation != state_.wanted_generation;
        if (stop_ && (!pending || tried_generation == state_.wanted_generation)) return;
        if (!pending) {
            cv_.wait(lk);
            continue;
        }
        // A failed generation is retried after retry_interval_ms; a new one at once.
        if (tried_generation == state_.wanted_generation && !stop_ && Clock::now() < retry_at) {
            cv_.wait_until(lk, retry_at);
            continue;
        }
        const uint64_t gen = state_.wanted_generation;
        const std::vector<IpAddr> vips = state_.wanted;
        const AnnouncerSettings s = settings_;
        tried_generation = gen;
        lk.unlock();
        AnnounceResult r = apply(vips, s);
        lk.lock();
        ++state_.applies;
        state_.last_took_ms = r.took_ms;
        if (r.ok) {
            state_.applied = vips;
            state_.applied_generation = gen;
            state_.in_sync = gen == state_.wanted_generation;
            state_.last_error.clear();
        } else {
            ++state_.failures;
            state_.last_error = r.detail;
            retry_at = Clock::now() + std::chrono::milliseconds(s.retry_interval_ms);
        }
        if (results_.size() < 64) results_.push_back(std::move(r));
    }
}

}  // namespace nlbd::daemon
