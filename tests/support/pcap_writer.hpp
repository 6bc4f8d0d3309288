#pragma once
// Minimal classic-pcap writer (microsecond timestamps, LINKTYPE_ETHERNET),
// test/tool-only and header-only: <cstdio>, <cstdint>, <vector>, <string>.
//
//   nlbd::testing::PcapWriter w("in.pcap");      // ok() is false if open failed
//   w.write(frame);                               // timestamps advance 1 us per frame
//   w.write(frame, 1'000'000);                    // or an explicit time in microseconds
//
// or nlbd::testing::write_pcap("in.pcap", frames) for a whole vector at once.

#include <cstdint>
#include <cstdio>
#include <string>
#include <vector>

namespace nlbd::testing {

class PcapWriter {
public:
    static constexpr uint32_t kLinktypeEthernet = 1;

    explicit PcapWriter(const std::string& path, uint32_t snaplen = 65535) {
        f_ = std::fopen(path.c_str(), "wb");
        if (f_ == nullptr) return;
        put32(0xa1b2c3d4);  // magic (microsecond resolution), written in host order
        put16(2);           // version major
        put16(4);           // version minor
        put32(0);           // thiszone
        put32(0);           // sigfigs
        put32(snaplen);
        put32(kLinktypeEthernet);
    }
    PcapWriter(const PcapWriter&) = delete;
    PcapWriter& operator=(const PcapWriter&) = delete;
    ~PcapWriter() { close(); }

    bool ok() const { return f_ != nullptr && !failed_; }

    // Appends one frame stamped `ts_us` microseconds after the epoch.
    void write(const std::vector<uint8_t>& frame, uint64_t ts_us) {
        if (f_ == nullptr) return;
        put32(static_cast<uint32_t>(ts_us / 1000000));
        put32(static_cast<uint32_t>(ts_us % 1000000));
        put32(static_cast<uint32_t>(frame.size()));  // captured length
        put32(static_cast<uint32_t>(frame.size()));  // original length
        if (!frame.empty() && std::fwrite(frame.data(), 1, frame.size(), f_) != frame.size())
            failed_ = true;
        next_ts_us_ = ts_us + 1;
    }
    // Appends one frame, 1 us after the previous one.
    void write(const std::vector<uint8_t>& frame) { write(frame, next_ts_us_); }

    // Flushes and closes; returns false if any write failed.
    bool close() {
        if (f_ == nullptr) return !failed_;
        if (std::fclose(f_) != 0) failed_ = true;
        f_ = nullptr;
        return !failed_;
    }

private:
    void put32(uint32_t v) {
        if (std::fwrite(&v, sizeof v, 1, f_) != 1) failed_ = true;
    }
    void put16(uint16_t v) {
        if (std::fwrite(&v, sizeof v, 1, f_) != 1) failed_ = true;
    }

    std::FILE* f_ = nullptr;
    bool failed_ = false;
    uint64_t next_ts_us_ = 1'000'000;
};

// Writes `frames` to `path`, 1 us apart. Returns false on any I/O error.
inline bool write_pcap(const std::string& path, const std::vector<std::vector<uint8_t>>& frames) {
    PcapWriter w(path);
    if (!w.ok()) return false;
    for (const auto& f : frames) w.write(f);
    return w.close();
}

}  // namespace nlbd::testing
