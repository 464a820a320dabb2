// \brief Allocation solver on one core: dual path (one budget, whole curve) against bisection and GLPK's LP.
#include <benchmark/benchmark.h>  // for BENCHMARK
#ifdef DFCL_BENCH_GLPK
#include <glpk.h>  // for glp_simplex (the LP peer)
#endif

#include <fstream>  // for /proc/self/status
#include <map>      // for std::map
#include <memory>   // for std::unique_ptr

#include "core/rng.h"       // for Rng
#include "core/parallel.h"  // for parallel_for
#include "solver/mckp.h"    // for DualPath

using namespace dfcl;

namespace {
// Random instance like a model's predictions: costs increase with the arm, revenue is noisy and concave.
struct Instance {
  int64_t n;
  int m = 5;
  std::vector<float> r, c;
  explicit Instance(int64_t n_) : n(n_), r(n_ * 5), c(n_ * 5) {
    parallel_for((n + 65535) / 65536, 2, [&](int64_t b) {
      for (int64_t i = b * 65536; i < std::min(n, (b + 1) * 65536); ++i) {
        Rng g(1, 2, uint64_t(i));
        for (int j = 0; j < m; ++j) {
          c[i * m + j] = j == 0 ? 0.f : float(j * (0.5 + g.uniform()));
          r[i * m + j] = float(3 * (1 - std::exp(-0.7 * j)) * g.uniform() + 0.3 * g.normal());
        }
      }
    });
  }
  solver::Scores scores() const { return {n, m, r.data(), c.data()}; }
};
const Instance& instance(int64_t n) {
  static std::map<int64_t, std::unique_ptr<Instance>> cache;
  auto& p = cache[n];
  if (!p) p = std::make_unique<Instance>(n);
  return *p;
}
double budget_of(const solver::DualPath& p) { return p.min_spend() + 0.3 * (p.max_spend() - p.min_spend()); }
int64_t rss_kib() {
  std::ifstream f("/proc/self/status");
  std::string k;
  int64_t v = 0;
  while (f >> k)
    if (k == "VmHWM:") return f >> v, v;
  return 0;
}
}  // namespace

static void BM_DualPathOneBudget(benchmark::State& st) {
  const auto& x = instance(st.range(0));
  for (auto _ : st) {
    solver::DualPath p(x.scores(), 1);
    benchmark::DoNotOptimize(p.solve(budget_of(p)).revenue);
  }
  st.counters["users"] = double(x.n);
  st.counters["peak_rss_over_input"] = rss_kib() * 1024.0 / (x.n * x.m * 8.0);
}
BENCHMARK(BM_DualPathOneBudget)->Arg(10000)->Arg(100000)->Arg(10000000)->Unit(benchmark::kMillisecond)->Iterations(1);

static void BM_DualPathWholeCurve(benchmark::State& st) {
  const auto& x = instance(st.range(0));
  for (auto _ : st) {
    solver::DualPath p(x.scores(), 1);
    benchmark::DoNotOptimize(p.curve(1000).back().revenue);
  }
}
BENCHMARK(BM_DualPathWholeCurve)->Arg(100000)->Arg(10000000)->Unit(benchmark::kMillisecond)->Iterations(1);

static void BM_Bisection(benchmark::State& st) {
  const auto& x = instance(st.range(0));
  solver::DualPath p(x.scores(), 1);
  const double b = budget_of(p);
  for (auto _ : st) benchmark::DoNotOptimize(solver::solve_bisection(x.scores(), b).revenue);
}
BENCHMARK(BM_Bisection)->Arg(10000)->Arg(100000)->Arg(10000000)->Unit(benchmark::kMillisecond)->Iterations(1);

#ifdef DFCL_BENCH_GLPK
static void BM_GlpkLp(benchmark::State& st) {
  const auto& x = instance(st.range(0));
  solver::DualPath p(x.scores(), 1);
  const double budget = budget_of(p);
  for (auto _ : st) {
    glp_term_out(GLP_OFF);
    glp_prob* lp = glp_create_prob();
    glp_set_obj_dir(lp, GLP_MAX);
    glp_add_rows(lp, int(x.n) + 1);
    for (int i = 1; i <= x.n; ++i) glp_set_row_bnds(lp, i, GLP_FX, 1.0, 1.0);
    glp_set_row_bnds(lp, int(x.n) + 1, GLP_UP, 0.0, budget);
    glp_add_cols(lp, int(x.n * x.m));
    std::vector<int> ia{0}, ja{0};
    std::vector<double> ar{0};
    for (int64_t i = 0; i < x.n; ++i)
      for (int j = 0; j < x.m; ++j) {
        int col = int(i * x.m + j) + 1;
        glp_set_col_bnds(lp, col, GLP_DB, 0.0, 1.0);
        glp_set_obj_coef(lp, col, x.r[i * x.m + j]);
        ia.push_back(int(i) + 1), ja.push_back(col), ar.push_back(1.0);
        ia.push_back(int(x.n) + 1), ja.push_back(col), ar.push_back(x.c[i * x.m + j]);
      }
    glp_load_matrix(lp, int(ia.size()) - 1, ia.data(), ja.data(), ar.data());
    glp_smcp parm;
    glp_init_smcp(&parm);
    parm.presolve = GLP_ON;
    glp_simplex(lp, &parm);
    st.counters["lp_rel_diff"] = std::abs(glp_get_obj_val(lp) - p.solve(budget).lp_bound) / std::abs(glp_get_obj_val(lp));
    glp_delete_prob(lp);
  }
}
// Primal simplex with presolve (GLPK's dual simplex was 4x slower on this problem at 10k users).
BENCHMARK(BM_GlpkLp)->Arg(10000)->Arg(100000)->Unit(benchmark::kMillisecond)->Iterations(1);
#endif

BENCHMARK_MAIN();
