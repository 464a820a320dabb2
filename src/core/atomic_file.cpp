// \brief AtomicFile (see atomic_file.h).
#include "core/atomic_file.h"

#include <fmt/format.h>  // for fmt::format

#include <cerrno>    // for errno
#include <cstdio>    // for std::rename, std::remove
#include <cstring>   // for std::strerror
#include <utility>   // for std::move

#include "core/error.h"  // for IoError

namespace dfcl {

AtomicFile::AtomicFile(std::string path, std::string what, bool binary)
    : path_(std::move(path)), tmp_(path_ + ".partial"), what_(std::move(what)) {
  f_.open(tmp_, binary ? std::ios::out | std::ios::trunc | std::ios::binary : std::ios::out | std::ios::trunc);
  if (!f_)
    throw IoError(fmt::format("cannot write '{}' ({}): {}; check that the directory exists and is writable", tmp_,
                              what_, std::strerror(errno)));
}

AtomicFile::~AtomicFile() {
  if (done_) return;
  f_.close();
  std::remove(tmp_.c_str());
}

void AtomicFile::move_into_place(const std::string& tmp, const std::string& path, const std::string& what) {
  if (std::rename(tmp.c_str(), path.c_str()) == 0) return;
  const int e = errno;
  std::remove(tmp.c_str());
  throw IoError(fmt::format("cannot put '{}' ({}) in place of {}: {}{}", path, what, tmp, std::strerror(e),
                            e == EISDIR || e == ENOTEMPTY || e == EEXIST
                                ? "; a directory of that name is in the way: choose another file name"
                                : "; check that the directory is writable"));
}

void AtomicFile::commit() {
  if (done_) return;
  f_.flush();
  const bool ok = static_cast<bool>(f_);
  f_.close();
  if (!ok || f_.fail()) {
    const int e = errno;
    std::remove(tmp_.c_str());
    done_ = true;
    throw IoError(fmt::format("writing '{}' ({}) failed: {} (disk full?); nothing was written", path_, what_,
                              e ? std::strerror(e) : "write error"));
  }
  done_ = true;
  move_into_place(tmp_, path_, what_);
}

}  // namespace dfcl
