// SPDX-License-Identifier: Apache-2.0
// epoll event loop with periodic tasks and cross-thread posts.
#include "controlplane/net/event_loop.h"

#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <cerrno>
#include <ctime>
#include <system_error>

namespace turn::cp {

EventLoop::EventLoop() : now_(SteadyClock::now()) {
  epfd_ = epoll_create1(EPOLL_CLOEXEC);
  if (epfd_ < 0) throw std::system_error(errno, std::generic_category(), "epoll_create1");
  eventfd_ = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (eventfd_ < 0) throw std::system_error(errno, std::generic_category(), "eventfd");
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.ptr = nullptr;  // nullptr marks the wake-up fd
  epoll_ctl(epfd_, EPOLL_CTL_ADD, eventfd_, &ev);
}

EventLoop::~EventLoop() {
  if (eventfd_ >= 0) close(eventfd_);
  if (epfd_ >= 0) close(epfd_);
}

void EventLoop::add(int fd, uint32_t events, IoHandler* h) {
  epoll_event ev{};
  ev.events = events;
  ev.data.ptr = h;
  if (epoll_ctl(epfd_, EPOLL_CTL_ADD, fd, &ev) < 0)
    throw std::system_error(errno, std::generic_category(), "epoll_ctl(ADD)");
}

void EventLoop::modify(int fd, uint32_t events, IoHandler* h) {
  epoll_event ev{};
  ev.events = events;
  ev.data.ptr = h;
  epoll_ctl(epfd_, EPOLL_CTL_MOD, fd, &ev);
}

void EventLoop::remove(int fd) noexcept { epoll_ctl(epfd_, EPOLL_CTL_DEL, fd, nullptr); }

void EventLoop::every(std::chrono::milliseconds period, std::function<void()> task) {
  periodic_.push_back({period, SteadyClock::now() + period, std::move(task)});
}

void EventLoop::post(std::function<void()> task) {
  {
    std::lock_guard lock(posted_mutex_);
    posted_.push_back(std::move(task));
  }
  uint64_t one = 1;
  [[maybe_unused]] auto n = write(eventfd_, &one, sizeof one);
}

void EventLoop::stop() noexcept {
  stop_.store(true);
  uint64_t one = 1;
  [[maybe_unused]] auto n = write(eventfd_, &one, sizeof one);
}

uint64_t EventLoop::now_s() const noexcept { return static_cast<uint64_t>(std::time(nullptr)); }

void EventLoop::run() {
  constexpr int kMaxEvents = 256;
  epoll_event events[kMaxEvents];
  while (!stop_.load(std::memory_order_relaxed)) {
    now_ = SteadyClock::now();
    int timeout_ms = 1000;
    for (const auto& p : periodic_) {
      auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(p.next - now_).count();
      timeout_ms = static_cast<int>(std::max<long long>(0, std::min<long long>(timeout_ms, ms)));
    }
    int n = epoll_wait(epfd_, events, kMaxEvents, timeout_ms);
    if (n < 0 && errno != EINTR) throw std::system_error(errno, std::generic_category(), "epoll_wait");
    now_ = SteadyClock::now();
    for (int i = 0; i < n; ++i) {
      auto* h = static_cast<IoHandler*>(events[i].data.ptr);
      if (h == nullptr) {
        uint64_t v;
        [[maybe_unused]] auto r = read(eventfd_, &v, sizeof v);
        std::vector<std::function<void()>> tasks;
        {
          std::lock_guard lock(posted_mutex_);
          tasks.swap(posted_);
        }
        for (auto& t : tasks) t();
        continue;
      }
      h->on_io(events[i].events);
    }
    for (auto& p : periodic_) {
      if (now_ >= p.next) {
        p.next = now_ + p.period;
        p.task();
      }
    }
    graveyard_.clear();
  }
}

}  // namespace turn::cp
