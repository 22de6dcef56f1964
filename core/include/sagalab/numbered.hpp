// Ids made of a prefix and a zero-padded number ("compra_000042",
// "sim-000012-1"), written without printf: the simulator makes several per
// saga, and snprintf's format parsing was 5% of its instructions.
#pragma once

#include <charconv>
#include <cstdint>
#include <string>
#include <string_view>

namespace sagalab {

// Appends n in decimal, padded with zeros to at least `width` digits (n >= 0).
inline void append_number(std::string& out, std::int64_t n, int width = 0) {
  char digits[24];
  auto [end, ec] = std::to_chars(digits, digits + sizeof digits, n);
  (void)ec;  // 24 characters hold any 64-bit integer
  const auto len = static_cast<int>(end - digits);
  if (len < width) out.append(static_cast<std::size_t>(width - len), '0');
  out.append(digits, end);
}

// prefix + n padded to `width` digits.
inline std::string numbered(std::string_view prefix, std::int64_t n, int width) {
  std::string out;
  out.reserve(prefix.size() + static_cast<std::size_t>(width) + 4);
  out.append(prefix);
  append_number(out, n, width);
  return out;
}

}  // namespace sagalab
