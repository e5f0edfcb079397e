// SPDX-License-Identifier: Apache-2.0
// EventLoop: one epoll instance per thread. Handlers are registered with the
// fd they watch; periodic tasks run between polls. A loop is only ever
// touched by its own thread, except post(), which any thread may call.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <vector>

#include "controlplane/net/clock.h"

namespace turn::cp {

class IoHandler {
 public:
  virtual ~IoHandler() = default;
  // events: EPOLLIN/EPOLLOUT/EPOLLERR/EPOLLHUP bits.
  virtual void on_io(uint32_t events) = 0;
};

class EventLoop final : public Clock {
 public:
  using SteadyClock = std::chrono::steady_clock;

  EventLoop();
  ~EventLoop() override;
  EventLoop(const EventLoop&) = delete;
  EventLoop& operator=(const EventLoop&) = delete;

  void add(int fd, uint32_t events, IoHandler* h);
  void modify(int fd, uint32_t events, IoHandler* h);
  void remove(int fd) noexcept;

  // Keeps a handler alive until the current batch of events is dispatched:
  // an event for it may still be pending in this batch. Its on_io must
  // tolerate being called after it closed its fd.
  void retire(std::unique_ptr<IoHandler> h) { graveyard_.push_back(std::move(h)); }

  // Runs `task` every `period` (first run after one period).
  void every(std::chrono::milliseconds period, std::function<void()> task);
  // Runs `task` on the loop's thread soon; callable from any thread.
  void post(std::function<void()> task);

  // Runs until stop() (from any thread).
  void run();
  void stop() noexcept;

  // Cached once per loop iteration; cheap to read in handlers.
  [[nodiscard]] TimePoint now() const noexcept override { return now_; }
  [[nodiscard]] uint64_t now_s() const noexcept override;  // seconds since the epoch (wall clock)

 private:
  struct Periodic {
    std::chrono::milliseconds period;
    TimePoint next;
    std::function<void()> task;
  };
  class Wakeup;

  int epfd_ = -1;
  int eventfd_ = -1;
  std::atomic<bool> stop_{false};
  TimePoint now_;
  std::vector<Periodic> periodic_;
  std::mutex posted_mutex_;
  std::vector<std::function<void()>> posted_;
  std::vector<std::unique_ptr<IoHandler>> graveyard_;
};

}  // namespace turn::cp
