// The Docker Compose stack and the image, checked without a Docker engine:
// `docker-compose config` parses and normalises the compose file, and the
// Dockerfile's build stage installs exactly what scripts/install-deps.sh does.
#include <yaml-cpp/yaml.h>

#include <catch2/catch.hpp>

#include "process.hpp"
#include <fstream>
#include <regex>
#include <set>
#include <sstream>

namespace {

std::string run(const std::string& cmd) {
  auto r = testsupport::run_command(cmd, false);
  REQUIRE(r.code == 0);
  return r.out;
}

const std::string kSrc = SAGALAB_SOURCE_DIR;

struct Svc {
  std::string name, router, prefix;
  int port;
  int workers;
};

const std::vector<Svc> kServices = {{"orquestador", "orquestador", "/orquestador", 5000, 4},
                                    {"ms-catalogo", "ms_catalogo", "/ms_catalogo", 5001, 2},
                                    {"ms-compras", "ms_compras", "/ms_compras", 5002, 2},
                                    {"ms-pagos", "ms_pagos", "/ms_pagos", 5003, 2},
                                    {"ms-inventario", "ms_inventario", "/ms_inventario", 5004, 2}};

}  // namespace

TEST_CASE("docker-compose.yml: routers, middlewares, ports, health checks, volumes, network", "[deploy]") {
  auto text = run("cd '" + kSrc + "' && docker-compose -f docker-compose.yml config 2>/dev/null");
  YAML::Node cfg = YAML::Load(text);
  auto services = cfg["services"];
  REQUIRE(services.size() == 7);  // traefik, the five programs, and the scale profile's postgres
  CHECK(services["postgres"]["profiles"][0].as<std::string>() == "scale");

  auto traefik = services["traefik"];
  auto image = traefik["image"].as<std::string>();
  std::smatch m;
  REQUIRE(std::regex_match(image, m, std::regex(R"(traefik:v3\.(\d+)\.(\d+))")));
  CHECK((std::stoi(m[1]) > 6 || (std::stoi(m[1]) == 6 && std::stoi(m[2]) >= 1)));
  std::set<std::string> cmd;
  for (const auto& c : traefik["command"]) cmd.insert(c.as<std::string>());
  CHECK(cmd.count("--providers.docker=true"));
  CHECK(cmd.count("--providers.docker.exposedbydefault=false"));
  CHECK(cmd.count("--entrypoints.web.address=:80"));
  std::set<std::string> ports;
  for (const auto& p : traefik["ports"]) ports.insert(std::to_string(p["published"].as<int>()) + ":" + std::to_string(p["target"].as<int>()));
  CHECK(ports == std::set<std::string>{"80:80", "8080:8080"});

  for (const auto& s : kServices) {
    INFO(s.name);
    auto svc = services[s.name];
    REQUIRE(svc);
    auto labels = svc["labels"];
    auto label = [&](const std::string& k) { return labels[k] ? labels[k].as<std::string>() : std::string(); };
    CHECK(label("traefik.enable") == "true");
    CHECK(label("traefik.http.routers." + s.router + ".rule") == "PathPrefix(`" + s.prefix + "`)");
    CHECK(label("traefik.http.routers." + s.router + ".entrypoints") == "web");
    CHECK(label("traefik.http.routers." + s.router + ".middlewares") == s.router + "-strip");
    CHECK(label("traefik.http.middlewares." + s.router + "-strip.stripprefix.prefixes") == s.prefix);
    CHECK(label("traefik.http.services." + s.router + ".loadbalancer.server.port") == std::to_string(s.port));
    CHECK(label("traefik.http.services." + s.router + ".loadbalancer.healthcheck.path") == "/health");
    CHECK(svc["environment"]["PORT"].as<std::string>() == std::to_string(s.port));
    CHECK(svc["environment"]["WORKERS"].as<std::string>() == std::to_string(s.workers));
    CHECK(svc["environment"]["SAGA_ADMIN_TOKEN"].as<std::string>() == "sagalab-local");
    CHECK(svc["healthcheck"]["test"][1].as<std::string>() == "/usr/local/bin/" + s.name);
    CHECK(svc["healthcheck"]["test"][2].as<std::string>() == "--health-check");
    CHECK(svc["volumes"][0].as<std::string>() == s.name + "-data:/data:rw");
    CHECK(svc["networks"]["carlosred"]);
    CHECK(svc["build"]["dockerfile"].as<std::string>() == "deploy/Dockerfile");
    CHECK(svc["environment"]["SAGA_STORE"].as<std::string>() == "sqlite");  // without the scale profile
    CHECK(svc["deploy"]["replicas"].as<int>() == 1);
  }
  auto orq = services["orquestador"];
  CHECK(orq["environment"]["MS_CATALOGO_URL"].as<std::string>() == "http://ms-catalogo:5001");
  CHECK(orq["environment"]["MS_COMPRAS_URL"].as<std::string>() == "http://ms-compras:5002");
  CHECK(orq["environment"]["MS_PAGOS_URL"].as<std::string>() == "http://ms-pagos:5003");
  CHECK(orq["environment"]["MS_INVENTARIO_URL"].as<std::string>() == "http://ms-inventario:5004");
  for (const char* dep : {"ms-catalogo", "ms-compras", "ms-pagos", "ms-inventario"})
    CHECK(orq["depends_on"][dep]["condition"].as<std::string>() == "service_healthy");

  auto net = cfg["networks"]["carlosred"];
  REQUIRE(net);
  CHECK(net["name"].as<std::string>() == "carlosred");
  CHECK_FALSE(net["external"]);
  for (const auto& s : kServices) CHECK(cfg["volumes"][s.name + "-data"]);
}

TEST_CASE("the scale profile (deploy/scale.env): PostgreSQL, and two of every program sharing it", "[deploy]") {
  auto text = run("cd '" + kSrc + "' && docker-compose --env-file deploy/scale.env -f docker-compose.yml config 2>/dev/null");
  YAML::Node cfg = YAML::Load(text);
  auto services = cfg["services"];
  REQUIRE(services["postgres"]);
  CHECK(services["postgres"]["build"]["target"].as<std::string>() == "postgres");
  CHECK(services["postgres"]["healthcheck"]["test"][1].as<std::string>() == "pg_isready");
  for (const auto& s : kServices) {
    INFO(s.name);
    CHECK(services[s.name]["environment"]["SAGA_STORE"].as<std::string>() ==
          "postgresql://sagalab@postgres:5432/sagalab");
    CHECK(services[s.name]["deploy"]["replicas"].as<int>() == 2);
  }
}

TEST_CASE("the Dockerfile's build stage installs exactly the install script's packages", "[deploy]") {
  std::set<std::string> script;
  std::istringstream list(run("bash '" + kSrc + "/scripts/install-deps.sh' --list"));
  for (std::string line; std::getline(list, line);) {
    if (!line.empty()) script.insert(line);
  }
  std::ifstream df(kSrc + "/deploy/Dockerfile");
  std::stringstream ss;
  ss << df.rdbuf();
  auto text = ss.str();
  auto build_start = text.find("AS build");
  auto build_end = text.find("FROM ", build_start);
  REQUIRE(build_start != std::string::npos);
  auto stage = text.substr(build_start, build_end - build_start);
  auto install = stage.find("--no-install-recommends");
  REQUIRE(install != std::string::npos);
  auto until = stage.find("&&", install);
  std::istringstream words(stage.substr(install + 23, until - install - 23));
  std::set<std::string> docker;
  for (std::string w; words >> w;) {
    if (w != "\\") docker.insert(w);
  }
  CHECK(docker == script);
  CHECK(script.count("libcpp-httplib-dev"));
}

TEST_CASE("deploy/prometheus scrapes the five programs and Traefik as compose runs them", "[deploy][metrics]") {
  YAML::Node prom = YAML::LoadFile(kSrc + "/deploy/prometheus/prometheus.yml");
  auto compose = YAML::Load(run("cd '" + kSrc + "' && docker-compose -f docker-compose.yml config 2>/dev/null"));
  std::map<std::string, YAML::Node> jobs;
  for (std::size_t i = 0; i < prom["scrape_configs"].size(); ++i) {
    YAML::Node j = prom["scrape_configs"][i];
    jobs.emplace(j["job_name"].as<std::string>(), j);
  }
  REQUIRE(jobs.count("sagalab"));
  REQUIRE(jobs.count("traefik"));
  const auto& sagalab = jobs["sagalab"];
  CHECK(sagalab["metrics_path"].as<std::string>() == "/metrics");
  // The token Prometheus sends is the one compose gives the programs by default.
  auto token = sagalab["authorization"]["credentials"].as<std::string>();
  std::set<std::string> targets;
  for (const auto& sc : sagalab["static_configs"])
    for (const auto& t : sc["targets"]) targets.insert(t.as<std::string>());
  CHECK(targets.size() == kServices.size());
  for (const auto& s : kServices) {
    INFO(s.name);
    auto env = compose["services"][s.name]["environment"];
    REQUIRE(env);
    CHECK(targets.count(s.name + ":" + env["PORT"].as<std::string>()) == 1);
    CHECK(env["SAGA_ADMIN_TOKEN"].as<std::string>() == token);
  }
  // Traefik exposes its metrics on its own entry point (:8080) and logs each request.
  std::string cmd;
  for (const auto& c : compose["services"]["traefik"]["command"]) cmd += c.as<std::string>() + " ";
  CHECK_THAT(cmd, Catch::Contains("--metrics.prometheus=true"));
  CHECK_THAT(cmd, Catch::Contains("--metrics.prometheus.entrypoint=traefik"));
  CHECK_THAT(cmd, Catch::Contains("--accesslog=true"));
  CHECK(jobs["traefik"]["static_configs"][0]["targets"][0].as<std::string>() == "traefik:8080");
  YAML::Node local = YAML::LoadFile(kSrc + "/deploy/traefik/traefik.yml");
  CHECK(local["metrics"]["prometheus"]["entryPoint"].as<std::string>() == "traefik");
  CHECK(local["entryPoints"]["traefik"]["address"].as<std::string>() == ":8080");
  CHECK(local["accessLog"]["format"].as<std::string>() == "json");
}
