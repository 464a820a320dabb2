// \brief Synthetic RCT samples for metrics tests: generator rows held in memory, with views for the metrics.
#pragma once
#include <cstdint>  // for int64_t, uint64_t

#include "data/generator.h"      // for Generator
#include "data/schema.h"         // for Table, Meta
#include "metrics/rct_sample.h"  // for RctSample
#include "solver/scores.h"       // for Scores

namespace dfcl::test {

/// A randomised trial of `rows` rows (no observational rows) with known potential outcomes.
struct Trial {
  data::Meta meta;
  data::Table t;

  /// `quiet`: outcomes without zero inflation and with little spend noise (purchase_rate 1, revenue_noise 0.3), for
  /// checks whose tolerance is tighter than the default population's sampling noise allows.
  Trial(int64_t rows, int arms, uint64_t seed, int features = 4, bool quiet = false) {
    data::GeneratorConfig c;
    if (quiet) c.purchase_rate = 1.0, c.revenue_noise = 0.3;
    c.rct_rows = rows;
    c.observational_rows = 0;
    c.features = features;
    c.arms = arms;
    c.seed = seed;
    data::Generator g(c);
    meta = g.meta();
    g.fill(0, rows, t, 2);
  }
  Trial(const Trial&) = delete;
  Trial& operator=(const Trial&) = delete;

  int64_t n() const { return t.rows; }
  int m() const { return t.num_arms; }
  /// The sample with its empirical arm shares (the papers' choice).
  metrics::RctSample sample() const {
    metrics::RctSample s;
    s.n = t.rows, s.m = t.num_arms;
    s.arm = t.treatment.data(), s.revenue = t.revenue.data(), s.cost = t.cost.data();
    s.propensity = metrics::empirical_propensity(s.arm, s.n, s.m);
    s.empirical = true;
    return s;
  }
  solver::Scores truth() const { return {t.rows, t.num_arms, t.true_revenue.data(), t.true_cost.data()}; }
};

}  // namespace dfcl::test
