// \brief The scorer registry and the block-wise scoring of a whole source (see scorer.h).
#include "decide/scorer.h"

#include <fmt/format.h>  // for fmt::format

#include <algorithm>  // for std::copy

#include "core/progress.h"  // for Progress
#include "data/source.h"    // for RowSource

// The built-in scorers, one registrar each (decide/scorer_<name>.cpp). A list rather than static registrars, so the
// linker cannot drop one (core/registry.h).
#define DFCL_BUILTIN_SCORERS(X) \
  X(reference)                  \
  X(checkpoint)                 \
  X(policy)                     \
  X(scores_file)

namespace dfcl::decide {

#define DFCL_DECLARE(name) void register_scorer_##name(core::Registry<ScorerFactory>& r);
DFCL_BUILTIN_SCORERS(DFCL_DECLARE)
#undef DFCL_DECLARE

namespace {
void register_builtins();
core::Registry<ScorerFactory> registry_("scorer", &register_builtins);
void register_builtins() {
#define DFCL_CALL(name) register_scorer_##name(registry_);
  DFCL_BUILTIN_SCORERS(DFCL_CALL)
#undef DFCL_CALL
}
}  // namespace

core::Registry<ScorerFactory>& scorer_registry() { return registry_; }

std::unique_ptr<Scorer> make_scorer(const std::string& spec, const ScorerContext& ctx) {
  auto& reg = scorer_registry();
  if (auto f = reg.find(spec)) return f(spec, ctx);
  const size_t dot = spec.find_last_of('.');
  if (dot != std::string::npos && spec.find('/', dot) == std::string::npos)
    if (auto f = reg.find(spec.substr(dot))) return f(spec, ctx);
  return reg.find("scores_file")(spec, ctx);
}

std::vector<TrainedOn> trained_on(const std::vector<const Scorer*>& scorers) {
  std::vector<TrainedOn> out;
  for (const Scorer* s : scorers)
    if (const TrainedOn* t = s->trained_on()) out.push_back(*t);
  return out;
}

metrics::ScoreTable Scorer::score_all(data::RowSource* src) const {
  if (!src)
    throw ConfigError(fmt::format("{} scores the users of a dataset: give the dataset (allocate.data=FILE.h5, or a list "
                                  "of files)",
                                  name_));
  const data::Meta& meta = src->meta();
  check(meta, src->name());
  metrics::ScoreTable t;
  t.n = meta.num_rows, t.m = meta.num_arms;
  t.r.resize(size_t(t.n) * size_t(t.m)), t.c.resize(size_t(t.n) * size_t(t.m));
  data::Table block;
  Progress bar(from_file() ? "score" : "read", t.n);
  for (int64_t a = 0; a < t.n; a += src->chunk_rows()) {
    src->read(a, std::min(src->chunk_rows(), t.n - a), block);
    const metrics::ScoreTable s = score(block, meta, src->name());
    std::copy(s.r.begin(), s.r.end(), t.r.begin() + a * t.m);
    std::copy(s.c.begin(), s.c.end(), t.c.begin() + a * t.m);
    bar.advance(block.rows);
  }
  return t;
}

}  // namespace dfcl::decide
