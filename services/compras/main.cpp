// ms-compras: purchases (pendiente -> confirmada | cancelada), port 5002 by default.
#include "sagalab/service_app.hpp"

int main(int argc, char** argv) {
  sagalab::ServiceSpec spec;
  spec.program = "ms-compras";
  spec.default_port = 5002;
  spec.description = "sagalab ms-compras: purchase records service";
  spec.make_logic = [] { return sagalab::make_compras(); };
  return sagalab::run_service(argc, argv, spec);
}
