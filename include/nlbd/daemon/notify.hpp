#pragma once
// systemd's service notification protocol (sd_notify(3)), spoken directly:
// one datagram per message to the AF_UNIX socket named by $NOTIFY_SOCKET
// (a path, or an abstract name when it starts with '@'). Without
// $NOTIFY_SOCKET (not started by systemd) every call does nothing.
//
// What nlbd sends (docs/systemd.md):
//   READY=1          once the ports, the workers and the control socket are up,
//                    and again after a reload;
//   RELOADING=1      while a reload is applied;
//   STATUS=...       the convergence state, whenever it changes;
//   STOPPING=1       when a stop was requested;
//   WATCHDOG=1       every WATCHDOG_USEC / 2, but only while every data-plane
//                    lcore's loop counter advanced since the previous ping
//                    (a stuck worker stops the pings; systemd restarts the
//                    service after WatchdogSec).
// Control thread only.

#include <cstdint>
#include <string>
#include <string_view>

namespace nlbd::daemon {

class SystemdNotifier {
public:
    // Reads NOTIFY_SOCKET, WATCHDOG_USEC and WATCHDOG_PID from the environment.
    SystemdNotifier();
    ~SystemdNotifier();
    SystemdNotifier(const SystemdNotifier&) = delete;
    SystemdNotifier& operator=(const SystemdNotifier&) = delete;

    bool enabled() const noexcept { return fd_ >= 0; }
    // The watchdog interval systemd asked for (0: none) for this process.
    uint64_t watchdog_usec() const noexcept { return watchdog_usec_; }

    // Sends `message` (newline-separated assignments). False when not sent.
    bool send(std::string_view message) noexcept;
    // STATUS=text, only when it differs from the last one sent.
    void status(const std::string& text) noexcept;

private:
    int fd_ = -1;
    std::string address_;  // sun_path bytes (abstract: leading NUL)
    uint64_t watchdog_usec_ = 0;
    std::string last_status_;
};

}  // namespace nlbd::daemon
