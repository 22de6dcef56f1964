// The one rule vocabulary of the checker: every rule any analyser judges (the
// invariants, the history rules, the simulated clients' rules, `sagactl
// check`'s rules), with its text, the DESIGN.md invariant it belongs to, the
// inputs it can be judged from and the older names it is also known by.
//
// The analysers, one per input shape, share it (as Elle's analysers share one
// vocabulary of anomalies): history.hpp on a saga's log and calls (the
// simulator) or on its attempts (/sagas/{id}: `verify`, scenarios);
// invariants.hpp on the services' records; recording_check.hpp on a proxy
// recording. A rule that an input cannot decide is listed as not judged there
// (judged_from), never passed in silence.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace sagalab {

// What a rule reads. An analyser's input is a set of these.
enum Input : unsigned {
  kSagaLog = 1u << 0,    // a saga's log events in order, with their times (the simulator)
  kCalls = 1u << 1,      // the calls as they were sent: keys, ids, when (the simulated network)
  kAttempts = 1u << 2,   // each step's attempts and how they ended, as /sagas/{id} shows them
  kRecords = 1u << 3,    // the sagas' final states, the services' records and stock (/admin/state)
  kClients = 1u << 4,    // the clients' requests and what they were told (the simulated clients)
  kExchanges = 1u << 5,  // a recording of HTTP exchanges and the saga's description (`sagactl check`)
  kProbes = 1u << 6,     // effects read back from the services once the stack is quiet (`check --probe`)
};

// The inputs of each checking command.
inline constexpr unsigned kSimulatorInputs = kSagaLog | kCalls | kRecords | kClients;
inline constexpr unsigned kVerifyInputs = kAttempts | kRecords;
inline constexpr unsigned kRecordingInputs = kExchanges;

struct Rule {
  std::string_view name;
  int invariant = 7;  // 1..6 as DESIGN.md numbers them; 7: a rule of the saga protocol
  // The inputs it can be judged from: any one of these sets, whole.
  std::vector<unsigned> from;
  std::string_view text;
  std::vector<std::string_view> aliases;  // older names, accepted wherever a rule is named
};

const std::vector<Rule>& rules();
// By name or alias; nullptr when unknown.
const Rule* find_rule(std::string_view name);
// A rule's name, also from an alias; "" when unknown.
std::string canonical_rule(std::string_view name);
// Whether the inputs decide the rule.
bool judged_by(const Rule& r, unsigned inputs);
// The rules these inputs decide, and those they do not, in catalogue order.
std::vector<const Rule*> judged_from(unsigned inputs);
std::vector<const Rule*> not_judged_from(unsigned inputs);
// "the saga log and the calls as sent", for messages.
std::string inputs_text(unsigned inputs);
// What a rule needs, for messages: "the saga log and the calls as sent, or the attempts /sagas/{id} shows".
std::string needs_text(const Rule& r);

}  // namespace sagalab
