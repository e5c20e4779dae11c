// SHA-256 over bytes fed in pieces (OpenSSL's EVP interface), as lowercase hex.
#pragma once

#include "model/error.h"

#include <openssl/evp.h>

#include <string>

namespace mnemo {

class Sha256 {
 public:
  Sha256() : context_(EVP_MD_CTX_new()) {
    MNEMO_CHECK(context_ && EVP_DigestInit_ex(context_, EVP_sha256(), nullptr) == 1, "EVP sha256 init");
  }
  ~Sha256() { EVP_MD_CTX_free(context_); }
  Sha256(const Sha256&) = delete;
  Sha256& operator=(const Sha256&) = delete;
  void update(const char* bytes, size_t n) { MNEMO_CHECK(EVP_DigestUpdate(context_, bytes, n) == 1, "EVP update"); }
  void update(const std::string& text) { update(text.data(), text.size()); }
  // The digest of everything fed so far; call once.
  std::string hex() {
    unsigned char digest[EVP_MAX_MD_SIZE];
    unsigned int length = 0;
    MNEMO_CHECK(EVP_DigestFinal_ex(context_, digest, &length) == 1, "EVP final");
    static const char* const kHex = "0123456789abcdef";
    std::string text;
    for (unsigned int i = 0; i < length; ++i) {
      text.push_back(kHex[digest[i] >> 4]);
      text.push_back(kHex[digest[i] & 15]);
    }
    return text;
  }

 private:
  EVP_MD_CTX* context_;
};

}  // namespace mnemo
