// The history checker: a correct history passes, and each rule names the
// history that breaks it.
#include <catch2/catch.hpp>

#include "sagalab/history.hpp"
#include "sagalab/checker_json.hpp"

using namespace sagalab;

namespace {

const SagaDefinition def = SagaDefinition::default_purchase();
enum Step { kBuscar, kCrear, kReservar, kCobrar, kConfirmar };

struct Builder {
  SagaHistory h;
  Builder() {
    h.saga_id = "s1";
    h.has_log = true;
    Event start;
    start.type = Event::Type::Start;
    start.saga_id = "s1";
    h.log.push_back(start);
  }
  // A call issued now (after everything logged so far), then its logged result.
  Builder& call(int step, bool comp, int attempt, Outcome outcome, const std::string& id_sent = "",
                const std::string& key = "") {
    CallRecord c;
    c.step = step;
    c.compensation = comp;
    c.attempt = attempt;
    c.seen = true;
    c.idempotency_key = key.empty() ? "s1:" + def.steps[static_cast<std::size_t>(step)].name + (comp ? ":compensacion" : "") : key;
    c.id_sent = id_sent;
    c.logged = h.log.size();
    h.calls.push_back(c);
    Event r;
    r.type = Event::Type::Result;
    r.step = step;
    r.compensation = comp;
    r.attempt = attempt;
    r.outcome = outcome;
    r.status = outcome == Outcome::Ok ? 200 : outcome == Outcome::Failed ? 409 : 503;
    if (outcome == Outcome::Ok && !comp) {
      if (step == kCrear) r.data.compra_id = "compra_1";
      if (step == kReservar) r.data.reserva_id = "reserva_1";
      if (step == kCobrar) r.data.pago_id = "pago_1";
    }
    h.log.push_back(r);
    return *this;
  }
  Builder& ends(Estado e) {
    h.estado = e;
    return *this;
  }
};

std::vector<std::string> rules_of(const SagaHistory& h) {
  std::vector<std::string> out;
  for (const auto& v : check_history(def, h)) out.push_back(v.rule);
  return out;
}

bool breaks(const SagaHistory& h, const std::string& rule) {
  auto r = rules_of(h);
  return std::find(r.begin(), r.end(), rule) != r.end();
}

// A saga that fails at the pivot (unknown twice) and compensates everything.
Builder compensated() {
  Builder b;
  b.call(kBuscar, false, 1, Outcome::Ok)
      .call(kCrear, false, 1, Outcome::Ok)
      .call(kReservar, false, 1, Outcome::Ok)
      .call(kCobrar, false, 1, Outcome::Unknown)
      .call(kCobrar, false, 2, Outcome::Unknown)
      .call(kCobrar, true, 1, Outcome::Ok)
      .call(kReservar, true, 1, Outcome::Ok, "reserva_1")
      .call(kCrear, true, 1, Outcome::Ok, "compra_1")
      .ends(Estado::Compensada);
  return b;
}

}  // namespace

TEST_CASE("correct histories break no rule", "[history]") {
  Builder done;
  done.call(kBuscar, false, 1, Outcome::Ok)
      .call(kCrear, false, 1, Outcome::Ok)
      .call(kReservar, false, 1, Outcome::Unknown)
      .call(kReservar, false, 2, Outcome::Ok)
      .call(kCobrar, false, 1, Outcome::Ok)
      .call(kConfirmar, false, 1, Outcome::Ok)
      .ends(Estado::Completada);
  CHECK(rules_of(done.h).empty());
  CHECK(rules_of(compensated().h).empty());
  // A step its service refused is compensated too (a no-op whose tombstone stops a late copy).
  Builder refused;
  refused.call(kBuscar, false, 1, Outcome::Ok)
      .call(kCrear, false, 1, Outcome::Ok)
      .call(kReservar, false, 1, Outcome::Failed)
      .call(kReservar, true, 1, Outcome::Ok)
      .call(kCrear, true, 1, Outcome::Ok, "compra_1")
      .ends(Estado::Compensada);
  CHECK(rules_of(refused.h).empty());
  Builder forgot = refused;
  forgot.h.calls.erase(forgot.h.calls.begin() + 3);  // the refused reservation's compensation
  forgot.h.log.erase(forgot.h.log.begin() + 4);
  CHECK(breaks(forgot.h, "uncompensated-step"));
}

TEST_CASE("each rule names the history that breaks it", "[history]") {
  SECTION("an answer read against its status") {
    Builder b;
    b.call(kBuscar, false, 1, Outcome::Ok).call(kCrear, false, 1, Outcome::Ok);
    b.call(kReservar, false, 1, Outcome::Failed);
    b.h.log.back().status = 500;  // a 5xx may have committed: it is not a refusal
    CHECK(breaks(b.h, "answer-reading"));
    b.h.log.back().status = 0;  // no answer at all
    CHECK(breaks(b.h, "answer-reading"));
    b.h.log.back().status = 422;
    CHECK_FALSE(breaks(b.h, "answer-reading"));
    b.h.log.back().outcome = Outcome::Unknown;  // a refusal read as unknown
    CHECK(breaks(b.h, "answer-reading"));
    b.h.log.back().status = 200;  // a 2xx whose body could not be read may be anything but a success
    CHECK_FALSE(breaks(b.h, "answer-reading"));
    b.h.log.back().status = 503;
    b.h.log.back().outcome = Outcome::Ok;
    CHECK(breaks(b.h, "answer-reading"));
  }
  SECTION("from a snapshot (what sagactl verify and scenarios see): a misread answer, a refused step retried") {
    SagaHistory h;
    h.saga_id = "s1";
    h.estado = Estado::Completada;
    auto attempt = [&](int step, int n, Outcome o, int status) {
      CallRecord c;
      c.step = step;
      c.attempt = n;
      c.answered = true;
      c.outcome = o;
      c.status = status;
      h.calls.push_back(c);
    };
    attempt(kBuscar, 1, Outcome::Ok, 200);
    attempt(kCrear, 1, Outcome::Ok, 201);
    attempt(kReservar, 1, Outcome::Ok, 200);
    attempt(kCobrar, 1, Outcome::Unknown, 503);
    attempt(kCobrar, 2, Outcome::Ok, 200);
    attempt(kConfirmar, 1, Outcome::Ok, 200);
    CHECK(rules_of(h).empty());
    h.calls[3].outcome = Outcome::Failed;  // the 503 read as a refusal, then retried
    CHECK(breaks(h, "answer-reading"));
    CHECK(breaks(h, "refusal-not-retried"));
    h.calls[3].status = 409;  // a real refusal: reading it is right, retrying it is not
    CHECK_FALSE(breaks(h, "answer-reading"));
    CHECK(breaks(h, "refusal-not-retried"));
  }
  SECTION("a refused step before or at the pivot called again") {
    Builder b;
    b.call(kBuscar, false, 1, Outcome::Ok)
        .call(kCrear, false, 1, Outcome::Ok)
        .call(kReservar, false, 1, Outcome::Ok)
        .call(kCobrar, false, 1, Outcome::Failed)
        .call(kCobrar, false, 2, Outcome::Ok)
        .call(kConfirmar, false, 1, Outcome::Ok)
        .ends(Estado::Completada);
    CHECK(breaks(b.h, "refusal-not-retried"));
    // After the pivot, a refused step is retried until it succeeds.
    Builder after;
    after.call(kBuscar, false, 1, Outcome::Ok)
        .call(kCrear, false, 1, Outcome::Ok)
        .call(kReservar, false, 1, Outcome::Ok)
        .call(kCobrar, false, 1, Outcome::Ok)
        .call(kConfirmar, false, 1, Outcome::Failed)
        .call(kConfirmar, false, 2, Outcome::Ok)
        .ends(Estado::Completada);
    CHECK(rules_of(after.h).empty());
  }
  SECTION("compensations out of order") {
    Builder b;
    b.call(kBuscar, false, 1, Outcome::Ok)
        .call(kCrear, false, 1, Outcome::Ok)
        .call(kReservar, false, 1, Outcome::Ok)
        .call(kCobrar, false, 1, Outcome::Failed)
        .call(kCrear, true, 1, Outcome::Ok, "compra_1")
        .call(kReservar, true, 1, Outcome::Ok, "reserva_1")
        .ends(Estado::Compensada);
    CHECK(breaks(b.h, "compensation-order"));
  }
  SECTION("a step left uncompensated, also one whose outcome was unknown") {
    Builder b;
    b.call(kBuscar, false, 1, Outcome::Ok)
        .call(kCrear, false, 1, Outcome::Ok)
        .call(kReservar, false, 1, Outcome::Unknown)
        .call(kReservar, false, 2, Outcome::Unknown)
        .call(kCrear, true, 1, Outcome::Ok, "compra_1")
        .ends(Estado::Compensada);
    CHECK(breaks(b.h, "uncompensated-step"));
  }
  SECTION("a step refused on a retry, after an attempt of unknown outcome, left uncompensated") {
    // Attempt 1 may still be in flight (a hang) and reserve after the saga ended.
    Builder b;
    b.call(kBuscar, false, 1, Outcome::Ok)
        .call(kCrear, false, 1, Outcome::Ok)
        .call(kReservar, false, 1, Outcome::Unknown)
        .call(kReservar, false, 2, Outcome::Failed)
        .call(kCrear, true, 1, Outcome::Ok, "compra_1")
        .ends(Estado::Compensada);
    CHECK(breaks(b.h, "uncompensated-step"));
  }
  SECTION("a forward call while compensating") {
    auto b = compensated();
    b.call(kConfirmar, false, 1, Outcome::Ok);
    CHECK(breaks(b.h, "forward-after-compensation"));
  }
  SECTION("a compensation after the pivot succeeded") {
    Builder b;
    b.call(kBuscar, false, 1, Outcome::Ok)
        .call(kCrear, false, 1, Outcome::Ok)
        .call(kReservar, false, 1, Outcome::Ok)
        .call(kCobrar, false, 1, Outcome::Ok)
        .call(kCrear, true, 1, Outcome::Ok, "compra_1")
        .ends(Estado::Compensada);
    CHECK(breaks(b.h, "compensation-after-pivot"));
  }
  SECTION("another idempotency key on a retry") {
    Builder b;
    b.call(kBuscar, false, 1, Outcome::Ok)
        .call(kCrear, false, 1, Outcome::Unknown)
        .call(kCrear, false, 2, Outcome::Ok, "", "s1:crear_compra:2")
        .ends(Estado::EnCurso);
    CHECK(breaks(b.h, "idempotency-key"));
  }
  SECTION("a compensation without the id its forward call returned") {
    auto b = compensated();
    b.h.calls[6].id_sent = "";  // the reservation's compensation lost reserva_1
    CHECK(breaks(b.h, "compensation-output"));
  }
  SECTION("a call before its cause is logged") {
    auto b = compensated();
    b.h.calls[2].logged = b.h.calls[1].logged;
    CHECK(breaks(b.h, "log-before-call"));
  }
  SECTION("a step called again after its success was logged (a recovery from the start)") {
    auto b = compensated();
    auto again = b.h.calls[1];
    again.logged = b.h.log.size();
    b.h.calls.insert(b.h.calls.begin() + 3, again);
    CHECK(breaks(b.h, "repeated-step"));
  }
  SECTION("a completed saga that compensated") {
    Builder b;
    b.call(kBuscar, false, 1, Outcome::Ok).call(kCrear, false, 1, Outcome::Ok).call(kCrear, true, 1, Outcome::Ok, "compra_1");
    b.ends(Estado::Completada);
    CHECK(breaks(b.h, "completed-with-compensation"));
  }
}

TEST_CASE("snapshots give the checker the attempts, and it checks what they show", "[history]") {
  Json states{{"orquestador",
               {{"sagas",
                 {{{"saga_id", "s1"},
                   {"estado", "compensada"},
                   {"intentos",
                    {{{"paso", "buscar_producto"}, {"intento", 1}, {"compensacion", false}, {"resultado", "ok"}},
                     {{"paso", "crear_compra"}, {"intento", 1}, {"compensacion", false}, {"resultado", "ok"}},
                     {{"paso", "reservar_stock"}, {"intento", 1}, {"compensacion", false}, {"resultado", "unknown"}},
                     {{"paso", "reservar_stock"}, {"intento", 2}, {"compensacion", false}, {"resultado", "unknown"}},
                     {{"paso", "crear_compra"}, {"intento", 1}, {"compensacion", true}, {"resultado", "ok"}}}}}}}}}};
  auto report = check_invariants(states);
  bool found = false;
  for (const auto& v : report.violations) found = found || (v.invariant == 7 && v.rule == "uncompensated-step");
  CHECK(found);
}
