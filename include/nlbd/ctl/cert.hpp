#pragma once
// Certificate helper behind `nlbctl cert` (SPEC §9): the seed's workflow -
// a SAN key + CSR, or a certificate signed by a CA, that covers the cluster
// name, autodiscover and every node name; PKCS#12 export and import to move
// it to the other nodes; and a check that a service presents a certificate
// that covers the cluster name and chains to the expected CA, reported in
// words an admin understands. OpenSSL 3 EVP APIs only; never runs the openssl
// command-line tool. Control plane only: functions throw CertError, whose
// message names what failed (file, option, OpenSSL reason).

#include <openssl/evp.h>
#include <openssl/x509.h>

#include <cstdint>
#include <cstdio>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "nlbd/ctl/json.hpp"

namespace nlbd::ctl::cert {

class CertError : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

struct PkeyFree { void operator()(EVP_PKEY* p) const noexcept; };
struct X509Free { void operator()(X509* p) const noexcept; };
struct ReqFree { void operator()(X509_REQ* p) const noexcept; };
using Key = std::unique_ptr<EVP_PKEY, PkeyFree>;
using Cert = std::unique_ptr<X509, X509Free>;
using Csr = std::unique_ptr<X509_REQ, ReqFree>;

enum class KeyType { ec, rsa };   // ec: P-256; rsa: 3072 bits

// The names a cluster certificate must cover (the seed's list).
struct Names {
    std::string cluster;                 // FQDN of the cluster, e.g. mail.ehlo.dk; also the subject CN
    bool autodiscover = true;            // add autodiscover.<domain of cluster>
    std::vector<std::string> nodes;      // node FQDNs, e.g. cas01.ehlo.dk
    std::vector<std::string> netbios;    // node NetBIOS names, e.g. CAS01
    std::vector<std::string> extra;      // any other DNS names
};

// The DNS subjectAltName entries for `n`, in this order: cluster,
// autodiscover.<domain>, nodes, NetBIOS names, extra; duplicates (compared
// case-insensitively) dropped. Throws CertError when the cluster name is
// empty or a name is not a plausible DNS label sequence.
std::vector<std::string> san_names(const Names& n);

// Validity relative to now, in seconds. Certificates start 5 minutes in the
// past so that clocks a little behind still accept them.
struct Validity {
    int64_t not_before_s = -300;
    int64_t not_after_s = 397LL * 86400;   // 397 days: the browsers' limit for leaf certificates
    static Validity days(int n) { return {-300, static_cast<int64_t>(n) * 86400}; }
};

Key make_key(KeyType type);
Csr make_csr(EVP_PKEY* key, const Names& names);

// A self-signed lab CA: CA:TRUE (critical), keyCertSign + cRLSign, random serial.
Cert make_ca(EVP_PKEY* ca_key, const std::string& common_name, Validity v = Validity::days(3650));

// A leaf signed by `ca`: CA:FALSE, digitalSignature (+keyEncipherment for RSA),
// extendedKeyUsage serverAuth, SAN = san_names(names), CN = cluster, random
// 128-bit serial, subject/authority key identifiers. `leaf_key` may be the
// public key of a CSR.
Cert issue_leaf(EVP_PKEY* leaf_key, const Names& names, X509* ca, EVP_PKEY* ca_key, Validity v = {});

// ---- files (PEM). Keys are written mode 0600. Writing refuses to replace an
// existing file unless `overwrite`.
void write_key(const std::string& path, EVP_PKEY* key, bool overwrite);
void write_cert(const std::string& path, X509* cert, bool overwrite, bool append = false);
void write_csr(const std::string& path, X509_REQ* req, bool overwrite);
Key read_key(const std::string& path);
std::vector<Cert> read_certs(const std::string& path);   // every certificate in the file, at least one
Csr read_csr(const std::string& path);

// ---- PKCS#12 (AES-256 / PBKDF2 / HMAC-SHA256, OpenSSL 3 defaults).
std::string export_p12(X509* cert, EVP_PKEY* key, const std::vector<X509*>& ca, const std::string& password,
                       const std::string& friendly_name);
struct P12Content {
    Key key;
    Cert cert;
    std::vector<Cert> ca;
};
// Throws CertError saying "wrong password" when the MAC does not verify.
P12Content import_p12(std::string_view der, const std::string& password);

// ---- inspection
std::vector<std::string> dns_names(X509* cert);   // the DNS entries of subjectAltName
std::string subject_text(X509* cert);             // "CN=mail.ehlo.dk, O=..."
std::string time_text(const ASN1_TIME* t);         // "2027-12-26 10:00:00 UTC"
bool is_ca(X509* cert);

// ---- check
enum class Problem {
    name_not_covered,    // a required name is not in the certificate
    expired,
    not_yet_valid,
    self_signed,         // self-signed and not the given CA
    unknown_ca,          // does not chain to the given CA
    bad_purpose,         // not valid for TLS server authentication
    bad_signature,
    other_verify,        // any other chain error, with OpenSSL's text
    connect_failed,      // TCP
    handshake_failed,    // TLS
    no_certificate,
};
const char* problem_name(Problem p);

struct Finding {
    Problem problem;
    std::string text;    // one sentence for the admin
};

struct CheckRequest {
    std::string name;                   // the cluster name clients use (required)
    std::vector<std::string> also;      // more names that must be covered
    std::vector<std::string> ca_files;  // trust anchors; empty: the system's trust store
    std::string connect;                // host:port, [v6]:port, or host (port 443); empty: offline
                                        // (the CLI takes a comma-separated list and checks each)
    std::string sni;                    // SNI to send; empty: `name`
    std::string cert_file;              // offline: the certificate (and chain) to check
    int timeout_ms = 5000;
};

// An OK certificate that expires sooner than this gets a note to renew it.
inline constexpr int kRenewWithinDays = 30;

struct CheckReport {
    bool ok = false;
    std::string source;                 // "10.0.0.10:443" or the file name
    bool remote = false;                // source is a service (not a file)
    std::string sni;
    std::string subject, issuer, chains_to, not_before, not_after;
    int64_t expires_in_days = 0;        // from now (or the `now` given); negative when expired
    std::vector<std::string> covers;    // DNS names of the presented certificate
    std::vector<std::pair<std::string, bool>> names;   // required name -> covered
    std::vector<Finding> findings;      // empty when ok
};

// Verifies `leaf` (with `untrusted` intermediates) against the trust anchors:
// chain, validity, purpose and, through X509_VERIFY_PARAM_set1_host, the name;
// every chain error is collected, not just the first. `now` overrides the
// clock (tests).
CheckReport check_certificate(X509* leaf, const std::vector<X509*>& untrusted, const std::vector<X509*>& anchors,
                              const std::string& name, const std::vector<std::string>& also,
                              std::optional<time_t> now = std::nullopt);

// The whole check: offline (cert_file) or by a TLS handshake with SNI.
CheckReport run_check(const CheckRequest& req);

std::string describe(const CheckReport& r);   // the admin's text, lines ending in '\n'
Json to_json(const CheckReport& r);

// `nlbctl cert SUBCOMMAND ...` (args after "cert"). Exit codes: 0 ok, 1
// problem or failure, 2 usage.
int cert_main(const std::vector<std::string>& args, bool json, std::FILE* out, std::FILE* err);

// Hook for nlbctl_main: when the first command word of `argv` (after global
// options) is a local command ("cert"), runs it and returns its exit code.
std::optional<int> run_local_command(const std::vector<std::string>& argv, std::FILE* out, std::FILE* err);

}  // namespace nlbd::ctl::cert
