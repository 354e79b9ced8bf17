// Owning handles for libcurl objects; private to registry/*.cpp (no curl in other headers).
// SPDX-License-Identifier: Apache-2.0
#pragma once

#include "core/c_handle.hpp"

#include <curl/curl.h>

#include <memory>
#include <string>

namespace ferry::registry {

using CurlEasy = std::unique_ptr<CURL, core::CDeleter<curl_easy_cleanup>>;
using CurlSlist = std::unique_ptr<curl_slist, core::CDeleter<curl_slist_free_all>>;
using CurlUrl = std::unique_ptr<CURLU, core::CDeleter<curl_url_cleanup>>;
using CurlString = std::unique_ptr<char, core::CDeleter<curl_free>>; // strings curl allocated

// Appends one header line to `list` (which may be empty); throws std::bad_alloc when
// curl cannot (curl_slist_append returns NULL only when out of memory).
inline void append_header(CurlSlist& list, const std::string& line) {
  curl_slist* grown = curl_slist_append(list.get(), line.c_str());
  if (grown == nullptr) throw std::bad_alloc();
  (void)list.release(); // curl_slist_append returned the same list head, now owning more
  list.reset(grown);
}

} // namespace ferry::registry
