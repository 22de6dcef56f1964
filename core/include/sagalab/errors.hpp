// Typed errors of the core. A ClientError is bad input: it is mapped to a 4xx
// answer once, at the edge, and the transaction that raised it is rolled back.
#pragma once

#include <stdexcept>
#include <string>
#include <utility>

namespace sagalab {

class ClientError : public std::runtime_error {
 public:
  ClientError(int status, const std::string& message, std::string field = "")
      : std::runtime_error(message), status_(status), field_(std::move(field)) {}
  int status() const { return status_; }
  // The input field the error is about ("" when it is about the whole input): lets a caller
  // that parsed the input from a file point at the field's own line.
  const std::string& field() const { return field_; }

 private:
  int status_;
  std::string field_;
};

inline ClientError bad_request(const std::string& m) { return ClientError(400, m); }
inline ClientError bad_field(const std::string& field, const std::string& m) { return ClientError(400, m, field); }
inline ClientError not_found(const std::string& m) { return ClientError(404, m); }
inline ClientError conflict(const std::string& m) { return ClientError(409, m); }

}  // namespace sagalab
