// What sagactl's parts without I/O share: exit codes, the user-facing error,
// the five programs' names. (The scenario parser, and its fuzz target, need no more.)
#pragma once

#include <stdexcept>
#include <string>
#include <vector>

namespace sagactl {

// Exit codes scripts can rely on.
inline constexpr int kExitOk = 0;
inline constexpr int kExitFailed = 1;       // the check or the saga failed
inline constexpr int kExitUnreachable = 2;  // the stack could not be reached / bad usage

// Raised for a user-facing error: one line on stderr and the given exit code.
struct CliError : std::runtime_error {
  CliError(int code, const std::string& msg) : std::runtime_error(msg), exit_code(code) {}
  int exit_code;
};

// The five programs, by canonical name.
const std::vector<std::string>& programs();  // orquestador, ms-catalogo, ms-compras, ms-pagos, ms-inventario
// Accepts "pagos", "ms-pagos", "ms_pagos", "orchestrator", ...; throws CliError.
std::string canonical_program(const std::string& name);

}  // namespace sagactl
