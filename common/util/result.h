// SPDX-License-Identifier: Apache-2.0
// Result<T, E>: a value or an error enum, for code that must not throw
// (C++20 has no std::expected). Used across common/ and the packet path.
#pragma once

#include <type_traits>
#include <utility>

namespace turn {

template <class T, class E>
class Result {
  static_assert(std::is_enum_v<E>, "Result errors are enums");

 public:
  constexpr Result(T value) noexcept(std::is_nothrow_move_constructible_v<T>)  // NOLINT
      : value_(std::move(value)), error_{}, ok_(true) {}
  constexpr Result(E error) noexcept : value_{}, error_(error), ok_(false) {}  // NOLINT

  [[nodiscard]] constexpr bool ok() const noexcept { return ok_; }
  constexpr explicit operator bool() const noexcept { return ok_; }
  [[nodiscard]] constexpr E error() const noexcept { return error_; }

  // Only meaningful when ok(); a default-constructed T otherwise.
  constexpr const T& value() const& noexcept { return value_; }
  constexpr T& value() & noexcept { return value_; }
  constexpr const T& operator*() const& noexcept { return value_; }
  constexpr const T* operator->() const noexcept { return &value_; }

 private:
  T value_;
  E error_;
  bool ok_;
};

}  // namespace turn
