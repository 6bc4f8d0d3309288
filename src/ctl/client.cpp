// Client side of the control socket (see client.hpp).

#include "nlbd/ctl/client.hpp"

#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>

namespace nlbd::ctl {

namespace {

constexpr size_t kMaxResponseBytes = 64u << 20;

class Fd {
public:
    explicit Fd(int fd) : fd_(fd) {}
    ~Fd() { if (fd_ >= 0) ::close(fd_); }
    Fd(const Fd&) = delete;
    Fd& operator=(const Fd&) = delete;
    int get() const { return fd_; }
private:
    int fd_;
};

[[noreturn, gnu::cold]] void connect_failed(const std::string& path, int err) {
    std::string why;
    struct stat st {};
    switch (err) {
    case ENOENT: {
        size_t slash = path.rfind('/');
        std::string dir = slash == std::string::npos ? "." : path.substr(0, slash == 0 ? 1 : slash);
        if (::stat(dir.c_str(), &st) != 0 && errno == EACCES)
            why = "permission denied on its directory " + dir + " (run as root or as nlbd's user)";
        else
            why = "it does not exist (is nlbd running? does it use another --ctl-socket?)";
        break;
    }
    case EACCES:
    case EPERM:
        why = "permission denied (the socket is root-only: run as root or as nlbd's user)";
        break;
    case ECONNREFUSED:
        if (::lstat(path.c_str(), &st) == 0 && !S_ISSOCK(st.st_mode))
            why = "it exists but is not a socket";
        else
            why = "the socket exists but nobody is listening (stale socket: nlbd is not running)";
        break;
    case ENOTDIR:
        why = "a component of the path is not a directory";
        break;
    default:
        why = std::strerror(err);
    }
    throw ConnectError("cannot connect to control socket " + path + ": " + why);
}

}  // namespace

Json call(const std::string& socket_path, const std::string& command,
          const std::vector<std::string>& args, int timeout_ms) {
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    if (socket_path.empty() || socket_path.size() >= sizeof addr.sun_path)
        throw ConnectError("cannot connect to control socket '" + socket_path + "': path empty or too long");
    std::memcpy(addr.sun_path, socket_path.c_str(), socket_path.size() + 1);

    Fd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
    if (fd.get() < 0) throw ConnectError(std::string("socket(AF_UNIX): ") + std::strerror(errno));
    if (::connect(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) connect_failed(socket_path, errno);

    Json req = Json::object();
    req["command"] = command;
    Json a = Json::array();
    for (const auto& s : args) a.push_back(s);
    req["args"] = std::move(a);
    std::string line = req.dump();
    line += '\n';

    using Clock = std::chrono::steady_clock;
    const auto deadline = Clock::now() + std::chrono::milliseconds(timeout_ms);
    auto wait = [&](short ev) {
        for (;;) {
            auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
            if (left <= 0)
                throw std::runtime_error("control socket " + socket_path + ": no answer within " +
                                         std::to_string(timeout_ms) + " ms");
            pollfd p{fd.get(), ev, 0};
            int n = ::poll(&p, 1, static_cast<int>(left));
            if (n > 0) return;
            if (n < 0 && errno != EINTR)
                throw std::runtime_error(std::string("control socket: poll: ") + std::strerror(errno));
        }
    };

    size_t sent = 0;
    while (sent < line.size()) {
        wait(POLLOUT);
        ssize_t w = ::send(fd.get(), line.data() + sent, line.size() - sent, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (w > 0) sent += static_cast<size_t>(w);
        else if (w < 0 && errno != EAGAIN && errno != EINTR) {
            if (errno == EPIPE || errno == ECONNRESET)
                throw ConnectError("control socket " + socket_path +
                                   ": the daemon closed the connection (refused: not root or nlbd's user?)");
            throw std::runtime_error("control socket " + socket_path + ": send: " + std::strerror(errno));
        }
    }

    std::string in;
    for (;;) {
        wait(POLLIN);
        char buf[16384];
        ssize_t r = ::recv(fd.get(), buf, sizeof buf, MSG_DONTWAIT);
        if (r > 0) {
            in.append(buf, static_cast<size_t>(r));
            size_t nl = in.find('\n');
            if (nl != std::string::npos) {
                in.resize(nl);
                break;
            }
            if (in.size() > kMaxResponseBytes)
                throw std::runtime_error("control socket " + socket_path + ": response larger than " +
                                         std::to_string(kMaxResponseBytes) + " bytes");
        } else if (r == 0 || (errno != EAGAIN && errno != EINTR)) {
            if (in.empty())
                throw ConnectError("control socket " + socket_path +
                                   ": the daemon closed the connection without answering "
                                   "(refused: not root or nlbd's user?)");
            throw std::runtime_error("control socket " + socket_path + ": connection closed mid-response");
        }
    }
    ParseLimits lim;
    lim.max_bytes = kMaxResponseBytes;
    lim.max_depth = 128;
    Json resp = Json::parse(in, lim);
    if (!resp.is_object() || !resp.find("ok") || !resp.find("ok")->is_bool())
        throw std::runtime_error("control socket " + socket_path + ": malformed response (no \"ok\")");
    return resp;
}

}  // namespace nlbd::ctl
