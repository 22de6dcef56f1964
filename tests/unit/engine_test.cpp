// The saga engine, driven with no sockets: a scripted responder answers each
// call, timers fire on a virtual clock.
#include <catch2/catch.hpp>
#include <functional>

#include "sagalab/json_codec.hpp"
#include "sagalab/saga.hpp"

using namespace sagalab;

namespace {

using Responder = std::function<Outcome(const std::string& step, bool comp, int attempt)>;

struct Run {
  SagaState s;
  std::vector<std::string> calls;  // "crear_compra#1", "~crear_compra#1" for compensations
  std::vector<Event> log;
};

SagaDefinition def() {
  auto d = SagaDefinition::default_purchase();
  d.stuck_after = 4;
  return d;
}

// Drives a saga until it finishes (or max_events), from `s` and its pending commands.
void drive(const SagaEngine& eng, Run& run, std::vector<Command> cmds, const Responder& respond, std::int64_t now,
           SplitMix64& rng, int max_events = 500) {
  while (!cmds.empty() && max_events-- > 0) {
    Command c = cmds.front();
    cmds.erase(cmds.begin());
    Event e;
    if (c.type == Command::Type::Finish) return;
    if (c.type == Command::Type::Schedule) {
      REQUIRE(c.at_ms >= now);
      now = c.at_ms;
      e.type = Event::Type::Timer;
      e.step = c.step;
      e.attempt = c.attempt;
      e.compensation = c.compensation;
    } else {
      auto name = eng.definition().steps[static_cast<std::size_t>(c.step)].name;
      run.calls.push_back((c.compensation ? "~" : "") + name + "#" + std::to_string(c.attempt));
      CHECK(c.idempotency_key == run.s.id + ":" + name + (c.compensation ? ":compensacion" : ""));
      now += 1;
      e.type = Event::Type::Result;
      e.step = c.step;
      e.attempt = c.attempt;
      e.compensation = c.compensation;
      e.outcome = respond(name, c.compensation, c.attempt);
      if (e.outcome == Outcome::Ok && !c.compensation) {
        if (name == "crear_compra") e.data.compra_id = name + "-1";
        if (name == "reservar_stock") e.data.reserva_id = name + "-1";
        if (name == "cobrar_pago") e.data.pago_id = name + "-1";
      }
    }
    e.now_ms = now;
    run.log.push_back(e);
    auto more = eng.apply(run.s, e, rng);
    cmds.insert(cmds.end(), more.begin(), more.end());
  }
}

Run run_saga(const Responder& respond) {
  SagaEngine eng(def());
  SplitMix64 rng(42);
  Run run;
  Event start;
  start.type = Event::Type::Start;
  start.saga_id = "s1";
  SagaContext ctx;
  ctx.usuario_id = "u";
  ctx.cantidad = 1;
  start.ctx = std::make_shared<const SagaContext>(ctx);
  start.now_ms = 1000;
  run.log.push_back(start);
  auto cmds = eng.apply(run.s, start, rng);
  drive(eng, run, cmds, respond, 1000, rng);
  return run;
}

Responder all_ok() {
  return [](const std::string&, bool, int) { return Outcome::Ok; };
}

}  // namespace

TEST_CASE("a saga whose steps all succeed completes with one call per step", "[engine]") {
  auto r = run_saga(all_ok());
  CHECK(r.s.estado == Estado::Completada);
  CHECK(r.calls == std::vector<std::string>{"buscar_producto#1", "crear_compra#1", "reservar_stock#1",
                                            "cobrar_pago#1", "confirmar_compra#1"});
  CHECK(r.s.ctx.pago_id == "cobrar_pago-1");
  CHECK(r.s.ctx.compra_id == "crear_compra-1");
  CHECK(r.s.compensaciones.empty());
}

TEST_CASE("a definite failure before the pivot compensates completed steps in reverse order", "[engine]") {
  SECTION("lookup fails: nothing to compensate") {
    auto r = run_saga([](const std::string& s, bool, int) { return s == "buscar_producto" ? Outcome::Failed : Outcome::Ok; });
    CHECK(r.s.estado == Estado::Compensada);
    CHECK(r.calls == std::vector<std::string>{"buscar_producto#1"});
    CHECK(r.s.paso_fallido == "buscar_producto");
  }
  SECTION("crear_compra fails") {
    auto r = run_saga(
        [](const std::string& s, bool comp, int) { return !comp && s == "crear_compra" ? Outcome::Failed : Outcome::Ok; });
    CHECK(r.s.estado == Estado::Compensada);
    // The refused step is compensated too: a no-op whose tombstone stops a late copy of the request.
    CHECK(r.calls == std::vector<std::string>{"buscar_producto#1", "crear_compra#1", "~crear_compra#1"});
  }
  SECTION("reservar_stock fails") {
    auto r = run_saga(
        [](const std::string& s, bool comp, int) { return !comp && s == "reservar_stock" ? Outcome::Failed : Outcome::Ok; });
    CHECK(r.s.estado == Estado::Compensada);
    CHECK(r.calls == std::vector<std::string>{"buscar_producto#1", "crear_compra#1", "reservar_stock#1",
                                              "~reservar_stock#1", "~crear_compra#1"});
  }
  SECTION("the pivot is refused: it and the earlier steps are compensated, in reverse order") {
    auto r = run_saga(
        [](const std::string& s, bool comp, int) { return !comp && s == "cobrar_pago" ? Outcome::Failed : Outcome::Ok; });
    CHECK(r.s.estado == Estado::Compensada);
    CHECK(r.calls == std::vector<std::string>{"buscar_producto#1", "crear_compra#1", "reservar_stock#1", "cobrar_pago#1",
                                              "~cobrar_pago#1", "~reservar_stock#1", "~crear_compra#1"});
    CHECK(r.s.compensaciones == std::vector<std::string>{"cobrar_pago", "reservar_stock", "crear_compra"});
  }
}

TEST_CASE("an unknown outcome is retried with the same key and may then succeed", "[engine]") {
  auto r = run_saga([](const std::string& s, bool, int attempt) {
    return s == "reservar_stock" && attempt < 3 ? Outcome::Unknown : Outcome::Ok;
  });
  CHECK(r.s.estado == Estado::Completada);
  CHECK(r.calls == std::vector<std::string>{"buscar_producto#1", "crear_compra#1", "reservar_stock#1",
                                            "reservar_stock#2", "reservar_stock#3", "cobrar_pago#1",
                                            "confirmar_compra#1"});
  // Backoff grows between attempts (a virtual clock, so exact).
  CHECK(r.s.steps[2].attempts == 3);
}

TEST_CASE("an unknown outcome abandoned after the attempt limit is compensated too", "[engine]") {
  auto r = run_saga([](const std::string& s, bool comp, int) {
    return s == "cobrar_pago" && !comp ? Outcome::Unknown : Outcome::Ok;
  });
  CHECK(r.s.estado == Estado::Compensada);
  CHECK(r.calls == std::vector<std::string>{"buscar_producto#1", "crear_compra#1", "reservar_stock#1", "cobrar_pago#1",
                                            "cobrar_pago#2", "cobrar_pago#3", "~cobrar_pago#1", "~reservar_stock#1",
                                            "~crear_compra#1"});
  CHECK(r.s.steps[3].status == StepStatus::Compensado);
  CHECK(r.s.error.find("sin respuesta tras 3 intentos") == 0);
}

TEST_CASE("a compensation that fails is retried until it succeeds", "[engine]") {
  auto r = run_saga([](const std::string& s, bool comp, int attempt) {
    if (s == "reservar_stock" && !comp) return Outcome::Failed;
    if (s == "crear_compra" && comp) return attempt <= 3 ? Outcome::Unknown : Outcome::Ok;
    return Outcome::Ok;
  });
  CHECK(r.s.estado == Estado::Compensada);
  CHECK(r.s.steps[1].comp_attempts == 4);
  CHECK(r.calls.back() == "~crear_compra#4");
}

TEST_CASE("a compensation that keeps failing makes the saga atascada, and it heals later", "[engine]") {
  SagaEngine eng(def());
  SplitMix64 rng(7);
  Run run;
  Event start;
  start.type = Event::Type::Start;
  start.saga_id = "s2";
  start.ctx = std::make_shared<const SagaContext>();
  bool healed = false;
  Responder broken = [&](const std::string& s, bool comp, int) {
    if (s == "reservar_stock" && !comp) return Outcome::Failed;
    if (s == "crear_compra" && comp && !healed) return Outcome::Failed;
    return Outcome::Ok;
  };
  auto cmds = eng.apply(run.s, start, rng);
  drive(eng, run, cmds, broken, 0, rng, 13);
  CHECK(run.s.estado == Estado::Atascada);
  CHECK(run.s.awaiting_timer);  // still retrying, never silent
  // Heal, and let the pending timer fire.
  healed = true;
  Event timer;
  timer.type = Event::Type::Timer;
  timer.now_ms = run.s.timer_at_ms;
  timer.step = run.s.current;
  timer.compensation = true;
  timer.attempt = run.s.steps[static_cast<std::size_t>(run.s.current)].comp_attempts + 1;
  drive(eng, run, eng.apply(run.s, timer, rng), broken, timer.now_ms, rng);
  CHECK(run.s.estado == Estado::Compensada);
}

TEST_CASE("after the pivot only forward recovery: confirmation is retried until it succeeds", "[engine]") {
  auto r = run_saga([](const std::string& s, bool, int attempt) {
    return s == "confirmar_compra" && attempt <= 5 ? Outcome::Failed : Outcome::Ok;
  });
  CHECK(r.s.estado == Estado::Completada);
  CHECK(r.s.steps[4].attempts == 6);
  for (const auto& c : r.calls) CHECK(c[0] != '~');
}

TEST_CASE("stale answers and timers are ignored", "[engine]") {
  SagaEngine eng(def());
  SplitMix64 rng(1);
  SagaState s;
  Event start;
  start.type = Event::Type::Start;
  start.saga_id = "s3";
  eng.apply(s, start, rng);
  Event wrong;
  wrong.type = Event::Type::Result;
  wrong.step = 0;
  wrong.attempt = 7;  // not the attempt in flight
  CHECK(eng.apply(s, wrong, rng).empty());
  CHECK(s.awaiting_call);
  Event timer;
  timer.type = Event::Type::Timer;
  CHECK(eng.apply(s, timer, rng).empty());
}

TEST_CASE("events survive a JSON round trip", "[engine]") {
  Event e;
  e.type = Event::Type::Result;
  e.now_ms = 5;
  e.step = 3;
  e.attempt = 2;
  e.compensation = true;
  e.outcome = Outcome::Unknown;
  e.status = 503;
  e.data.compra_id = "compra_000001";
  e.data.producto = Product{"prod_001", "Laptop Gamer", 1500, "Electrónica"};
  e.data.monto = 1500;
  e.detail = "x";
  auto back = event_from_json(to_json(e));
  CHECK(to_json(back) == to_json(e));
  CHECK_THROWS_AS(event_from_json(Json{{"type", "start"}}), std::invalid_argument);
  CHECK_THROWS_AS(event_from_json(Json{{"type", "bogus"}, {"t", 1}}), std::invalid_argument);
}

TEST_CASE("a log cut at any position replays, recovers and ends terminal and consistent", "[engine][recovery]") {
  // A run with retries, an abandoned pivot and compensations: many cut points.
  auto full = run_saga([](const std::string& s, bool comp, int attempt) {
    if (s == "crear_compra" && attempt == 1) return Outcome::Unknown;
    if (s == "cobrar_pago" && !comp) return Outcome::Unknown;
    if (s == "reservar_stock" && comp && attempt == 1) return Outcome::Failed;
    return Outcome::Ok;
  });
  REQUIRE(full.s.estado == Estado::Compensada);
  REQUIRE(full.log.size() > 10);
  SagaEngine eng(def());
  for (std::size_t cut = 1; cut <= full.log.size(); ++cut) {
    INFO("cut after event " << cut << " of " << full.log.size());
    SplitMix64 rng(3);
    std::vector<Event> prefix(full.log.begin(), full.log.begin() + static_cast<long>(cut));
    Run run;
    run.s = eng.replay(prefix, rng);
    const bool was_compensating = run.s.compensating;
    auto before = run.s;
    Event rec;
    rec.type = Event::Type::Recovered;
    rec.now_ms = 1'000'000;
    drive(eng, run, eng.apply(run.s, rec, rng), all_ok(), rec.now_ms, rng);
    REQUIRE(is_terminal(run.s.estado));
    if (was_compensating) CHECK(run.s.estado == Estado::Compensada);
    if (run.s.estado == Estado::Compensada) {
      // Every step that completed or may have completed before the pivot is compensated.
      for (std::size_t i = 1; i <= 3; ++i) {
        auto st = before.steps[i].status;
        if (st == StepStatus::Ok || st == StepStatus::Incierto || st == StepStatus::EnCurso ||
            st == StepStatus::Compensando)
          CHECK(run.s.steps[i].status == StepStatus::Compensado);
      }
    } else {
      for (const auto& st : run.s.steps) CHECK(st.status == StepStatus::Ok);
    }
    // Replaying the same prefix twice gives the same state (the log is the truth).
    SplitMix64 rng2(3);
    auto again = eng.replay(prefix, rng2);
    CHECK(to_json(again, eng.definition()) == to_json(before, eng.definition()));
  }
}

// The saga log writes its texts without building a JSON tree: each must be
// exactly what nlohmann's dump() of the tree writes (the log's readers, the
// snapshot that GET /sagas/{id} answers and every stored log depend on it).
TEST_CASE("the saga log's event and snapshot texts are byte for byte the dump of their JSON trees", "[engine][codec]") {
  const auto def = SagaDefinition::default_purchase();
  SplitMix64 rng(42);
  const std::vector<std::string> strings = {"", "a", "MOUSE", "compra_000001", "Electrónica", "quote\"d",
                                            "back\\slash", "tab\there", "line\nbreak", std::string("nul\0x", 5),
                                            "\x01ctl", "del\x7f", "日本語", "😀", "</script>", "x y"};
  const std::vector<double> numbers = {0.0, -0.0, 1.0, 0.1, 12.5, 100.0, 1234.56, 1e-7, 1e21, 1e15, 1e16,
                                       123456789012345680.0, -3.25, 0.30000000000000004, 5e-324, 1.7976931348623157e308};
  auto text = [&] { return strings[static_cast<std::size_t>(rng.uniform(0, static_cast<std::int64_t>(strings.size()) - 1))]; };
  auto maybe = [&] { return rng.unit() < 0.5 ? std::string() : text(); };
  auto number = [&] { return numbers[static_cast<std::size_t>(rng.uniform(0, static_cast<std::int64_t>(numbers.size()) - 1))]; };
  auto integer = [&] { return rng.uniform(-2, 1'000'000'000'000LL); };
  auto output = [&] {
    StepOutput o;
    if (rng.unit() < 0.5) o.producto = Product{text(), text(), number(), maybe()};
    if (rng.unit() < 0.5) o.monto = number();
    o.compra_id = maybe();
    o.reserva_id = maybe();
    o.pago_id = maybe();
    return o;
  };
  auto context = [&] {
    SagaContext c;
    c.usuario_id = text();
    c.producto_solicitado = maybe();
    c.cantidad = integer();
    c.seleccion = static_cast<std::uint64_t>(rng.next());
    if (rng.unit() < 0.5) c.monto_cliente = number();
    c.trace_id = maybe();
    c.merge(output());
    return c;
  };
  int events = 0, snapshots = 0;
  for (int i = 0; i < 400; ++i) {
    Event e;
    e.type = static_cast<Event::Type>(rng.uniform(0, 3));
    e.now_ms = integer();
    e.saga_id = text();
    if (rng.unit() < 0.8) e.ctx = std::make_shared<const SagaContext>(context());
    e.step = static_cast<int>(rng.uniform(0, 4));
    e.attempt = static_cast<int>(rng.uniform(1, 9));
    e.compensation = rng.unit() < 0.5;
    e.outcome = static_cast<Outcome>(rng.uniform(0, 2));
    e.status = static_cast<int>(rng.uniform(0, 599));
    if (rng.unit() < 0.6) e.data = output();
    e.detail = maybe();
    REQUIRE(event_text(e) == to_json(e).dump());
    ++events;

    SagaState s;
    s.id = text();
    s.estado = static_cast<Estado>(rng.uniform(0, 4));
    s.ctx = context();
    s.steps.assign(def.steps.size(), StepState{});
    for (auto& st : s.steps) {
      st.status = static_cast<StepStatus>(rng.uniform(0, 6));
      st.attempts = static_cast<int>(rng.uniform(0, 5));
      st.comp_attempts = static_cast<int>(rng.uniform(0, 5));
    }
    for (int a = static_cast<int>(rng.uniform(0, 7)); a > 0; --a) {
      AttemptRecord r;
      r.step = static_cast<int>(rng.uniform(0, static_cast<std::int64_t>(def.steps.size()) - 1));
      r.n = static_cast<int>(rng.uniform(1, 5));
      r.compensation = rng.unit() < 0.3;
      r.started_ms = integer();
      r.ended_ms = rng.unit() < 0.2 ? -1 : integer();
      r.outcome = rng.unit() < 0.5 ? "ok" : text();
      r.status = static_cast<int>(rng.uniform(0, 599));
      r.detail = maybe();
      s.attempts.push_back(r);
    }
    s.started_ms = integer();
    s.finished_ms = rng.unit() < 0.3 ? -1 : integer();
    s.paso_fallido = maybe();
    s.error = maybe();
    s.error_status = static_cast<int>(rng.uniform(0, 599));
    for (int c = static_cast<int>(rng.uniform(0, 3)); c > 0; --c) s.compensaciones.push_back(text());
    REQUIRE(snapshot_text(s, def) == to_json(s, def).dump());
    ++snapshots;
  }
  CHECK(events == 400);
  CHECK(snapshots == 400);
}
