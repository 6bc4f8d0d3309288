#include "nlbd/daemon/notify.hpp"
#include "nlbd/log/log.hpp"

#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstddef>
#include <cstdio>
#include <cstdlib>
#include <cstring>

namespace nlbd::daemon {

SystemdNotifier::SystemdNotifier() {
    const char* sock = std::getenv("NOTIFY_SOCKET");
    if (sock == nullptr || sock[0] == '\0') return;
    std::string a = sock;
    if (a[0] == '@') a[0] = '\0';  // abstract namespace
    else if (a[0] != '/') {
        NLBD_LOG(warning, "NOTIFY_SOCKET=%s is neither a path nor an abstract name; not notifying", sock);
        return;
    }
    if (a.size() >= sizeof(sockaddr_un::sun_path)) {
        NLBD_LOG(warning, "NOTIFY_SOCKET is too long; not notifying");
        return;
    }
    fd_ = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd_ < 0) {
        NLBD_LOG(warning, "NOTIFY_SOCKET: socket: %s", std::strerror(errno));
        return;
    }
    address_ = a;
    // The watchdog is ours unless WATCHDOG_PID names another process.
    const char* pid = std::getenv("WATCHDOG_PID");
    const char* usec = std::getenv("WATCHDOG_USEC");
    if (usec != nullptr && (pid == nullptr || std::strtoll(pid, nullptr, 10) == ::getpid()))
        watchdog_usec_ = std::strtoull(usec, nullptr, 10);
}

SystemdNotifier::~SystemdNotifier() {
    if (fd_ >= 0) ::close(fd_);
}

bool SystemdNotifier::send(std::string_view message) noexcept {
    if (fd_ < 0) return false;
    sockaddr_un sa{};
    sa.sun_family = AF_UNIX;
    std::memcpy(sa.sun_path, address_.data(), address_.size());
    const socklen_t len = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + address_.size() +
                                                 (address_[0] == '\0' ? 0 : 1));
    return ::sendto(fd_, message.data(), message.size(), MSG_NOSIGNAL | MSG_DONTWAIT,
                    reinterpret_cast<const sockaddr*>(&sa), len) == static_cast<ssize_t>(message.size());
}

void SystemdNotifier::status(const std::string& text) noexcept {
    if (fd_ < 0 || text == last_status_) return;
    try {
        if (send("STATUS=" + text)) last_status_ = text;
    } catch (...) {
        // No memory for a status line: the next change retries.
    }
}

}  // namespace nlbd::daemon
