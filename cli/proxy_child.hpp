// A `sagactl proxy` child (this same program) started from a proxy config,
// waited for until healthy, and stopped by pid: for `sagactl run`'s proxied
// scenarios and `sagactl explore`.
#pragma once

#include <sys/types.h>

#include <string>

namespace sagactl {

class ProxyChild {
 public:
  // Records to `record`; its port file and log are base + ".port" / ".log". Throws CliError(1).
  ProxyChild(const std::string& config, const std::string& record, const std::string& base);
  ~ProxyChild();
  ProxyChild(const ProxyChild&) = delete;
  ProxyChild& operator=(const ProxyChild&) = delete;
  const std::string& url() const { return url_; }

 private:
  pid_t pid_ = -1;
  std::string url_;
};

}  // namespace sagactl
