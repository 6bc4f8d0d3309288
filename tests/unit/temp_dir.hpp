#pragma once
// A private directory for one test, removed with everything in it when the
// test ends.

#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <string>
#include <system_error>

namespace nlbd::test {

class TempDir {
public:
    // TAG names the test in the directory's name (nlbd_TAG_PID_N).
    explicit TempDir(const std::string& tag = "test") {
        static std::atomic<unsigned> counter{0};
        path_ = std::filesystem::temp_directory_path() /
                ("nlbd_" + tag + "_" + std::to_string(::getpid()) + "_" + std::to_string(counter++));
        std::filesystem::create_directories(path_);
    }
    ~TempDir() {
        std::error_code ec;
        std::filesystem::remove_all(path_, ec);
    }
    TempDir(const TempDir&) = delete;
    TempDir& operator=(const TempDir&) = delete;

    const std::filesystem::path& path() const { return path_; }
    // The path of NAME in the directory (not created).
    std::string file(const std::string& name) const { return (path_ / name).string(); }
    // Writes TEXT to NAME (parent directories created); returns its path.
    std::string write(const std::string& name, const std::string& text) const {
        const std::filesystem::path p = path_ / name;
        std::filesystem::create_directories(p.parent_path());
        std::ofstream(p) << text;
        return p.string();
    }
    // An executable shell script NAME running BODY; returns its path.
    std::string script(const std::string& name, const std::string& body) const {
        const std::string p = write(name, "#!/bin/sh\n" + body + "\n");
        ::chmod(p.c_str(), 0700);
        return p;
    }

private:
    std::filesystem::path path_;
};

}  // namespace nlbd::test
