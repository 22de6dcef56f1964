// Trace ids (W3C traceparent) and the wall clock the log lines carry.
#include <algorithm>
#include <cctype>
#include <chrono>
#include <cstdio>
#include <random>

#include "sagalab/http_common.hpp"

namespace sagalab {

std::int64_t wall_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

std::string trace_id_of(const std::string& tp) {
  // version "00", trace id, parent id, flags; an all-zero id is invalid.
  if (tp.size() < 55 || tp.compare(0, 3, "00-") != 0 || tp[35] != '-' || tp[52] != '-') return "";
  auto id = tp.substr(3, 32);
  bool hex = std::all_of(id.begin(), id.end(), [](char c) { return std::isxdigit(static_cast<unsigned char>(c)) && !std::isupper(static_cast<unsigned char>(c)); });
  if (!hex || id == std::string(32, '0')) return "";
  return id;
}

namespace {
std::string random_hex(int digits) {
  static thread_local std::mt19937_64 rng{std::random_device{}()};
  std::string out;
  while (static_cast<int>(out.size()) < digits) {
    char buf[17];
    std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(rng()));
    out += buf;
  }
  out.resize(static_cast<std::size_t>(digits));
  return out;
}
}  // namespace

std::string new_trace_id() { return random_hex(32); }
std::string new_span_id() { return random_hex(16); }

}  // namespace sagalab
