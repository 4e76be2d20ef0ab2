// Whole-file reads and atomic whole-file writes on top of POSIX file
// descriptors, so every failure can be reported with its errno text.
#include "runtime/FileUtil.h"

#include "runtime/Tensor.h"

#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

namespace nnc::runtime {

namespace {

std::string errnoText(int err) { return std::strerror(err); }

/// The directory part of `path` ("." when it has none), for fsyncing the
/// directory entry after the rename.
std::string parentDirectory(const std::string &path) {
  size_t slash = path.find_last_of('/');
  if (slash == std::string::npos)
    return ".";
  if (slash == 0)
    return "/";
  return path.substr(0, slash);
}

/// Writes all of `bytes`, retrying short writes and EINTR. Returns 0 or an errno.
int writeAll(int fd, const std::string &bytes) {
  const char *p = bytes.data();
  size_t left = bytes.size();
  while (left > 0) {
    ssize_t n = ::write(fd, p, left);
    if (n < 0) {
      if (errno == EINTR)
        continue;
      return errno;
    }
    p += n;
    left -= size_t(n);
  }
  return 0;
}

} // namespace

void writeFileAtomic(const std::string &path, const std::string &bytes) {
  std::string tmp = path + ".tmp." + std::to_string(::getpid());
  auto fail = [&](int err, bool removeTmp) {
    if (removeTmp)
      ::unlink(tmp.c_str());
    throw Error("cannot write '" + path + "': " + errnoText(err));
  };

  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0)
    fail(errno, false);
  int err = writeAll(fd, bytes);
  if (!err && ::fsync(fd) != 0)
    err = errno;
  if (::close(fd) != 0 && !err)
    err = errno;
  if (err)
    fail(err, true);
  if (::rename(tmp.c_str(), path.c_str()) != 0)
    fail(errno, true);

  // Make the rename itself durable. Failing here is not worth an error: the
  // new content is already in place and visible.
  int dirFd = ::open(parentDirectory(path).c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dirFd >= 0) {
    ::fsync(dirFd);
    ::close(dirFd);
  }
}

std::string readFile(const std::string &path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    throw Error("cannot open '" + path + "': " + errnoText(errno));
  std::string out;
  struct stat st;
  if (::fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && st.st_size > 0)
    out.reserve(size_t(st.st_size));
  char buf[1 << 16];
  while (true) {
    ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < 0) {
      if (errno == EINTR)
        continue;
      int err = errno;
      ::close(fd);
      throw Error("cannot read '" + path + "': " + errnoText(err));
    }
    if (n == 0)
      break;
    out.append(buf, size_t(n));
  }
  ::close(fd);
  return out;
}

} // namespace nnc::runtime
