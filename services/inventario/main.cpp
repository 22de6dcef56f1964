// ms-inventario: stock and reservations, port 5004 by default.
#include "sagalab/service_app.hpp"

int main(int argc, char** argv) {
  std::string stock_file, catalog_file;
  sagalab::ServiceSpec spec;
  spec.program = "ms-inventario";
  spec.default_port = 5004;
  spec.description = "sagalab ms-inventario: stock reservation service";
  spec.add_options = [&](CLI::App& app) {
    app.add_option("--stock", stock_file, "JSON object of initial stock, e.g. {\"LAPTOP\": 5}")
        ->envname("STOCK_FILE");
    app.add_option("--catalog", catalog_file, "JSON list of products, to resolve product ids")
        ->envname("CATALOG_FILE");
  };
  spec.make_logic = [&] {
    auto catalog = catalog_file.empty() ? sagalab::default_catalog()
                                        : sagalab::parse_catalog(sagalab::read_json_file(catalog_file));
    auto stock = stock_file.empty() ? sagalab::default_stock()
                                    : sagalab::parse_stock(sagalab::read_json_file(stock_file));
    return sagalab::make_inventario(std::move(catalog), std::move(stock));
  };
  return sagalab::run_service(argc, argv, spec);
}
