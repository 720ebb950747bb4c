// One persistent helper thread for splitting a training step in two (Objective's completion
// step at the middle sizes, where a step is 50 us - 1 ms and starting threads would cost more
// than it gives). The helper spins briefly between tasks, then sleeps on a futex, so a run of
// back-to-back steps pays ~1 us per hand-off and an idle helper costs nothing.
#pragma once

#include <atomic>
#include <thread>

namespace dln {

class HelperThread {
 public:
  HelperThread();
  ~HelperThread();
  HelperThread(const HelperThread&) = delete;
  HelperThread& operator=(const HelperThread&) = delete;

  // Runs here() on the calling thread and there() on the helper; returns when both are done.
  // Neither may throw (the split kernels do not).
  template <class Here, class There>
  void run(Here&& here, There&& there) {
    task_ = [](void* f) { (*static_cast<There*>(f))(); };
    arg_ = &there;
    const unsigned e = epoch_.load(std::memory_order_relaxed) + 1;
    start(e);
    here();
    wait_done(e);
  }

 private:
  void loop();
  void start(unsigned epoch);
  void wait_done(unsigned epoch);

  void (*task_)(void*) = nullptr;
  void* arg_ = nullptr;
  std::atomic<unsigned> epoch_{0}, done_{0};
  std::atomic<unsigned> helper_sleeping_{0}, caller_sleeping_{0};
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

}  // namespace dln
