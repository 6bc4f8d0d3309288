// Control socket server (see server.hpp for the protocol and contracts).

#include "nlbd/ctl/server.hpp"
#include "nlbd/log/log.hpp"

#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <stdexcept>

namespace nlbd::ctl {

namespace {

[[noreturn, gnu::cold]] void fail_errno(const std::string& path, const char* step, int err) {
    throw std::runtime_error("control socket " + path + ": " + step + ": " + std::strerror(err));
}

int64_t now_ms() {
    return std::chrono::duration_cast<std::chrono::milliseconds>(
               std::chrono::steady_clock::now().time_since_epoch())
        .count();
}

sockaddr_un make_addr(const std::string& path) {
    sockaddr_un a{};
    a.sun_family = AF_UNIX;
    if (path.empty() || path.size() >= sizeof a.sun_path)
        throw std::runtime_error("control socket path '" + path + "' is empty or longer than " +
                                 std::to_string(sizeof a.sun_path - 1) + " bytes");
    std::memcpy(a.sun_path, path.c_str(), path.size() + 1);
    return a;
}

// mkdir -p; directories this creates get mode 0700 (existing ones are kept).
void make_dirs(const std::string& path) {
    size_t slash = path.rfind('/');
    if (slash == std::string::npos || slash == 0) return;
    std::string dir = path.substr(0, slash);
    struct stat st {};
    if (::stat(dir.c_str(), &st) == 0) {
        if (!S_ISDIR(st.st_mode)) throw std::runtime_error("control socket directory " + dir + " is not a directory");
        return;
    }
    make_dirs(dir);
    if (::mkdir(dir.c_str(), 0700) != 0 && errno != EEXIST) fail_errno(dir, "mkdir", errno);
    ::chmod(dir.c_str(), 0700);  // umask-independent
}

// Removes a stale socket at `path`; throws when something listens there or
// the path is not a socket.
void clear_stale(const std::string& path) {
    struct stat st {};
    if (::lstat(path.c_str(), &st) != 0) {
        if (errno == ENOENT) return;
        fail_errno(path, "lstat", errno);
    }
    if (!S_ISSOCK(st.st_mode))
        throw std::runtime_error("control socket " + path + " exists and is not a socket; refusing to remove it");
    int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) fail_errno(path, "socket", errno);
    sockaddr_un a = make_addr(path);
    int rc = ::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a);
    int err = errno;
    ::close(fd);
    if (rc == 0) throw std::runtime_error("control socket " + path + " is in use by another process (another nlbd?)");
    if (err != ECONNREFUSED) fail_errno(path, "probing the existing socket", err);
    if (::unlink(path.c_str()) != 0 && errno != ENOENT) fail_errno(path, "removing the stale socket", errno);
}

struct Client {
    int fd = -1;
    uid_t uid = 0;
    pid_t pid = 0;
    std::string in;
    std::string out;
    int64_t last_ms = 0;
    bool read_closed = false;     // peer sent EOF or we stopped reading
    bool close_after_flush = false;
};

}  // namespace

std::string make_ok_response(const Json& result) {
    std::string s = "{\"ok\":true,\"result\":";
    s += result.dump();
    s += '}';
    return s;
}

std::string make_error_response(std::string_view message) {
    std::string s = "{\"ok\":false,\"error\":";
    json_quote(s, message);
    s += '}';
    return s;
}

ControlServer::ControlServer(std::string path, Handler handler, ServerOptions options)
    : path_(std::move(path)), handler_(std::move(handler)), opt_(std::move(options)) {
    if (!handler_) throw std::runtime_error("control socket " + path_ + ": no handler");
    (void)make_addr(path_);  // validates the length before anything is created
    make_dirs(path_);
    clear_stale(path_);

    // Bind to a temporary name, chmod it 0600, then rename it into place: the
    // final path never exists with looser permissions, whatever the umask.
    std::string tmp = path_ + ".tmp" + std::to_string(::getpid());
    sockaddr_un tmp_addr = make_addr(tmp);
    ::unlink(tmp.c_str());
    listen_fd_ = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (listen_fd_ < 0) fail_errno(path_, "socket", errno);
    auto cleanup = [&](const char* step, int err) {
        ::close(listen_fd_);
        listen_fd_ = -1;
        ::unlink(tmp.c_str());
        fail_errno(path_, step, err);
    };
    if (::bind(listen_fd_, reinterpret_cast<sockaddr*>(&tmp_addr), sizeof tmp_addr) != 0) cleanup("bind", errno);
    if (::chmod(tmp.c_str(), 0600) != 0) cleanup("chmod 0600", errno);
    // SOMAXCONN: scripts fan nlbctl out over a fleet at once; a full backlog
    // refuses a local client outright (EAGAIN), it does not queue it.
    if (::listen(listen_fd_, SOMAXCONN) != 0) cleanup("listen", errno);
    if (::rename(tmp.c_str(), path_.c_str()) != 0) cleanup("rename into place", errno);
    struct stat st {};
    if (::lstat(path_.c_str(), &st) == 0) {
        dev_ = st.st_dev;
        ino_ = st.st_ino;
    }
    if (const int err = loop_.open(); err != 0) {
        ::close(listen_fd_);
        listen_fd_ = -1;
        ::unlink(path_.c_str());
        fail_errno(path_, "pipe2", err);
    }
    loop_.start([this] { run(); });
}

ControlServer::~ControlServer() { stop(); }

void ControlServer::stop() {
    if (stopped_) return;
    stopped_ = true;
    loop_.stop();
    if (listen_fd_ >= 0) ::close(listen_fd_);
    listen_fd_ = -1;
    // Unlink only our own socket: a successor may have replaced it.
    struct stat st {};
    if (::lstat(path_.c_str(), &st) == 0 && st.st_dev == dev_ && st.st_ino == ino_) ::unlink(path_.c_str());
}

void ControlServer::log(const std::string& line) const {
    if (opt_.log) opt_.log(line);
    else  // a refusal is a warning; the rest is information
        log::write(line.find("refus") != std::string::npos ? log::Level::warning : log::Level::info, "ctl: %s",
                   line.c_str());
}

std::optional<std::string> parse_request(std::string_view line, size_t max_bytes, Request& out) {
    try {
        ParseLimits lim;
        lim.max_depth = 8;
        lim.max_bytes = max_bytes;
        Json req = Json::parse(line, lim);
        if (!req.is_object()) return make_error_response("request must be a JSON object");
        const Json* c = req.find("command");
        if (!c || !c->is_string() || c->as_string().empty())
            return make_error_response("request needs a non-empty string \"command\"");
        out.command = c->as_string();
        if (const Json* a = req.find("args"); a && !a->is_null()) {
            if (!a->is_array()) return make_error_response("\"args\" must be an array of strings");
            for (const Json& x : a->as_array()) {
                if (!x.is_string()) return make_error_response("\"args\" must be an array of strings");
                out.args.push_back(x.as_string());
            }
        }
    } catch (const std::exception& e) {
        return make_error_response(std::string("bad request: ") + e.what());
    }
    return std::nullopt;
}

std::string run_handler(const Handler& handler, const Request& req, size_t max_response_bytes,
                        const std::string& caller) {
    std::string resp;
    try {
        resp = make_ok_response(handler(req.command, req.args, caller));
    } catch (const std::exception& e) {
        return make_error_response(e.what());
    } catch (...) {
        return make_error_response("command '" + req.command + "' failed with an unknown error");
    }
    if (resp.size() > max_response_bytes)
        return make_error_response("response of " + std::to_string(resp.size()) + " bytes exceeds the limit");
    return resp;
}

std::string ControlServer::handle_line(std::string_view line, const std::string& caller) {
    served_.fetch_add(1, std::memory_order_relaxed);
    Request req;
    if (auto err = parse_request(line, opt_.max_request_bytes, req)) return *err;
    return run_handler(handler_, req, opt_.max_response_bytes, caller);
}

void ControlServer::run() {
    std::vector<Client> clients;
    std::vector<pollfd> pfds;
    const uid_t self_uid = ::geteuid();
    const size_t out_high_water = opt_.max_response_bytes + 4096;

    auto close_client = [&](size_t i) {
        ::close(clients[i].fd);
        clients.erase(clients.begin() + static_cast<std::ptrdiff_t>(i));
    };

    while (!loop_.stopping()) {
        pfds.clear();
        pfds.push_back({loop_.wake_fd(), POLLIN, 0});
        pfds.push_back({listen_fd_, POLLIN, 0});
        int64_t now = now_ms();
        int timeout = 1000;
        for (const Client& c : clients) {
            short ev = 0;
            if (!c.read_closed && !c.close_after_flush && c.out.size() < out_high_water) ev |= POLLIN;
            if (!c.out.empty()) ev |= POLLOUT;
            pfds.push_back({c.fd, ev, 0});
            int64_t left = c.last_ms + opt_.client_timeout_ms - now;
            if (left < timeout) timeout = left < 0 ? 0 : static_cast<int>(left);
        }
        int n = ::poll(pfds.data(), pfds.size(), timeout);
        if (n < 0) {
            if (errno == EINTR) continue;
            log(std::string("poll failed: ") + std::strerror(errno));
            break;
        }
        if (pfds[0].revents) break;  // stop()
        now = now_ms();

        // Existing clients first (indices of pfds are 2 + client index).
        for (size_t i = clients.size(); i-- > 0;) {
            Client& c = clients[i];
            short re = pfds[2 + i].revents;
            bool drop = false;
            if (re & (POLLIN | POLLHUP | POLLERR)) {
                if (!c.read_closed && !c.close_after_flush) {
                    char buf[8192];
                    ssize_t r = ::recv(c.fd, buf, sizeof buf, 0);
                    if (r > 0) {
                        c.last_ms = now;
                        c.in.append(buf, static_cast<size_t>(r));
                    } else if (r == 0) {
                        c.read_closed = true;
                        if (!c.in.empty()) c.in += '\n';  // last request without a newline
                    } else if (errno != EAGAIN && errno != EINTR) {
                        drop = true;
                    }
                } else if (re & (POLLHUP | POLLERR)) {
                    drop = true;
                }
            }
            // Complete lines -> responses.
            while (!drop && !c.close_after_flush) {
                size_t nl = c.in.find('\n');
                if (nl == std::string::npos) {
                    if (c.in.size() > opt_.max_request_bytes) {
                        log("request from uid " + std::to_string(c.uid) + " pid " + std::to_string(c.pid) +
                            " exceeds " + std::to_string(opt_.max_request_bytes) + " bytes; closing");
                        c.out += make_error_response("request exceeds " + std::to_string(opt_.max_request_bytes) +
                                                     " bytes");
                        c.out += '\n';
                        c.in.clear();
                        c.close_after_flush = true;
                    }
                    break;
                }
                std::string_view line(c.in.data(), nl);
                if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
                if (line.size() > opt_.max_request_bytes) {
                    c.out += make_error_response("request exceeds " + std::to_string(opt_.max_request_bytes) +
                                                 " bytes");
                    c.out += '\n';
                    c.close_after_flush = true;
                    c.in.clear();
                    break;
                }
                bool blank = line.find_first_not_of(" \t") == std::string_view::npos;
                if (!blank) {
                    c.out += handle_line(line, "uid " + std::to_string(c.uid) + " pid " + std::to_string(c.pid));
                    c.out += '\n';
                }
                c.in.erase(0, nl + 1);
                if (c.out.size() >= out_high_water) break;  // wait for the peer to read
            }
            if (!drop && !c.out.empty()) {
                ssize_t w = ::send(c.fd, c.out.data(), c.out.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
                if (w > 0) {
                    c.out.erase(0, static_cast<size_t>(w));
                    c.last_ms = now;
                } else if (w < 0 && errno != EAGAIN && errno != EINTR) {
                    drop = true;
                }
            }
            if (!drop && c.out.empty() && (c.close_after_flush || (c.read_closed && c.in.empty()))) drop = true;
            if (!drop && now - c.last_ms >= opt_.client_timeout_ms) {
                log("closing control connection of uid " + std::to_string(c.uid) + " pid " + std::to_string(c.pid) +
                    " after " + std::to_string(opt_.client_timeout_ms) + " ms without progress");
                drop = true;
            }
            if (drop) close_client(i);
        }

        if (pfds[1].revents & POLLIN) {
            for (;;) {
                int fd = ::accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK);
                if (fd < 0) {
                    if (errno != EAGAIN && errno != EINTR && errno != ECONNABORTED)
                        log(std::string("accept failed: ") + std::strerror(errno));
                    break;
                }
                ucred cred{};
                socklen_t len = sizeof cred;
                if (::getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0) {
                    log(std::string("SO_PEERCRED failed: ") + std::strerror(errno) + "; refusing the connection");
                    refused_.fetch_add(1, std::memory_order_relaxed);
                    ::close(fd);
                    continue;
                }
                if (cred.uid != 0 && cred.uid != self_uid) {
                    log("refused control connection from uid " + std::to_string(cred.uid) + " pid " +
                        std::to_string(cred.pid) + " (only root or uid " + std::to_string(self_uid) + ")");
                    refused_.fetch_add(1, std::memory_order_relaxed);
                    ::close(fd);
                    continue;
                }
                if (clients.size() >= static_cast<size_t>(opt_.max_clients)) {
                    log("refused control connection from pid " + std::to_string(cred.pid) + ": " +
                        std::to_string(opt_.max_clients) + " clients already connected");
                    refused_.fetch_add(1, std::memory_order_relaxed);
                    std::string busy = make_error_response("too many control connections; try again") + "\n";
                    ssize_t w = ::send(fd, busy.data(), busy.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
                    (void)w;
                    ::close(fd);
                    continue;
                }
                Client c;
                c.fd = fd;
                c.uid = cred.uid;
                c.pid = cred.pid;
                c.last_ms = now;
                clients.push_back(std::move(c));
            }
        }
    }
    for (Client& c : clients) ::close(c.fd);
}

}  // namespace nlbd::ctl
