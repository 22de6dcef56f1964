// ms-pagos: payments (aprobado | reembolsado), port 5003 by default.
#include "sagalab/service_app.hpp"

int main(int argc, char** argv) {
  sagalab::ServiceSpec spec;
  spec.program = "ms-pagos";
  spec.default_port = 5003;
  spec.description = "sagalab ms-pagos: payment service";
  spec.make_logic = [] { return sagalab::make_pagos(); };
  return sagalab::run_service(argc, argv, spec);
}
