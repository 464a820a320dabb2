// \brief A small SVG line-plot writer (axes, ticks, labels, legend): enough to look at cost curves, no dependencies.
#pragma once
#include <string>  // for std::string
#include <vector>  // for std::vector

namespace dfcl::metrics {

struct Series {
  std::string name;          // legend entry
  std::vector<double> x, y;  // non-finite points are skipped
  std::string color = "#1f77b4";
  bool dashed = false;
  bool markers = false;  // draw a dot at every point (sparse series, e.g. EOM budgets)
  bool line = true;      // join the points (false: dots only)
};

struct Plot {
  std::string title, xlabel, ylabel;
  std::vector<Series> series;
  int width = 760, height = 520;
};

/// The plot as an SVG document. Axis ranges cover every finite point and the origin, with 1-2-5 ticks.
std::string render_svg(const Plot& plot);
/// Writes render_svg(plot) to `path`; throws IoError when the file cannot be written.
void write_svg(const std::string& path, const Plot& plot);

}  // namespace dfcl::metrics
