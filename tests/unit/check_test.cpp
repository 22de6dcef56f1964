// sagactl check's rules on hand-made recordings: each rule reports what it
// names, and a correct history passes.
#include <catch2/catch.hpp>

#include "sagalab/saga_check.hpp"

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

TEST_CASE("check: a description is read strictly") {
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

TEST_CASE("check: a correct failed saga and a correct completed saga pass") {
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

TEST_CASE("check compensated: an effect whose answer was lost must still be undone") {
  Rec r;
  // b committed, but the caller got a 500 (commit-then-error) and never compensated b.
  r.add("sa", "/a", {{"id", "A1"}})
      .add("sb", "/b", {{"id", "B1"}}, 500, 200, Json::object(), "kb", "commit-then-error")
      .add("sa", "/a/A1/undo", Json::object())
      .client("undone", 409);
  auto rep = check_recording(desc(), r.v);
  REQUIRE(rules_of(rep) == std::vector<std::string>{"compensated"});
  CHECK(rep.violations[0].message.find("step b") != std::string::npos);
  CHECK(rep.violations[0].exchanges == std::vector<std::int64_t>{2});
  REQUIRE(rep.violations[0].faults.size() == 1);
  CHECK(rep.violations[0].faults[0].find("commit-then-error") != std::string::npos);
  // A compensation that names another effect does not count.
  Rec wrong = failed_right();
  wrong.v[4].path = "/a/A9/undo";
  CHECK(rules_of(check_recording(desc(), wrong.v)) == std::vector<std::string>{"compensated"});
}

TEST_CASE("check reverse-order: a later step is undone before an earlier one") {
  Rec r;
  r.add("sa", "/a", {{"id", "A1"}})
      .add("sb", "/b", {{"id", "B1"}}, 200, std::nullopt, Json::object(), "kb")
      .add("sp", "/p", {{"error", "no"}}, 409)
      .add("sa", "/a/A1/undo", Json::object())
      .add("sb", "/b/undo", Json::object(), 200, std::nullopt, {{"key", "kb"}})
      .client("undone", 409);
  CHECK(rules_of(check_recording(desc(), r.v)) == std::vector<std::string>{"reverse-order"});
}

TEST_CASE("check no-forward-after-compensation: a late forward call succeeds after its undo") {
  Rec r = failed_right();
  // A held first attempt of b arrives after b's compensation and is served.
  r.add("sb", "/b", {{"id", "B1"}}, std::nullopt, 200, Json::object(), "kb", "hang");
  CHECK(rules_of(check_recording(desc(), r.v)) == std::vector<std::string>{"no-forward-after-compensation"});
  // Refused (a tombstone): fine.
  Rec ok = failed_right();
  ok.add("sb", "/b", {{"error", "compensated"}}, std::nullopt, 409, Json::object(), "kb", "hang");
  CHECK(check_recording(desc(), ok.v).violations.empty());
}

TEST_CASE("check one-effect: a retry that creates a second effect") {
  Rec r;
  r.add("sa", "/a", {{"id", "A1"}})
      .add("sb", "/b", {{"id", "B1"}}, 500, 200, Json::object(), "kb", "commit-then-error")
      .add("sb", "/b", {{"id", "B2"}}, 200, std::nullopt, Json::object(), "kb")
      .add("sp", "/p", {{"id", "P"}}, 200, std::nullopt, Json::object(), "kp")
      .add("sc", "/c", Json::object())
      .client("done");
  CHECK(rules_of(check_recording(desc(), r.v)) == std::vector<std::string>{"one-effect"});
}

TEST_CASE("check pivot: nothing after the pivot, nothing once it succeeded, nothing in a completed saga") {
  Rec after;
  after.add("sa", "/a", {{"id", "A1"}}).add("sp", "/p", {{"id", "P"}}, 200, std::nullopt, {}, "kp");
  after.add("sc", "/c", Json::object()).add("sc", "/c/undo", Json::object()).client("done");
  auto rules = rules_of(check_recording(desc(), after.v));
  CHECK(std::count(rules.begin(), rules.end(), "pivot") >= 1);
  Rec undone;
  undone.add("sa", "/a", {{"id", "A1"}}).add("sp", "/p", {{"id", "P"}}, 200, std::nullopt, {}, "kp");
  undone.add("sa", "/a/A1/undo", Json::object()).client("undone", 409);
  rules = rules_of(check_recording(desc(), undone.v));
  // a undone after the caller saw p succeed (and p itself, an effect of a saga that answered failure, not undone).
  CHECK(rules == std::vector<std::string>{"pivot", "compensated"});
}

TEST_CASE("check client-answered: no answer or an unnamed outcome, unless the proxy cut it or it is pending") {
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

TEST_CASE("check: a recorded exchange is read strictly") {
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
