// ms-catalogo: the product catalog (read-only), on port 5001 by default.
#include "sagalab/service_app.hpp"

int main(int argc, char** argv) {
  std::string catalog_file;
  sagalab::ServiceSpec spec;
  spec.program = "ms-catalogo";
  spec.default_port = 5001;
  spec.description = "sagalab ms-catalogo: product catalog service";
  spec.add_options = [&](CLI::App& app) {
    app.add_option("--catalog", catalog_file, "JSON list of products (default: the original five)")
        ->envname("CATALOG_FILE");
  };
  spec.make_logic = [&] {
    auto catalog = catalog_file.empty() ? sagalab::default_catalog()
                                        : sagalab::parse_catalog(sagalab::read_json_file(catalog_file));
    return sagalab::make_catalogo(std::move(catalog));
  };
  return sagalab::run_service(argc, argv, spec);
}
