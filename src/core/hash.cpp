// The project's own affinity hash: the definition is inline in
// include/nlbd/core/hash.hpp (packet path; see the contract there). This
// translation unit only checks, at build time, that the header compiles on
// its own.

#include "nlbd/core/hash.hpp"
