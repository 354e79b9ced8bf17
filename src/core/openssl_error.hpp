// Private to .cpp files that include OpenSSL: RAII aliases and the drained error queue.
// SPDX-License-Identifier: Apache-2.0
#pragma once

#include "core/c_handle.hpp"

#include <openssl/bio.h>
#include <openssl/evp.h>

#include <string>

namespace ferry::core {

using EvpMdCtx = std::unique_ptr<EVP_MD_CTX, CDeleter<EVP_MD_CTX_free>>;
using EvpPkey = std::unique_ptr<EVP_PKEY, CDeleter<EVP_PKEY_free>>;
using EvpPkeyCtx = std::unique_ptr<EVP_PKEY_CTX, CDeleter<EVP_PKEY_CTX_free>>;
using Bio = std::unique_ptr<BIO, CDeleter<BIO_free_all>>;

// Drains OpenSSL's thread-local error queue into one line ("error:1E08010C:DECODER
// routines::unsupported; …"), or "no OpenSSL error recorded" when it is empty.
std::string openssl_error_text();

} // namespace ferry::core
