// unique_ptr deleters for C library handles: one line per handle type.
// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <memory>

namespace ferry::core {

template <auto free_fn>
struct CDeleter {
  template <typename T>
  void operator()(T* p) const noexcept {
    free_fn(p);
  }
};

} // namespace ferry::core
