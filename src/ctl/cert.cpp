// Certificate helper behind `nlbctl cert` (see cert.hpp, docs/certificates.md).
// OpenSSL 3 EVP/X509 APIs only. Every failure throws CertError naming the
// file or option involved and OpenSSL's own reason.

#include "nlbd/ctl/cert.hpp"

#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <unistd.h>

#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/pkcs12.h>
#include <openssl/provider.h>
#include <openssl/rand.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <fstream>
#include <iterator>
#include <set>
#include <sstream>

namespace nlbd::ctl::cert {

void PkeyFree::operator()(EVP_PKEY* p) const noexcept { EVP_PKEY_free(p); }
void X509Free::operator()(X509* p) const noexcept { X509_free(p); }
void ReqFree::operator()(X509_REQ* p) const noexcept { X509_REQ_free(p); }

namespace {

template <typename T, void (*F)(T*)>
struct Deleter {
    void operator()(T* p) const noexcept { F(p); }
};
using BioPtr = std::unique_ptr<BIO, Deleter<BIO, BIO_free_all>>;
using BnPtr = std::unique_ptr<BIGNUM, Deleter<BIGNUM, BN_free>>;
using P12Ptr = std::unique_ptr<PKCS12, Deleter<PKCS12, PKCS12_free>>;
using StorePtr = std::unique_ptr<X509_STORE, Deleter<X509_STORE, X509_STORE_free>>;
using StoreCtxPtr = std::unique_ptr<X509_STORE_CTX, Deleter<X509_STORE_CTX, X509_STORE_CTX_free>>;
using ExtPtr = std::unique_ptr<X509_EXTENSION, Deleter<X509_EXTENSION, X509_EXTENSION_free>>;
using SslCtxPtr = std::unique_ptr<SSL_CTX, Deleter<SSL_CTX, SSL_CTX_free>>;
using SslPtr = std::unique_ptr<SSL, Deleter<SSL, SSL_free>>;

struct GensFree {
    void operator()(GENERAL_NAMES* g) const noexcept { GENERAL_NAMES_free(g); }
};
using GensPtr = std::unique_ptr<GENERAL_NAMES, GensFree>;
struct X509StackFree {
    void operator()(STACK_OF(X509)* s) const noexcept { sk_X509_pop_free(s, X509_free); }
};
using X509Stack = std::unique_ptr<STACK_OF(X509), X509StackFree>;
struct ExtStackFree {
    void operator()(STACK_OF(X509_EXTENSION)* s) const noexcept { sk_X509_EXTENSION_pop_free(s, X509_EXTENSION_free); }
};

// OpenSSL's error queue as text (and cleared).
std::string ssl_errors() {
    std::string s;
    while (unsigned long e = ERR_get_error()) {
        char buf[256];
        ERR_error_string_n(e, buf, sizeof buf);
        if (!s.empty()) s += "; ";
        s += buf;
    }
    return s;
}

[[noreturn, gnu::cold]] void fail(const std::string& what) {
    std::string e = ssl_errors();
    throw CertError(e.empty() ? what : what + " (" + e + ")");
}

std::string lower(std::string s) {
    for (char& c : s)
        if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
    return s;
}

// Letters, digits, '-', '.', and a leading "*." wildcard; no empty label.
bool plausible_dns_name(std::string_view n) {
    if (n.empty() || n.size() > 253) return false;
    if (n.substr(0, 2) == "*.") n.remove_prefix(2);
    size_t label = 0;
    for (size_t i = 0; i < n.size(); ++i) {
        char c = n[i];
        if (c == '.') {
            if (label == 0) return false;
            label = 0;
            continue;
        }
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' || c == '_';
        if (!ok || ++label > 63) return false;
    }
    return label > 0;
}

GensPtr make_general_names(const std::vector<std::string>& names) {
    GensPtr gens(sk_GENERAL_NAME_new_null());
    if (!gens) fail("out of memory");
    for (const std::string& n : names) {
        GENERAL_NAME* gn = GENERAL_NAME_new();
        ASN1_IA5STRING* s = ASN1_IA5STRING_new();
        if (!gn || !s || !ASN1_STRING_set(s, n.data(), static_cast<int>(n.size()))) {
            GENERAL_NAME_free(gn);
            ASN1_IA5STRING_free(s);
            fail("cannot encode the name " + n);
        }
        GENERAL_NAME_set0_value(gn, GEN_DNS, s);
        if (!sk_GENERAL_NAME_push(gens.get(), gn)) {
            GENERAL_NAME_free(gn);
            fail("out of memory");
        }
    }
    return gens;
}

void set_subject_cn(X509_NAME* name, const std::string& cn, const char* org) {
    if (!X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8, reinterpret_cast<const unsigned char*>(cn.c_str()), -1,
                                    -1, 0))
        fail("cannot set the subject CN " + cn);
    if (org && !X509_NAME_add_entry_by_txt(name, "O", MBSTRING_UTF8, reinterpret_cast<const unsigned char*>(org), -1,
                                           -1, 0))
        fail("cannot set the subject O");
}

void random_serial(X509* x) {
    unsigned char buf[16];
    if (RAND_bytes(buf, sizeof buf) != 1) fail("no random bytes for the serial number");
    buf[0] &= 0x7f;   // positive
    buf[0] |= 0x40;   // and exactly 16 bytes long
    BnPtr bn(BN_bin2bn(buf, sizeof buf, nullptr));
    if (!bn || !BN_to_ASN1_INTEGER(bn.get(), X509_get_serialNumber(x))) fail("cannot set the serial number");
}

void set_validity(X509* x, const Validity& v) {
    if (!X509_gmtime_adj(X509_getm_notBefore(x), static_cast<long>(v.not_before_s)) ||
        !X509_gmtime_adj(X509_getm_notAfter(x), static_cast<long>(v.not_after_s)))
        fail("cannot set the validity period");
}

void add_ext(X509* x, X509V3_CTX* ctx, int nid, const char* value) {
    ExtPtr ext(X509V3_EXT_nconf_nid(nullptr, ctx, nid, value));
    if (!ext || !X509_add_ext(x, ext.get(), -1))
        fail(std::string("cannot add the extension ") + OBJ_nid2sn(nid) + " = " + value);
}

bool is_rsa(EVP_PKEY* key) { return EVP_PKEY_is_a(key, "RSA"); }

const EVP_MD* digest_for(EVP_PKEY* key) {
    // Ed25519/Ed448 sign without a separate digest; everything we make is EC or RSA.
    if (EVP_PKEY_is_a(key, "ED25519") || EVP_PKEY_is_a(key, "ED448")) return nullptr;
    return EVP_sha256();
}

// Opens `path` for writing with `mode`; refuses to replace a file unless
// `overwrite`. The mode is enforced even when the file existed.
BioPtr open_out(const std::string& path, mode_t mode, bool overwrite, bool append = false) {
    int flags = O_WRONLY | O_CREAT | O_CLOEXEC;
    flags |= append ? O_APPEND : (overwrite ? O_TRUNC : O_EXCL);
    int fd = ::open(path.c_str(), flags, mode);
    if (fd < 0) {
        if (errno == EEXIST)
            throw CertError(path + " already exists (use --force to replace it)");
        throw CertError("cannot write " + path + ": " + std::strerror(errno));
    }
    if (::fchmod(fd, mode) != 0) {
        int e = errno;
        ::close(fd);
        throw CertError("cannot set the mode of " + path + ": " + std::strerror(e));
    }
    BioPtr bio(BIO_new_fd(fd, BIO_CLOSE));
    if (!bio) {
        ::close(fd);
        fail("cannot write " + path);
    }
    return bio;
}

BioPtr open_in(const std::string& path) {
    BioPtr bio(BIO_new_file(path.c_str(), "rb"));
    if (!bio) {
        ERR_clear_error();
        throw CertError("cannot read " + path + ": " + std::strerror(errno ? errno : ENOENT));
    }
    return bio;
}

std::string read_file(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    if (!in) throw CertError("cannot read " + path + ": " + std::strerror(errno ? errno : ENOENT));
    return std::string(std::istreambuf_iterator<char>(in), {});
}

void flush_bio(BIO* bio, const std::string& path) {
    if (BIO_flush(bio) != 1) fail("cannot write " + path);
}

}  // namespace

// ---- names -------------------------------------------------------------------

std::vector<std::string> san_names(const Names& n) {
    if (n.cluster.empty()) throw CertError("the cluster name is missing (--cluster mail.example.com)");
    std::vector<std::string> out;
    std::set<std::string> seen;
    auto add = [&](const std::string& name, const char* what) {
        if (name.empty()) return;
        if (!plausible_dns_name(name)) throw CertError(std::string("not a valid ") + what + ": '" + name + "'");
        if (seen.insert(lower(name)).second) out.push_back(name);
    };
    add(n.cluster, "cluster name");
    if (n.autodiscover) {
        size_t dot = n.cluster.find('.');
        if (dot != std::string::npos && dot + 1 < n.cluster.size())
            add("autodiscover." + n.cluster.substr(dot + 1), "autodiscover name");
    }
    for (const auto& x : n.nodes) add(x, "node name");
    for (const auto& x : n.netbios) add(x, "NetBIOS name");
    for (const auto& x : n.extra) add(x, "DNS name");
    return out;
}

// ---- keys, CSR, certificates -------------------------------------------------

Key make_key(KeyType type) {
    EVP_PKEY* k = type == KeyType::ec ? EVP_EC_gen("P-256") : EVP_RSA_gen(3072);
    if (!k) fail(type == KeyType::ec ? "cannot generate an EC P-256 key" : "cannot generate an RSA 3072 key");
    return Key(k);
}

Csr make_csr(EVP_PKEY* key, const Names& names) {
    std::vector<std::string> sans = san_names(names);
    Csr req(X509_REQ_new());
    if (!req) fail("out of memory");
    if (!X509_REQ_set_version(req.get(), 0)) fail("cannot set the CSR version");
    set_subject_cn(X509_REQ_get_subject_name(req.get()), names.cluster, nullptr);
    if (!X509_REQ_set_pubkey(req.get(), key)) fail("cannot put the key in the CSR");

    std::unique_ptr<STACK_OF(X509_EXTENSION), ExtStackFree> exts(sk_X509_EXTENSION_new_null());
    GensPtr gens = make_general_names(sans);
    X509_EXTENSION* san = X509V3_EXT_i2d(NID_subject_alt_name, 0, gens.get());
    if (!san || !sk_X509_EXTENSION_push(exts.get(), san)) {
        X509_EXTENSION_free(san);
        fail("cannot encode subjectAltName");
    }
    X509_EXTENSION* eku = X509V3_EXT_nconf_nid(nullptr, nullptr, NID_ext_key_usage, "serverAuth");
    if (!eku || !sk_X509_EXTENSION_push(exts.get(), eku)) {
        X509_EXTENSION_free(eku);
        fail("cannot encode extendedKeyUsage");
    }
    if (!X509_REQ_add_extensions(req.get(), exts.get())) fail("cannot add the extensions to the CSR");
    if (X509_REQ_sign(req.get(), key, digest_for(key)) <= 0) fail("cannot sign the CSR");
    return req;
}

Cert make_ca(EVP_PKEY* ca_key, const std::string& common_name, Validity v) {
    Cert ca(X509_new());
    if (!ca) fail("out of memory");
    if (!X509_set_version(ca.get(), 2)) fail("cannot set the certificate version");
    random_serial(ca.get());
    set_validity(ca.get(), v);
    set_subject_cn(X509_get_subject_name(ca.get()), common_name, "nlbd lab");
    if (!X509_set_issuer_name(ca.get(), X509_get_subject_name(ca.get()))) fail("cannot set the issuer");
    if (!X509_set_pubkey(ca.get(), ca_key)) fail("cannot put the key in the CA certificate");
    X509V3_CTX ctx;
    X509V3_set_ctx(&ctx, ca.get(), ca.get(), nullptr, nullptr, 0);
    add_ext(ca.get(), &ctx, NID_basic_constraints, "critical,CA:TRUE,pathlen:0");
    add_ext(ca.get(), &ctx, NID_key_usage, "critical,keyCertSign,cRLSign");
    add_ext(ca.get(), &ctx, NID_subject_key_identifier, "hash");
    if (X509_sign(ca.get(), ca_key, digest_for(ca_key)) <= 0) fail("cannot sign the CA certificate");
    return ca;
}

Cert issue_leaf(EVP_PKEY* leaf_key, const Names& names, X509* ca, EVP_PKEY* ca_key, Validity v) {
    std::vector<std::string> sans = san_names(names);
    if (!ca || !ca_key) throw CertError("a CA certificate and its key are needed to issue a certificate");
    if (X509_check_private_key(ca, ca_key) != 1) {
        ERR_clear_error();
        throw CertError("the CA key does not belong to the CA certificate " + subject_text(ca));
    }
    if (!is_ca(ca)) throw CertError("the issuer " + subject_text(ca) + " is not a CA certificate (no CA:TRUE)");
    Cert leaf(X509_new());
    if (!leaf) fail("out of memory");
    if (!X509_set_version(leaf.get(), 2)) fail("cannot set the certificate version");
    random_serial(leaf.get());
    set_validity(leaf.get(), v);
    set_subject_cn(X509_get_subject_name(leaf.get()), names.cluster, nullptr);
    if (!X509_set_issuer_name(leaf.get(), X509_get_subject_name(ca))) fail("cannot set the issuer");
    if (!X509_set_pubkey(leaf.get(), leaf_key)) fail("cannot put the key in the certificate");
    X509V3_CTX ctx;
    X509V3_set_ctx(&ctx, ca, leaf.get(), nullptr, nullptr, 0);
    add_ext(leaf.get(), &ctx, NID_basic_constraints, "critical,CA:FALSE");
    add_ext(leaf.get(), &ctx, NID_key_usage,
            is_rsa(leaf_key) ? "critical,digitalSignature,keyEncipherment" : "critical,digitalSignature");
    add_ext(leaf.get(), &ctx, NID_ext_key_usage, "serverAuth");
    add_ext(leaf.get(), &ctx, NID_subject_key_identifier, "hash");
    add_ext(leaf.get(), &ctx, NID_authority_key_identifier, "keyid");
    GensPtr gens = make_general_names(sans);
    if (!X509_add1_ext_i2d(leaf.get(), NID_subject_alt_name, gens.get(), 0, X509V3_ADD_DEFAULT))
        fail("cannot add subjectAltName");
    if (X509_sign(leaf.get(), ca_key, digest_for(ca_key)) <= 0) fail("cannot sign the certificate");
    return leaf;
}

// ---- files -------------------------------------------------------------------

void write_key(const std::string& path, EVP_PKEY* key, bool overwrite) {
    BioPtr bio = open_out(path, 0600, overwrite);
    if (!PEM_write_bio_PrivateKey(bio.get(), key, nullptr, nullptr, 0, nullptr, nullptr))
        fail("cannot write the key to " + path);
    flush_bio(bio.get(), path);
}

void write_cert(const std::string& path, X509* cert, bool overwrite, bool append) {
    BioPtr bio = open_out(path, 0644, overwrite, append);
    if (!PEM_write_bio_X509(bio.get(), cert)) fail("cannot write the certificate to " + path);
    flush_bio(bio.get(), path);
}

void write_csr(const std::string& path, X509_REQ* req, bool overwrite) {
    BioPtr bio = open_out(path, 0644, overwrite);
    if (!PEM_write_bio_X509_REQ(bio.get(), req)) fail("cannot write the CSR to " + path);
    flush_bio(bio.get(), path);
}

Key read_key(const std::string& path) {
    BioPtr bio = open_in(path);
    EVP_PKEY* k = PEM_read_bio_PrivateKey(bio.get(), nullptr, nullptr, nullptr);
    if (!k) fail(path + " does not hold a PEM private key");
    return Key(k);
}

std::vector<Cert> read_certs(const std::string& path) {
    BioPtr bio = open_in(path);
    std::vector<Cert> out;
    while (X509* x = PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr)) out.emplace_back(x);
    ERR_clear_error();   // the read past the last certificate
    if (out.empty()) throw CertError(path + " does not hold a PEM certificate");
    return out;
}

Csr read_csr(const std::string& path) {
    BioPtr bio = open_in(path);
    X509_REQ* r = PEM_read_bio_X509_REQ(bio.get(), nullptr, nullptr, nullptr);
    if (!r) fail(path + " does not hold a PEM certificate request");
    return Csr(r);
}

// ---- PKCS#12 -----------------------------------------------------------------

std::string export_p12(X509* cert, EVP_PKEY* key, const std::vector<X509*>& ca, const std::string& password,
                       const std::string& friendly_name) {
    if (password.empty()) throw CertError("an empty PKCS#12 password is not allowed");
    if (X509_check_private_key(cert, key) != 1) {
        ERR_clear_error();
        throw CertError("the key does not belong to the certificate " + subject_text(cert));
    }
    STACK_OF(X509)* cas = sk_X509_new_null();
    if (!cas) fail("out of memory");
    for (X509* c : ca) sk_X509_push(cas, c);   // borrowed: freed with sk_X509_free below
    P12Ptr p12(PKCS12_create(password.c_str(), friendly_name.empty() ? nullptr : friendly_name.c_str(), key, cert,
                             cas, 0, 0, 0, 0, 0));
    sk_X509_free(cas);
    if (!p12) fail("cannot build the PKCS#12 file");
    BioPtr mem(BIO_new(BIO_s_mem()));
    if (!mem || i2d_PKCS12_bio(mem.get(), p12.get()) != 1) fail("cannot encode the PKCS#12 file");
    char* data = nullptr;
    long n = BIO_get_mem_data(mem.get(), &data);
    return std::string(data, static_cast<size_t>(n));
}

P12Content import_p12(std::string_view der, const std::string& password) {
    const auto* p = reinterpret_cast<const unsigned char*>(der.data());
    P12Ptr p12(d2i_PKCS12(nullptr, &p, static_cast<long>(der.size())));
    if (!p12) fail("not a PKCS#12 file");
    if (PKCS12_mac_present(p12.get()) && !PKCS12_verify_mac(p12.get(), password.c_str(), -1)) {
        ERR_clear_error();
        throw CertError("wrong password: the PKCS#12 integrity check (MAC) does not verify with it");
    }
    EVP_PKEY* key = nullptr;
    X509* cert = nullptr;
    STACK_OF(X509)* ca = nullptr;
    if (!PKCS12_parse(p12.get(), password.c_str(), &key, &cert, &ca)) {
        // Files from old Windows exports may use RC2/3DES-SHA1: the legacy provider has those.
        ERR_clear_error();
        OSSL_PROVIDER_try_load(nullptr, "legacy", 1);
        if (!PKCS12_parse(p12.get(), password.c_str(), &key, &cert, &ca)) fail("cannot decrypt the PKCS#12 file");
    }
    P12Content out;
    out.key.reset(key);
    out.cert.reset(cert);
    X509Stack stack(ca);
    if (ca)
        while (sk_X509_num(ca) > 0) out.ca.emplace_back(sk_X509_shift(ca));
    if (!out.cert) throw CertError("the PKCS#12 file holds no certificate");
    if (!out.key) throw CertError("the PKCS#12 file holds no private key");
    return out;
}

// ---- inspection --------------------------------------------------------------

std::vector<std::string> dns_names(X509* cert) {
    std::vector<std::string> out;
    GensPtr gens(static_cast<GENERAL_NAMES*>(X509_get_ext_d2i(cert, NID_subject_alt_name, nullptr, nullptr)));
    if (!gens) return out;
    for (int i = 0; i < sk_GENERAL_NAME_num(gens.get()); ++i) {
        const GENERAL_NAME* gn = sk_GENERAL_NAME_value(gens.get(), i);
        int type = 0;
        const auto* v = static_cast<const ASN1_STRING*>(GENERAL_NAME_get0_value(gn, &type));
        if (type == GEN_DNS && v)
            out.emplace_back(reinterpret_cast<const char*>(ASN1_STRING_get0_data(v)),
                             static_cast<size_t>(ASN1_STRING_length(v)));
    }
    return out;
}

std::string subject_text(X509* cert) {
    BioPtr mem(BIO_new(BIO_s_mem()));
    if (!mem) return "?";
    X509_NAME_print_ex(mem.get(), X509_get_subject_name(cert), 0, XN_FLAG_ONELINE & ~ASN1_STRFLGS_ESC_MSB);
    char* data = nullptr;
    long n = BIO_get_mem_data(mem.get(), &data);
    return std::string(data, static_cast<size_t>(n));
}

std::string time_text(const ASN1_TIME* t) {
    struct tm tm {};
    if (!t || !ASN1_TIME_to_tm(t, &tm)) return "?";
    char buf[40];
    std::strftime(buf, sizeof buf, "%Y-%m-%d %H:%M:%S UTC", &tm);
    return buf;
}

bool is_ca(X509* cert) { return X509_check_ca(cert) > 0 && (X509_get_extension_flags(cert) & EXFLAG_CA); }

// ---- check -------------------------------------------------------------------

const char* problem_name(Problem p) {
    switch (p) {
    case Problem::name_not_covered: return "name_not_covered";
    case Problem::expired: return "expired";
    case Problem::not_yet_valid: return "not_yet_valid";
    case Problem::self_signed: return "self_signed";
    case Problem::unknown_ca: return "unknown_ca";
    case Problem::bad_purpose: return "bad_purpose";
    case Problem::bad_signature: return "bad_signature";
    case Problem::other_verify: return "other_verify";
    case Problem::connect_failed: return "connect_failed";
    case Problem::handshake_failed: return "handshake_failed";
    case Problem::no_certificate: return "no_certificate";
    }
    return "?";
}

namespace {

struct VerifyError {
    int code;
    int depth;
    std::string subject;   // of the certificate at `depth`
};

// Records every chain error and lets verification go on, so that one report
// lists them all (an expired certificate from an unknown CA shows both).
int collect_errors(int ok, X509_STORE_CTX* ctx) {
    if (ok) return ok;
    auto* errors = static_cast<std::vector<VerifyError>*>(X509_STORE_CTX_get_app_data(ctx));
    int code = X509_STORE_CTX_get_error(ctx);
    int depth = X509_STORE_CTX_get_error_depth(ctx);
    X509* c = X509_STORE_CTX_get_current_cert(ctx);
    if (errors) {
        bool dup = std::any_of(errors->begin(), errors->end(),
                               [&](const VerifyError& e) { return e.code == code && e.depth == depth; });
        if (!dup) errors->push_back({code, depth, c ? subject_text(c) : std::string()});
    }
    return 1;
}

std::string join(const std::vector<std::string>& v, const char* sep = ", ") {
    std::string s;
    for (const auto& x : v) {
        if (!s.empty()) s += sep;
        s += x;
    }
    return s;
}

}  // namespace

CheckReport check_certificate(X509* leaf, const std::vector<X509*>& untrusted, const std::vector<X509*>& anchors,
                              const std::string& name, const std::vector<std::string>& also,
                              std::optional<time_t> now) {
    CheckReport r;
    r.subject = subject_text(leaf);
    r.issuer.clear();
    {
        BioPtr mem(BIO_new(BIO_s_mem()));
        X509_NAME_print_ex(mem.get(), X509_get_issuer_name(leaf), 0, XN_FLAG_ONELINE & ~ASN1_STRFLGS_ESC_MSB);
        char* data = nullptr;
        long n = BIO_get_mem_data(mem.get(), &data);
        r.issuer.assign(data, static_cast<size_t>(n));
    }
    r.not_before = time_text(X509_get0_notBefore(leaf));
    r.not_after = time_text(X509_get0_notAfter(leaf));
    {
        std::unique_ptr<ASN1_TIME, Deleter<ASN1_TIME, ASN1_TIME_free>> at(
            ASN1_TIME_set(nullptr, now ? *now : std::time(nullptr)));
        int days = 0, secs = 0;
        if (at && ASN1_TIME_diff(&days, &secs, at.get(), X509_get0_notAfter(leaf)) == 1) r.expires_in_days = days;
    }
    r.covers = dns_names(leaf);

    // The names, each checked on its own so the report can list them all.
    std::vector<std::string> required{name};
    for (const auto& a : also)
        if (!a.empty()) required.push_back(a);
    for (const auto& n : required) {
        // Browsers ignore the subject CN: only subjectAltName counts.
        bool covered = X509_check_host(leaf, n.c_str(), n.size(), X509_CHECK_FLAG_NEVER_CHECK_SUBJECT, nullptr) == 1;
        r.names.emplace_back(n, covered);
    }

    StorePtr store(X509_STORE_new());
    if (!store) fail("out of memory");
    if (anchors.empty()) {
        if (!X509_STORE_set_default_paths(store.get())) fail("cannot load the system trust store");
    }
    for (X509* a : anchors)
        if (!X509_STORE_add_cert(store.get(), a)) ERR_clear_error();   // a duplicate is fine
    STACK_OF(X509)* chain_in = sk_X509_new_null();
    for (X509* u : untrusted) sk_X509_push(chain_in, u);
    StoreCtxPtr ctx(X509_STORE_CTX_new());
    std::vector<VerifyError> errors;
    if (!ctx || !X509_STORE_CTX_init(ctx.get(), store.get(), leaf, chain_in)) {
        sk_X509_free(chain_in);
        fail("cannot set up certificate verification");
    }
    X509_VERIFY_PARAM* param = X509_STORE_CTX_get0_param(ctx.get());
    X509_VERIFY_PARAM_set1_host(param, name.c_str(), name.size());
    X509_VERIFY_PARAM_set_hostflags(param, X509_CHECK_FLAG_NEVER_CHECK_SUBJECT);
    X509_VERIFY_PARAM_set_purpose(param, X509_PURPOSE_SSL_SERVER);
    if (now) X509_VERIFY_PARAM_set_time(param, *now);
    X509_STORE_CTX_set_app_data(ctx.get(), &errors);
    X509_STORE_CTX_set_verify_cb(ctx.get(), collect_errors);
    int verified = X509_verify_cert(ctx.get());
    ERR_clear_error();

    std::string expected_ca = "any CA this machine trusts";
    if (!anchors.empty()) {
        std::vector<std::string> subjects;
        for (X509* a : anchors) subjects.push_back(subject_text(a));
        expected_ca = "the expected CA (" + join(subjects, "; ") + ")";
    }
    bool chain_ok = true;
    for (const VerifyError& e : errors) {
        std::string who = e.depth == 0 ? "the certificate" : "the CA certificate " + e.subject;
        switch (e.code) {
        case X509_V_ERR_HOSTNAME_MISMATCH:
            break;   // reported per name below
        case X509_V_ERR_CERT_HAS_EXPIRED:
            r.findings.push_back({Problem::expired,
                                  e.depth == 0 ? "the certificate expired on " + r.not_after +
                                                     " - browsers will show a security alert; issue a new one"
                                               : who + " has expired - every certificate it issued is refused"});
            break;
        case X509_V_ERR_CERT_NOT_YET_VALID:
            r.findings.push_back({Problem::not_yet_valid,
                                  who + " is not valid yet" +
                                      (e.depth == 0 ? " (valid from " + r.not_before + ")" : std::string()) +
                                      " - check the clocks of this machine and of the server"});
            break;
        case X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT:
            chain_ok = false;
            r.findings.push_back({Problem::self_signed,
                                  "the certificate is self-signed (" + r.subject +
                                      "), not issued by the expected CA - browsers will show a security alert"});
            break;
        case X509_V_ERR_SELF_SIGNED_CERT_IN_CHAIN:
        case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT:
        case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY:
        case X509_V_ERR_UNABLE_TO_VERIFY_LEAF_SIGNATURE:
            chain_ok = false;
            r.findings.push_back({Problem::unknown_ca,
                                  "the certificate does not chain to " + expected_ca + ": it was issued by " +
                                      r.issuer + " - clients that do not trust that issuer will show a "
                                                 "security alert"});
            break;
        case X509_V_ERR_INVALID_PURPOSE:
            r.findings.push_back({Problem::bad_purpose,
                                  who + " is not allowed for TLS server authentication (extendedKeyUsage lacks "
                                        "serverAuth)"});
            break;
        case X509_V_ERR_CERT_SIGNATURE_FAILURE:
            chain_ok = false;
            r.findings.push_back({Problem::bad_signature, "the signature on " + who + " does not verify"});
            break;
        default:
            chain_ok = false;
            r.findings.push_back({Problem::other_verify,
                                  who + ": " + X509_verify_cert_error_string(e.code)});
            break;
        }
    }
    if (chain_ok) {
        X509Stack chain(X509_STORE_CTX_get1_chain(ctx.get()));
        if (chain && sk_X509_num(chain.get()) > 0)
            r.chains_to = subject_text(sk_X509_value(chain.get(), sk_X509_num(chain.get()) - 1));
    }
    sk_X509_free(chain_in);
    (void)verified;
    // Several OpenSSL codes can say the same thing (no issuer, leaf signature unverifiable).
    std::vector<Finding> unique;
    for (Finding& f : r.findings)
        if (std::none_of(unique.begin(), unique.end(),
                         [&](const Finding& u) { return u.problem == f.problem && u.text == f.text; }))
            unique.push_back(std::move(f));
    r.findings = std::move(unique);

    for (const auto& [n, covered] : r.names)
        if (!covered)
            r.findings.push_back({Problem::name_not_covered,
                                  "the certificate does not cover " + n + " (it covers: " +
                                      (r.covers.empty() ? std::string("no DNS names at all") : join(r.covers)) +
                                      ") - browsers will show a security alert"});
    r.ok = r.findings.empty();
    return r;
}

namespace {

// "host:port", "[v6]:port", "host" (port 443).
std::pair<std::string, std::string> split_host_port(const std::string& s) {
    if (!s.empty() && s[0] == '[') {
        size_t close = s.find(']');
        if (close == std::string::npos) throw CertError("bad address '" + s + "': missing ]");
        std::string host = s.substr(1, close - 1);
        if (close + 1 == s.size()) return {host, "443"};
        if (s[close + 1] != ':') throw CertError("bad address '" + s + "'");
        return {host, s.substr(close + 2)};
    }
    size_t colon = s.rfind(':');
    if (colon == std::string::npos) return {s, "443"};
    if (s.find(':') != colon) return {s, "443"};   // bare IPv6 address
    return {s.substr(0, colon), s.substr(colon + 1)};
}

struct Fd {
    int fd = -1;
    ~Fd() {
        if (fd >= 0) ::close(fd);
    }
};

// Connects with a deadline; returns "" or the reason it failed.
std::string tcp_connect(const std::string& host, const std::string& port, int timeout_ms, Fd& out) {
    addrinfo hints{};
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_family = AF_UNSPEC;
    addrinfo* res = nullptr;
    if (int rc = ::getaddrinfo(host.c_str(), port.c_str(), &hints, &res); rc != 0)
        return std::string("cannot resolve ") + host + ": " + gai_strerror(rc);
    std::string why = "no address";
    for (addrinfo* ai = res; ai; ai = ai->ai_next) {
        int fd = ::socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, ai->ai_protocol);
        if (fd < 0) {
            why = std::strerror(errno);
            continue;
        }
        int rc = ::connect(fd, ai->ai_addr, ai->ai_addrlen);
        if (rc != 0 && errno == EINPROGRESS) {
            pollfd p{fd, POLLOUT, 0};
            rc = ::poll(&p, 1, timeout_ms);
            if (rc == 0) {
                why = "no answer within " + std::to_string(timeout_ms) + " ms";
                ::close(fd);
                continue;
            }
            int soerr = 0;
            socklen_t len = sizeof soerr;
            ::getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &len);
            if (soerr != 0) {
                why = std::strerror(soerr);
                ::close(fd);
                continue;
            }
            rc = 0;
        } else if (rc != 0) {
            why = std::strerror(errno);
            ::close(fd);
            continue;
        }
        // Blocking from here on, with the same deadline for each read and write.
        int fl = ::fcntl(fd, F_GETFL);
        ::fcntl(fd, F_SETFL, fl & ~O_NONBLOCK);
        timeval tv{timeout_ms / 1000, (timeout_ms % 1000) * 1000};
        ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
        ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
        out.fd = fd;
        ::freeaddrinfo(res);
        return "";
    }
    ::freeaddrinfo(res);
    return why;
}

}  // namespace

CheckReport run_check(const CheckRequest& req) {
    if (req.name.empty()) throw CertError("--name is required: the name clients use, e.g. mail.example.com");
    if (req.connect.empty() == req.cert_file.empty())
        throw CertError("give either --connect HOST:PORT or --cert FILE");
    std::vector<Cert> anchors_owned;
    for (const auto& f : req.ca_files)
        for (Cert& c : read_certs(f)) anchors_owned.push_back(std::move(c));
    std::vector<X509*> anchors;
    for (auto& c : anchors_owned) anchors.push_back(c.get());

    if (!req.cert_file.empty()) {
        std::vector<Cert> certs = read_certs(req.cert_file);
        std::vector<X509*> untrusted;
        for (size_t i = 1; i < certs.size(); ++i) untrusted.push_back(certs[i].get());
        CheckReport r = check_certificate(certs[0].get(), untrusted, anchors, req.name, req.also);
        r.source = req.cert_file;
        return r;
    }

    CheckReport fail_report;
    fail_report.source = req.connect;
    fail_report.remote = true;
    fail_report.sni = req.sni.empty() ? req.name : req.sni;
    for (const auto& n : std::vector<std::string>{req.name}) fail_report.names.emplace_back(n, false);
    auto [host, port] = split_host_port(req.connect);
    Fd fd;
    if (std::string why = tcp_connect(host, port, req.timeout_ms, fd); !why.empty()) {
        fail_report.findings.push_back(
            {Problem::connect_failed, "cannot connect to " + req.connect + ": " + why + " - is the service up?"});
        return fail_report;
    }
    SslCtxPtr sctx(SSL_CTX_new(TLS_client_method()));
    if (!sctx) fail("cannot create a TLS context");
    SSL_CTX_set_min_proto_version(sctx.get(), TLS1_2_VERSION);
    // The handshake does not verify: the chain and names are checked below,
    // all at once, so the report can say everything that is wrong.
    SSL_CTX_set_verify(sctx.get(), SSL_VERIFY_NONE, nullptr);
    SslPtr ssl(SSL_new(sctx.get()));
    if (!ssl || !SSL_set_fd(ssl.get(), fd.fd)) fail("cannot create a TLS session");
    if (!SSL_set_tlsext_host_name(ssl.get(), fail_report.sni.c_str())) fail("cannot set SNI " + fail_report.sni);
    errno = 0;
    if (SSL_connect(ssl.get()) != 1) {
        int saved = errno;
        std::string why = ssl_errors();
        if (why.find("wrong version number") != std::string::npos)
            why = "the service does not speak TLS on this port; it answered in plain text?";
        else if (why.empty() && (saved == EAGAIN || saved == EWOULDBLOCK))
            why = "no TLS answer within " + std::to_string(req.timeout_ms) + " ms";
        else if (why.empty())
            why = saved ? std::strerror(saved) : "the server closed the connection";
        fail_report.findings.push_back({Problem::handshake_failed,
                                        "the TLS handshake with " + req.connect + " failed (" + why +
                                            ") - is it a TLS service?"});
        return fail_report;
    }
    Cert leaf(SSL_get1_peer_certificate(ssl.get()));
    if (!leaf) {
        fail_report.findings.push_back({Problem::no_certificate, req.connect + " presented no certificate"});
        return fail_report;
    }
    std::vector<X509*> untrusted;
    if (STACK_OF(X509)* chain = SSL_get_peer_cert_chain(ssl.get()))
        for (int i = 0; i < sk_X509_num(chain); ++i)
            if (X509* c = sk_X509_value(chain, i); X509_cmp(c, leaf.get()) != 0) untrusted.push_back(c);
    CheckReport r = check_certificate(leaf.get(), untrusted, anchors, req.name, req.also);
    r.source = req.connect;
    r.remote = true;
    r.sni = fail_report.sni;
    SSL_shutdown(ssl.get());
    return r;
}

std::string describe(const CheckReport& r) {
    std::string s;
    std::string what = r.source.empty() ? "the certificate"
                       : r.remote      ? "the certificate presented by " + r.source
                                       : "the certificate in " + r.source;
    if (r.subject.empty() && !r.source.empty()) what = r.source;   // never got a certificate
    std::string names;
    for (const auto& [n, c] : r.names) {
        (void)c;
        if (!names.empty()) names += ", ";
        names += n;
    }
    if (r.ok) {
        s += "OK: " + what + " covers " + names + " and chains to " + r.chains_to + ", valid until " + r.not_after +
             "\n";
        if (r.expires_in_days < kRenewWithinDays)
            s += "NOTE: it expires in " + std::to_string(r.expires_in_days) + " day(s) - renew it soon\n";
    } else {
        for (const Finding& f : r.findings) {
            std::string text = f.text;
            if (text.rfind("the certificate ", 0) == 0 && !r.source.empty() && f.problem != Problem::connect_failed &&
                f.problem != Problem::handshake_failed)
                text = what + text.substr(std::strlen("the certificate"));
            s += "PROBLEM: " + text + "\n";
        }
    }
    if (!r.subject.empty()) {
        s += "  subject:  " + r.subject + "\n";
        s += "  issuer:   " + r.issuer + "\n";
        s += "  valid:    " + r.not_before + " to " + r.not_after + "\n";
        s += "  covers:   " + (r.covers.empty() ? std::string("(no DNS names)") : join(r.covers)) + "\n";
        if (!r.sni.empty()) s += "  SNI sent: " + r.sni + "\n";
    }
    return s;
}

Json to_json(const CheckReport& r) {
    Json j = Json::object();
    j["ok"] = r.ok;
    j["source"] = r.source;
    j["remote"] = r.remote;
    if (!r.sni.empty()) j["sni"] = r.sni;
    j["subject"] = r.subject;
    j["issuer"] = r.issuer;
    j["chains_to"] = r.chains_to.empty() ? Json() : Json(r.chains_to);
    j["not_before"] = r.not_before;
    j["not_after"] = r.not_after;
    j["expires_in_days"] = r.expires_in_days;
    Json covers = Json::array();
    for (const auto& c : r.covers) covers.push_back(c);
    j["covers"] = std::move(covers);
    Json names = Json::array();
    for (const auto& [n, c] : r.names) {
        Json x = Json::object();
        x["name"] = n;
        x["covered"] = c;
        names.push_back(std::move(x));
    }
    j["names"] = std::move(names);
    Json problems = Json::array();
    for (const Finding& f : r.findings) {
        Json x = Json::object();
        x["problem"] = problem_name(f.problem);
        x["text"] = f.text;
        problems.push_back(std::move(x));
    }
    j["problems"] = std::move(problems);
    j["message"] = describe(r).substr(0, describe(r).find('\n'));
    return j;
}

// ---- the command line ----------------------------------------------------------

namespace {

constexpr const char* kUsage =
    "usage: nlbctl cert SUBCOMMAND [OPTIONS]   (local: no daemon needed)\n"
    "  request --cluster FQDN [--node FQDN,...] [--netbios NAME,...] [--dns NAME,...] [--no-autodiscover]\n"
    "          --key OUT.key --csr OUT.csr [--key-type ec|rsa] [--force]\n"
    "      new key and a CSR whose subjectAltName covers the cluster name, autodiscover.<domain>,\n"
    "      every node FQDN and NetBIOS name\n"
    "  issue   (names as for request) --cert OUT.crt (--key OUT.key | --csr IN.csr)\n"
    "          (--ca CA.crt --ca-key CA.key | --new-ca OUT-CA.crt --new-ca-key OUT-CA.key [--ca-name CN])\n"
    "          [--days N] [--key-type ec|rsa] [--force]\n"
    "      a server certificate signed by the given CA, or by a new lab CA made now\n"
    "  export  --cert C.crt --key C.key [--ca CA.crt] --out X.p12 (--password-file F | $NLBCTL_P12_PASSWORD)\n"
    "          [--friendly-name NAME] [--force]\n"
    "  import  --in X.p12 (--password-file F | $NLBCTL_P12_PASSWORD) --cert OUT.crt --key OUT.key\n"
    "          [--ca OUT-CA.crt] [--force]\n"
    "  check   (--connect HOST:PORT[,HOST:PORT...] [--sni NAME] [--timeout MS] | --cert FILE) --name FQDN\n"
    "          [--ca CA.crt] [--also NAME,...] [--json]\n"
    "      does the certificate cover the name and chain to the CA (system trust store without --ca)?\n"
    "  show    --cert FILE [--json]\n"
    "exit status: 0 ok, 1 problem found or failure, 2 usage error\n";

struct Options {
    std::vector<std::pair<std::string, std::string>> values;   // option -> value, in order
    std::set<std::string> flags;

    bool has(const std::string& k) const {
        return std::any_of(values.begin(), values.end(), [&](const auto& v) { return v.first == k; });
    }
    std::string get(const std::string& k) const {
        std::string r;
        for (const auto& [o, v] : values)
            if (o == k) r = v;   // last wins
        return r;
    }
    // Every value of a repeatable, comma-separated option.
    std::vector<std::string> list(const std::string& k) const {
        std::vector<std::string> r;
        for (const auto& [o, v] : values) {
            if (o != k) continue;
            std::stringstream ss(v);
            for (std::string item; std::getline(ss, item, ',');)
                if (!item.empty()) r.push_back(item);
        }
        return r;
    }
};

class UsageError : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

const std::set<std::string> kFlags = {"--json", "--force", "--autodiscover", "--no-autodiscover", "--help"};
const std::set<std::string> kValued = {
    "--cluster", "--node", "--netbios", "--dns", "--key", "--csr", "--key-type", "--cert", "--ca", "--ca-key",
    "--new-ca", "--new-ca-key", "--ca-name", "--days", "--out", "--in", "--password-file", "--password",
    "--friendly-name", "--connect", "--sni", "--name", "--also", "--timeout"};

Options parse_options(const std::vector<std::string>& args, size_t from) {
    Options o;
    for (size_t i = from; i < args.size(); ++i) {
        std::string a = args[i];
        if (a == "-j") a = "--json";
        std::string value;
        bool inline_value = false;
        if (size_t eq = a.find('='); a.rfind("--", 0) == 0 && eq != std::string::npos) {
            value = a.substr(eq + 1);
            a = a.substr(0, eq);
            inline_value = true;
        }
        if (kFlags.count(a)) {
            if (inline_value) throw UsageError(a + " takes no value");
            o.flags.insert(a);
        } else if (kValued.count(a)) {
            if (!inline_value) {
                if (i + 1 >= args.size()) throw UsageError(a + " needs a value");
                value = args[++i];
            }
            o.values.emplace_back(a, value);
        } else {
            throw UsageError("unknown option or argument '" + args[i] + "'");
        }
    }
    return o;
}

std::string require(const Options& o, const std::string& k, const char* what) {
    std::string v = o.get(k);
    if (v.empty()) throw UsageError(k + " is required (" + what + ")");
    return v;
}

void allow_only(const Options& o, std::initializer_list<const char*> allowed, const std::string& sub) {
    for (const auto& [k, v] : o.values) {
        (void)v;
        if (std::none_of(allowed.begin(), allowed.end(), [&](const char* a) { return k == a; }))
            throw UsageError(k + " does not apply to 'cert " + sub + "'");
    }
}

// Fails before anything is generated or written when an output exists, so
// that a refused command leaves no half-done set of files behind.
void ensure_writable(const Options& o, std::initializer_list<const char*> outputs) {
    if (o.flags.count("--force")) return;
    for (const char* k : outputs) {
        std::string path = o.get(k);
        struct stat st {};
        if (!path.empty() && ::stat(path.c_str(), &st) == 0)
            throw CertError(path + " already exists (" + k + "; use --force to replace it)");
    }
}

Names names_from(const Options& o) {
    Names n;
    n.cluster = require(o, "--cluster", "the cluster FQDN, e.g. mail.example.com");
    n.autodiscover = !o.flags.count("--no-autodiscover");
    n.nodes = o.list("--node");
    n.netbios = o.list("--netbios");
    n.extra = o.list("--dns");
    return n;
}

KeyType key_type_from(const Options& o) {
    std::string t = o.get("--key-type");
    if (t.empty() || t == "ec" || t == "ecdsa") return KeyType::ec;
    if (t == "rsa") return KeyType::rsa;
    throw UsageError("--key-type must be ec or rsa, not '" + t + "'");
}

int positive_int(const Options& o, const std::string& k, int fallback) {
    std::string v = o.get(k);
    if (v.empty()) return fallback;
    int n = 0;
    auto r = std::from_chars(v.data(), v.data() + v.size(), n);
    if (r.ec != std::errc() || r.ptr != v.data() + v.size() || n <= 0)
        throw UsageError(k + " needs a positive number, not '" + v + "'");
    return n;
}

// The PKCS#12 password: --password-file, else --password (warned: argv is
// visible to every user through /proc), else $NLBCTL_P12_PASSWORD.
std::string password_from(const Options& o, std::FILE* err) {
    if (o.has("--password-file")) {
        std::string path = o.get("--password-file");
        std::string p = read_file(path);
        if (size_t nl = p.find_first_of("\r\n"); nl != std::string::npos) p.resize(nl);
        if (p.empty()) throw CertError(path + " holds an empty password (its first line is the password)");
        return p;
    }
    if (o.has("--password")) {
        std::fprintf(err,
                     "nlbctl: warning: --password puts the password on the command line, where other users can "
                     "see it; prefer --password-file or $NLBCTL_P12_PASSWORD\n");
        if (o.get("--password").empty()) throw UsageError("--password is empty");
        return o.get("--password");
    }
    if (const char* env = std::getenv("NLBCTL_P12_PASSWORD"); env && *env) return env;
    throw UsageError("a PKCS#12 password is needed: --password-file FILE or $NLBCTL_P12_PASSWORD");
}

void print_json_or(std::FILE* out, bool json, const Json& j, const std::string& text) {
    if (json) std::fprintf(out, "%s\n", j.dump_pretty().c_str());
    else std::fprintf(out, "%s", text.c_str());
}

Json string_array(const std::vector<std::string>& v) {
    Json a = Json::array();
    for (const auto& x : v) a.push_back(x);
    return a;
}

int cmd_request(const Options& o, bool json, std::FILE* out, std::FILE*) {
    allow_only(o, {"--cluster", "--node", "--netbios", "--dns", "--key", "--csr", "--key-type"}, "request");
    Names n = names_from(o);
    std::string key_path = require(o, "--key", "where to write the new private key");
    std::string csr_path = require(o, "--csr", "where to write the CSR");
    bool force = o.flags.count("--force");
    KeyType type = key_type_from(o);
    std::vector<std::string> sans = san_names(n);
    ensure_writable(o, {"--key", "--csr"});
    Key key = make_key(type);
    Csr csr = make_csr(key.get(), n);
    write_key(key_path, key.get(), force);
    write_csr(csr_path, csr.get(), force);
    Json j = Json::object();
    j["key"] = key_path;
    j["csr"] = csr_path;
    j["key_type"] = type == KeyType::ec ? "ec-p256" : "rsa-3072";
    j["names"] = string_array(sans);
    print_json_or(out, json, j,
                  "wrote the private key " + key_path + " (" + (type == KeyType::ec ? "EC P-256" : "RSA 3072") +
                      ", mode 0600) and the request " + csr_path + "\nthe request covers: " + join(sans) +
                      "\nsend " + csr_path + " to your CA; keep " + key_path + " secret\n");
    return 0;
}

int cmd_issue(const Options& o, bool json, std::FILE* out, std::FILE*) {
    allow_only(o,
               {"--cluster", "--node", "--netbios", "--dns", "--key", "--csr", "--key-type", "--cert", "--ca",
                "--ca-key", "--new-ca", "--new-ca-key", "--ca-name", "--days"},
               "issue");
    Names n = names_from(o);
    std::string cert_path = require(o, "--cert", "where to write the certificate");
    bool force = o.flags.count("--force");
    KeyType type = key_type_from(o);
    int days = positive_int(o, "--days", 397);
    bool given_ca = o.has("--ca") || o.has("--ca-key");
    bool new_ca = o.has("--new-ca") || o.has("--new-ca-key");
    if (given_ca == new_ca)
        throw UsageError("give either --ca CA.crt --ca-key CA.key (an existing CA) or --new-ca CA.crt --new-ca-key "
                         "CA.key (make a lab CA)");
    if (o.has("--key") == o.has("--csr"))
        throw UsageError("give either --key OUT.key (make a new key) or --csr IN.csr (certify a request's key)");
    std::vector<std::string> sans = san_names(n);
    ensure_writable(o, {"--cert", "--key", "--new-ca", "--new-ca-key"});

    Key ca_key;
    Cert ca;
    std::string ca_path;
    if (given_ca) {
        ca_path = require(o, "--ca", "the CA certificate");
        std::vector<Cert> cas = read_certs(ca_path);
        ca = std::move(cas[0]);
        ca_key = read_key(require(o, "--ca-key", "the CA's private key"));
    } else {
        ca_path = require(o, "--new-ca", "where to write the new CA certificate");
        std::string ca_key_path = require(o, "--new-ca-key", "where to write the new CA's private key");
        std::string cn = o.get("--ca-name");
        if (cn.empty()) cn = "nlbd lab CA for " + n.cluster;
        ca_key = make_key(type);
        ca = make_ca(ca_key.get(), cn);
        write_key(ca_key_path, ca_key.get(), force);
        write_cert(ca_path, ca.get(), force);
    }

    Key leaf_key;
    EVP_PKEY* pub = nullptr;
    if (o.has("--csr")) {
        Csr csr = read_csr(o.get("--csr"));
        if (X509_REQ_verify(csr.get(), X509_REQ_get0_pubkey(csr.get())) != 1)
            fail("the signature of the request " + o.get("--csr") + " does not verify");
        pub = X509_REQ_get0_pubkey(csr.get());
        EVP_PKEY_up_ref(pub);
        leaf_key.reset(pub);
    } else {
        leaf_key = make_key(type);
        pub = leaf_key.get();
    }
    Cert leaf = issue_leaf(pub, n, ca.get(), ca_key.get(), Validity::days(days));
    if (o.has("--key")) write_key(o.get("--key"), leaf_key.get(), force);
    write_cert(cert_path, leaf.get(), force);

    Json j = Json::object();
    j["cert"] = cert_path;
    if (o.has("--key")) j["key"] = o.get("--key");
    j["ca"] = ca_path;
    j["ca_subject"] = subject_text(ca.get());
    j["new_ca"] = new_ca;
    j["names"] = string_array(sans);
    j["not_after"] = time_text(X509_get0_notAfter(leaf.get()));
    print_json_or(out, json, j,
                  "wrote the certificate " + cert_path + (o.has("--key") ? " and its key " + o.get("--key") : "") +
                      "\nit covers: " + join(sans) + "\nissued by: " + subject_text(ca.get()) +
                      (new_ca ? " (new lab CA, written to " + ca_path + ": install it on the clients as trusted)"
                              : "") +
                      "\nvalid until: " + time_text(X509_get0_notAfter(leaf.get())) + "\n");
    return 0;
}

int cmd_export(const Options& o, bool json, std::FILE* out, std::FILE* err) {
    allow_only(o, {"--cert", "--key", "--ca", "--out", "--password-file", "--password", "--friendly-name"}, "export");
    std::string cert_path = require(o, "--cert", "the certificate");
    std::string key_path = require(o, "--key", "its private key");
    std::string out_path = require(o, "--out", "the PKCS#12 file to write");
    std::string password = password_from(o, err);
    ensure_writable(o, {"--out"});
    std::vector<Cert> certs = read_certs(cert_path);
    Key key = read_key(key_path);
    std::vector<Cert> ca_owned;
    for (size_t i = 1; i < certs.size(); ++i) ca_owned.push_back(std::move(certs[i]));   // a chain file
    for (const auto& f : o.list("--ca"))
        for (Cert& c : read_certs(f)) ca_owned.push_back(std::move(c));
    std::vector<X509*> ca;
    for (auto& c : ca_owned) ca.push_back(c.get());
    std::string friendly = o.get("--friendly-name");
    if (friendly.empty()) {
        std::vector<std::string> d = dns_names(certs[0].get());
        friendly = d.empty() ? std::string("nlbd") : d[0];
    }
    std::string p12 = export_p12(certs[0].get(), key.get(), ca, password, friendly);
    BioPtr bio = open_out(out_path, 0600, o.flags.count("--force"));
    if (BIO_write(bio.get(), p12.data(), static_cast<int>(p12.size())) != static_cast<int>(p12.size()))
        fail("cannot write " + out_path);
    flush_bio(bio.get(), out_path);
    Json j = Json::object();
    j["out"] = out_path;
    j["subject"] = subject_text(certs[0].get());
    j["ca_certificates"] = static_cast<int>(ca.size());
    print_json_or(out, json, j,
                  "wrote " + out_path + " (certificate " + subject_text(certs[0].get()) + ", its key and " +
                      std::to_string(ca.size()) +
                      " CA certificate(s), password-protected, mode 0600)\ncopy it to the other nodes and run "
                      "`nlbctl cert import` there\n");
    return 0;
}

int cmd_import(const Options& o, bool json, std::FILE* out, std::FILE* err) {
    allow_only(o, {"--in", "--password-file", "--password", "--cert", "--key", "--ca"}, "import");
    std::string in_path = require(o, "--in", "the PKCS#12 file");
    std::string cert_path = require(o, "--cert", "where to write the certificate");
    std::string key_path = require(o, "--key", "where to write the private key");
    std::string password = password_from(o, err);
    bool force = o.flags.count("--force");
    ensure_writable(o, {"--cert", "--key", "--ca"});
    P12Content c = import_p12(read_file(in_path), password);
    write_key(key_path, c.key.get(), force);
    write_cert(cert_path, c.cert.get(), force);
    std::string ca_path = o.get("--ca");
    if (!ca_path.empty()) {
        if (c.ca.empty()) throw CertError(in_path + " holds no CA certificate to write to " + ca_path);
        for (size_t i = 0; i < c.ca.size(); ++i) write_cert(ca_path, c.ca[i].get(), force || i > 0, i > 0);
    }
    Json j = Json::object();
    j["cert"] = cert_path;
    j["key"] = key_path;
    j["subject"] = subject_text(c.cert.get());
    j["names"] = string_array(dns_names(c.cert.get()));
    j["ca_certificates"] = static_cast<int>(c.ca.size());
    print_json_or(out, json, j,
                  "imported " + subject_text(c.cert.get()) + " covering " + join(dns_names(c.cert.get())) +
                      "\nwrote " + cert_path + ", " + key_path + " (mode 0600)" +
                      (ca_path.empty() ? std::string() : ", " + ca_path) + "\n" +
                      (!c.ca.empty() && ca_path.empty()
                           ? std::to_string(c.ca.size()) + " CA certificate(s) in the file were not written (--ca)\n"
                           : std::string()));
    return 0;
}

int cmd_check(const Options& o, bool json, std::FILE* out, std::FILE*) {
    allow_only(o, {"--connect", "--cert", "--name", "--sni", "--ca", "--also", "--timeout"}, "check");
    CheckRequest req;
    req.name = require(o, "--name", "the name clients use, e.g. mail.example.com");
    req.also = o.list("--also");
    req.ca_files = o.list("--ca");
    req.connect = o.get("--connect");
    req.cert_file = o.get("--cert");
    req.sni = o.get("--sni");
    req.timeout_ms = positive_int(o, "--timeout", 5000);
    if (req.connect.empty() == req.cert_file.empty())
        throw UsageError("give either --connect HOST:PORT or --cert FILE");
    // Several services at once (the VIP and every node): a comma-separated list.
    std::vector<std::string> targets = o.list("--connect");
    if (targets.size() <= 1) {
        CheckReport r = run_check(req);
        if (json) std::fprintf(out, "%s\n", to_json(r).dump_pretty().c_str());
        else std::fprintf(out, "%s", describe(r).c_str());
        return r.ok ? 0 : 1;
    }
    Json all = Json::array();
    std::vector<std::string> failed;
    for (size_t i = 0; i < targets.size(); ++i) {
        req.connect = targets[i];
        CheckReport r = run_check(req);
        if (!r.ok) failed.push_back(targets[i]);
        if (json) all.push_back(to_json(r));
        else std::fprintf(out, "%s%s", i ? "\n" : "", describe(r).c_str());
    }
    if (json) {
        Json j = Json::object();
        j["ok"] = failed.empty();
        j["targets"] = std::move(all);
        std::fprintf(out, "%s\n", j.dump_pretty().c_str());
    } else if (failed.empty()) {
        std::fprintf(out, "\nSUMMARY: all %zu services present a good certificate for %s\n", targets.size(),
                     req.name.c_str());
    } else {
        std::fprintf(out, "\nSUMMARY: %zu of %zu services have a certificate problem: %s\n", failed.size(),
                     targets.size(), join(failed).c_str());
    }
    return failed.empty() ? 0 : 1;
}

int cmd_show(const Options& o, bool json, std::FILE* out, std::FILE*) {
    allow_only(o, {"--cert"}, "show");
    std::string path = require(o, "--cert", "the certificate file");
    std::vector<Cert> certs = read_certs(path);
    Json arr = Json::array();
    std::string text;
    for (auto& c : certs) {
        Json j = Json::object();
        j["subject"] = subject_text(c.get());
        BioPtr mem(BIO_new(BIO_s_mem()));
        X509_NAME_print_ex(mem.get(), X509_get_issuer_name(c.get()), 0, XN_FLAG_ONELINE & ~ASN1_STRFLGS_ESC_MSB);
        char* data = nullptr;
        long len = BIO_get_mem_data(mem.get(), &data);
        std::string issuer(data, static_cast<size_t>(len));
        j["issuer"] = issuer;
        j["ca"] = is_ca(c.get());
        j["not_before"] = time_text(X509_get0_notBefore(c.get()));
        j["not_after"] = time_text(X509_get0_notAfter(c.get()));
        j["names"] = string_array(dns_names(c.get()));
        text += "subject:  " + subject_text(c.get()) + (is_ca(c.get()) ? "  (CA)" : "") + "\nissuer:   " + issuer +
                "\nvalid:    " + j.get_string("not_before") + " to " + j.get_string("not_after") +
                "\ncovers:   " + join(dns_names(c.get())) + "\n";
        arr.push_back(std::move(j));
    }
    print_json_or(out, json, arr, text);
    return 0;
}

struct SubCommand {
    const char* name;
    int (*run)(const Options& o, bool json, std::FILE* out, std::FILE* err);
};

constexpr SubCommand kSubcommands[] = {
    {"request", cmd_request}, {"issue", cmd_issue}, {"export", cmd_export},
    {"import", cmd_import},   {"check", cmd_check}, {"show", cmd_show},
};

}  // namespace

int cert_main(const std::vector<std::string>& args, bool json, std::FILE* out, std::FILE* err) {
    if (args.empty() || args[0] == "--help" || args[0] == "-h" || args[0] == "help") {
        std::fprintf(args.empty() ? err : out, "%s", kUsage);
        return args.empty() ? 2 : 0;
    }
    const std::string& sub = args[0];
    try {
        const SubCommand* cmd = nullptr;
        for (const SubCommand& c : kSubcommands)
            if (sub == c.name) cmd = &c;
        if (!cmd) throw UsageError("unknown subcommand '" + sub + "'");
        Options o = parse_options(args, 1);
        if (o.flags.count("--help")) {
            std::fprintf(out, "%s", kUsage);
            return 0;
        }
        json = json || o.flags.count("--json");
        if (o.flags.count("--autodiscover") && o.flags.count("--no-autodiscover"))
            throw UsageError("--autodiscover and --no-autodiscover contradict each other");
        return cmd->run(o, json, out, err);
    } catch (const UsageError& e) {
        std::fprintf(err, "nlbctl cert: %s\n%s", e.what(), kUsage);
        return 2;
    } catch (const std::exception& e) {
        std::fprintf(err, "nlbctl cert %s: %s\n", sub.c_str(), e.what());
        return 1;
    }
}

std::optional<int> run_local_command(const std::vector<std::string>& argv, std::FILE* out, std::FILE* err) {
    bool json = false;
    for (size_t i = 0; i < argv.size(); ++i) {
        const std::string& a = argv[i];
        if (a == "--json" || a == "-j") {
            json = true;
            continue;
        }
        if (a == "--help" || a == "-h" || a == "--") return std::nullopt;
        if (a.size() > 1 && a[0] == '-') {
            if (a.find('=') == std::string::npos) ++i;   // a global option and its value
            continue;
        }
        if (a != "cert") return std::nullopt;
        return cert_main(std::vector<std::string>(argv.begin() + static_cast<long>(i) + 1, argv.end()), json, out,
                         err);
    }
    return std::nullopt;
}

}  // namespace nlbd::ctl::cert
