#pragma once
// The thread a control server runs its poll() loop on, and the self-pipe that
// stop() uses to wake it. Shared by ControlServer and TlsControlServer.

#include <fcntl.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <thread>
#include <utility>

namespace nlbd::ctl {

class PollThread {
public:
    PollThread() = default;
    PollThread(const PollThread&) = delete;
    PollThread& operator=(const PollThread&) = delete;
    ~PollThread() { stop(); }

    // Creates the wake pipe; returns 0, or the errno of the failure.
    int open() noexcept { return ::pipe2(fds_, O_CLOEXEC | O_NONBLOCK) == 0 ? 0 : errno; }

    template <class Fn>
    void start(Fn&& run) {
        thread_ = std::thread(std::forward<Fn>(run));
    }

    // The loop polls this fd for POLLIN and ends when stopping() is true.
    int wake_fd() const noexcept { return fds_[0]; }
    bool stopping() const noexcept { return stopping_.load(std::memory_order_acquire); }

    // Tells the loop to end, wakes it, joins it and closes the pipe. Idempotent.
    void stop() noexcept {
        stopping_.store(true, std::memory_order_release);
        if (fds_[1] >= 0) {
            const char b = 1;
            const ssize_t w = ::write(fds_[1], &b, 1);
            (void)w;
        }
        if (thread_.joinable()) thread_.join();
        for (int& fd : fds_) {
            if (fd >= 0) ::close(fd);
            fd = -1;
        }
    }

private:
    int fds_[2] = {-1, -1};
    std::thread thread_;
    std::atomic<bool> stopping_{false};
};

}  // namespace nlbd::ctl
