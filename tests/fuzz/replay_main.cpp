// \brief Replays fuzz inputs without libFuzzer: each argument is a file or a directory of files, each file is one
// input to LLVMFuzzerTestOneInput. ctest runs it over tests/fuzz/corpus/<target> in every build (the corpora as
// regression tests); a finding aborts, which fails the test and names the file.
#include <cstdint>     // for uint8_t
#include <cstdio>      // for std::printf
#include <filesystem>  // for std::filesystem
#include <fstream>     // for std::ifstream
#include <iterator>    // for std::istreambuf_iterator
#include <string>      // for std::string
#include <vector>      // for std::vector
#include <algorithm>   // for std::sort

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size);

int main(int argc, char** argv) {
  namespace fs = std::filesystem;
  std::vector<fs::path> files;
  for (int i = 1; i < argc; ++i) {
    const fs::path p(argv[i]);
    if (fs::is_directory(p)) {
      for (const auto& e : fs::directory_iterator(p))
        if (e.is_regular_file()) files.push_back(e.path());
    } else {
      files.push_back(p);
    }
  }
  std::sort(files.begin(), files.end());
  if (files.empty()) {
    std::fprintf(stderr, "replay: no inputs in the arguments; give corpus directories or files\n");
    return 2;
  }
  for (const auto& f : files) {
    std::ifstream in(f, std::ios::binary);
    const std::vector<uint8_t> bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    std::fprintf(stderr, "replay: %s (%zu bytes)\n", f.c_str(), bytes.size());
    LLVMFuzzerTestOneInput(bytes.data(), bytes.size());
  }
  std::printf("replay: %zu inputs, no finding\n", files.size());
  return 0;
}
