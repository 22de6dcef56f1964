// A broken contract (see contract.hpp): said on standard error, then abort().
#include "sagalab/contract.hpp"

#include <cstdio>
#include <cstdlib>

namespace sagalab {

void contract_failed(const char* what, const char* why, const char* file, int line) {
  std::fprintf(stderr, "sagalab: contract broken at %s:%d: %s (%s)\n", file, line, why, what);
  std::fflush(stderr);
  std::abort();
}

}  // namespace sagalab
