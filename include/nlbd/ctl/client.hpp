#pragma once
// Client side of the control socket (see server.hpp for the protocol).

#include <stdexcept>
#include <string>
#include <vector>

#include "nlbd/ctl/json.hpp"

namespace nlbd::ctl {

// The socket could not be reached. The message names the path and why:
// missing, permission denied, not a socket, nobody listening.
class ConnectError : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

// Sends one request and waits for its response line. Returns the parsed
// response object ({"ok":...}). Throws ConnectError when connecting fails,
// std::runtime_error on timeout, a closed connection or a malformed response.
Json call(const std::string& socket_path, const std::string& command,
          const std::vector<std::string>& args, int timeout_ms = 10000);

}  // namespace nlbd::ctl
