// Helpers shared by the fuzz targets.
#pragma once

#include <cstdint>
#include <cstdio>
#include <string>
#include <unistd.h>

namespace nnc::fuzz {

/// A file holding `data`, in memory-backed /dev/shm when available, removed
/// when the object dies. The loaders under test take paths.
class TempFile {
public:
  TempFile(const uint8_t *data, size_t size, const char *suffix = "") {
    const char *dir = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp";
    path_ = std::string(dir) + "/nnc-fuzz-" + std::to_string(getpid()) + "-" + std::to_string(counter_++) + suffix;
    FILE *f = std::fopen(path_.c_str(), "wb");
    if (f) {
      if (size)
        std::fwrite(data, 1, size, f);
      std::fclose(f);
    }
  }
  ~TempFile() { std::remove(path_.c_str()); }
  const std::string &path() const { return path_; }

private:
  std::string path_;
  static inline unsigned counter_ = 0;
};

} // namespace nnc::fuzz
