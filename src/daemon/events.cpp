#include "nlbd/daemon/events.hpp"

#include <chrono>
#include <ctime>

namespace nlbd::daemon {

std::string_view name_of(EventKind k) noexcept {
    switch (k) {
#define NLBD_X(name, help) \
    case EventKind::name: return #name;
        NLBD_EVENT_KINDS(NLBD_X)
#undef NLBD_X
    }
    return "unknown";
}

std::string_view help_of(EventKind k) noexcept {
    switch (k) {
#define NLBD_X(name, help) \
    case EventKind::name: return help;
        NLBD_EVENT_KINDS(NLBD_X)
#undef NLBD_X
    }
    return "";
}

void EventLog::add(EventKind kind, log::Level level, std::string text, std::string who) {
    Event e;
    e.seq = ++seq_;
    e.wall_ms = static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                          std::chrono::system_clock::now().time_since_epoch())
                                          .count());
    e.kind = kind;
    e.level = level;
    e.text = std::move(text);
    e.who = std::move(who);
    ++counts_[static_cast<size_t>(kind)];
    const std::string_view name = name_of(kind);
    log::write(level, "event %.*s: %s%s%s", static_cast<int>(name.size()), name.data(), e.text.c_str(),
               e.who.empty() ? "" : " (by ", e.who.empty() ? "" : (e.who + ")").c_str());
    events_.push_back(std::move(e));
    if (events_.size() > kCapacity) events_.pop_front();
}

std::vector<Event> EventLog::recent(size_t n) const {
    const size_t k = std::min(n, events_.size());
    return {events_.end() - static_cast<std::ptrdiff_t>(k), events_.end()};
}

ctl::Json EventLog::to_json(size_t n) const {
    ctl::Json a = ctl::Json::array();
    for (const Event& e : recent(n)) {
        ctl::Json o = ctl::Json::object();
        o["seq"] = e.seq;
        const std::time_t t = static_cast<std::time_t>(e.wall_ms / 1000);
        std::tm tm{};
        gmtime_r(&t, &tm);
        char when[80];  // room for any int the compiler cannot bound
        std::snprintf(when, sizeof when, "%04d-%02d-%02dT%02d:%02d:%02d.%03uZ", tm.tm_year + 1900, tm.tm_mon + 1,
                      tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, static_cast<unsigned>(e.wall_ms % 1000));
        o["time"] = std::string(when);
        o["kind"] = std::string(name_of(e.kind));
        o["severity"] = std::string(log::name_of(e.level));
        o["text"] = e.text;
        o["who"] = e.who;
        a.push_back(std::move(o));
    }
    return a;
}

ctl::Json EventLog::counts_json() const {
    ctl::Json o = ctl::Json::object();
    for (size_t k = 0; k < kEventKinds; ++k) o[std::string(name_of(static_cast<EventKind>(k)))] = counts_[k];
    return o;
}

}  // namespace nlbd::daemon
