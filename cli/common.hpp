// What every sagactl subcommand shares: global options, how a service name
// becomes a URL (local stack or gateway), admin calls, output helpers.
#pragma once

#include <CLI/CLI.hpp>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "sagalab/http_client.hpp"
#include "sagalab/http_common.hpp"
#include "sagalab/programs.hpp"

namespace sagactl {

using sagalab::Json;

struct GlobalOptions {
  std::string gateway;    // --gateway / SAGACTL_GATEWAY
  // Each program's base URL, for a stack that is neither the local one nor
  // behind a gateway (containers, another host): --orquestador-url /
  // ORQUESTADOR_URL, --ms-catalogo-url / MS_CATALOGO_URL, ... ("" unset).
  std::map<std::string, std::string> urls;
  // True when the stack is reached by --gateway or by URLs, not the local one.
  bool remote() const;
  std::string admin_token;  // --admin-token / SAGA_ADMIN_TOKEN
  // The admin URL of a `sagactl proxy` (--proxy / SAGACTL_PROXY): inject-fault
  // and faults then act on the proxy's rules, named by upstream.
  std::string proxy;
  std::string stack_dir = ".sagalab";  // --stack-dir / SAGACTL_STACK_DIR
  bool json = false;
  std::int64_t timeout_ms = 10000;
};

// "ms-catalogo" -> "MS_CATALOGO_URL" (the orchestrator reads the same variables).
std::string url_variable(const std::string& program);
int default_port(const std::string& program);
std::string gateway_prefix(const std::string& program);  // "/ms_pagos", "/orquestador"

// The base URL of a program: gateway + prefix, or the local stack's port.
std::string base_url(const GlobalOptions& g, const std::string& program);

// Calls a program; throws CliError(2) when it cannot be reached.
sagalab::HttpAnswer call(const GlobalOptions& g, const std::string& program, const std::string& method,
                     const std::string& path, const Json* body = nullptr, bool admin = false,
                     const httplib::Headers& extra = {});
// Like call, and throws CliError(1) with the service's error text on a non-2xx answer.
Json call_ok(const GlobalOptions& g, const std::string& program, const std::string& method,
             const std::string& path, const Json* body = nullptr, bool admin = false);

// Like call_ok for an admin route, waiting out a program that a fault just crashed (the
// supervisor, or the user's orchestration, restarts it): retries while it is unreachable, up to wait_ms.
Json admin_call_waiting(const GlobalOptions& g, const std::string& program, const std::string& method,
                        const std::string& path, const Json* body = nullptr, std::int64_t wait_ms = 30000);

// Waits until no saga is running (every one completada or compensada; an orchestrator that does
// not answer, restarting, counts as running); false after timeout_ms.
bool wait_sagas_settled(const GlobalOptions& g, std::int64_t timeout_ms);

// The local stack's record, written by `sagactl up`'s supervisor.
std::string stack_file(const GlobalOptions& g);
std::optional<Json> read_stack(const GlobalOptions& g);

// Terminal output.
bool color_enabled();
std::string paint(const std::string& text, const char* ansi);  // no-op off a terminal
void print_json(const Json& j);
// Text for XML and HTML: the five entities escaped, control characters as spaces.
std::string xml_escape(const std::string& s);
std::string estado_colour(const std::string& estado);
// "60s", "5m", "1h", "500ms", "90" (seconds) -> seconds, for every flag that takes a time;
// throws CliError(2) naming the flag and the accepted forms.
double parse_duration(const std::string& text, const std::string& flag);
// Columns a UTF-8 text takes on a terminal (one per code point: "Inalámbrico" is 11, not 12 bytes).
std::size_t display_width(const std::string& s);
// s padded with spaces to `width` columns (as printf's %-Ns does for ASCII).
std::string pad_right(const std::string& s, std::size_t width);
// The actions of the faults that hit one attempt drawn on a saga's timeline:
// the same saga, the step's service, the same attempt number, and a
// compensation only on a compensation's row. `fired` holds /admin/faults/fired
// entries, each with "servicio" set to the program that fired it.
// The rules that make a service fail `rate` of its requests at random, spread
// evenly over 503s, latency, commit-then-error and commit-then-drop (sagactl
// bench --faults, and a scenario's load.fault_rate).
Json random_fault_rules(double rate);
std::vector<std::string> faults_on_attempt(const Json& saga, const Json& attempt, const Json& fired);

}  // namespace sagactl
