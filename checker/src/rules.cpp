// The rule catalogue (see rules.hpp). The README's lists of rules follow it;
// a unit test holds them together.
#include "sagalab/rules.hpp"

namespace sagalab {

namespace {
constexpr unsigned kLogAndCalls = kSagaLog | kCalls;
}

const std::vector<Rule>& rules() {
  static const std::vector<Rule> all = {
      // The invariants of DESIGN.md, on the final state.
      {"saga-settled", 1, {kRecords},
       "every saga ends completada or compensada once the faults have healed; one that does not is stuck (the "
       "simulator also ends a run at a saga no fault has touched for long enough to run every step and "
       "compensation once more, four times over)",
       {}},
      {"effects-done", 2, {kRecords, kExchanges | kProbes},
       "a completed saga left its effects done: its purchase confirmada, one payment aprobado of its amount, its "
       "reservation held (from a recording: every effect of a completed saga, read back, is in a done state)",
       {"state-done"}},
      {"effects-undone", 3, {kRecords, kExchanges | kProbes},
       "a compensated saga left each effect undone or absent: the purchase cancelada, the payment reembolsado, the "
       "reservation liberada (from a recording: every effect of a failed saga, read back once the stack is quiet, "
       "is in an undone state)",
       {"state-undone"}},
      {"stock-conserved", 4, {kRecords},
       "stock is conserved: per product, initial = available + held reservations, and never negative", {}},
      {"money-conserved", 5, {kRecords},
       "money is conserved: approved payments - refunds = the sum of the completed sagas' amounts", {}},
      {"one-effect", 6, {kRecords, kExchanges},
       "a saga has at most one effect per step, and no record exists that no saga accounts for (from a recording: "
       "the successful forward calls of a step's retries all name the same effect)",
       {}},
      {"records-match-request", 2, {kRecords | kClients},
       "each saga's records match the client's request and each other: the amount charged is the catalog's price "
       "times the quantity to the cent, a wrong amount sent by the client is never charged, the payment names the "
       "saga's purchase, the reservation the product asked for",
       {}},

      // The saga protocol, on a saga's history.
      {"log-before-call", 7, {kLogAndCalls},
       "every call is caused by an event already in the saga log: the first by the saga's start, each later one "
       "by an event logged after the previous call",
       {}},
      {"forward-after-compensation", 7, {kCalls, kAttempts, kExchanges},
       "once a saga has started compensating, it issues no forward call (from a recording also: no forward call "
       "of a step succeeds after that step's compensation succeeded)",
       {"no-forward-after-compensation"}},
      {"compensation-order", 7, {kCalls, kAttempts, kExchanges},
       "compensations run in the reverse order of the forward steps they undo (a retry repeats the same step)",
       {"reverse-order"}},
      {"uncompensated-step", 7, {kLogAndCalls, kAttempts, kExchanges},
       "a saga that fails has compensated every step up to the pivot that it called, a refused one too: a copy "
       "of its request (an earlier attempt still in flight, a network duplicate) may take effect after the "
       "refusal, and only the compensation's tombstone stops it (from a recording: an effect whose id is unknown "
       "needs a compensation of its step)",
       {"compensated"}},
      {"compensation-after-pivot", 7, {kCalls, kAttempts, kExchanges},
       "no step after the pivot is compensated, and once the pivot has succeeded (or the caller saw it succeed) "
       "nothing is",
       {"pivot"}},
      {"idempotency-key", 7, {kCalls},
       "every attempt of a step carries the same idempotency key, and so does every attempt of its compensation",
       {}},
      {"compensation-output", 7, {kLogAndCalls},
       "each compensation carries the id its forward call returned, also after a restart of the orchestrator", {}},
      {"repeated-step", 7, {kLogAndCalls},
       "a step (or a compensation) whose success is in the log is not called again: a recovered saga continues "
       "from where its log ends",
       {}},
      {"completed-with-compensation", 7, {kLogAndCalls, kAttempts},
       "a saga that ends completada has issued no compensation", {}},
      {"answer-reading", 7, {kSagaLog, kAttempts},
       "every logged result reads its answer as the protocol says: a 2xx is a success, any other 3xx or 4xx a "
       "refusal (nothing was done), a 5xx, 408, 429 or no answer an unknown outcome (it may have been done)",
       {}},
      {"refusal-not-retried", 7, {kLogAndCalls, kAttempts},
       "a step refused at or before the pivot is not called again: the saga compensates (only a step after the "
       "pivot is retried until it succeeds)",
       {}},
      {"attempt-limit", 7, {kCalls},
       "a step at or before the pivot is attempted at most as often as its retry policy allows (an attempt lost "
       "with an orchestrator crash counts)",
       {}},
      {"retry-backoff", 7, {kSagaLog},
       "a retry waits at least the fixed half of its backoff (the retry policy's base, doubled per attempt, at "
       "most its maximum) after the failure that scheduled it",
       {}},
      {"late-forward-refused", 7, {kClients},
       "another client's forward call, compensated by the record's id alone, then sent again, is refused with 409 "
       "and changes nothing: a compensation tombstones the forward call's key even when its caller did not send it",
       {}},

      // The orchestrator as its clients see it.
      {"idempotent-start", 7, {kClients},
       "a request repeated with the same idempotency key (after a crash, or at once, racing the first one's write "
       "to the log) is answered with the key's one saga; no second saga is started for it",
       {}},
      {"acknowledged-durable", 7, {kClients | kSagaLog},
       "a saga whose id the client was given is in the saga log (an orchestrator crash must not lose a saga the "
       "client was told of)",
       {}},
      {"log-sequence", 7, {kSagaLog},
       "the orchestrator appends each saga's events with consecutive sequence numbers, also after recovering it", {}},
      {"log-write", 7, {kSagaLog},
       "the saga log accepted every append (a refused one is fatal for the orchestrator, and ends the run)", {}},
      {"call-deadline", 7, {kCalls}, "every call goes out with the deadline the saga's configuration gives it", {}},
      {"waiter-settled", 7, {kClients},
       "a client waiting for its saga's end (as POST /compra does) is answered once the saga settles, or with its "
       "state when the wait runs out, never earlier",
       {}},
      {"waiter-truthful", 7, {kClients}, "a waiter told that its saga finished was told how it finished", {}},
      {"client-answered", 7, {kExchanges},
       "every client request that started a saga got an answer with an outcome the description names (success, "
       "failure or pending), unless the proxy itself cut it",
       {}},
      {"client-truthful", 7, {kExchanges},
       "the outcome the client was told agrees with what happened: no success with a compensation issued, no "
       "failure while a compensation failed",
       {}},
      {"state-unreadable", 7, {kExchanges | kProbes},
       "every effect a probe reads answers 2xx with a state the description names", {}},
  };
  return all;
}

const Rule* find_rule(std::string_view name) {
  for (const auto& r : rules()) {
    if (r.name == name) return &r;
    for (auto a : r.aliases)
      if (a == name) return &r;
  }
  return nullptr;
}

std::string canonical_rule(std::string_view name) {
  const Rule* r = find_rule(name);
  return r ? std::string(r->name) : std::string();
}

bool judged_by(const Rule& r, unsigned inputs) {
  for (unsigned need : r.from)
    if ((need & inputs) == need) return true;
  return false;
}

std::vector<const Rule*> judged_from(unsigned inputs) {
  std::vector<const Rule*> out;
  for (const auto& r : rules())
    if (judged_by(r, inputs)) out.push_back(&r);
  return out;
}

std::vector<const Rule*> not_judged_from(unsigned inputs) {
  std::vector<const Rule*> out;
  for (const auto& r : rules())
    if (!judged_by(r, inputs)) out.push_back(&r);
  return out;
}

std::string inputs_text(unsigned inputs) {
  static const std::pair<unsigned, const char*> names[] = {
      {kSagaLog, "the saga log"},
      {kCalls, "the calls as sent"},
      {kAttempts, "the attempts /sagas/{id} shows"},
      {kRecords, "the services' records"},
      {kClients, "the clients' requests and answers"},
      {kExchanges, "a recording"},
      {kProbes, "probes (--probe)"},
  };
  std::vector<const char*> parts;
  for (const auto& [bit, text] : names)
    if (inputs & bit) parts.push_back(text);
  std::string out;
  for (std::size_t i = 0; i < parts.size(); ++i)
    out += (i == 0 ? "" : i + 1 == parts.size() ? " and " : ", ") + std::string(parts[i]);
  return out;
}

std::string needs_text(const Rule& r) {
  std::string out;
  for (std::size_t i = 0; i < r.from.size(); ++i) out += (i == 0 ? "" : ", or ") + inputs_text(r.from[i]);
  return out;
}

}  // namespace sagalab
