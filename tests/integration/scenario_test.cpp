// sagactl run: bad files are refused before anything runs, a scenario whose
// expectation does not happen fails, JUnit and HTML outputs, and a shrunk
// case from the simulator fails on the real stack exactly when the bug is there.

#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>
#include <set>
#include <regex>
#include <sstream>

#include "process.hpp"

using namespace testsupport;

namespace {

CmdResult sh(const std::string& cmd) { return run_command(cmd); }

std::string sagactl() { return "'" + bin("sagactl") + "'"; }

std::string write(const TempDir& d, const std::string& name, const std::string& text) {
  auto path = d.path() + "/" + name;
  std::ofstream(path) << text;
  return path;
}

std::string slurp(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

}  // namespace

TEST_CASE("bad scenario files stop the run before anything runs, naming file and line", "[scenarios]") {
  TempDir d;
  struct Case {
    std::string text, expect;
  };
  for (const auto& c : std::vector<Case>{
           {"name: x\ndescription: y\nsteps:\n  - buy: {user: [1, 2\n", "YAML syntax error"},
           {"name: x\ndescription: y\nsteps:\n  - buy: {user: a}\ncolour: blue\n", ":5: unknown key 'colour'"},
           {"name: x\ndescription: y\nsteps:\n  - buy: {qty: many}\n", ":4: steps[0].buy.qty must be an integer"},
           {"name: x\ndescription: y\nsteps:\n  - dance: true\n", ":4: unknown step 'dance'"},
           {"name: x\ndescription: y\nsteps:\n  - inject: {service: pagos, action: explode}\n", "unknown action 'explode'"},
           {"name: x\nsteps:\n  - buy: {}\n", "needs a 'description'"},
           {"name: x\ndescription: y\nsteps:\n  - inject: {service: billing, action: error}\n", "unknown service 'billing'"},
           // Only a crash applies at a saga-log point (an error there was accepted and did nothing).
           {"name: x\ndescription: y\nsteps:\n  - inject: {service: orquestador, action: error, endpoint: 'log:cobrar_pago:after'}\n",
            ":4: steps[0].inject: fault rule field 'action': at a saga-log point"},
           // An endpoint the service does not have: refused at its line, with the ones it has.
           {"name: x\ndescription: y\nfaults:\n  - {service: inventario, action: error, endpoint: reserva}\nsteps:\n  - buy: {}\n",
            ":4: faults[0]: fault rule field 'endpoint': unknown endpoint 'reserva'; expected one of transaccion"},
           // The real line and the accepted form; the location once.
           {"name: x\ndescription: y\nsteps:\n  - buy: {}\n  - sleep: {}\n", ":5: steps[1].sleep needs 'ms', e.g. sleep: {ms: 500}"},
           {"name: x\ndescription: y\nsteps:\n  - crash: [pagos]\n", "b-bad.yaml:4: steps[0].crash names one program"},
           // A typo in a product's stock key.
           {"name: x\ndescription: y\nsetup:\n  stock: {LAPTOPP: 5}\nsteps:\n  - buy: {}\n",
            ":4: setup.stock: unknown product 'LAPTOPP'; the products are: AURICULARES, LAPTOP"}}) {
    INFO(c.text);
    auto good = write(d, "a-good.yaml", "name: ok\ndescription: fine\nsteps:\n  - buy: {user: a}\n");
    auto bad = write(d, "b-bad.yaml", c.text);
    auto r = sh(sagactl() + " run " + good + " " + bad);
    CHECK(r.code == 2);
    CHECK_THAT(r.out, Catch::Contains(bad));
    CHECK_THAT(r.out, Catch::Contains(c.expect));
    CHECK_THAT(r.out, !Catch::Contains("started a local stack"));  // nothing ran
    CHECK_THAT(r.out, !Catch::Contains("b-bad.yaml:4: " + bad));        // the location once
  }
}

TEST_CASE("a scenario whose expectation does not happen fails, with JUnit and HTML saying so", "[scenarios]") {
  TempDir d;
  auto passing = write(d, "a.yaml", R"(name: pasa
description: a purchase with every service healthy completes
steps:
  - buy: {user: ana, product: Laptop Gamer, expect: completada, label: compra}
expect:
  sagas: {compra: completada}
  outcomes: {completada: 1}
)");
  auto failing = write(d, "b.yaml", R"(name: falla
description: expects a completed purchase while ms-pagos refuses every charge, so it must fail
faults:
  - {service: pagos, action: error, status: 503, endpoint: transaccion}
steps:
  - buy: {user: ana, product: Laptop Gamer, expect: completada}
expect:
  outcomes: {completada: 1}
  fired:
    - {service: pagos, action: error, min: 1}
)");
  auto junit = d.path() + "/junit.xml", report = d.path() + "/report.html";
  auto r = sh(sagactl() + " run " + passing + " " + failing + " --junit " + junit + " --report " + report);
  INFO(r.out);
  CHECK(r.code == 1);
  CHECK_THAT(r.out, Catch::Contains("✘ falla") || Catch::Contains("falla"));
  CHECK_THAT(r.out, Catch::Contains("replay: sagactl run " + failing));
  CHECK_THAT(r.out, Catch::Contains("1 of 2 scenarios failed"));
  auto lint = sh("xmllint --noout " + junit);
  INFO(lint.out);
  CHECK(lint.code == 0);
  auto xml = slurp(junit);
  // One test case per scenario: one failure for the failed one, its expectations as the message.
  CHECK_THAT(xml, Catch::Contains("<testsuites name=\"sagalab scenarios\" tests=\"2\" failures=\"1\""));
  CHECK_THAT(xml, Catch::Contains("<testsuite name=\"pasa\" tests=\"1\" failures=\"0\""));
  CHECK_THAT(xml, Catch::Contains("<testsuite name=\"falla\" tests=\"1\" failures=\"1\""));
  CHECK_THAT(xml, Catch::Contains("<failure message=\"line 6: buy Laptop Gamer -&gt; completada: expected completada"));
  CHECK_THAT(xml, Catch::Contains("expect: outcomes.completada = 1: got 0"));
  auto html = slurp(report);
  CHECK_THAT(html, Catch::Contains("<svg"));
  CHECK_THAT(html, Catch::Contains("cobrar_pago"));
  CHECK_THAT(html, Catch::Contains("⚡error"));
}

TEST_CASE("the HTML report marks a fault only on the attempt it hit, and durations are rounded", "[scenarios][report]") {
  TempDir d;
  auto file = write(d, "c.yaml", R"(name: marcas
description: ms-pagos refuses the first charge with a 503; the retry succeeds
faults:
  - {service: pagos, action: error, status: 503, endpoint: transaccion, times: 1}
steps:
  - buy: {user: ana, product: Laptop Gamer, expect: completada}
expect:
  outcomes: {completada: 1}
)");
  auto report = d.path() + "/report.html";
  auto r = sh(sagactl() + " run " + file + " --report " + report);
  INFO(r.out);
  REQUIRE(r.code == 0);
  auto html = slurp(report);
  // One row per attempt, each starting with its label: only cobrar_pago #1 carries the mark.
  std::vector<std::string> marked, rows;
  const std::string label = "<text x='2' y='";
  for (auto at = html.find(label); at != std::string::npos;) {
    auto next = html.find(label, at + 1);
    auto row = html.substr(at, next == std::string::npos ? std::string::npos : next - at);
    auto name = row.substr(row.find('>') + 1, row.find("</text>") - row.find('>') - 1);
    rows.push_back(name);
    if (row.find("⚡") != std::string::npos) marked.push_back(name);
    at = next;
  }
  INFO(html);
  CHECK(rows.size() >= 6);  // five steps and the retried charge
  REQUIRE(marked.size() == 1);
  CHECK(marked[0] == "cobrar_pago #1");
  // "0.1 s", not "0.115281 s".
  CHECK(std::regex_search(html, std::regex(R"(seed \d+, \d+\.\d s<)")));
}

TEST_CASE("a labelled purchase cut off by an orchestrator crash is found again by its idempotency key", "[scenarios]") {
  TempDir d;
  auto crash = write(d, "crash.yaml", R"(name: cortada
description: the orchestrator dies right after the charge is logged; the client gets no answer, recovery completes the saga
faults:
  - {service: orquestador, action: crash-after, endpoint: 'log:cobrar_pago:after', times: 1}
steps:
  - buy: {user: ana, product: Laptop Gamer, expect: any, label: cortada}
  - wait-until-quiet: {}
expect:
  invariants: true
  sagas: {cortada: completada}
  outcomes: {completada: 1}
)");
  auto r = sh(sagactl() + " run " + crash);
  INFO(r.out);
  CHECK(r.code == 0);
  CHECK_THAT(r.out, !Catch::Contains("got no saga id"));
}

TEST_CASE("a partial setup.stock adjusts the products it names and keeps the others, and expect.stock checks it", "[scenarios]") {
  TempDir d;
  auto f = write(d, "stock.yaml", R"(name: stock-parcial
description: two laptops in stock, the mouse keeps its own stock; a mouse purchase takes one of those
setup:
  stock: {LAPTOP: 2}
steps:
  - buy: {user: ana, product: Mouse Inalámbrico, expect: completada}
expect:
  stock: {LAPTOP: 2, MOUSE: 9}
)");
  auto r = sh(sagactl() + " run " + f);
  INFO(r.out);
  CHECK(r.code == 0);
  // And a wrong expectation fails, naming what it got.
  auto wrong = write(d, "wrong.yaml", R"(name: stock-esperado-mal
description: expects a stock that is not there, so it must fail
steps:
  - buy: {user: ana, product: Mouse Inalámbrico, expect: completada}
expect:
  stock: {MOUSE: 10}
)");
  auto w = sh(sagactl() + " run " + wrong);
  INFO(w.out);
  CHECK(w.code == 1);
  CHECK_THAT(w.out, Catch::Contains("expect: stock.MOUSE = 10: got 9"));
}

namespace {

// Two scenarios (one failing, one with a fault and a crash), their report written.
std::string write_report_of_two(const TempDir& d) {
  auto good = write(d, "good.yaml", R"(name: la-buena
description: one purchase completes and one is refused by ms-pagos, then compensated
steps:
  - buy: {user: ana, product: Laptop Gamer, expect: completada, label: primera}
  - inject: {service: pagos, action: error, status: 409, endpoint: transaccion, times: 1}
  - buy: {user: bruno, product: Mouse Inalámbrico, expect: compensada, label: rechazada-por-pagos}
expect:
  outcomes: {completada: 1, compensada: 1}
)");
  auto bad = write(d, "bad.yaml", R"(name: la-que-falla
description: expects two completed purchases while the orchestrator crashes once, to fail visibly
faults:
  - {service: orquestador, action: crash-after, endpoint: 'log:reservar_stock:after', times: 1}
steps:
  - buy: {user: carla, product: Teclado Mecánico, expect: any, label: cortada}
  - wait-until-quiet: {}
expect:
  outcomes: {completada: 2}
)");
  auto report = d.path() + "/report.html";
  auto r = sh(sagactl() + " run " + good + " " + bad + " --report " + report);
  INFO(r.out);
  CHECK(r.code == 1);
  return report;
}

}  // namespace

TEST_CASE("the HTML report reads at a glance: a summary of every scenario, labels, a legend, one scale per scenario", "[scenarios][report]") {
  TempDir d;
  auto html = slurp(write_report_of_two(d));
  auto summary = html.substr(html.find("<table id='summary'>"), html.find("</table>") - html.find("<table id='summary'>"));
  CHECK_THAT(summary, Catch::Contains("la-buena") && Catch::Contains("la-que-falla"));
  CHECK_THAT(summary, Catch::Contains("passed") && Catch::Contains("FAILED"));
  CHECK_THAT(summary, Catch::Contains("compensada 1, completada 1"));  // sagas by outcome
  CHECK_THAT(summary, Catch::Contains("error 1"));                      // faults fired
  CHECK_THAT(html, Catch::Contains("<b>primera</b>") && Catch::Contains("<b>rechazada-por-pagos</b>"));
  CHECK_THAT(html, Catch::Contains("<b>cortada</b>"));
  CHECK_THAT(html, Catch::Contains("class='legend'"));
  CHECK_THAT(html, Catch::Contains("✖ orchestrator crash"));  // drawn on the row, not only in a hover title
  // The two sagas of the first scenario share one scale: the same end tick.
  auto first = html.substr(html.find("id='s1'"), html.find("id='s2'") - html.find("id='s1'"));
  std::regex end_tick("text-anchor='end'>([0-9]+) ms<");
  std::set<std::string> ends;
  for (auto it = std::sregex_iterator(first.begin(), first.end(), end_tick); it != std::sregex_iterator(); ++it)
    ends.insert((*it)[1]);
  CHECK(ends.size() == 1);
}

// In headless Chromium (tests/integration/report_test.sh: skipped where it is not installed).
TEST_CASE("the HTML report renders in Chromium and fits 1,000 px without a horizontal scroll", "[.chromium]") {
  TempDir d;
  auto report = write_report_of_two(d);
  // A copy that measures itself once rendered (the report itself has no script).
  auto measured = d.path() + "/measured.html";
  std::ofstream(measured) << slurp(report) << "<script>document.body.insertAdjacentHTML('beforeend', '<div id=\"m\">W=' + "
                             "document.documentElement.scrollWidth + ' V=' + window.innerWidth + ' R=' + "
                             "document.querySelectorAll('#summary tr').length + '</div>');</script>\n";
  auto chrome = std::string("chromium --headless --no-sandbox --disable-gpu --hide-scrollbars --window-size=1000,900 ");
  auto dom = run_command(chrome + "--dump-dom file://" + measured + " 2>/dev/null", false);
  INFO(dom.out.substr(0, 3000));
  REQUIRE(dom.code == 0);
  std::smatch m;
  auto text = dom.out;
  REQUIRE(std::regex_search(text, m, std::regex("W=([0-9]+) V=([0-9]+) R=([0-9]+)")));
  CHECK(std::stoi(m[1]) <= std::stoi(m[2]));  // no horizontal scroll at 1,000 px
  CHECK(std::stoi(m[2]) <= 1000);
  CHECK(std::stoi(m[3]) == 3);  // the header and one row per scenario
  auto png = d.path() + "/report.png";
  auto shot = run_command(chrome + "--screenshot=" + png + " file://" + report + " 2>/dev/null", false);
  CHECK(shot.code == 0);
  CHECK(std::filesystem::exists(png));
  CHECK(std::filesystem::file_size(png) > 10000);  // a page was drawn, not a blank
}
