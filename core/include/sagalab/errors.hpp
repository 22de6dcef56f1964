// Typed errors of the core. A ClientError is bad input: it is mapped to a 4xx
// answer once, at the edge, and the transaction that raised it is rolled back.
#pragma once

#include <stdexcept>
#include <string>

namespace sagalab {

class ClientError : public std::runtime_error {
 public:
  ClientError(int status, const std::string& message) : std::runtime_error(message), status_(status) {}
  int status() const { return status_; }

 private:
  int status_;
};

inline ClientError bad_request(const std::string& m) { return ClientError(400, m); }
inline ClientError not_found(const std::string& m) { return ClientError(404, m); }
inline ClientError conflict(const std::string& m) { return ClientError(409, m); }

}  // namespace sagalab
