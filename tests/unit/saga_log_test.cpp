// The saga log on every store (SQLite and the simulator's shared in-memory log
// always; PostgreSQL when SAGALAB_TEST_PG_URL names a server, as
// tests/integration/postgres_test.sh arranges): what is appended reads back in
// order, the row follows the saga's state, unfinished sagas are found; on the
// shared logs, the leases and fences that let several orchestrators share one.
#include <unistd.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <filesystem>
#include <future>
#include <thread>

#include "sagalab/memory_saga_log.hpp"
#include "sagalab/pg_saga_log.hpp"
#include "sagalab/saga_log.hpp"

using namespace sagalab;

namespace {

// The logs several orchestrators share: the simulator's in-memory one always, PostgreSQL when a server is named.
std::vector<std::string> shared_kinds() {
  std::vector<std::string> k = {"memory"};
  if (std::getenv("SAGALAB_TEST_PG_URL")) k.push_back("postgresql");
  return k;
}

std::vector<std::string> log_kinds() {
  auto k = shared_kinds();
  k.insert(k.begin(), "sqlite");
  return k;
}

// One in-memory store for the whole run, as one PostgreSQL database is: the writers of a test share it.
MemoryLogStore& memory_store() {
  static MemoryLogStore store([] {
    return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now().time_since_epoch())
        .count();
  });
  return store;
}

std::unique_ptr<SagaLog> open_log(const std::string& kind, const std::string& owner = "a",
                                  std::int64_t lease_ms = 60000) {
  if (kind == "postgresql") return std::make_unique<PgSagaLog>(std::getenv("SAGALAB_TEST_PG_URL"), owner, lease_ms);
  if (kind == "memory") return std::make_unique<MemorySagaLog>(memory_store(), owner, lease_ms);
  return std::make_unique<SqliteSagaLog>(":memory:", SyncMode::Normal);
}

// Saga ids of this process only: the PostgreSQL tables outlive a test run.
std::string sid(const std::string& name) { return "t" + std::to_string(::getpid()) + "-" + name; }

Event start_event(const std::string& id) {
  Event e;
  e.type = Event::Type::Start;
  e.saga_id = id;
  e.now_ms = 1000;
  SagaContext ctx;
  ctx.usuario_id = "ana";
  ctx.producto_solicitado = "MOUSE";
  e.ctx = std::make_shared<const SagaContext>(ctx);
  return e;
}

Event result_event(int step, Outcome o, const std::string& reserva = "") {
  Event e;
  e.type = Event::Type::Result;
  e.step = step;
  e.attempt = 1;
  e.outcome = o;
  e.now_ms = 2000 + step;
  if (!reserva.empty()) e.data.reserva_id = reserva;
  return e;
}

SagaLog::Row row(const std::string& id, const std::string& estado, const std::string& key = "") {
  return SagaLog::Row{estado, key, Json{{"saga_id", id}, {"estado", estado}}.dump()};
}

std::exception_ptr append_async(SagaLog& log, const std::string& id, int seq, std::vector<Event> events,
                                std::optional<SagaLog::Row> r) {
  std::promise<std::exception_ptr> p;
  log.append(id, seq, std::move(events), std::move(r), 5000, [&p](std::exception_ptr e) { p.set_value(e); });
  return p.get_future().get();
}

bool contains(const std::vector<std::string>& v, const std::string& x) {
  return std::find(v.begin(), v.end(), x) != v.end();
}

SagaLogConflict::Kind conflict_of(std::exception_ptr e) {
  REQUIRE(e);
  try {
    std::rethrow_exception(e);
  } catch (const SagaLogConflict& c) {
    return c.kind;
  } catch (const std::exception& other) {
    FAIL("not a conflict: " << other.what());
  }
  return SagaLogConflict::Kind::LeaseLost;
}

}  // namespace

TEST_CASE("the saga log reads back what was appended, in order, with the saga's row", "[saga-log]") {
  for (const auto& kind : log_kinds()) {
    SECTION(kind) {
      auto log = open_log(kind);
      const auto id = sid("order-" + kind);
      log->append_now(id, 1, {start_event(id)}, row(id, "en_curso", sid("key-" + kind)), 1000);
      REQUIRE(append_async(*log, id, 2, {result_event(0, Outcome::Ok), result_event(3, Outcome::Ok, "R-7")},
                           std::nullopt) == nullptr);
      auto events = log->events(id);
      REQUIRE(events.size() == 3);
      CHECK(events[0].type == Event::Type::Start);
      CHECK(events[0].saga_id == id);
      CHECK(events[0].ctx->usuario_id == "ana");
      CHECK(events[1].step == 0);
      CHECK(events[2].step == 3);
      CHECK(events[2].data.reserva_id == "R-7");  // what a step returned survives the log
      CHECK(contains(log->unfinished(), id));

      std::promise<std::optional<std::string>> by_key;
      log->find_by_idem(sid("key-" + kind),
                        [&](std::optional<std::string> found, std::exception_ptr) { by_key.set_value(found); });
      CHECK(by_key.get_future().get() == std::optional<std::string>(id));

      // A change of state rewrites the row; a terminal saga is no longer unfinished.
      log->append_now(id, 4, {result_event(4, Outcome::Ok)}, row(id, "completada"), 3000);
      CHECK_FALSE(contains(log->unfinished(), id));
      std::promise<std::optional<Json>> snap;
      log->snapshot(id, [&](std::optional<Json> s) { snap.set_value(s); });
      auto s = snap.get_future().get();
      REQUIRE(s);
      CHECK((*s)["estado"] == "completada");
      bool listed = false;
      for (const auto& j : log->list("completada", 1000000)) listed = listed || j["saga_id"] == id;
      CHECK(listed);
      log->close();
    }
  }
}

TEST_CASE("a saga log that is one orchestrator's hands it every unfinished saga at start-up only", "[saga-log]") {
  SqliteSagaLog log(":memory:", SyncMode::Normal);
  for (const char* n : {"one", "two"}) log.append_now(n, 1, {start_event(n)}, row(n, "compensando"), 1000);
  CHECK_FALSE(log.shared());
  CHECK(log.claim(true) == std::vector<std::string>{"one", "two"});
  CHECK(log.claim(false).empty());
  log.close();
}

TEST_CASE("the SQLite saga log forgets one saga's events and row and keeps the others", "[saga-log]") {
  SqliteSagaLog log(":memory:", SyncMode::Normal);
  log.append_now("gone", 1, {start_event("gone"), result_event(0, Outcome::Ok)}, row("gone", "completada", "k-gone"), 1000);
  log.append_now("kept", 1, {start_event("kept")}, row("kept", "en_curso", "k-kept"), 1000);
  log.append_now("open", 1, {start_event("open")}, row("open", "compensando"), 1000);
  log.forget("gone");
  log.forget("open");
  CHECK(log.events("gone").empty());
  CHECK(log.events("open").empty());
  CHECK(log.events("kept").size() == 1);
  CHECK(log.unfinished() == std::vector<std::string>{"kept"});
  std::promise<std::optional<std::string>> by_key;
  log.find_by_idem("k-gone", [&](std::optional<std::string> found, std::exception_ptr) { by_key.set_value(found); });
  CHECK_FALSE(by_key.get_future().get());  // its idempotency key is free again
  // A forgotten saga's numbers can be written again (nothing of it is left).
  log.append_now("gone", 1, {start_event("gone")}, row("gone", "en_curso", "k-gone"), 2000);
  CHECK(log.events("gone").size() == 1);
  log.close();
}

TEST_CASE("the saga log refuses a second start with a taken idempotency key, and writes nothing of it",
          "[saga-log]") {
  for (const auto& kind : log_kinds()) {
    SECTION(kind) {
      // On a shared log the second start comes from another orchestrator; SQLite has one.
      auto a = open_log(kind, "a");
      auto b = kind != "sqlite" ? open_log(kind, "b") : nullptr;
      SagaLog& second_writer = b ? *b : *a;
      const auto key = sid("same-key-" + kind), first = sid("idem-1-" + kind), second = sid("idem-2-" + kind);
      REQUIRE(append_async(*a, first, 1, {start_event(first)}, row(first, "en_curso", key)) == nullptr);
      auto e = append_async(second_writer, second, 1, {start_event(second)}, row(second, "en_curso", key));
      REQUIRE(e);
      if (kind != "sqlite") CHECK(conflict_of(e) == SagaLogConflict::Kind::IdemTaken);
      CHECK(second_writer.events(second).empty());
      CHECK_FALSE(contains(second_writer.unfinished(), second));
      std::promise<std::optional<std::string>> by_key;
      second_writer.find_by_idem(key, [&](std::optional<std::string> found, std::exception_ptr) { by_key.set_value(found); });
      CHECK(by_key.get_future().get() == std::optional<std::string>(first));
    }
  }
}

TEST_CASE("the saga log refuses an event at a sequence number already written, and keeps the first", "[saga-log]") {
  for (const auto& kind : log_kinds()) {
    SECTION(kind) {
      auto log = open_log(kind, sid("seq-owner"));
      const auto id = sid("seq-" + kind);
      log->append_now(id, 1, {start_event(id)}, row(id, "en_curso"), 1000);
      REQUIRE(append_async(*log, id, 2, {result_event(0, Outcome::Ok)}, std::nullopt) == nullptr);
      // Two writers that both thought they held the saga: the second append of number 2 is refused.
      auto e = append_async(*log, id, 2, {result_event(3, Outcome::Failed)}, row(id, "compensando"));
      REQUIRE(e);
      if (kind != "sqlite") CHECK(conflict_of(e) == SagaLogConflict::Kind::LeaseLost);
      auto events = log->events(id);
      REQUIRE(events.size() == 2);
      CHECK(events[1].step == 0);
      CHECK(events[1].outcome == Outcome::Ok);
      CHECK(contains(log->unfinished(), id));
      std::promise<std::optional<Json>> snap;
      log->snapshot(id, [&](std::optional<Json> s) { snap.set_value(s); });
      auto s = snap.get_future().get();
      REQUIRE(s);
      CHECK((*s)["estado"] == "en_curso");  // the refused append's row change is not written either
    }
  }
}

TEST_CASE("a shared saga log: only the lease holder appends and an expired lease passes to a claimer",
          "[saga-log]") {
  for (const auto& kind : shared_kinds()) {
    SECTION(kind) {
      auto a = open_log(kind, sid("owner-a"), 300), b = open_log(kind, sid("owner-b"), 300);
      const auto id = sid("lease-" + kind);
      a->append_now(id, 1, {start_event(id)}, row(id, "en_curso"), 1000);

      // b may not write a saga that a holds, nor take it while a renews.
      CHECK(conflict_of(append_async(*b, id, 2, {result_event(0, Outcome::Ok)}, std::nullopt)) ==
            SagaLogConflict::Kind::LeaseLost);
      CHECK(a->renew({id}) == 1);
      CHECK_FALSE(contains(b->claim(false), id));
      CHECK(b->events(id).size() == 1);

      // a stops renewing: once its lease expires, b takes the saga, and a's writes are refused.
      std::this_thread::sleep_for(std::chrono::milliseconds(450));
      auto taken = b->claim(false);
      CHECK(contains(taken, id));
      CHECK_FALSE(contains(a->claim(false), id));  // taken once
      CHECK(conflict_of(append_async(*a, id, 2, {result_event(0, Outcome::Ok)}, std::nullopt)) ==
            SagaLogConflict::Kind::LeaseLost);
      REQUIRE(append_async(*b, id, 2, {result_event(0, Outcome::Ok)}, row(id, "compensando")) == nullptr);
      CHECK(b->events(id).size() == 2);

      // A sequence number already written is a conflict too (two writers that both thought they held it).
      CHECK(conflict_of(append_async(*b, id, 2, {result_event(1, Outcome::Ok)}, std::nullopt)) ==
            SagaLogConflict::Kind::LeaseLost);
      CHECK(b->events(id).size() == 2);

      // A released saga is claimable at once; at start-up an owner takes back its own.
      b->release(id);
      b->renew({});  // a barrier: the release was queued first, so it is committed when this returns
      CHECK(contains(a->claim(false), id));
      auto a_again = open_log(kind, sid("owner-a"), 300);
      CHECK(contains(a_again->claim(true), id));
      CHECK_FALSE(contains(b->claim(true), id));
    }
  }
}

TEST_CASE("a shared saga log: a lease is renewed only for a saga its holder drives", "[saga-log]") {
  for (const auto& kind : shared_kinds()) {
    SECTION(kind) {
      auto a = open_log(kind, sid("owner-a"), 300), b = open_log(kind, sid("owner-b"), 300);
      const auto driven = sid("driven-" + kind), held = sid("held-" + kind);
      a->append_now(driven, 1, {start_event(driven)}, row(driven, "en_curso"), 1000);
      a->append_now(held, 1, {start_event(held)}, row(held, "en_curso"), 1000);
      // a holds both but drives one (say a claim whose answer it never got): the other lapses.
      for (int i = 0; i < 5; ++i) {
        CHECK(a->renew({driven}) == 1);
        std::this_thread::sleep_for(std::chrono::milliseconds(100));
      }
      auto taken = b->claim(false);
      CHECK(contains(taken, held));
      CHECK_FALSE(contains(taken, driven));
    }
  }
}
