// Certificate helper (nlbctl cert): SAN lists, CA and leaf extensions, PEM
// files, PKCS#12 round trip, and the check's findings (SPEC §9).

#include "nlbd/ctl/cert.hpp"

#include <gtest/gtest.h>
#include <openssl/x509v3.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <string>

using namespace nlbd::ctl::cert;
using nlbd::ctl::Json;

namespace {

Names seed_names() {
    Names n;
    n.cluster = "mail.ehlo.dk";
    n.nodes = {"cas01.ehlo.dk", "cas02.ehlo.dk"};
    n.netbios = {"CAS01", "CAS02"};
    return n;
}

bool has(const std::vector<std::string>& v, const std::string& x) { return std::find(v.begin(), v.end(), x) != v.end(); }

bool has_problem(const CheckReport& r, Problem p) {
    return std::any_of(r.findings.begin(), r.findings.end(), [&](const Finding& f) { return f.problem == p; });
}

// A CA and a leaf for the seed's names, made once per test.
struct Lab {
    Key ca_key = make_key(KeyType::ec);
    Cert ca = make_ca(ca_key.get(), "Test CA");
    Key leaf_key = make_key(KeyType::ec);
    Cert leaf = issue_leaf(leaf_key.get(), seed_names(), ca.get(), ca_key.get());
};

class TempDir {
public:
    TempDir() {
        char tmpl[] = "/tmp/nlbd-cert-test-XXXXXX";
        path_ = mkdtemp(tmpl);
    }
    ~TempDir() { std::filesystem::remove_all(path_); }
    std::string file(const std::string& name) const { return path_ + "/" + name; }
private:
    std::string path_;
};

std::string bit_string_flags(X509* x) {
    uint32_t ku = X509_get_key_usage(x);
    std::string s;
    if (ku & KU_DIGITAL_SIGNATURE) s += "digitalSignature ";
    if (ku & KU_KEY_ENCIPHERMENT) s += "keyEncipherment ";
    if (ku & KU_KEY_CERT_SIGN) s += "keyCertSign ";
    if (ku & KU_CRL_SIGN) s += "cRLSign ";
    return s;
}

}  // namespace

TEST(CertSanNames, CoverClusterAutodiscoverNodesAndNetbiosInOrder) {
    std::vector<std::string> s = san_names(seed_names());
    std::vector<std::string> want = {"mail.ehlo.dk", "autodiscover.ehlo.dk", "cas01.ehlo.dk", "cas02.ehlo.dk",
                                     "CAS01", "CAS02"};
    EXPECT_EQ(s, want);
}

TEST(CertSanNames, DuplicatesDroppedCaseInsensitively) {
    Names n = seed_names();
    n.nodes.push_back("CAS01.EHLO.DK");
    n.extra = {"Mail.Ehlo.Dk", "owa.ehlo.dk"};
    std::vector<std::string> s = san_names(n);
    EXPECT_EQ(s.size(), 7u);
    EXPECT_TRUE(has(s, "owa.ehlo.dk"));
}

TEST(CertSanNames, AutodiscoverCanBeLeftOut) {
    Names n = seed_names();
    n.autodiscover = false;
    EXPECT_FALSE(has(san_names(n), "autodiscover.ehlo.dk"));
}

TEST(CertSanNames, BadNamesAndMissingClusterAreRefused) {
    Names n = seed_names();
    n.nodes.push_back("cas 03.ehlo.dk");
    EXPECT_THROW(san_names(n), CertError);
    n = seed_names();
    n.netbios.push_back("a..b");
    EXPECT_THROW(san_names(n), CertError);
    n = seed_names();
    n.cluster.clear();
    EXPECT_THROW(san_names(n), CertError);
}

TEST(CertCsr, CarriesEverySanAndTheClusterAsSubject) {
    Key k = make_key(KeyType::ec);
    Csr req = make_csr(k.get(), seed_names());
    EXPECT_EQ(X509_REQ_verify(req.get(), k.get()), 1);
    STACK_OF(X509_EXTENSION)* exts = X509_REQ_get_extensions(req.get());
    ASSERT_NE(exts, nullptr);
    auto* gens = static_cast<GENERAL_NAMES*>(X509V3_get_d2i(exts, NID_subject_alt_name, nullptr, nullptr));
    ASSERT_NE(gens, nullptr);
    std::vector<std::string> dns;
    for (int i = 0; i < sk_GENERAL_NAME_num(gens); ++i) {
        int type = 0;
        auto* v = static_cast<ASN1_STRING*>(GENERAL_NAME_get0_value(sk_GENERAL_NAME_value(gens, i), &type));
        ASSERT_EQ(type, GEN_DNS);
        dns.emplace_back(reinterpret_cast<const char*>(ASN1_STRING_get0_data(v)), ASN1_STRING_length(v));
    }
    GENERAL_NAMES_free(gens);
    sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
    EXPECT_EQ(dns, san_names(seed_names()));
    char cn[256] = {};
    X509_NAME_get_text_by_NID(X509_REQ_get_subject_name(req.get()), NID_commonName, cn, sizeof cn);
    EXPECT_STREQ(cn, "mail.ehlo.dk");
}

TEST(CertCa, IsCaWithKeyCertSignAndCriticalBasicConstraints) {
    Lab lab;
    EXPECT_TRUE(is_ca(lab.ca.get()));
    EXPECT_EQ(X509_check_ca(lab.ca.get()), 1);
    EXPECT_EQ(bit_string_flags(lab.ca.get()), "keyCertSign cRLSign ");
    int idx = X509_get_ext_by_NID(lab.ca.get(), NID_basic_constraints, -1);
    ASSERT_GE(idx, 0);
    EXPECT_EQ(X509_EXTENSION_get_critical(X509_get_ext(lab.ca.get(), idx)), 1);
    EXPECT_EQ(X509_check_issued(lab.ca.get(), lab.ca.get()), X509_V_OK);   // self-signed
}

TEST(CertLeaf, ServerAuthDigitalSignatureNotCaAndSanOfTheSeed) {
    Lab lab;
    EXPECT_FALSE(is_ca(lab.leaf.get()));
    EXPECT_EQ(X509_check_ca(lab.leaf.get()), 0);
    EXPECT_EQ(bit_string_flags(lab.leaf.get()), "digitalSignature ");
    EXPECT_TRUE(X509_get_extended_key_usage(lab.leaf.get()) & XKU_SSL_SERVER);
    EXPECT_EQ(dns_names(lab.leaf.get()), san_names(seed_names()));
    EXPECT_EQ(X509_check_issued(lab.ca.get(), lab.leaf.get()), X509_V_OK);
    EXPECT_EQ(X509_verify(lab.leaf.get(), lab.ca_key.get()), 1);
}

TEST(CertLeaf, RsaLeafAlsoAllowsKeyEncipherment) {
    Lab lab;
    Key rsa = make_key(KeyType::rsa);
    Cert leaf = issue_leaf(rsa.get(), seed_names(), lab.ca.get(), lab.ca_key.get());
    EXPECT_EQ(bit_string_flags(leaf.get()), "digitalSignature keyEncipherment ");
}

TEST(CertLeaf, SerialIsRandomAndValidityStartsFiveMinutesAgo) {
    Lab lab;
    Cert other = issue_leaf(lab.leaf_key.get(), seed_names(), lab.ca.get(), lab.ca_key.get());
    EXPECT_NE(ASN1_INTEGER_cmp(X509_get0_serialNumber(lab.leaf.get()), X509_get0_serialNumber(other.get())), 0);
    int days = 0, secs = 0;
    ASSERT_EQ(ASN1_TIME_diff(&days, &secs, X509_get0_notBefore(lab.leaf.get()), nullptr), 1);   // to now
    int ago = days * 86400 + secs;
    EXPECT_GE(ago, 299);
    EXPECT_LE(ago, 400);
    ASSERT_EQ(ASN1_TIME_diff(&days, &secs, nullptr, X509_get0_notAfter(lab.leaf.get())), 1);
    EXPECT_GE(days, 396);
    EXPECT_LE(days, 397);
}

TEST(CertLeaf, RefusesACaKeyThatIsNotTheCas) {
    Lab lab;
    Key stranger = make_key(KeyType::ec);
    EXPECT_THROW(issue_leaf(lab.leaf_key.get(), seed_names(), lab.ca.get(), stranger.get()), CertError);
    // and a leaf is not a CA
    EXPECT_THROW(issue_leaf(stranger.get(), seed_names(), lab.leaf.get(), lab.leaf_key.get()), CertError);
}

TEST(CertFiles, KeyIsPrivateAndExistingFilesAreNotReplaced) {
    TempDir d;
    Lab lab;
    write_key(d.file("k.pem"), lab.leaf_key.get(), false);
    struct stat st {};
    ASSERT_EQ(stat(d.file("k.pem").c_str(), &st), 0);
    EXPECT_EQ(st.st_mode & 0777, 0600u);
    EXPECT_THROW(write_key(d.file("k.pem"), lab.leaf_key.get(), false), CertError);
    write_key(d.file("k.pem"), lab.ca_key.get(), true);
    Key back = read_key(d.file("k.pem"));
    EXPECT_EQ(EVP_PKEY_eq(back.get(), lab.ca_key.get()), 1);

    write_cert(d.file("chain.pem"), lab.leaf.get(), false);
    write_cert(d.file("chain.pem"), lab.ca.get(), false, true);
    std::vector<Cert> certs = read_certs(d.file("chain.pem"));
    ASSERT_EQ(certs.size(), 2u);
    EXPECT_EQ(X509_cmp(certs[0].get(), lab.leaf.get()), 0);
    EXPECT_EQ(X509_cmp(certs[1].get(), lab.ca.get()), 0);
    EXPECT_THROW(read_certs(d.file("k.pem")), CertError);
    EXPECT_THROW(read_key(d.file("missing.pem")), CertError);
}

TEST(CertPkcs12, RoundTripKeepsKeyCertificateAndCa) {
    Lab lab;
    std::string p12 = export_p12(lab.leaf.get(), lab.leaf_key.get(), {lab.ca.get()}, "s3cret!", "mail.ehlo.dk");
    P12Content c = import_p12(p12, "s3cret!");
    EXPECT_EQ(X509_cmp(c.cert.get(), lab.leaf.get()), 0);
    EXPECT_EQ(EVP_PKEY_eq(c.key.get(), lab.leaf_key.get()), 1);
    ASSERT_EQ(c.ca.size(), 1u);
    EXPECT_EQ(X509_cmp(c.ca[0].get(), lab.ca.get()), 0);
    EXPECT_EQ(dns_names(c.cert.get()), san_names(seed_names()));
}

TEST(CertPkcs12, WrongPasswordIsReportedAsSuch) {
    Lab lab;
    std::string p12 = export_p12(lab.leaf.get(), lab.leaf_key.get(), {}, "right", "x");
    try {
        import_p12(p12, "wrong");
        FAIL() << "a wrong password was accepted";
    } catch (const CertError& e) {
        EXPECT_NE(std::string(e.what()).find("wrong password"), std::string::npos) << e.what();
    }
    EXPECT_THROW(import_p12("not a pkcs12 file", "right"), CertError);
    EXPECT_THROW(export_p12(lab.leaf.get(), lab.leaf_key.get(), {}, "", "x"), CertError);
    EXPECT_THROW(export_p12(lab.leaf.get(), lab.ca_key.get(), {}, "pw", "x"), CertError);   // key of another cert
}

TEST(CertCheck, GoodCertificateCoversEveryNameAndChainsToTheCa) {
    Lab lab;
    CheckReport r = check_certificate(lab.leaf.get(), {}, {lab.ca.get()}, "mail.ehlo.dk",
                                      {"autodiscover.ehlo.dk", "cas02.ehlo.dk", "CAS01"});
    EXPECT_TRUE(r.ok) << describe(r);
    EXPECT_TRUE(r.findings.empty());
    EXPECT_EQ(r.chains_to, subject_text(lab.ca.get()));
    EXPECT_EQ(r.names.size(), 4u);
    std::string text = describe(r);
    EXPECT_EQ(text.rfind("OK: the certificate covers mail.ehlo.dk", 0), 0u) << text;
    EXPECT_NE(text.find("Test CA"), std::string::npos);
    Json j = to_json(r);
    EXPECT_TRUE(j.get_bool("ok"));
    EXPECT_EQ(j.find("problems")->size(), 0u);
}

TEST(CertCheck, CertificateWithoutTheClusterNameIsAProblemListingWhatItCovers) {
    // The seed's mistake: a certificate made for a node, used behind the cluster name.
    Lab lab;
    Names node;
    node.cluster = "cas01.ehlo.dk";
    node.autodiscover = false;
    node.netbios = {"CAS01"};
    Cert c = issue_leaf(lab.leaf_key.get(), node, lab.ca.get(), lab.ca_key.get());
    CheckReport r = check_certificate(c.get(), {}, {lab.ca.get()}, "mail.ehlo.dk", {});
    EXPECT_FALSE(r.ok);
    ASSERT_EQ(r.findings.size(), 1u) << describe(r);
    EXPECT_EQ(r.findings[0].problem, Problem::name_not_covered);
    std::string text = describe(r);
    EXPECT_NE(text.find("PROBLEM: the certificate does not cover mail.ehlo.dk (it covers: cas01.ehlo.dk, CAS01)"),
              std::string::npos)
        << text;
    EXPECT_NE(text.find("security alert"), std::string::npos);
    EXPECT_EQ(to_json(r).find("problems")->at(0).get_string("problem"), "name_not_covered");
}

TEST(CertCheck, MissingAlsoNameIsReported) {
    Lab lab;
    CheckReport r = check_certificate(lab.leaf.get(), {}, {lab.ca.get()}, "mail.ehlo.dk", {"owa.ehlo.dk"});
    EXPECT_FALSE(r.ok);
    EXPECT_TRUE(has_problem(r, Problem::name_not_covered));
    EXPECT_TRUE(r.names[0].second);
    EXPECT_FALSE(r.names[1].second);
}

TEST(CertCheck, ExpiredCertificateIsReported) {
    Lab lab;
    Cert old = issue_leaf(lab.leaf_key.get(), seed_names(), lab.ca.get(), lab.ca_key.get(),
                          Validity{-10 * 86400, -86400});
    CheckReport r = check_certificate(old.get(), {}, {lab.ca.get()}, "mail.ehlo.dk", {});
    EXPECT_FALSE(r.ok);
    EXPECT_TRUE(has_problem(r, Problem::expired)) << describe(r);
    EXPECT_FALSE(has_problem(r, Problem::name_not_covered));
    EXPECT_NE(describe(r).find("expired on"), std::string::npos);
    // The same good certificate, checked as if two years from now.
    CheckReport later = check_certificate(lab.leaf.get(), {}, {lab.ca.get()}, "mail.ehlo.dk", {},
                                          std::time(nullptr) + 2 * 365 * 86400L);
    EXPECT_TRUE(has_problem(later, Problem::expired));
}

TEST(CertCheck, NotYetValidCertificateIsReported) {
    Lab lab;
    Cert future = issue_leaf(lab.leaf_key.get(), seed_names(), lab.ca.get(), lab.ca_key.get(),
                             Validity{86400, 10 * 86400});
    CheckReport r = check_certificate(future.get(), {}, {lab.ca.get()}, "mail.ehlo.dk", {});
    EXPECT_TRUE(has_problem(r, Problem::not_yet_valid)) << describe(r);
}

TEST(CertCheck, CertificateFromAnotherCaIsReported) {
    Lab lab;
    Lab other;
    CheckReport r = check_certificate(other.leaf.get(), {}, {lab.ca.get()}, "mail.ehlo.dk", {});
    EXPECT_FALSE(r.ok);
    EXPECT_TRUE(has_problem(r, Problem::unknown_ca)) << describe(r);
    EXPECT_EQ(r.findings.size(), 1u) << describe(r);   // said once, however many OpenSSL codes say it
    EXPECT_NE(describe(r).find("does not chain to the expected CA (CN = Test CA"), std::string::npos) << describe(r);
    EXPECT_TRUE(r.chains_to.empty());
    // With its intermediate-less chain and the right anchor it is fine.
    EXPECT_TRUE(check_certificate(other.leaf.get(), {}, {other.ca.get()}, "mail.ehlo.dk", {}).ok);
}

TEST(CertCheck, SelfSignedCertificateIsReported) {
    Lab lab;
    Key k = make_key(KeyType::ec);
    Cert self = make_ca(k.get(), "mail.ehlo.dk");   // self-signed, no SAN at all
    CheckReport r = check_certificate(self.get(), {}, {lab.ca.get()}, "mail.ehlo.dk", {});
    EXPECT_FALSE(r.ok);
    EXPECT_TRUE(has_problem(r, Problem::self_signed)) << describe(r);
    EXPECT_TRUE(has_problem(r, Problem::name_not_covered));   // CN is not a SAN
}

TEST(CertCheck, ExpiredAndWrongNameAndOtherCaAreAllListed) {
    Lab lab;
    Lab other;
    Names node;
    node.cluster = "cas01.ehlo.dk";
    Cert bad = issue_leaf(other.leaf_key.get(), node, other.ca.get(), other.ca_key.get(), Validity{-9 * 86400, -86400});
    CheckReport r = check_certificate(bad.get(), {}, {lab.ca.get()}, "mail.ehlo.dk", {});
    EXPECT_TRUE(has_problem(r, Problem::unknown_ca)) << describe(r);
    EXPECT_TRUE(has_problem(r, Problem::expired)) << describe(r);
    EXPECT_TRUE(has_problem(r, Problem::name_not_covered)) << describe(r);
}

TEST(CertCli, RequestWritesKeyAndCsrAndRefusesToOverwrite) {
    TempDir d;
    std::vector<std::string> args = {"request", "--cluster", "mail.ehlo.dk", "--node", "cas01.ehlo.dk,cas02.ehlo.dk",
                                     "--netbios", "CAS01,CAS02", "--key", d.file("k.key"), "--csr", d.file("r.csr")};
    std::FILE* out = std::tmpfile();
    std::FILE* err = std::tmpfile();
    EXPECT_EQ(cert_main(args, false, out, err), 0);
    Csr req = read_csr(d.file("r.csr"));
    Key key = read_key(d.file("k.key"));
    EXPECT_EQ(X509_REQ_verify(req.get(), key.get()), 1);
    EXPECT_EQ(cert_main(args, false, out, err), 1);   // files exist
    args.push_back("--force");
    EXPECT_EQ(cert_main(args, false, out, err), 0);
    std::fclose(out);
    std::fclose(err);
}

TEST(CertCli, UsageErrorsExitTwoAndDaemonCommandsAreNotLocal) {
    std::FILE* out = std::tmpfile();
    std::FILE* err = std::tmpfile();
    EXPECT_EQ(cert_main({"request", "--key", "x"}, false, out, err), 2);            // no --cluster
    EXPECT_EQ(cert_main({"bogus"}, false, out, err), 2);
    EXPECT_EQ(cert_main({"check", "--name", "a.b"}, false, out, err), 2);           // neither --connect nor --cert
    EXPECT_EQ(cert_main({"export", "--cert", "a", "--key", "b", "--out", "c"}, false, out, err), 2);   // no password
    EXPECT_FALSE(run_local_command({"query"}, out, err).has_value());
    EXPECT_FALSE(run_local_command({"--socket", "cert", "query"}, out, err).has_value());
    EXPECT_EQ(run_local_command({"--json", "cert", "bogus"}, out, err), 2);
    std::fclose(out);
    std::fclose(err);
}

TEST(CertCli, IssueWithNewCaThenCheckOfflineAndPkcs12RoundTrip) {
    TempDir d;
    std::FILE* out = std::tmpfile();
    std::FILE* err = std::tmpfile();
    ASSERT_EQ(cert_main({"issue", "--cluster", "mail.ehlo.dk", "--node", "cas01.ehlo.dk", "--netbios", "CAS01",
                         "--cert", d.file("s.crt"), "--key", d.file("s.key"), "--new-ca", d.file("ca.crt"),
                         "--new-ca-key", d.file("ca.key"), "--days", "30"},
                        false, out, err),
              0);
    EXPECT_EQ(cert_main({"check", "--cert", d.file("s.crt"), "--name", "mail.ehlo.dk", "--ca", d.file("ca.crt"),
                         "--also", "autodiscover.ehlo.dk,CAS01"},
                        false, out, err),
              0);
    EXPECT_EQ(cert_main({"check", "--cert", d.file("s.crt"), "--name", "cas02.ehlo.dk", "--ca", d.file("ca.crt")},
                        true, out, err),
              1);
    {
        std::ofstream(d.file("pw")) << "pa ss\n";
    }
    ASSERT_EQ(cert_main({"export", "--cert", d.file("s.crt"), "--key", d.file("s.key"), "--ca", d.file("ca.crt"),
                         "--out", d.file("s.p12"), "--password-file", d.file("pw")},
                        false, out, err),
              0);
    ASSERT_EQ(cert_main({"import", "--in", d.file("s.p12"), "--password-file", d.file("pw"), "--cert",
                         d.file("b.crt"), "--key", d.file("b.key"), "--ca", d.file("b-ca.crt")},
                        false, out, err),
              0);
    EXPECT_EQ(X509_cmp(read_certs(d.file("b.crt"))[0].get(), read_certs(d.file("s.crt"))[0].get()), 0);
    EXPECT_EQ(EVP_PKEY_eq(read_key(d.file("b.key")).get(), read_key(d.file("s.key")).get()), 1);
    EXPECT_EQ(X509_cmp(read_certs(d.file("b-ca.crt"))[0].get(), read_certs(d.file("ca.crt"))[0].get()), 0);
    setenv("NLBCTL_P12_PASSWORD", "nope", 1);
    EXPECT_EQ(cert_main({"import", "--in", d.file("s.p12"), "--cert", d.file("c.crt"), "--key", d.file("c.key")},
                        false, out, err),
              1);
    unsetenv("NLBCTL_P12_PASSWORD");
    std::fclose(out);
    std::fclose(err);
}

TEST(CertCheck, CertificateExpiringSoonIsOkWithARenewalNote) {
    Lab lab;
    Cert soon = issue_leaf(lab.leaf_key.get(), seed_names(), lab.ca.get(), lab.ca_key.get(), Validity::days(10));
    CheckReport r = check_certificate(soon.get(), {}, {lab.ca.get()}, "mail.ehlo.dk", {});
    EXPECT_TRUE(r.ok) << describe(r);
    EXPECT_GE(r.expires_in_days, 9);
    EXPECT_LE(r.expires_in_days, 10);
    EXPECT_NE(describe(r).find("NOTE: it expires in"), std::string::npos) << describe(r);
    CheckReport later = check_certificate(lab.leaf.get(), {}, {lab.ca.get()}, "mail.ehlo.dk", {});
    EXPECT_EQ(describe(later).find("NOTE:"), std::string::npos) << describe(later);
}
