// Error-controlled integration of y' = f(t, y) with SUNDIALS ARKODE (explicit Runge-Kutta,
// Dormand-Prince 5(4) with embedded error estimate and dense output).
#pragma once

#include <functional>
#include <memory>
#include <string>

#include "dln/core/types.hpp"

namespace dln {

struct OdeOptions {
  double rtol = 1e-8;           // relative tolerance of the local error test
  double atol = 1e-12;          // absolute tolerance
  long max_steps = 10'000'000;  // per advance() call
  bool IsValid(std::string* error) const;
};

struct OdeStats {
  long rhs_evals = 0;            // evaluations of f (gradient evaluations for gradient flow)
  long steps = 0;                // accepted steps
  long attempts = 0;             // attempted steps
  long error_test_failures = 0;  // rejected steps
};

class OdeIntegrator {
 public:
  using Rhs = std::function<void(double t, const double* y, double* ydot)>;
  // n: state size; y0: initial state at t0.
  OdeIntegrator(Index n, Rhs rhs, const OdeOptions& options, double t0, const double* y0);
  ~OdeIntegrator();
  OdeIntegrator(const OdeIntegrator&) = delete;
  OdeIntegrator& operator=(const OdeIntegrator&) = delete;

  // Integrates to time t (>= the last one) and writes y(t), interpolated by the method's dense
  // output when the solver stepped past t. Throws Error when the solver fails.
  void advance(double t, double* y);
  OdeStats stats() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace dln
