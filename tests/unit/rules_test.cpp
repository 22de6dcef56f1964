// The checker's one rule vocabulary (checker/include/sagalab/rules.hpp).
#include <catch2/catch.hpp>

#include <fstream>
#include <set>
#include <sstream>
#include <string>

#include "sagalab/rules.hpp"

using namespace sagalab;

TEST_CASE("every rule has one name that no other rule or alias takes", "[rules]") {
  std::set<std::string> seen;
  for (const auto& r : rules()) {
    CHECK(seen.insert(std::string(r.name)).second);
    for (auto a : r.aliases) CHECK(seen.insert(std::string(a)).second);
    CHECK(!r.text.empty());
    CHECK(!r.from.empty());
    CHECK((r.invariant >= 1 && r.invariant <= 7));
  }
  CHECK(seen.size() > rules().size());  // the older names are there too
}

TEST_CASE("the older names of check and of the invariants lead to one rule", "[rules]") {
  CHECK(canonical_rule("compensated") == "uncompensated-step");
  CHECK(canonical_rule("pivot") == "compensation-after-pivot");
  CHECK(canonical_rule("reverse-order") == "compensation-order");
  CHECK(canonical_rule("state-done") == "effects-done");
  CHECK(find_rule("effects-undone")->invariant == 3);
  CHECK(canonical_rule("no-such-rule").empty());
}

TEST_CASE("each command judges what its inputs decide and says what they cannot", "[rules]") {
  auto names = [](const std::vector<const Rule*>& v) {
    std::set<std::string> out;
    for (const auto* r : v) out.insert(std::string(r->name));
    return out;
  };
  auto sim = names(judged_from(kSimulatorInputs));
  auto verify = names(judged_from(kVerifyInputs));
  auto check = names(judged_from(kRecordingInputs | kProbes));
  // The simulator sees the log and every call: the rules on keys and timing are its own.
  CHECK(sim.count("idempotency-key"));
  CHECK(sim.count("retry-backoff"));
  CHECK(!verify.count("idempotency-key"));
  CHECK(!check.count("retry-backoff"));
  // Rules shared by all three: one name for the same protocol property.
  for (const char* shared : {"compensation-order", "forward-after-compensation", "uncompensated-step",
                             "compensation-after-pivot"}) {
    CHECK(sim.count(shared));
    CHECK(verify.count(shared));
    CHECK(check.count(shared));
  }
  // A recording without probes cannot read effects back.
  CHECK(!judged_by(*find_rule("effects-undone"), kRecordingInputs));
  CHECK(judged_by(*find_rule("effects-undone"), kRecordingInputs | kProbes));
  // Every rule is judged somewhere, and what one input cannot judge is listed with what it needs.
  for (const auto& r : rules()) CHECK((sim.count(std::string(r.name)) + verify.count(std::string(r.name)) + check.count(std::string(r.name))) > 0);
  auto rest = not_judged_from(kVerifyInputs);
  CHECK(rest.size() + verify.size() == rules().size());
  CHECK(needs_text(*find_rule("log-before-call")) == "the saga log and the calls as sent");
}

TEST_CASE("the README lists every rule by its name", "[rules]") {
  std::ifstream in(SAGALAB_SOURCE_DIR "/README.md");
  REQUIRE(in);
  std::stringstream ss;
  ss << in.rdbuf();
  const auto readme = ss.str();
  for (const auto& r : rules()) {
    INFO(r.name);
    CHECK(readme.find("`" + std::string(r.name) + "`") != std::string::npos);
  }
}
