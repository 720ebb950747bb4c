#include "dln/dynamics/ode.hpp"

#include <arkode/arkode_erkstep.h>
#include <fmt/format.h>
#include <nvector/nvector_serial.h>
#include <sundials/sundials_context.h>

#include <cmath>
#include <cstdlib>
#include <cstring>
#include <string>

namespace dln {

bool OdeOptions::IsValid(std::string* error) const {
  auto fail = [&](const char* m) {
    if (error) *error = m;
    return false;
  };
  if (!std::isfinite(rtol) || rtol <= 0) return fail("optimizer.rtol: must be finite and > 0");
  if (!std::isfinite(atol) || atol <= 0) return fail("optimizer.atol: must be finite and > 0");
  if (max_steps <= 0) return fail("optimizer.max_steps: must be > 0");
  return true;
}

struct OdeIntegrator::Impl {
  SUNContext ctx = nullptr;
  N_Vector y = nullptr;
  void* mem = nullptr;
  Index n = 0;
  Rhs rhs;

  static int f(realtype t, N_Vector y, N_Vector ydot, void* user) {
    auto* self = static_cast<Impl*>(user);
    self->rhs(t, N_VGetArrayPointer(y), N_VGetArrayPointer(ydot));
    for (Index i = 0; i < self->n; ++i)
      if (!std::isfinite(N_VGetArrayPointer(ydot)[i])) return 1;  // recoverable: smaller step
    return 0;
  }
  ~Impl() {
    if (mem) ERKStepFree(&mem);
    if (y) N_VDestroy(y);
    if (ctx) SUNContext_Free(&ctx);
  }
};

OdeIntegrator::OdeIntegrator(Index n, Rhs rhs, const OdeOptions& o, double t0, const double* y0)
    : impl_(std::make_unique<Impl>()) {
  std::string err;
  if (!o.IsValid(&err)) throw Error(err);
  auto& s = *impl_;
  s.n = n;
  s.rhs = std::move(rhs);
  if (SUNContext_Create(nullptr, &s.ctx) != 0) throw Error("ode: cannot create SUNDIALS context");
  s.y = N_VNew_Serial(static_cast<sunindextype>(n), s.ctx);
  std::memcpy(N_VGetArrayPointer(s.y), y0, sizeof(double) * static_cast<std::size_t>(n));
  s.mem = ERKStepCreate(&Impl::f, t0, s.y, s.ctx);
  if (!s.mem) throw Error("ode: ERKStepCreate failed");
  ERKStepSetUserData(s.mem, &s);
  // Failures reach the caller through advance()'s Error; no second report on stderr.
  ERKStepSetErrHandlerFn(
      s.mem, [](int, const char*, const char*, char*, void*) {}, nullptr);
  ERKStepSStolerances(s.mem, o.rtol, o.atol);
  ERKStepSetTableNum(s.mem, ARKODE_DORMAND_PRINCE_7_4_5);
  ERKStepSetMaxNumSteps(s.mem, o.max_steps);
}

OdeIntegrator::~OdeIntegrator() = default;

void OdeIntegrator::advance(double t, double* y) {
  auto& s = *impl_;
  realtype reached = 0;
  const int flag = ERKStepEvolve(s.mem, t, s.y, &reached, ARK_NORMAL);
  if (flag < 0) {
    char* name = ERKStepGetReturnFlagName(flag);  // malloc'ed: the caller frees it
    const std::string why = name ? name : "?";
    std::free(name);
    throw Error(fmt::format("ode: ARKODE failed at t = {} (flag {}: {})", reached, flag, why));
  }
  std::memcpy(y, N_VGetArrayPointer(s.y), sizeof(double) * static_cast<std::size_t>(s.n));
}

OdeStats OdeIntegrator::stats() const {
  OdeStats st;
  long fe = 0;
  ERKStepGetNumRhsEvals(impl_->mem, &fe);
  ERKStepGetNumSteps(impl_->mem, &st.steps);
  ERKStepGetNumStepAttempts(impl_->mem, &st.attempts);
  ERKStepGetNumErrTestFails(impl_->mem, &st.error_test_failures);
  st.rhs_evals = fe;
  return st;
}

}  // namespace dln
