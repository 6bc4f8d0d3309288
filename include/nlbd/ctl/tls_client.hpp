#pragma once
// Client side of nlbd's remote control over mutual TLS (tls_server.hpp): one
// request, one response, the same JSON line protocol as the UNIX socket.

#include <string>
#include <vector>

#include "nlbd/ctl/client.hpp"
#include "nlbd/ctl/json.hpp"

namespace nlbd::ctl {

struct RemoteTarget {
    std::string address;      // "host:port", "[v6]:port"
    std::string cert_file;    // client certificate (PEM), its CN is the operator's identity
    std::string key_file;     // its private key (PEM)
    std::string ca_file;      // CA that must have signed the server's certificate
    std::string server_name;  // when set: SNI and the certificate must cover this name
};

// Connects (TLS 1.2+, verifying the server against ca_file and, when given,
// server_name), sends one request and returns the parsed response object.
// Throws ConnectError when the connection or the handshake fails or the
// server refuses our certificate (the message says why: unknown CA, expired,
// name mismatch, certificate required ...), std::runtime_error on a timeout,
// a broken connection or a malformed response.
Json call_remote(const RemoteTarget& target, const std::string& command, const std::vector<std::string>& args,
                 int timeout_ms = 10000);

}  // namespace nlbd::ctl
