// \brief Thread configuration (torch intra-op pool; OMP_NUM_THREADS fallback).
#include "core/threads.h"

#include <ATen/Parallel.h>  // for at::set_num_threads

#include <dlfcn.h>  // for dlsym

#include <cstdlib>  // for std::getenv
#include <thread>   // for std::thread::hardware_concurrency

namespace dfcl {

int resolve_threads(int requested) {
  if (requested > 0) return requested;
  if (const char* v = std::getenv("OMP_NUM_THREADS")) {
    int n = std::atoi(v);
    if (n > 0) return n;
  }
  unsigned hw = std::thread::hardware_concurrency();
  return hw > 0 ? static_cast<int>(hw) : 1;
}

int configure_torch_threads(int requested) {
  int n = resolve_threads(requested);
  at::set_num_threads(n);
  return n;
}

std::string set_blas_threads(int n) {
  using SetThreads = void (*)(int);
  for (const char* name : {"openblas_set_num_threads", "mkl_set_num_threads", "MKL_Set_Num_Threads"})
    if (void* f = dlsym(RTLD_DEFAULT, name)) {
      reinterpret_cast<SetThreads>(f)(n);
      return name[0] == 'o' ? "OpenBLAS" : "MKL";
    }
  return "";
}

}  // namespace dfcl
