// Contracts: the assumptions a core function relies on, checked where they
// are made. On in the dev and asan presets (SAGALAB_CONTRACTS), off in
// release: a violated one stops the program (a simulation: at its cause, not
// events later at a symptom) with what was assumed and where.
#pragma once

namespace sagalab {
[[noreturn]] void contract_failed(const char* what, const char* why, const char* file, int line);
}  // namespace sagalab

#ifdef SAGALAB_CONTRACTS
#define SAGALAB_ASSERT(cond, why) ((cond) ? (void)0 : ::sagalab::contract_failed(#cond, why, __FILE__, __LINE__))
#else
#define SAGALAB_ASSERT(cond, why) ((void)0)
#endif
