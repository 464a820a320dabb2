// \brief The SVG writer and scores files.
#include <gtest/gtest.h>  // for TEST

#include <cmath>    // for NAN
#include <fstream>  // for std::ifstream
#include <sstream>  // for std::stringstream

#include "core/error.h"          // for DataError, IoError
#include "metrics/score_file.h"  // for read_score_file, write_score_file
#include "metrics/svg_plot.h"    // for render_svg, write_svg

namespace dfcl::metrics {
namespace {

size_t count(const std::string& s, const std::string& what) {
  size_t n = 0;
  for (size_t p = s.find(what); p != std::string::npos; p = s.find(what, p + 1)) ++n;
  return n;
}

TEST(SvgPlot, HasAxesSeriesAndLegend) {
  Plot p;
  p.title = "cost curve <test> & co";
  p.xlabel = "incremental cost per user";
  p.ylabel = "incremental revenue per user";
  p.series.push_back({"policy", {0, 0.5, 1.0}, {0, 0.8, 1.0}, "#d62728", false, false});
  p.series.push_back({"random", {0, 1.0}, {0, 0.5}, "#7f7f7f", true, false});
  p.series.push_back({"EOM", {0.5, NAN}, {0.8, 1}, "#000000", false, true, false});
  const std::string svg = render_svg(p);
  EXPECT_EQ(svg.rfind("<svg", 0), 0u);
  EXPECT_NE(svg.find("</svg>"), std::string::npos);
  EXPECT_EQ(count(svg, "<polyline"), 2u);  // the dots-only series has none
  EXPECT_EQ(count(svg, "<circle"), 2u);    // one dot (the NaN point is skipped) and its legend entry
  EXPECT_NE(svg.find("stroke-dasharray"), std::string::npos);
  EXPECT_NE(svg.find("cost curve &lt;test&gt; &amp; co"), std::string::npos);
  EXPECT_NE(svg.find(">incremental revenue per user<"), std::string::npos);
  EXPECT_NE(svg.find(">random<"), std::string::npos);
  EXPECT_NE(svg.find(">0.4<"), std::string::npos);  // a tick label (steps of 0.2 over [0, 1])
  EXPECT_THROW(write_svg("/nonexistent-dir/x.svg", p), IoError);
  const std::string path = ::testing::TempDir() + "/dfcl_plot.svg";
  write_svg(path, p);
  std::ifstream f(path);
  std::stringstream ss;
  ss << f.rdbuf();
  EXPECT_EQ(ss.str(), svg);
}

#ifdef DFCL_HAVE_HDF5
TEST(ScoreFile, RoundTripAndRowSelection) {
  const int64_t n = 70000;  // more than one read block
  const int m = 3;
  ScoreTable t;
  t.n = n, t.m = m;
  for (int64_t i = 0; i < n * m; ++i) t.r.push_back(float(i)), t.c.push_back(float(-i));
  const std::string path = ::testing::TempDir() + "/dfcl_scores.h5";
  write_score_file(path, t.view());
  ScoreTable all = read_score_file(path, {}, n, m);
  EXPECT_EQ(all.r, t.r);
  EXPECT_EQ(all.c, t.c);
  ScoreTable some = read_score_file(path, {1, 5, 65535, 65536, 69999});
  ASSERT_EQ(some.n, 5);
  EXPECT_EQ(some.r[2 * m + 1], float(65535 * m + 1));
  EXPECT_EQ(some.c[4 * m + 2], -float(69999 * m + 2));
  try {
    read_score_file(path, {}, n + 1, m);
    FAIL();
  } catch (const DataError& e) {
    EXPECT_NE(std::string(e.what()).find("the scores have 70000 rows but the dataset has 70001"), std::string::npos);
  }
  EXPECT_THROW(read_score_file(path, {}, n, m + 1), DataError);
  EXPECT_THROW(read_score_file(path + ".missing"), DataError);
}
#endif

}  // namespace
}  // namespace dfcl::metrics
