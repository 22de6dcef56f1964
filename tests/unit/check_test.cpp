// sagactl check's rules on hand-made recordings: each rule reports what it
// names, and a correct history passes.
#include <catch2/catch.hpp>

#include "sagalab/recording_check.hpp"

using namespace sagalab;
using namespace sagalab::check;

namespace {

Description desc() {
  return parse_description(Json::parse(R"({
    "name": "t",
    "saga_id": ["header.X-S", "response.saga"],
    "client": {"upstream": "front", "request": "POST /go", "outcome": "response.state",
               "success": "done", "failure": "undone", "pending": "later"},
    "steps": [
      {"name": "a", "upstream": "sa", "forward": "POST /a", "compensation": "POST /a/{id}/undo",
       "id": {"forward": "response.id", "compensation": "path.id"}},
      {"name": "b", "upstream": "sb", "forward": "POST /b", "compensation": "POST /b/undo",
       "id": {"forward": "header.Key", "compensation": "request.key"}, "effect": "response.id"},
      {"name": "p", "upstream": "sp", "forward": "POST /p", "compensation": "POST /p/undo",
       "id": {"forward": "header.Key", "compensation": "request.key"}, "pivot": true},
      {"name": "c", "upstream": "sc", "forward": "POST /c", "compensation": "POST /c/undo"}
    ]})"));
}

struct Rec {
  std::vector<Recorded> v;
  std::int64_t t = 0;
  // One exchange of saga S; status is what the caller got, up what the upstream answered.
  Rec& add(const std::string& upstream, const std::string& path, Json response, std::optional<int> status = 200,
           std::optional<int> up = std::nullopt, Json request = Json::object(), std::string key = "",
           std::string fault = "") {
    Recorded r;
    r.seq = static_cast<std::int64_t>(v.size()) + 1;
    r.t_us = t += 10;
    r.done_us = t += 5;
    r.upstream = upstream;
    r.method = "POST";
    r.path = path;
    r.headers = {{"x-s", "S"}};
    if (!key.empty()) r.headers["key"] = key;
    r.request = std::move(request);
    r.status = status;
    r.response = response;
    r.upstream_status = up ? up : status;
    r.upstream_response = response;
    r.forwarded = true;
    r.fault = std::move(fault);
    v.push_back(r);
    return *this;
  }
  Rec& client(const std::string& state, int status = 200) {
    return add("front", "/go", {{"saga", "S"}, {"state", state}}, status);
  }
};

std::vector<std::string> rules_of(const Report& r) {
  std::vector<std::string> out;
  for (const auto& v : r.violations) out.push_back(v.rule);
  return out;
}

// A failed saga done right: a and b happened, p refused, b then a undone.
Rec failed_right() {
  Rec r;
  r.add("sa", "/a", {{"id", "A1"}})
      .add("sb", "/b", {{"id", "B1"}}, 200, std::nullopt, Json::object(), "kb")
      .add("sp", "/p", {{"error", "no"}}, 409, std::nullopt, Json::object(), "kp")
      .add("sb", "/b/undo", Json::object(), 200, std::nullopt, {{"key", "kb"}})
      .add("sa", "/a/A1/undo", Json::object())
      .client("undone", 409);
  return r;
}

}  // namespace

TEST_CASE("check: a description is read strictly", "[check]") {
  CHECK_NOTHROW(desc());
  auto bad = [](const char* text) { return Json::parse(text); };
  CHECK_THROWS_WITH(parse_description(bad(R"({"saga_id":"header.X","steps":[{"name":"a","upstream":"u","forward":"POST /a"}]})")),
                    Catch::Contains("pivot"));
  CHECK_THROWS_WITH(parse_description(bad(R"({"saga_id":"body.x","steps":[]})")), Catch::Contains("header."));
  CHECK_THROWS_WITH(parse_description(bad(R"({"saga_id":"header.X","steps":[{"name":"a","upstream":"u",
      "forward":"POST /a","compensation":"POST /a/undo","id":{"forward":"response.id","compensation":"path.id"},
      "pivot":true}]})")),
                    Catch::Contains("{id}"));
  CHECK_THROWS_WITH(parse_description(bad(R"({"saga_id":"header.X","colour":1,"steps":[]})")),
                    Catch::Contains("colour"));
  CHECK_THROWS_WITH(parse_description(bad(R"({"saga_id":"header.X","steps":[{"name":"a","upstream":"u",
      "forward":"/a","pivot":true}]})")),
                    Catch::Contains("method and a path"));
}

TEST_CASE("check: a correct failed saga and a correct completed saga pass", "[check]") {
  auto r = check_recording(desc(), failed_right().v);
  CHECK(r.violations.empty());
  CHECK(r.failed == 1);
  Rec ok;
  ok.add("sa", "/a", {{"id", "A1"}}).add("sb", "/b", {{"id", "B1"}}, 200, std::nullopt, {}, "kb");
  ok.add("sp", "/p", {{"id", "P"}}, 200, std::nullopt, {}, "kp").add("sc", "/c", Json::object()).client("done");
  auto r2 = check_recording(desc(), ok.v);
  CHECK(r2.violations.empty());
  CHECK(r2.completed == 1);
}

TEST_CASE("check compensated: an effect whose answer was lost must still be undone", "[check]") {
  Rec r;
  // b committed, but the caller got a 500 (commit-then-error) and never compensated b.
  r.add("sa", "/a", {{"id", "A1"}})
      .add("sb", "/b", {{"id", "B1"}}, 500, 200, Json::object(), "kb", "commit-then-error")
      .add("sa", "/a/A1/undo", Json::object())
      .client("undone", 409);
  auto rep = check_recording(desc(), r.v);
  REQUIRE(rules_of(rep) == std::vector<std::string>{"uncompensated-step"});
  CHECK(rep.violations[0].message.find("step b") != std::string::npos);
  CHECK(rep.violations[0].exchanges == std::vector<std::int64_t>{2});
  REQUIRE(rep.violations[0].exchange_faults.size() == 1);
  CHECK(rep.violations[0].exchange_faults[0].action == "commit-then-error");
  CHECK(rep.violations[0].exchange_faults[0].exchanges == std::vector<std::int64_t>{2});
  // A compensation that names another effect does not count.
  Rec wrong = failed_right();
  wrong.v[4].path = "/a/A9/undo";
  CHECK(rules_of(check_recording(desc(), wrong.v)) == std::vector<std::string>{"uncompensated-step"});
}

TEST_CASE("check compensated: a forward call the upstream never answered may have taken effect and must be undone",
          "[check]") {
  Rec r;
  // b was sent on, and the upstream never answered (the caller got a 504): b may have committed.
  r.add("sa", "/a", {{"id", "A1"}}).add("sb", "/b", nullptr, 504, std::nullopt, Json::object(), "kb");
  r.v.back().upstream_status.reset();
  r.v.back().upstream_response = nullptr;
  r.add("sa", "/a/A1/undo", Json::object()).client("undone", 409);
  auto rep = check_recording(desc(), r.v);
  REQUIRE(rules_of(rep) == std::vector<std::string>{"uncompensated-step"});
  CHECK(rep.violations[0].message.find("step b") != std::string::npos);
  CHECK(rep.violations[0].message.find("never answered") != std::string::npos);
  // Its compensation, by the forward call's key, makes it right.
  Rec fixed;
  fixed.add("sa", "/a", {{"id", "A1"}}).add("sb", "/b", nullptr, 504, std::nullopt, Json::object(), "kb");
  fixed.v.back().upstream_status.reset();
  fixed.v.back().upstream_response = nullptr;
  fixed.add("sb", "/b/undo", Json::object(), 200, std::nullopt, {{"key", "kb"}});
  fixed.add("sa", "/a/A1/undo", Json::object()).client("undone", 409);
  auto ok = check_recording(desc(), fixed.v);
  CHECK(ok.violations.empty());
  CHECK(ok.failed == 1);
}

TEST_CASE("check compensation-order: a later step is undone before an earlier one", "[check]") {
  Rec r;
  r.add("sa", "/a", {{"id", "A1"}})
      .add("sb", "/b", {{"id", "B1"}}, 200, std::nullopt, Json::object(), "kb")
      .add("sp", "/p", {{"error", "no"}}, 409)
      .add("sa", "/a/A1/undo", Json::object())
      .add("sb", "/b/undo", Json::object(), 200, std::nullopt, {{"key", "kb"}})
      .client("undone", 409);
  CHECK(rules_of(check_recording(desc(), r.v)) == std::vector<std::string>{"compensation-order"});
  // The older names stay accepted where rules are named.
  CHECK(canonical_rule("reverse-order") == "compensation-order");
  CHECK(canonical_rule("no-forward-after-compensation") == "forward-after-compensation");
  CHECK(canonical_rule("client-truthful") == "client-truthful");
  CHECK(canonical_rule("compensated") == "uncompensated-step");
  CHECK(canonical_rule("pivot") == "compensation-after-pivot");
  CHECK(canonical_rule("state-undone") == "effects-undone");
  CHECK(canonical_rule("colour").empty());
}

TEST_CASE("check forward-after-compensation: a late forward call succeeds after its undo", "[check]") {
  Rec r = failed_right();
  // A first attempt of b, held by the proxy (received before the compensation), is served after b's undo.
  r.add("sb", "/b", {{"id", "B1"}}, std::nullopt, 200, Json::object(), "kb", "hang");
  r.v.back().t_us = r.v[1].t_us + 1;
  CHECK(rules_of(check_recording(desc(), r.v)) == std::vector<std::string>{"forward-after-compensation"});
  // Refused (a tombstone): fine.
  Rec ok = failed_right();
  ok.add("sb", "/b", {{"error", "uncompensated-step"}}, std::nullopt, 409, Json::object(), "kb", "hang");
  ok.v.back().t_us = ok.v[1].t_us + 1;
  CHECK(check_recording(desc(), ok.v).violations.empty());
}

TEST_CASE("check forward-after-compensation: no step's forward call starts once the saga compensates", "[check]") {
  // a happened, p refused, a undone; then the orchestrator still calls c: refused or not, it is a violation.
  Rec r;
  r.add("sa", "/a", {{"id", "A1"}})
      .add("sp", "/p", {{"error", "no"}}, 409, std::nullopt, Json::object(), "kp")
      .add("sa", "/a/A1/undo", Json::object())
      .add("sc", "/c", {{"error", "no"}}, 409)
      .client("undone", 409);
  auto rep = check_recording(desc(), r.v);
  REQUIRE(rules_of(rep) == std::vector<std::string>{"forward-after-compensation"});
  CHECK(rep.violations[0].exchanges == std::vector<std::int64_t>{3, 4});
}

TEST_CASE("check one-effect: a retry that creates a second effect", "[check]") {
  Rec r;
  r.add("sa", "/a", {{"id", "A1"}})
      .add("sb", "/b", {{"id", "B1"}}, 500, 200, Json::object(), "kb", "commit-then-error")
      .add("sb", "/b", {{"id", "B2"}}, 200, std::nullopt, Json::object(), "kb")
      .add("sp", "/p", {{"id", "P"}}, 200, std::nullopt, Json::object(), "kp")
      .add("sc", "/c", Json::object())
      .client("done");
  CHECK(rules_of(check_recording(desc(), r.v)) == std::vector<std::string>{"one-effect"});
}

TEST_CASE("check pivot: nothing after the pivot, nothing once it succeeded, nothing in a completed saga", "[check]") {
  Rec after;
  after.add("sa", "/a", {{"id", "A1"}}).add("sp", "/p", {{"id", "P"}}, 200, std::nullopt, {}, "kp");
  after.add("sc", "/c", Json::object()).add("sc", "/c/undo", Json::object()).client("done");
  auto after_report = check_recording(desc(), after.v);
  auto rules = rules_of(after_report);
  CHECK(std::count(rules.begin(), rules.end(), "compensation-after-pivot") >= 1);
  // c, the step right after the pivot, is named as such (not only as undone after the caller saw p).
  CHECK(std::any_of(after_report.violations.begin(), after_report.violations.end(), [](const sagalab::Violation& v) {
    return v.rule == "compensation-after-pivot" && v.message.find("step c comes after the pivot") != std::string::npos;
  }));
  Rec undone;
  undone.add("sa", "/a", {{"id", "A1"}}).add("sp", "/p", {{"id", "P"}}, 200, std::nullopt, {}, "kp");
  undone.add("sa", "/a/A1/undo", Json::object()).client("undone", 409);
  rules = rules_of(check_recording(desc(), undone.v));
  // a undone after the caller saw p succeed (and p itself, an effect of a saga that answered failure, not undone).
  CHECK(rules == std::vector<std::string>{"compensation-after-pivot", "uncompensated-step"});
  // A completed saga that issued a compensation lied to its client.
  Rec lied;
  lied.add("sa", "/a", {{"id", "A1"}}).add("sp", "/p", {{"id", "P"}}, 200, std::nullopt, {}, "kp");
  lied.add("sc", "/c", Json::object()).add("sa", "/a/A1/undo", Json::object()).client("done");
  CHECK(rules_of(check_recording(desc(), lied.v)) == std::vector<std::string>{"client-truthful", "compensation-after-pivot"});
}

TEST_CASE("check client-answered: no answer or an unnamed outcome, unless the proxy cut it or it is pending", "[check]") {
  Rec r = failed_right();
  r.v.back().response = {{"saga", "S"}, {"state", "boom"}};
  r.v.back().status = 500;
  CHECK(rules_of(check_recording(desc(), r.v)) == std::vector<std::string>{"client-answered"});
  Rec pending = failed_right();
  pending.v.back().response = {{"saga", "S"}, {"state", "later"}};
  pending.v.back().status = 202;
  auto rep = check_recording(desc(), pending.v);
  CHECK(rep.violations.empty());
  CHECK(rep.failed == 1);  // read from its compensations
  Rec cut = failed_right();
  cut.v.back().status.reset();
  cut.v.back().fault = "commit-then-drop";
  CHECK(check_recording(desc(), cut.v).violations.empty());
}

TEST_CASE("check: a recorded exchange is read strictly", "[check]") {
  CHECK_THROWS_WITH(recorded_from_json(Json::parse(R"({"seq":1})")), Catch::Contains("t_us"));
  auto r = recorded_from_json(Json::parse(R"({"seq":3,"t_us":1,"done_us":2,"upstream":"u","method":"POST",
      "path":"/x","headers":{"X-Saga-Id":"s"},"status":500,"response":{"e":1},"upstream_status":201,
      "upstream_response":{"id":"I"},"forwarded":true,"fault":{"action":"commit-then-error"}})"));
  CHECK(r.headers["x-saga-id"] == "s");
  CHECK(*r.status == 500);
  CHECK(*r.upstream_status == 201);
  CHECK(r.upstream_response["id"] == "I");
  CHECK(r.fault == "commit-then-error");
}

// ---- A stack that sends no saga id: links join its exchanges.

namespace {

// Client POST /buy {user, item}; step a carries user (flow) and item, p (the pivot) carries user,
// c carries the id a returned. Compensations name the id their forward call returned.
Description linked() {
  return parse_description(Json::parse(R"({
    "name": "linked",
    "client": {"upstream": "front", "request": "POST /buy", "outcome": "response.state",
               "success": true, "failure": ["undone", 0]},
    "flow": ["user"],
    "steps": [
      {"name": "look", "upstream": "cat", "forward": "GET /items/{item}", "compensation": "none",
       "carries": {"item": "path.item"}},
      {"name": "a", "upstream": "sa", "forward": "POST /a", "compensation": "POST /a/undo",
       "id": {"forward": "response.id", "compensation": "request.id"},
       "state": {"read": "GET /a/{id}", "field": "st", "done": "on", "undone": "off"}},
      {"name": "p", "upstream": "sp", "forward": "POST /p", "compensation": "POST /p/undo",
       "id": {"forward": "response.id", "compensation": "request.id"}, "pivot": true},
      {"name": "c", "upstream": "sc", "forward": "POST /c", "carries": {"a.response.id": "request.a"}}
    ]})"));
}

struct Lx {
  std::vector<Recorded> v;
  std::int64_t t = 0;
  // An exchange received at `at` and answered at `done` (microseconds); up: what the upstream answered.
  Lx& add(std::int64_t at, std::int64_t done, const std::string& upstream, const std::string& method,
          const std::string& path, Json request, std::optional<int> status, Json response,
          std::optional<int> up = std::nullopt) {
    Recorded r;
    r.seq = static_cast<std::int64_t>(v.size()) + 1;
    r.t_us = at;
    r.done_us = done;
    r.upstream = upstream;
    r.method = method;
    r.path = path;
    r.request = std::move(request);
    r.status = status;
    r.response = response;
    r.upstream_status = up ? up : status;
    r.upstream_response = response;
    r.forwarded = true;
    v.push_back(r);
    return *this;
  }
  // One whole purchase by `user` from `at`: completed, or refused at p and undone.
  Lx& purchase(std::int64_t at, const std::string& user, const std::string& item, const std::string& a_id,
               bool fail, const std::string& undo_id = "") {
    add(at + 1, at + 2, "cat", "GET", "/items/" + item, nullptr, 200, {{"item", item}});
    add(at + 3, at + 4, "sa", "POST", "/a", {{"user", user}, {"item", item}}, 201, {{"id", a_id}});
    if (fail) {
      add(at + 5, at + 6, "sp", "POST", "/p", {{"user", user}}, 402, {{"error", "no"}});
      add(at + 7, at + 8, "sa", "POST", "/a/undo", {{"id", undo_id.empty() ? a_id : undo_id}}, 200, Json::object());
    } else {
      add(at + 5, at + 6, "sp", "POST", "/p", {{"user", user}}, 201, {{"id", "P-" + a_id}});
      add(at + 7, at + 8, "sc", "POST", "/c", {{"a", a_id}}, 200, Json::object());
    }
    return *this;
  }
  Lx& client(std::int64_t at, std::int64_t done, const std::string& user, const std::string& item, Json state,
             int status) {
    return add(at, done, "front", "POST", "/buy", {{"user", user}, {"item", item}}, status, {{"state", state}});
  }
};

}  // namespace

TEST_CASE("check links: sagas without ids are joined by value flow and id chains, nothing dropped", "[check]") {
  // Two purchases in flight at once, told apart by the user: one completes, one is undone.
  Lx x;
  x.client(0, 100, "ana", "i1", true, 200).client(10, 110, "bob", "i2", "undone", 409);
  x.purchase(20, "ana", "i1", "A1", false).purchase(30, "bob", "i2", "A2", true);
  std::sort(x.v.begin(), x.v.end(), [](const Recorded& a, const Recorded& b) { return a.t_us < b.t_us; });
  auto rep = check_recording(linked(), x.v);
  CHECK(rep.violations.empty());
  CHECK(rep.uncorrelated.empty());
  CHECK(rep.sagas == 2);
  CHECK(rep.completed == 1);  // success: true in YAML compares as the JSON text "true"
  CHECK(rep.failed == 1);
  CHECK(rep.matched == x.v.size());
  // The undone saga's effect and the completed saga's effect are asked for, by the id a returned.
  REQUIRE(rep.probes.size() == 2);
  std::map<std::string, bool> expect;
  for (const auto& p : rep.probes) expect[p.path] = p.expect_undone;
  CHECK(expect == std::map<std::string, bool>{{"/a/A1", false}, {"/a/A2", true}});
}

TEST_CASE("check links: a saga that compensates another saga's record is found without any saga id", "[check]") {
  // bob's saga fails and undoes ana's A1 (state shared between requests): ana completed with her
  // record undone, bob's A2 is never undone.
  Lx x;
  x.client(0, 100, "ana", "i1", true, 200).client(10, 110, "bob", "i2", "undone", 409);
  x.purchase(20, "ana", "i1", "A1", false).purchase(30, "bob", "i2", "A2", true, "A1");
  std::sort(x.v.begin(), x.v.end(), [](const Recorded& a, const Recorded& b) { return a.t_us < b.t_us; });
  auto rep = check_recording(linked(), x.v);
  CHECK(rep.uncorrelated.empty());
  auto rules = rules_of(rep);
  std::sort(rules.begin(), rules.end());
  // (and ana's record was undone after her pivot succeeded)
  CHECK(rules == std::vector<std::string>{"client-truthful", "compensation-after-pivot", "uncompensated-step"});
  for (const auto& v : rep.violations) {
    if (v.rule == "uncompensated-step") CHECK(v.message.find("A2") != std::string::npos);
    if (v.rule == "client-truthful") CHECK(v.message.find("'true'") != std::string::npos);
  }
}

TEST_CASE("check links: an ambiguous or missing join is reported as uncorrelated, never dropped", "[check]") {
  // Two clients in flight with the same values: their calls cannot be told apart.
  Lx x;
  x.client(0, 100, "ana", "i1", true, 200).client(1, 101, "ana", "i1", true, 200);
  x.purchase(20, "ana", "i1", "A1", false).purchase(30, "ana", "i1", "A2", false);
  std::sort(x.v.begin(), x.v.end(), [](const Recorded& a, const Recorded& b) { return a.t_us < b.t_us; });
  auto rep = check_recording(linked(), x.v);
  REQUIRE(!rep.uncorrelated.empty());
  CHECK(rep.uncorrelated[0].reason.find("ambiguous") != std::string::npos);
  // A compensation naming an id no forward call returned.
  Lx y;
  y.client(0, 100, "cy", "i3", "undone", 409).purchase(10, "cy", "i3", "A3", true, "A9");
  auto rep2 = check_recording(linked(), y.v);
  REQUIRE(rep2.uncorrelated.size() == 1);
  CHECK(rep2.uncorrelated[0].seq == 5);
  CHECK(rep2.uncorrelated[0].reason.find("A9") != std::string::npos);
  // A recording the description matches nowhere.
  Lx z;
  z.add(0, 1, "elsewhere", "GET", "/health", nullptr, 200, Json::object());
  CHECK(check_recording(linked(), z.v).matched == 0);
}

TEST_CASE("check client-truthful: the client is told 'undone' while a compensation failed", "[check]") {
  Lx x;
  x.client(0, 100, "ana", "i1", "undone", 409);
  x.add(1, 2, "cat", "GET", "/items/i1", nullptr, 200, {{"item", "i1"}});
  x.add(3, 4, "sa", "POST", "/a", {{"user", "ana"}}, 201, {{"id", "A1"}});
  x.add(5, 6, "sp", "POST", "/p", {{"user", "ana"}}, 402, {{"error", "no"}});
  x.add(7, 8, "sa", "POST", "/a/undo", {{"id", "A1"}}, 500, {{"error", "boom"}});
  auto rules = rules_of(check_recording(linked(), x.v));
  CHECK(rules == std::vector<std::string>{"client-truthful", "uncompensated-step"});
}

TEST_CASE("check probes: an effect read back in the wrong state, or not at all, is a violation", "[check]") {
  Lx x;
  x.client(0, 100, "ana", "i1", true, 200).client(10, 110, "bob", "i2", "undone", 409);
  x.purchase(20, "ana", "i1", "A1", false).purchase(30, "bob", "i2", "A2", true);
  std::sort(x.v.begin(), x.v.end(), [](const Recorded& a, const Recorded& b) { return a.t_us < b.t_us; });
  auto d = linked();
  auto answer = [](std::optional<int> status, Json body) {
    ProbeResult r;
    r.status = status;
    r.body = std::move(body);
    return r;
  };
  auto judged = [&](ProbeResult for_a1, ProbeResult for_a2) {
    auto rep = check_recording(d, x.v);
    std::vector<ProbeResult> res;
    for (const auto& p : rep.probes) res.push_back(p.path == "/a/A1" ? for_a1 : for_a2);
    judge_probes(d, rep, res);
    CHECK(rep.probed == 2);
    return rules_of(rep);
  };
  CHECK(judged(answer(200, {{"st", "on"}}), answer(200, {{"st", "off"}})).empty());
  CHECK(judged(answer(200, {{"st", "on"}}), answer(200, {{"st", "on"}})) == std::vector<std::string>{"effects-undone"});
  CHECK(judged(answer(200, {{"st", "off"}}), answer(200, {{"st", "off"}})) == std::vector<std::string>{"effects-done"});
  CHECK(judged(answer(404, Json::object()), answer(200, {{"st", "??"}})) ==
        std::vector<std::string>{"state-unreadable", "state-unreadable"});
}

TEST_CASE("check: descriptions are strict about links, compensations and probes", "[check]") {
  auto parse = [](const char* text) { return parse_description(Json::parse(text)); };
  // path.x names a route's segment: never a saga id.
  CHECK_THROWS_WITH(parse(R"({"saga_id":"path.x","steps":[{"name":"a","upstream":"u","forward":"POST /a/{x}",
      "compensation":"none","pivot":true}]})"),
                    Catch::Contains("every exchange"));
  // A step at or before the pivot says how it is undone, or that it needs no undoing.
  CHECK_THROWS_WITH(parse(R"({"saga_id":"header.X","steps":[{"name":"a","upstream":"u","forward":"GET /a"},
      {"name":"b","upstream":"u","forward":"POST /b","compensation":"POST /b/undo","pivot":true}]})"),
                    Catch::Contains("compensation: none"));
  CHECK_NOTHROW(parse(R"({"saga_id":"header.X","steps":[{"name":"a","upstream":"u","forward":"GET /a",
      "compensation":"none"},{"name":"b","upstream":"u","forward":"POST /b","compensation":"POST /b/undo","pivot":true}]})"));
  // A client with nothing that joins the steps to it.
  CHECK_THROWS_WITH(parse(R"({"client":{"upstream":"f","request":"POST /go","outcome":"response.s","success":"ok",
      "failure":"ko"},"steps":[{"name":"a","upstream":"u","forward":"POST /a","compensation":"none","pivot":true}]})"),
                    Catch::Contains("carries"));
  // A probe only reads, and reads an effect by its id.
  CHECK_THROWS_WITH(parse(R"({"saga_id":"header.X","steps":[{"name":"a","upstream":"u","forward":"POST /a",
      "compensation":"POST /a/undo","effect":"response.id","pivot":true,
      "state":{"read":"DELETE /a/{id}","field":"s","done":"on","undone":"off"}}]})"),
                    Catch::Contains("GET"));
  CHECK_THROWS_WITH(parse(R"({"saga_id":"header.X","steps":[{"name":"a","upstream":"u","forward":"POST /a",
      "compensation":"POST /a/undo","pivot":true,
      "state":{"read":"GET /a/{id}","field":"s","done":"on","undone":"off"}}]})"),
                    Catch::Contains("effect"));
}

TEST_CASE("check: a locator that never yields a value is a warning that names it", "[check]") {
  auto d = parse_description(Json::parse(R"({"saga_id":["header.X-Missing","response.saga"],
      "client":{"upstream":"front","request":"POST /go","outcome":"response.state","success":"done","failure":"undone"},
      "steps":[{"name":"a","upstream":"sa","forward":"POST /a","compensation":"POST /a/{id}/undo",
       "id":{"forward":"response.nope","compensation":"path.id"},"pivot":true}]})"));
  Rec r;
  r.add("sa", "/a", {{"id", "A1"}}).client("done");
  for (auto& e : r.v) e.headers = Json::object();
  r.v[0].response = {{"id", "A1"}, {"saga", "S"}};
  r.v[0].upstream_response = r.v[0].response;
  auto rep = check_recording(d, r.v);
  auto has = [&](const std::string& what) {
    return std::any_of(rep.warnings.begin(), rep.warnings.end(),
                       [&](const std::string& w) { return w.find(what) != std::string::npos; });
  };
  CHECK(has("header.X-Missing"));
  CHECK(has("response.nope"));
  CHECK_FALSE(has("response.saga"));
}

TEST_CASE("check: saga_id trace reads the trace id of a W3C traceparent", "[check]") {
  CHECK(trace_id("00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01") == "0af7651916cd43dd8448eb211c80319c");
  CHECK(trace_id("00-00000000000000000000000000000000-b7ad6b7169203331-01").empty());
  CHECK(trace_id("not a traceparent").empty());
  auto d = parse_description(Json::parse(R"({"saga_id":"trace",
      "client":{"upstream":"front","request":"POST /go","outcome":"response.state","success":"done","failure":"undone"},
      "steps":[{"name":"a","upstream":"sa","forward":"POST /a","compensation":"POST /a/{id}/undo",
       "id":{"forward":"response.id","compensation":"path.id"},"pivot":true}]})"));
  Rec r;
  r.add("sa", "/a", {{"id", "A1"}}).client("done");
  for (auto& e : r.v) e.headers = {{"traceparent", "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"}};
  auto rep = check_recording(d, r.v);
  CHECK(rep.sagas == 1);
  CHECK(rep.uncorrelated.empty());
  REQUIRE(rep.violations.empty());
}
