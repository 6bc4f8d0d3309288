// nlbctl: command-line client of nlbd's control socket (see docs/nlbctl.md).

#include <cstdio>
#include <string>
#include <vector>

#include "nlbd/ctl/cli.hpp"

int main(int argc, char** argv) {
    std::vector<std::string> args(argv + 1, argv + argc);
    return nlbd::ctl::nlbctl_main(args, stdout, stderr);
}
