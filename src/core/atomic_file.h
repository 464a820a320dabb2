// \brief An output file that appears whole or not at all: written to PATH.partial, renamed onto PATH by commit(). A
// reader (or the next stage of a pipeline) never sees a file cut mid-row by a full disk or a crash; an AtomicFile
// destroyed uncommitted (an exception on the way) removes its partial file.
#pragma once
#include <fstream>  // for std::ofstream
#include <string>   // for std::string

namespace dfcl {

class AtomicFile {
 public:
  /// Opens PATH.partial; `what` names the output in messages (e.g. "allocate.output"). Throws IoError when it cannot.
  AtomicFile(std::string path, std::string what, bool binary = false);
  ~AtomicFile();
  AtomicFile(const AtomicFile&) = delete;
  AtomicFile& operator=(const AtomicFile&) = delete;

  std::ofstream& stream() { return f_; }
  const std::string& partial_path() const { return tmp_; }
  /// Flushes, checks every write, closes and renames onto the path. Throws IoError (disk full, no permission, a
  /// directory in the way) and removes the partial file.
  void commit();

  /// Renames `tmp` onto `path` (rename(2)), with an IoError naming both and the fix when that fails.
  static void move_into_place(const std::string& tmp, const std::string& path, const std::string& what);

 private:
  std::string path_, tmp_, what_;
  std::ofstream f_;
  bool done_ = false;
};

}  // namespace dfcl
