#include "dln/core/helper_thread.hpp"

#if defined(__linux__)
#include <linux/futex.h>
#include <sys/syscall.h>
#include <unistd.h>
#endif

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

// Sleeps while *word == value (the kernel compares atomically, so a change made before the call
// is never missed), and wakes sleepers on `word`. Raw futexes: libstdc++ 12's
// std::atomic::wait/notify lost a wake-up here (a run hung with both threads asleep).
void sleep_while(std::atomic<unsigned>& word, unsigned value) {
#if defined(__linux__)
  syscall(SYS_futex, reinterpret_cast<unsigned*>(&word), FUTEX_WAIT_PRIVATE, value, nullptr,
          nullptr, 0);
#else
  while (word.load(std::memory_order_seq_cst) == value) std::this_thread::yield();
#endif
}
void wake(std::atomic<unsigned>& word) {
#if defined(__linux__)
  syscall(SYS_futex, reinterpret_cast<unsigned*>(&word), FUTEX_WAKE_PRIVATE, 1, nullptr, nullptr,
          0);
#else
  (void)word;
#endif
}

// Waits until word != value: spins, then sleeps with `sleeping` raised. The waker stores word
// and then reads `sleeping` (both seq_cst): either it sees the flag and wakes us, or our futex
// call sees the new word and returns at once.
unsigned await_change(std::atomic<unsigned>& word, unsigned value,
                      std::atomic<unsigned>& sleeping) {
  unsigned now = word.load(std::memory_order_acquire);
  for (int i = 0; now == value && i < kSpins; ++i) {
    cpu_relax();
    now = word.load(std::memory_order_acquire);
  }
  while (now == value) {
    sleeping.store(1, std::memory_order_seq_cst);
    if (word.load(std::memory_order_seq_cst) == value) sleep_while(word, value);
    sleeping.store(0, std::memory_order_relaxed);
    now = word.load(std::memory_order_acquire);
  }
  return now;
}

void publish(std::atomic<unsigned>& word, unsigned value, std::atomic<unsigned>& sleeping) {
  word.store(value, std::memory_order_seq_cst);
  if (sleeping.load(std::memory_order_seq_cst)) wake(word);
}

}  // namespace

HelperThread::HelperThread() : thread_([this] { loop(); }) {}

HelperThread::~HelperThread() {
  stop_.store(true, std::memory_order_relaxed);
  publish(epoch_, epoch_.load(std::memory_order_relaxed) + 1, helper_sleeping_);
  thread_.join();
}

void HelperThread::start(unsigned epoch) { publish(epoch_, epoch, helper_sleeping_); }

void HelperThread::loop() {
  unsigned seen = 0;
  for (;;) {
    seen = await_change(epoch_, seen, helper_sleeping_);
    if (stop_.load(std::memory_order_relaxed)) return;
    task_(arg_);
    publish(done_, seen, caller_sleeping_);
  }
}

void HelperThread::wait_done(unsigned epoch) {
  unsigned d = done_.load(std::memory_order_acquire);
  while (d != epoch) d = await_change(done_, d, caller_sleeping_);
}

}  // namespace dln
