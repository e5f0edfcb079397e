// SPDX-License-Identifier: Apache-2.0
// PeriodicThread: a background thread that runs a step at once and then
// every `period` until stop(), which wakes it from its wait (no waiting
// out the period on shutdown) and joins it. The step must not throw.
#pragma once

#include <chrono>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <thread>

namespace turn {

class PeriodicThread {
 public:
  PeriodicThread() = default;
  ~PeriodicThread() { stop(); }
  PeriodicThread(const PeriodicThread&) = delete;
  PeriodicThread& operator=(const PeriodicThread&) = delete;

  void start(std::chrono::milliseconds period, std::function<void()> step) {
    thread_ = std::thread([this, period, step = std::move(step)] {
      for (;;) {
        step();
        std::unique_lock lock(mutex_);
        if (cv_.wait_for(lock, period, [this] { return stop_; })) return;
      }
    });
  }

  void stop() {
    {
      std::lock_guard lock(mutex_);
      stop_ = true;
    }
    cv_.notify_all();
    if (thread_.joinable()) thread_.join();
  }

 private:
  std::thread thread_;
  std::mutex mutex_;
  std::condition_variable cv_;
  bool stop_ = false;
};

}  // namespace turn
