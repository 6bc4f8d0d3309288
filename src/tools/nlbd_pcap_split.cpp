// nlbd-pcap-split: splits a capture into N captures the way a NIC's RSS
// would spread it over N RX queues, with nlbd's distributor flow hash
// (core/dispatch.hpp): every frame of a flow lands in the same output, in
// its original order. Used to feed the rss dispatch mode from net_pcap (one
// rx_pcap file per queue) in tests/replay.
//
//   nlbd-pcap-split --in IN.pcap --out-prefix P --ways N [--l4]
//   -> P0.pcap .. P<N-1>.pcap; prints "frames per output: a b ..."
#include <pcap/pcap.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "nlbd/core/dispatch.hpp"
#include "pcap_writer.hpp"

int main(int argc, char** argv) {
    std::string in, prefix;
    unsigned ways = 2;
    bool l4 = false;
    for (int i = 1; i < argc; ++i) {
        const std::string a = argv[i];
        auto value = [&]() -> std::string {
            if (i + 1 >= argc) {
                std::fprintf(stderr, "nlbd-pcap-split: %s needs a value\n", a.c_str());
                std::exit(2);
            }
            return argv[++i];
        };
        if (a == "-h" || a == "--help") {
            std::printf("usage: nlbd-pcap-split --in IN.pcap --out-prefix P --ways N [--l4]\n"
                        "Splits a capture into N files (P0.pcap ... ) by flow, as RSS would: every frame of\n"
                        "a flow (addresses, and TCP/UDP ports with --l4) goes to the same file.\n");
            return 0;
        }
        if (a == "--in") in = value();
        else if (a == "--out-prefix") prefix = value();
        else if (a == "--ways") ways = static_cast<unsigned>(std::strtoul(value().c_str(), nullptr, 10));
        else if (a == "--l4") l4 = true;
        else {
            std::fprintf(stderr, "usage: nlbd-pcap-split --in IN.pcap --out-prefix P --ways N [--l4]\n");
            return 2;
        }
    }
    if (in.empty() || prefix.empty() || ways < 1 || ways > 64) {
        std::fprintf(stderr, "usage: nlbd-pcap-split --in IN.pcap --out-prefix P --ways N(1..64) [--l4]\n");
        return 2;
    }
    char err[PCAP_ERRBUF_SIZE];
    pcap_t* p = pcap_open_offline(in.c_str(), err);
    if (p == nullptr) {
        std::fprintf(stderr, "nlbd-pcap-split: %s: %s\n", in.c_str(), err);
        return 2;
    }
    std::vector<std::unique_ptr<nlbd::testing::PcapWriter>> out;
    for (unsigned w = 0; w < ways; ++w) {
        out.push_back(std::make_unique<nlbd::testing::PcapWriter>(prefix + std::to_string(w) + ".pcap"));
        if (!out.back()->ok()) {
            std::fprintf(stderr, "nlbd-pcap-split: cannot write %s%u.pcap\n", prefix.c_str(), w);
            return 2;
        }
    }
    std::vector<unsigned long> count(ways, 0);
    pcap_pkthdr* h = nullptr;
    const u_char* data = nullptr;
    int rc;
    while ((rc = pcap_next_ex(p, &h, &data)) == 1) {
        const unsigned w = nlbd::core::dispatch_worker(nlbd::core::dispatch_hash(data, h->caplen, l4), ways);
        const uint64_t ts = uint64_t(h->ts.tv_sec) * 1000000u + uint64_t(h->ts.tv_usec);
        out[w]->write(std::vector<uint8_t>(data, data + h->caplen), ts);
        ++count[w];
    }
    if (rc == -1) {
        std::fprintf(stderr, "nlbd-pcap-split: %s: %s\n", in.c_str(), pcap_geterr(p));
        pcap_close(p);
        return 2;
    }
    pcap_close(p);
    std::printf("frames per output:");
    for (unsigned w = 0; w < ways; ++w) {
        if (!out[w]->close()) {
            std::fprintf(stderr, "nlbd-pcap-split: write error on output %u\n", w);
            return 2;
        }
        std::printf(" %lu", count[w]);
    }
    std::printf("\n");
    return 0;
}
