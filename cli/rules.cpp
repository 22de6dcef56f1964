// `sagactl rules`: the checker's one rule vocabulary, and which command judges each rule.
#include <iostream>

#include "commands.hpp"
#include "common.hpp"
#include "sagalab/checker_json.hpp"

namespace sagactl {

namespace {

struct Judge {
  const char* command;
  unsigned inputs;
};
constexpr Judge kJudges[] = {
    {"simulate", sagalab::kSimulatorInputs},
    {"verify", sagalab::kVerifyInputs},
    {"check", sagalab::kRecordingInputs},
    {"check --probe", sagalab::kRecordingInputs | sagalab::kProbes},
};

std::vector<std::string> judged_by(const sagalab::Rule& r) {
  std::vector<std::string> out;
  for (const auto& j : kJudges)
    if (sagalab::judged_by(r, j.inputs)) out.push_back(j.command);
  return out;
}

}  // namespace

void print_rules(unsigned inputs) {
  for (const auto* r : sagalab::judged_from(inputs)) {
    std::cout << r->name;
    if (r->invariant >= 1 && r->invariant <= 6) std::cout << " (invariant " << r->invariant << ")";
    std::cout << ": " << r->text;
    if (!r->aliases.empty()) {
      std::cout << " [also:";
      for (auto a : r->aliases) std::cout << " " << a;
      std::cout << "]";
    }
    std::cout << "\n";
  }
  auto rest = sagalab::not_judged_from(inputs);
  if (!rest.empty())
    std::cout << "(" << rest.size() << " more rules need other inputs: sagactl rules lists every rule and where it is judged)\n";
}

void setup_rules(CLI::App& app, GlobalOptions& g) {
  auto* sub = app.add_subcommand("rules", "List every rule the checkers judge, and which command judges it");
  sub->footer(
      "One vocabulary for simulate, verify, the scenario runner (run) and check: each rule names the\n"
      "invariant of DESIGN.md it belongs to (7: the saga protocol), the inputs it is judged from, and its\n"
      "older names, accepted wherever a rule is named (check --rules).");
  sub->callback([&g] {
    if (g.json) {
      Json list = Json::array();
      for (const auto& r : sagalab::rules()) {
        Json aliases = Json::array();
        for (auto a : r.aliases) aliases.push_back(std::string(a));
        list.push_back({{"rule", std::string(r.name)},
                        {"invariant", r.invariant},
                        {"text", std::string(r.text)},
                        {"needs", sagalab::needs_text(r)},
                        {"judged_by", judged_by(r)},
                        {"aliases", aliases}});
      }
      print_json({{"rules", list}});
      return;
    }
    for (const auto& r : sagalab::rules()) {
      std::cout << r.name;
      if (r.invariant >= 1 && r.invariant <= 6) std::cout << " (invariant " << r.invariant << ")";
      std::cout << ": " << r.text << "\n    judged by: ";
      auto by = judged_by(r);
      for (std::size_t i = 0; i < by.size(); ++i) std::cout << (i ? ", " : "") << by[i];
      std::cout << " (from " << sagalab::needs_text(r) << ")";
      if (!r.aliases.empty()) {
        std::cout << "; also named";
        for (auto a : r.aliases) std::cout << " " << a;
      }
      std::cout << "\n";
    }
  });
}

}  // namespace sagactl
