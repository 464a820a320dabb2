// \brief UpliftNet: layout construction, deterministic init, the functional forward, the autograd-free training
// path (forward_train / backward; dense float32 chains on the CPU kernels of dense_cpu.h), save/load by name.
#include "model/uplift_net.h"

#include <unistd.h>  // for sysconf
#include <fmt/format.h>   // for fmt::format
#include <fmt/ranges.h>   // for fmt::join (its home since fmt 11)
#include <torch/torch.h>  // for at::addmm, at::baddbmm, torch::NoGradGuard

#include <cmath>  // for std::sqrt

#include "core/error.h"       // for ConfigError, DataError
#include "core/rng.h"         // for Rng
#include "model/dense_cpu.h"  // for dense::forward, dense::backward (the CPU kernels)

namespace dfcl::model {
namespace {
constexpr uint64_t kInitStream = 0x1417;  // Rng stream of parameter init; the entry index is the counter

std::string shape_str(at::IntArrayRef s) { return fmt::format("({})", fmt::join(s.vec(), ", ")); }

void check_inputs(int64_t params, int64_t features, const at::Tensor& flat, const at::Tensor& x) {
  if (flat.dim() != 1 || flat.size(0) != params)
    throw DataError(fmt::format("uplift net: parameter vector has shape {}, expected ({}) for this architecture",
                                shape_str(flat.sizes()), params));
  if (x.dim() != 2 || x.size(1) != features)
    throw DataError(
        fmt::format("uplift net: features have shape {}, expected (B, {}); the model was built for {} "
                    "features",
                    shape_str(x.sizes()), features, features));
}

// A buffer of the training path, reused from step to step: reallocated only when its shape, dtype or device change.
at::Tensor& ensure(at::Tensor& buf, at::IntArrayRef sizes, const at::TensorOptions& o) {
  if (!buf.defined() || buf.sizes() != sizes || buf.dtype() != o.dtype() || buf.device() != o.device())
    buf = at::empty(sizes, o);
  return buf;
}
}  // namespace

UpliftNet::UpliftNet(const UpliftNetConfig& config, uint64_t seed, at::ScalarType dtype, at::Device device)
    : cfg_(config) {
  cfg_.validate();
  if (cfg_.has_auto_outputs())
    throw ConfigError(fmt::format("uplift net: model.revenue_output = {}, model.cost_output = {}: `auto` heads are "
                                  "resolved against the training labels (UpliftNetConfig::resolve_outputs) before a "
                                  "net is built; `dfcl train` does this, elsewhere name the transform",
                                  cfg_.revenue_output, cfg_.cost_output));
  act_ = parse_activation(cfg_.activation, "model.activation");
  revenue_out_ = parse_output_transform(cfg_.revenue_output, "model.revenue_output");
  cost_out_ = parse_output_transform(cfg_.cost_output, "model.cost_output");
  const int64_t k = cfg_.heads();
  const int64_t trunk_stacks = cfg_.shared_trunk ? 1 : k;
  int64_t in = cfg_.features;
  for (size_t l = 0; l < cfg_.trunk.size(); ++l) {
    add_layer(fmt::format("trunk.{}", l), trunk_stacks, in, cfg_.trunk[l], false, true);
    in = cfg_.trunk[l];
  }
  std::vector<int> head = cfg_.head;
  head.push_back(1);
  for (size_t l = 0; l < head.size(); ++l) {
    add_layer(fmt::format("heads.{}", l), k, in, head[l], cfg_.arm_column && l == 0, l + 1 < head.size());
    in = head[l];
  }
  // Memory before allocating: the parameters in float64 while they are drawn, then in the net's type with a gradient
  // and an optimiser's two moments. A layer list no machine can hold is named, not a std::bad_alloc.
  const double need = double(layout_.size()) * (8.0 + 4.0 * double(at::elementSize(dtype)));
  const double have = double(::sysconf(_SC_PHYS_PAGES)) * double(::sysconf(_SC_PAGE_SIZE));
  if (have > 0 && need > have)
    throw ConfigError(fmt::format("model.trunk = [{}], model.head = [{}] give {} parameters, about {:.1f} GiB with their "
                                  "gradients and optimiser state, more than this machine's {:.1f} GiB of memory; use "
                                  "smaller layers",
                                  fmt::join(cfg_.trunk, ", "), fmt::join(cfg_.head, ", "), layout_.size(),
                                  need / 1073741824.0, have / 1073741824.0));
  flat_ = init_parameters(seed).to(device, dtype).requires_grad_(true);
  dense_chain_ = (act_ == Activation::kRelu || act_ == Activation::kLeakyRelu) && cfg_.head.empty() &&
                 (cfg_.shared_trunk || cfg_.trunk.empty());
}

void UpliftNet::add_layer(const std::string& name, int64_t stacks, int64_t in, int64_t out, bool arm_column,
                          bool hidden) {
  const int64_t in_total = in + (arm_column ? 1 : 0);
  Layer L;
  L.stacks = stacks, L.in = in, L.out = out, L.arm_column = arm_column, L.hidden = hidden;
  if (stacks == 1) {
    L.weight = layout_.add(name + ".weight", {out, in_total});
    L.bias = layout_.add(name + ".bias", {out});
  } else {
    L.weight = layout_.add(name + ".weight", {stacks, out, in_total});
    L.bias = layout_.add(name + ".bias", {stacks, out});
  }
  layers_.push_back(L);
}

at::Tensor UpliftNet::init_parameters(uint64_t seed) const {
  std::vector<double> v(static_cast<size_t>(layout_.size()));
  for (const Layer& L : layers_) {
    const double bound = 1.0 / std::sqrt(double(L.in + (L.arm_column ? 1 : 0)));
    for (size_t e : {L.weight, L.bias}) {
      const ParamEntry& p = layout_.entries()[e];
      Rng r(seed, kInitStream, e);
      for (int64_t i = 0; i < p.numel; ++i) v[size_t(p.offset + i)] = bound * (2 * r.uniform() - 1);
    }
  }
  return at::from_blob(v.data(), {layout_.size()}, at::TensorOptions().dtype(at::kDouble)).clone();
}

void UpliftNet::reset_parameters(uint64_t seed) {
  torch::NoGradGuard no_grad;
  flat_.copy_(init_parameters(seed));
}

NamedTensors UpliftNet::named_parameters() const {
  NamedTensors out;
  for (size_t i = 0; i < layout_.entries().size(); ++i)
    out.emplace_back(layout_.entries()[i].name, layout_.view(flat_, i));
  return out;
}

at::Tensor UpliftNet::parameter(const at::Tensor& flat, const std::string& name) const {
  const int64_t i = layout_.find(name);
  if (i < 0) {
    std::vector<std::string> names;
    for (const auto& e : layout_.entries()) names.push_back(e.name);
    throw DataError(fmt::format("uplift net: no parameter '{}'; it has {}", name, fmt::join(names, ", ")));
  }
  return layout_.view(flat, size_t(i));
}

at::Tensor UpliftNet::logits(const at::Tensor& flat, const at::Tensor& x_in) const {
  check_inputs(layout_.size(), cfg_.features, flat, x_in);
  const int64_t B = x_in.size(0), K = cfg_.heads(), M = cfg_.arms;
  at::Tensor a = x_in.to(flat.scalar_type());  // (B, in) shared by all stacks, or (K, B, in) one per stack
  for (size_t l = 0; l < layers_.size(); ++l) {
    const Layer& L = layers_[l];
    const bool last = l + 1 == layers_.size();
    at::Tensor W = layout_.view(flat, L.weight), b = layout_.view(flat, L.bias);
    if (L.stacks == 1) {
      a = at::addmm(b, a, W.t());
    } else {
      if (L.arm_column) {
        // concat(a, j_k) W_k^T + b_k  ==  a W_k[:, :in]^T + (b_k + j_k W_k[:, in])
        at::Tensor arm = at::arange(K, flat.options()).remainder(M).unsqueeze(1);  // (K, 1): j_k
        b = b + W.select(2, L.in) * arm;
        W = W.narrow(2, 0, L.in);
      }
      if (a.dim() == 2) {
        // One matmul for all K stacks: (B, in) x (in, K*out).
        at::Tensor y = at::addmm(b.reshape({K * L.out}), a, W.reshape({K * L.out, L.in}).t());
        a = last ? y : y.view({B, K, L.out}).transpose(0, 1);  // last layer: out = 1, so y is (B, K)
      } else {
        a = at::baddbmm(b.unsqueeze(1), a, W.transpose(1, 2));  // (K, B, out)
      }
    }
    if (L.hidden) a = apply(act_, a);
  }
  return a.dim() == 3 ? a.squeeze(2).t() : a;  // (B, K)
}

Scores UpliftNet::forward(const at::Tensor& flat, const at::Tensor& x) const {
  at::Tensor z = logits(flat, x);
  const int64_t M = cfg_.arms;
  return {apply(revenue_out_, z.narrow(1, 0, M)), apply(cost_out_, z.narrow(1, M, M))};
}

Scores UpliftNet::jvp(const at::Tensor& flat, const at::Tensor& x_in, const at::Tensor& v) const {
  check_inputs(layout_.size(), cfg_.features, flat, x_in);
  check_inputs(layout_.size(), cfg_.features, v, x_in);
  torch::NoGradGuard no_grad;
  const int64_t B = x_in.size(0), K = cfg_.heads(), M = cfg_.arms;
  at::Tensor a = x_in.to(flat.scalar_type()), da;  // da undefined: the input has no tangent
  for (size_t l = 0; l < layers_.size(); ++l) {
    const Layer& L = layers_[l];
    const bool last = l + 1 == layers_.size();
    at::Tensor W = layout_.view(flat, L.weight), b = layout_.view(flat, L.bias);
    at::Tensor dW = layout_.view(v, L.weight), db = layout_.view(v, L.bias);
    if (L.arm_column) {
      at::Tensor arm = at::arange(K, flat.options()).remainder(M).unsqueeze(1);  // (K, 1): j_k
      b = b + W.select(2, L.in) * arm, db = db + dW.select(2, L.in) * arm;
      W = W.narrow(2, 0, L.in), dW = dW.narrow(2, 0, L.in);
    }
    at::Tensor y, dy;  // y = a W^T + b, so dy = a dW^T + db + da W^T
    if (L.stacks == 1) {
      y = at::addmm(b, a, W.t());
      dy = at::addmm(db, a, dW.t());
      if (da.defined()) dy.addmm_(da, W.t());
    } else if (a.dim() == 2) {
      const at::Tensor Wr = W.reshape({K * L.out, L.in}), dWr = dW.reshape({K * L.out, L.in});
      y = at::addmm(b.reshape({K * L.out}), a, Wr.t());
      dy = at::addmm(db.reshape({K * L.out}), a, dWr.t());
      if (da.defined()) dy.addmm_(da, Wr.t());
      if (!last) y = y.view({B, K, L.out}).transpose(0, 1), dy = dy.view({B, K, L.out}).transpose(0, 1);
    } else {
      y = at::baddbmm(b.unsqueeze(1), a, W.transpose(1, 2));
      dy = at::baddbmm(db.unsqueeze(1), a, dW.transpose(1, 2));
      if (da.defined()) dy.baddbmm_(da, W.transpose(1, 2));
    }
    if (L.hidden) {
      a = apply(act_, y);
      apply_backward_(act_, dy, backward_needs_input(act_) ? y : a);  // dy * act'(y)
    } else {
      a = y;
    }
    da = dy;
  }
  if (a.dim() == 3) a = a.squeeze(2).t(), da = da.squeeze(2).t();  // (B, K)
  Scores out;
  for (int o = 0; o < 2; ++o) {
    const OutputTransform t = o == 0 ? revenue_out_ : cost_out_;
    const at::Tensor z = a.narrow(1, o * M, M).contiguous();
    at::Tensor g = da.narrow(1, o * M, M).contiguous();
    apply_backward_out(t, g, g, z, apply(t, z));  // dz * o'(z)
    (o == 0 ? out.r_hat : out.c_hat) = g;
  }
  return out;
}

// The training path keeps each layer's output in one buffer ("base") per layer:
//   shared layer (stacks 1):                  (B, out)
//   stacked layer on a 2-D input ("wide"):    (B, K*out), one addmm for all K heads; the next layer reads it as
//                                             the strided view (K, B, out) (`stacked_view`), as logits() does
//   stacked layer on a (K, B, in) input:      (K, B, out), one baddbmm
// Gradient buffers have the same shapes, so an activation's derivative is one elementwise op over matching views.
// Layer l's input is 2-D exactly when l == 0 or layer l - 1 is shared.
Scores UpliftNet::forward_train(const at::Tensor& flat, const at::Tensor& x, ForwardCache& c) const {
  check_inputs(layout_.size(), cfg_.features, flat, x);
  torch::NoGradGuard no_grad;
  const int64_t B = x.size(0), K = cfg_.heads(), M = cfg_.arms;
  const size_t n = layers_.size();
  const at::TensorOptions o = flat.options();
  c.x = x.to(flat.scalar_type());
  c.z.resize(n), c.acts.resize(n), c.grads.resize(n), c.w_eff.resize(n);
  if (cfg_.arm_column) {
    at::Tensor& arm = ensure(c.arm, {K, 1}, o);
    arm.copy_(at::arange(K, o).remainder(M).unsqueeze(1));
  }
  c.dense = dense_chain_ && flat.scalar_type() == at::kFloat && flat.device().is_cpu() && flat.is_contiguous() &&
            dense::supported();
  c.dense_out = false;
  if (c.dense) {
    forward_dense(flat, c);
  } else {
    at::Tensor a = c.x;  // the layer's input: (B, in), or (K, B, in) one per head
    for (size_t l = 0; l < n; ++l) {
      const Layer& L = layers_[l];
      const bool keep_z = L.hidden && backward_needs_input(act_);
      at::Tensor W = layout_.view(flat, L.weight), b = layout_.view(flat, L.bias);
      if (L.arm_column) {
        // concat(a, j_k) W_k^T + b_k  ==  a W_k[:, :in]^T + (b_k + j_k W_k[:, in]); the narrowed weight is copied
        // once here and reused by backward.
        b = b + W.select(2, L.in) * c.arm;
        W = ensure(c.w_eff[l], {K, L.out, L.in}, o).copy_(W.narrow(2, 0, L.in));
      }
      at::Tensor y;  // pre-activation output, base layout
      if (L.stacks == 1) {
        y = ensure(keep_z ? c.z[l] : c.acts[l], {B, L.out}, o);
        at::addmm_out(y, b, a, W.t());
      } else if (a.dim() == 2) {
        y = ensure(keep_z ? c.z[l] : c.acts[l], {B, K * L.out}, o);
        at::addmm_out(y, b.reshape({K * L.out}), a, W.reshape({K * L.out, L.in}).t());
      } else {
        y = ensure(keep_z ? c.z[l] : c.acts[l], {K, B, L.out}, o);
        at::baddbmm_out(y, b.unsqueeze(1), a, W.transpose(1, 2));
      }
      if (L.hidden) {
        if (keep_z)
          apply_out(act_, ensure(c.acts[l], y.sizes(), o), y);
        else
          apply_out(act_, y, y);
      }
      a = layer_view(l, c.acts[l], B);
    }
    c.logits = a.dim() == 3 ? a.squeeze(2).t() : a;  // (B, K)
  }
  const at::Tensor zr = c.logits.narrow(1, 0, M), zc = c.logits.narrow(1, M, M);
  const bool id_r = revenue_out_ == OutputTransform::kIdentity, id_c = cost_out_ == OutputTransform::kIdentity;
  if (id_r && id_c) return {zr, zc};
  if (c.dense_out) return {id_r ? zr : c.scores.narrow(1, 0, M), id_c ? zc : c.scores.narrow(1, M, M)};
  at::Tensor& s = ensure(c.scores, {B, K}, o);
  if (revenue_out_ == cost_out_) {
    apply_out(revenue_out_, s, c.logits);
    return {s.narrow(1, 0, M), s.narrow(1, M, M)};
  }
  at::Tensor sr = s.narrow(1, 0, M), sc = s.narrow(1, M, M);
  if (!id_r) apply_out(revenue_out_, sr, zr);
  if (!id_c) apply_out(cost_out_, sc, zc);
  return {id_r ? zr : sr, id_c ? zc : sc};
}

// The dense chain on the CPU kernels (dense_cpu.h): every layer is x W^T + b on a (B, in) input (the last one's K
// heads of width 1 are one layer of width K), so each tile of rows runs through all layers while it is in cache.
void UpliftNet::forward_dense(const at::Tensor& flat, ForwardCache& c) const {
  const int64_t B = c.x.size(0), K = cfg_.heads();
  const size_t n = layers_.size();
  const at::TensorOptions o = flat.options();
  c.x = c.x.contiguous();
  c.packed.resize(n), c.bias.resize(n);
  std::vector<dense::Layer> chain(n);
  for (size_t l = 0; l < n; ++l) {
    const Layer& L = layers_[l];
    const int64_t out = L.stacks == 1 ? L.out : K;
    at::Tensor W = layout_.view(flat, L.weight), b = layout_.view(flat, L.bias);
    if (L.arm_column) {
      b = b + W.select(2, L.in) * c.arm;
      W = ensure(c.w_eff[l], {K, L.out, L.in}, o).copy_(W.narrow(2, 0, L.in));
    }
    c.bias[l] = b.reshape({out}).contiguous();
    at::Tensor& wt = ensure(c.packed[l], {L.in, out}, o);
    wt.copy_(W.reshape({out, L.in}).t());
    ensure(c.acts[l], {B, out}, o);
    dense::Layer& d = chain[l];
    d.in = L.in, d.out = out, d.wt = wt.data_ptr<float>(), d.bias = c.bias[l].data_ptr<float>();
    d.input = (l == 0 ? c.x : c.acts[l - 1]).data_ptr<float>(), d.output = c.acts[l].data_ptr<float>();
    d.act = L.hidden;
  }
  // Identity and sigmoid outputs are computed in the tiles too (softplus: by ATen in forward_train).
  const bool sig_r = revenue_out_ == OutputTransform::kSigmoid, sig_c = cost_out_ == OutputTransform::kSigmoid;
  c.dense_out = revenue_out_ != OutputTransform::kSoftplus && cost_out_ != OutputTransform::kSoftplus;
  c.sigmoid_columns.assign(size_t(K), 0);
  for (int64_t k = 0; k < K; ++k) c.sigmoid_columns[size_t(k)] = (k < K / 2 ? sig_r : sig_c) ? -1 : 0;
  float* scores = nullptr;
  if (c.dense_out && (sig_r || sig_c)) scores = ensure(c.scores, {B, K}, o).data_ptr<float>();
  dense::Chain ch;
  ch.layers = chain.data(), ch.n = n, ch.rows = B, ch.sigmoid_columns = c.sigmoid_columns.data();
  ch.slope = act_ == Activation::kLeakyRelu ? 0.01f : 0.f;
  dense::forward(ch, scores);
  c.logits = c.acts.back();  // (B, K)
}

void UpliftNet::backward_dense(const at::Tensor& flat, ForwardCache& c, const at::Tensor& d_r, const at::Tensor& d_c,
                               at::Tensor& grad, const std::function<void(size_t)>& on_ready) const {
  const int64_t B = c.x.size(0), K = cfg_.heads();
  const size_t n = layers_.size();
  const at::TensorOptions o = flat.options();
  std::vector<dense::Layer> chain(n);
  for (size_t l = 0; l < n; ++l) {
    const Layer& L = layers_[l];
    const at::Tensor W = L.arm_column ? c.w_eff[l] : layout_.view(flat, L.weight);  // (out, in) in memory
    dense::Layer& d = chain[l];
    d.in = L.in, d.out = L.stacks == 1 ? L.out : K, d.w = W.data_ptr<float>();
    d.input = (l == 0 ? c.x : c.acts[l - 1]).data_ptr<float>(), d.output = c.acts[l].data_ptr<float>();
    d.act = L.hidden;
  }
  dense::Chain ch;
  ch.layers = chain.data(), ch.n = n, ch.rows = B, ch.sigmoid_columns = c.sigmoid_columns.data();
  ch.slope = act_ == Activation::kLeakyRelu ? 0.01f : 0.f;
  // dL/dlogits: from d_r, d_c and the scores tile by tile (dense_out), or computed by ATen in backward().
  const bool transforms = c.dense_out;
  const at::Tensor dr = transforms ? d_r.to(at::kFloat).contiguous() : at::Tensor();
  const at::Tensor dc = transforms ? d_c.to(at::kFloat).contiguous() : at::Tensor();
  const float* scores =
      transforms && c.scores.defined() && c.scores.size(0) == B ? c.scores.data_ptr<float>() : nullptr;
  if (transforms && !scores) scores = c.logits.data_ptr<float>();  // identity outputs: no flag is set, s unused
  const int threads = dense::threads(B);
  const int64_t total = dense::grad_size(ch);
  at::Tensor& acc = ensure(c.grad_acc, {threads, total}, o);  // per-thread sums of dL/dW, dL/db
  at::Tensor& scratch = ensure(c.scratch, {threads, dense::scratch_size(ch)}, o);
  dense::backward(ch, transforms ? dr.data_ptr<float>() : nullptr, transforms ? dc.data_ptr<float>() : nullptr, scores,
                  transforms ? nullptr : c.grad_logits.data_ptr<float>(), threads, acc.data_ptr<float>(),
                  scratch.data_ptr<float>());
  const at::Tensor sum = threads > 1 ? acc.sum(0) : acc[0];
  std::vector<int64_t> offs(n + 1, 0);
  for (size_t l = 0; l < n; ++l) offs[l + 1] = offs[l] + chain[l].out * layers_[l].in + chain[l].out;
  for (size_t l = n; l-- > 0;) {  // last layer first: the order in which a reducer wants its buckets
    const Layer& L = layers_[l];
    const int64_t out = chain[l].out, off = offs[l];
    at::Tensor gW = layout_.view(grad, L.weight), gb = layout_.view(grad, L.bias);
    const at::Tensor sw = sum.narrow(0, off, out * L.in), sb = sum.narrow(0, off + out * L.in, out);
    gb.copy_(sb.view(gb.sizes()));
    if (L.arm_column) {
      gW.narrow(2, 0, L.in).copy_(sw.view({K, 1, L.in}));
      at::Tensor col = gW.select(2, L.in);  // d/dW[:, :, in] = j_k dL/db_k
      at::mul_out(col, gb, c.arm);
    } else {
      gW.copy_(sw.view(gW.sizes()));
    }
    if (on_ready) on_ready(L.bias), on_ready(L.weight);
  }
}

at::Tensor UpliftNet::layer_view(size_t l, const at::Tensor& base, int64_t B) const {
  const Layer& L = layers_[l];
  const bool wide = L.stacks > 1 && (l == 0 || layers_[l - 1].stacks == 1);
  if (!wide || l + 1 == layers_.size()) return base;
  return base.view({B, cfg_.heads(), L.out}).transpose(0, 1);  // (K, B, out), strided
}

void UpliftNet::backward(const at::Tensor& flat, ForwardCache& c, const at::Tensor& d_r, const at::Tensor& d_c,
                         at::Tensor& grad, const std::function<void(size_t)>& on_ready) const {
  const size_t n = layers_.size();
  if (!c.x.defined() || c.acts.size() != n || !c.logits.defined())
    throw DataError("uplift net: backward needs the cache of a forward_train call on this model");
  const int64_t B = c.x.size(0), K = cfg_.heads(), M = cfg_.arms;
  for (const at::Tensor* d : {&d_r, &d_c})
    if (!d->defined() || d->dim() != 2 || d->size(0) != B || d->size(1) != M)
      throw DataError(fmt::format("uplift net: backward needs d_r and d_c of shape ({}, {}), got {}", B, M,
                                  d->defined() ? shape_str(d->sizes()) : "none"));
  check_inputs(layout_.size(), cfg_.features, flat, c.x);
  torch::NoGradGuard no_grad;
  const at::TensorOptions o = flat.options();
  if (!grad.defined() || grad.sizes() != flat.sizes() || grad.dtype() != flat.dtype() || grad.device() != flat.device())
    grad = at::empty(flat.sizes(), o);

  if (c.dense && c.dense_out) {  // the kernels apply the output transforms' derivatives tile by tile
    backward_dense(flat, c, d_r, d_c, grad, on_ready);
    return;
  }
  // Output transforms: dL/dlogits into the last layer's gradient buffer.
  at::Tensor& g_last = ensure(c.grads[n - 1], c.acts[n - 1].sizes(), o);
  c.grad_logits = g_last.dim() == 3 ? g_last.squeeze(2).t() : g_last;
  {
    at::Tensor gr = c.grad_logits.narrow(1, 0, M), gc = c.grad_logits.narrow(1, M, M);
    const bool has_s = c.scores.defined() && c.scores.size(0) == B;
    const at::Tensor zr = c.logits.narrow(1, 0, M), zc = c.logits.narrow(1, M, M);
    apply_backward_out(revenue_out_, gr, d_r, zr, has_s ? c.scores.narrow(1, 0, M) : zr);
    apply_backward_out(cost_out_, gc, d_c, zc, has_s ? c.scores.narrow(1, M, M) : zc);
  }

  if (c.dense) {
    backward_dense(flat, c, d_r, d_c, grad, on_ready);
    return;
  }
  static const std::vector<int64_t> kRows{0}, kStackRows{1};  // the batch dimension: (B, out), (K, B, out)
  for (size_t l = n; l-- > 0;) {
    const Layer& L = layers_[l];
    const at::Tensor& dz = c.grads[l];  // dL/d(pre-activation output), base layout
    const at::Tensor a = l == 0 ? c.x : layer_view(l - 1, c.acts[l - 1], B);
    at::Tensor gW = layout_.view(grad, L.weight), gb = layout_.view(grad, L.bias);
    const at::Tensor W = L.arm_column ? c.w_eff[l] : layout_.view(flat, L.weight);  // without the arm column
    at::Tensor da;  // dL/d(previous layer's output), written straight into its gradient buffer
    if (l > 0) da = layer_view(l - 1, ensure(c.grads[l - 1], c.acts[l - 1].sizes(), o), B);
    if (L.stacks == 1) {
      at::mm_out(gW, dz.t(), a);
      at::sum_out(gb, dz, kRows);
      if (l > 0) at::mm_out(da, dz, W);
    } else if (a.dim() == 2) {
      at::Tensor gW2 = gW.view({K * L.out, L.in + (L.arm_column ? 1 : 0)}).narrow(1, 0, L.in);
      at::Tensor gb2 = gb.view({K * L.out});
      at::mm_out(gW2, dz.t(), a);
      at::sum_out(gb2, dz, kRows);
      if (l > 0) at::mm_out(da, dz, W.reshape({K * L.out, L.in}));
    } else {
      at::Tensor gW3 = gW.narrow(2, 0, L.in);
      at::bmm_out(gW3, dz.transpose(1, 2), a);
      at::sum_out(gb, dz, kStackRows);
      if (l > 0) at::bmm_out(da, dz, W);
    }
    if (L.arm_column) {
      at::Tensor col = gW.select(2, L.in);  // d/dW[:, :, in] = j_k dL/db_k
      at::mul_out(col, gb, c.arm);
    }
    if (on_ready) on_ready(L.bias), on_ready(L.weight);
    if (l > 0) {
      const bool keep_z = backward_needs_input(act_);  // layer l - 1 is hidden
      apply_backward_(act_, da, layer_view(l - 1, keep_z ? c.z[l - 1] : c.acts[l - 1], B));
    }
  }
}

void UpliftNet::save(const std::string& path) const { write_param_file(path, named_parameters()); }

void UpliftNet::load(const std::string& path) {
  NamedTensors file = read_param_file(path);
  std::vector<std::string> extra;
  for (const auto& kv : file)
    if (layout_.find(kv.first) < 0) extra.push_back(kv.first);
  if (!extra.empty())
    throw DataError(
        fmt::format("{}: parameter(s) {} are not in this model; the file was saved from another "
                    "architecture (check model.* against the run that wrote it)",
                    path, fmt::join(extra, ", ")));
  torch::NoGradGuard no_grad;
  for (size_t i = 0; i < layout_.entries().size(); ++i) {
    const ParamEntry& e = layout_.entries()[i];
    const at::Tensor* src = nullptr;
    for (const auto& kv : file)
      if (kv.first == e.name) src = &kv.second;
    if (!src)
      throw DataError(
          fmt::format("{}: parameter '{}' is missing; the file was saved from another architecture "
                      "(check model.* against the run that wrote it)",
                      path, e.name));
    if (src->sizes() != at::IntArrayRef(e.shape))
      throw DataError(
          fmt::format("{}: parameter '{}' has shape {}, this model needs {}; the file was saved from "
                      "another architecture",
                      path, e.name, shape_str(src->sizes()), shape_str(e.shape)));
  }
  for (size_t i = 0; i < layout_.entries().size(); ++i)
    for (const auto& kv : file)
      if (kv.first == layout_.entries()[i].name) layout_.view(flat_, i).copy_(kv.second);
}

}  // namespace dfcl::model
