// \brief CollectiveDesc: describing, packing and naming one collective (debug check, watchdog messages).
#include "dist/collective.h"

#include <c10/core/ScalarType.h>  // for c10::toString
#include <fmt/format.h>           // for fmt::format

namespace dfcl::dist {
namespace {

constexpr int64_t kMagic = 0x64666c63;  // "dfcl": tells a descriptor from whatever a mismatched collective sent

CollectiveDesc with_tensor(CollectiveDesc d, const at::Tensor& t) {
  d.dtype = int64_t(t.scalar_type());
  d.numel = t.numel();
  d.device = t.device().is_cuda() ? 1 : 0;
  d.ndim = t.dim();
  uint64_t h = 1469598103934665603ull;  // FNV-1a over the sizes
  for (int64_t i = 0; i < t.dim(); ++i) {
    if (i < CollectiveDesc::kMaxDims) d.dims[size_t(i)] = t.size(i);
    h = (h ^ uint64_t(t.size(i))) * 1099511628211ull;
  }
  d.shape_hash = int64_t(h);
  return d;
}

}  // namespace

std::string dtype_name(int64_t scalar_type) {
  switch (at::ScalarType(scalar_type)) {
    case at::kFloat:
      return "float32";
    case at::kDouble:
      return "float64";
    case at::kLong:
      return "int64";
    default:
      return c10::toString(at::ScalarType(scalar_type));
  }
}

const char* op_name(ReduceOp op) {
  switch (op) {
    case ReduceOp::kSum:
      return "sum";
    case ReduceOp::kMean:
      return "mean";
    case ReduceOp::kMax:
      return "max";
  }
  return "?";
}

CollectiveDesc CollectiveDesc::allreduce(const at::Tensor& t, ReduceOp op) {
  CollectiveDesc d;
  d.kind = kAllreduce;
  d.op = int64_t(op);
  return with_tensor(d, t);
}

CollectiveDesc CollectiveDesc::broadcast(const at::Tensor& t, int root) {
  CollectiveDesc d;
  d.kind = kBroadcast;
  d.root = root;
  return with_tensor(d, t);
}

CollectiveDesc CollectiveDesc::barrier() {
  CollectiveDesc d;
  d.kind = kBarrier;
  return d;
}

CollectiveDesc CollectiveDesc::allgather() {
  CollectiveDesc d;
  d.kind = kAllgather;
  return d;
}

void CollectiveDesc::pack(int64_t* w) const {
  w[0] = kMagic, w[1] = seq, w[2] = kind, w[3] = dtype, w[4] = numel, w[5] = root, w[6] = op, w[7] = device;
  w[8] = ndim;
  for (int i = 0; i < kMaxDims; ++i) w[9 + i] = dims[size_t(i)];
  w[13] = shape_hash;
}

CollectiveDesc CollectiveDesc::unpack(const int64_t* w) {
  CollectiveDesc d;
  if (w[0] != kMagic) return d;  // kind kNone: "something that is not a dfcl collective"
  d.seq = w[1], d.kind = w[2], d.dtype = w[3], d.numel = w[4], d.root = w[5], d.op = w[6], d.device = w[7];
  d.ndim = w[8];
  for (int i = 0; i < kMaxDims; ++i) d.dims[size_t(i)] = w[9 + i];
  d.shape_hash = w[13];
  return d;
}

bool CollectiveDesc::operator==(const CollectiveDesc& o) const {
  return seq == o.seq && kind == o.kind && dtype == o.dtype && numel == o.numel && root == o.root && op == o.op &&
         device == o.device && ndim == o.ndim && dims == o.dims && shape_hash == o.shape_hash;
}

std::string CollectiveDesc::name() const {
  std::string tensor;
  if (numel >= 0) {
    tensor = fmt::format("{} x {}", numel, dtype_name(dtype));
    if (ndim != 1) {
      std::string shape;
      for (int64_t i = 0; i < ndim && i < kMaxDims; ++i) shape += (i ? ", " : "") + std::to_string(dims[size_t(i)]);
      if (ndim > kMaxDims) shape += ", ...";
      tensor += " [" + shape + "]";
    }
    if (device == 1) tensor += " on cuda";
  }
  switch (kind) {
    case kAllreduce:
      return fmt::format("allreduce of {} ({})", tensor, op_name(ReduceOp(op)));
    case kBroadcast:
      return fmt::format("broadcast of {} from rank {}", tensor, root);
    case kBarrier:
      return "barrier";
    case kAllgather:
      return "allgather of doubles";
    default:
      return "an unknown collective (not a dfcl descriptor)";
  }
}

}  // namespace dfcl::dist
