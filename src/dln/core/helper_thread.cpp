#include "dln/core/helper_thread.hpp"

namespace dln {

namespace {

// ~20-50 us of spinning before sleeping: longer than the gap between two phases of a step.
constexpr int kSpins = 4000;

inline void cpu_relax() {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#else
  std::this_thread::yield();
#endif
}

}  // namespace

HelperThread::HelperThread() : thread_([this] { loop(); }) {}

HelperThread::~HelperThread() {
  stop_.store(true, std::memory_order_relaxed);
  epoch_.fetch_add(1, std::memory_order_release);
  epoch_.notify_one();
  thread_.join();
}

void HelperThread::loop() {
  unsigned seen = 0;
  for (;;) {
    unsigned e = epoch_.load(std::memory_order_acquire);
    for (int i = 0; e == seen && i < kSpins; ++i) {
      cpu_relax();
      e = epoch_.load(std::memory_order_acquire);
    }
    if (e == seen) {
      epoch_.wait(seen, std::memory_order_acquire);
      continue;
    }
    seen = e;
    if (stop_.load(std::memory_order_relaxed)) return;
    task_(arg_);
    done_.store(seen, std::memory_order_release);
    done_.notify_one();
  }
}

void HelperThread::wait_done(unsigned epoch) {
  unsigned d = done_.load(std::memory_order_acquire);
  for (int i = 0; d != epoch && i < kSpins; ++i) {
    cpu_relax();
    d = done_.load(std::memory_order_acquire);
  }
  while (d != epoch) {
    done_.wait(d, std::memory_order_acquire);
    d = done_.load(std::memory_order_acquire);
  }
}

}  // namespace dln
