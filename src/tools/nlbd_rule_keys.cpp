// nlbd-rule-keys: writes the generated port-rule key tables of the docs from
// the rule schema (core/rule_schema.hpp, config/rule_keys.hpp).
//
//   nlbd-rule-keys FILE...          rewrite the generated blocks of each FILE
//   nlbd-rule-keys --check FILE...  exit 1 naming each FILE whose blocks differ
//   nlbd-rule-keys --print NAME     print one table (port_rule, health, record,
//                                   port_rule_toml)
//
// The docs: docs/port-rules.md, docs/health.md, docs/heartbeat.md and
// configs/cluster.example.toml. tests/unit/rule_schema_test.cpp fails while
// one of them differs.

#include <cstdio>
#include <cstring>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <string>

#include "nlbd/config/rule_keys.hpp"

int main(int argc, char** argv) {
    if (argc < 2 || std::strcmp(argv[1], "--help") == 0) {
        std::fprintf(stderr, "usage: nlbd-rule-keys [--check] FILE... | --print NAME\n");
        return 2;
    }
    try {
        if (std::strcmp(argv[1], "--print") == 0) {
            if (argc != 3) throw std::runtime_error("--print takes one table name");
            std::fputs(nlbd::config::key_table(argv[2]).c_str(), stdout);
            return 0;
        }
        const bool check = std::strcmp(argv[1], "--check") == 0;
        int status = 0;
        for (int i = check ? 2 : 1; i < argc; ++i) {
            std::ifstream in(argv[i]);
            if (!in) throw std::runtime_error(std::string(argv[i]) + ": cannot read");
            std::stringstream text;
            text << in.rdbuf();
            const std::string now = text.str();
            const std::string want = nlbd::config::refresh_key_tables(now);
            if (want == now) continue;
            if (check) {
                std::fprintf(stderr, "%s: generated rule-schema tables differ\n", argv[i]);
                status = 1;
                continue;
            }
            std::ofstream out(argv[i], std::ios::trunc);
            out << want;
            if (!out) throw std::runtime_error(std::string(argv[i]) + ": cannot write");
            std::printf("%s: rewritten\n", argv[i]);
        }
        return status;
    } catch (const std::exception& e) {
        std::fprintf(stderr, "nlbd-rule-keys: %s\n", e.what());
        return 2;
    }
}
