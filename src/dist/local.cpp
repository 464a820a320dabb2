// \brief The one-process Communicator, and the helpers every implementation shares.
#include <ATen/ATen.h>  // for at::from_blob

#include "dist/communicator.h"

namespace dfcl::dist {

void Communicator::allreduce_values(std::vector<double>& values, ReduceOp op) {
  if (values.empty()) return;
  at::Tensor t = at::from_blob(values.data(), {int64_t(values.size())}, at::TensorOptions().dtype(at::kDouble));
  allreduce(t, op);  // in place: t views `values`
}

double Communicator::allreduce_value(double value, ReduceOp op) {
  std::vector<double> v{value};
  allreduce_values(v, op);
  return v[0];
}

namespace {

class DoneWork : public Work {
 public:
  void wait() override {}
};

class LocalCommunicator : public Communicator {
 public:
  int rank() const override { return 0; }
  int size() const override { return 1; }
  std::string name() const override { return "local"; }
  void allreduce(at::Tensor&, ReduceOp) override {}
  std::unique_ptr<Work> allreduce_async(at::Tensor&, ReduceOp) override { return std::make_unique<DoneWork>(); }
  void broadcast(at::Tensor&, int) override {}
  void barrier() override {}
  std::vector<std::vector<double>> allgather(const std::vector<double>& local) override { return {local}; }
};

}  // namespace

std::unique_ptr<Communicator> make_local_communicator() { return std::make_unique<LocalCommunicator>(); }

namespace {
void (*g_abort_handler)(int) = nullptr;
}
void set_abort_handler(void (*handler)(int)) { g_abort_handler = handler; }
void abort_job(int exit_code) {
  if (g_abort_handler) g_abort_handler(exit_code);
}

}  // namespace dfcl::dist
