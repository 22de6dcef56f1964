// The proxy's admin listener: the same /admin/faults API as sagalab's services.
#include "sagalab/errors.hpp"
#include "sagalab/http_server.hpp"
#include "sagalab/proxy.hpp"

namespace sagalab::proxy {

void register_admin_routes(HttpServer& srv, Faults& faults, Server& server) {
  srv.Get("/health", [](const sagalab::HttpRequest&, httplib::Response& res) {
    send_json(res, 200, {{"status", "ok"}, {"service", "proxy"}});
  });
  srv.Get("/admin/faults", [&faults](const sagalab::HttpRequest&, httplib::Response& res) {
    send_json(res, 200, {{"rules", faults.rules_json()}, {"actions", action_names()}});
  });
  srv.Post("/admin/faults", [&faults](const sagalab::HttpRequest& req, httplib::Response& res) {
    send_json(res, 201, {{"success", true}, {"ids", faults.add(parse_body(req))}});
  });
  srv.Delete("/admin/faults", [&faults](const sagalab::HttpRequest&, httplib::Response& res) {
    faults.clear();
    send_json(res, 200, {{"success", true}});
  });
  srv.Delete(R"(/admin/faults/(\d{1,15}))", [&faults](const sagalab::HttpRequest& req, httplib::Response& res) {
    auto id = std::stoll(req.matches[1].str());
    if (!faults.remove(id)) throw not_found("no fault rule with id " + std::to_string(id));
    send_json(res, 200, {{"success", true}});
  });
  srv.Get("/admin/faults/fired", [&faults](const sagalab::HttpRequest&, httplib::Response& res) {
    send_json(res, 200, {{"fired", faults.fired_json()}});
  });
  srv.Post("/admin/faults/seed", [&faults](const sagalab::HttpRequest& req, httplib::Response& res) {
    auto body = parse_body(req);
    if (!body.is_object() || !body.contains("seed") || !body["seed"].is_number_unsigned())
      throw bad_request("body must be {\"seed\": <non-negative integer>}");
    faults.reseed(body["seed"].get<std::uint64_t>());
    send_json(res, 200, {{"success", true}});
  });
  srv.Get("/admin/upstreams", [&server](const sagalab::HttpRequest&, httplib::Response& res) {
    send_json(res, 200, {{"upstreams", server.upstreams_json()}});
  });
  srv.Get("/admin/record", [&server](const sagalab::HttpRequest&, httplib::Response& res) {
    auto& r = server.recorder();
    send_json(res, 200, {{"path", r.path().empty() ? Json(nullptr) : Json(r.path())}, {"exchanges", r.written()}});
  });
}

}  // namespace sagalab::proxy
