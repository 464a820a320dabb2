// \brief SVG line plots (see svg_plot.h).
#include "metrics/svg_plot.h"

#include "core/atomic_file.h"  // for AtomicFile

#include <fmt/format.h>  // for fmt::format

#include <algorithm>  // for std::min, std::max
#include <cmath>      // for std::isfinite, std::pow, std::floor, std::log10, std::ceil
#include <fstream>    // for std::ofstream

#include "core/error.h"  // for IoError

namespace dfcl::metrics {
namespace {

std::string escape(const std::string& s) {
  std::string o;
  for (char ch : s) {
    switch (ch) {
      case '&':
        o += "&amp;";
        break;
      case '<':
        o += "&lt;";
        break;
      case '>':
        o += "&gt;";
        break;
      case '"':
        o += "&quot;";
        break;
      default:
        o += ch;
    }
  }
  return o;
}

// A "nice" tick step (1, 2 or 5 times a power of ten) giving about `target` intervals over `span`.
double nice_step(double span, int target) {
  const double raw = span / target;
  const double p = std::pow(10.0, std::floor(std::log10(raw)));
  const double f = raw / p;
  return (f < 1.5 ? 1 : f < 3 ? 2 : f < 7 ? 5 : 10) * p;
}

struct Axis {
  double lo, hi, step;
};

Axis make_axis(double lo, double hi) {
  if (!(hi > lo)) {  // a single value (or none): open a unit window around it
    const double d = std::max(1.0, std::abs(lo));
    lo -= 0.5 * d, hi += 0.5 * d;
  }
  const double step = nice_step(hi - lo, 6);
  return {std::floor(lo / step) * step, std::ceil(hi / step) * step, step};
}

std::string tick_label(double v, double step) {
  if (std::abs(v) < step * 1e-9) v = 0;
  const int digits = std::max(0, -static_cast<int>(std::floor(std::log10(step) + 1e-9)));
  if (std::abs(v) >= 1e5 || (v != 0 && std::abs(v) < 1e-4)) return fmt::format("{:.2g}", v);
  return fmt::format("{:.{}f}", v, digits);
}

}  // namespace

std::string render_svg(const Plot& plot) {
  double x0 = 0, x1 = 0, y0 = 0, y1 = 0;  // the origin is always shown
  for (const auto& s : plot.series)
    for (size_t k = 0; k < s.x.size() && k < s.y.size(); ++k)
      if (std::isfinite(s.x[k]) && std::isfinite(s.y[k]))
        x0 = std::min(x0, s.x[k]), x1 = std::max(x1, s.x[k]), y0 = std::min(y0, s.y[k]), y1 = std::max(y1, s.y[k]);
  const Axis ax = make_axis(x0, x1), ay = make_axis(y0, y1);
  const double W = plot.width, H = plot.height;
  const double left = 84, right = 24, top = plot.title.empty() ? 24 : 48, bottom = 64;
  const double pw = W - left - right, ph = H - top - bottom;
  auto X = [&](double v) { return left + (v - ax.lo) / (ax.hi - ax.lo) * pw; };
  auto Y = [&](double v) { return top + ph - (v - ay.lo) / (ay.hi - ay.lo) * ph; };

  std::string o = fmt::format(
      "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{0}\" height=\"{1}\" viewBox=\"0 0 {0} {1}\" "
      "font-family=\"Helvetica, Arial, sans-serif\" font-size=\"12\">\n"
      "<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n",
      plot.width, plot.height);
  if (!plot.title.empty())
    o += fmt::format("<text x=\"{}\" y=\"28\" text-anchor=\"middle\" font-size=\"15\">{}</text>\n", left + pw / 2,
                     escape(plot.title));
  // Grid and ticks.
  for (double v = ax.lo; v <= ax.hi + ax.step * 1e-9; v += ax.step) {
    o += fmt::format("<line x1=\"{0:.2f}\" y1=\"{1:.2f}\" x2=\"{0:.2f}\" y2=\"{2:.2f}\" stroke=\"#e5e5e5\"/>\n", X(v),
                     top, top + ph);
    o += fmt::format("<text x=\"{:.2f}\" y=\"{:.2f}\" text-anchor=\"middle\">{}</text>\n", X(v), top + ph + 18,
                     tick_label(v, ax.step));
  }
  for (double v = ay.lo; v <= ay.hi + ay.step * 1e-9; v += ay.step) {
    o += fmt::format("<line x1=\"{1:.2f}\" y1=\"{0:.2f}\" x2=\"{2:.2f}\" y2=\"{0:.2f}\" stroke=\"#e5e5e5\"/>\n", Y(v),
                     left, left + pw);
    o += fmt::format("<text x=\"{:.2f}\" y=\"{:.2f}\" text-anchor=\"end\">{}</text>\n", left - 6, Y(v) + 4,
                     tick_label(v, ay.step));
  }
  // Axes through the origin when it is inside, else along the frame.
  o += fmt::format("<rect x=\"{}\" y=\"{}\" width=\"{}\" height=\"{}\" fill=\"none\" stroke=\"#333\"/>\n", left, top,
                   pw, ph);
  if (ay.lo < 0 && ay.hi > 0)
    o += fmt::format("<line x1=\"{0}\" y1=\"{1:.2f}\" x2=\"{2}\" y2=\"{1:.2f}\" stroke=\"#888\"/>\n", left, Y(0),
                     left + pw);
  if (ax.lo < 0 && ax.hi > 0)
    o += fmt::format("<line x1=\"{0:.2f}\" y1=\"{1}\" x2=\"{0:.2f}\" y2=\"{2}\" stroke=\"#888\"/>\n", X(0), top,
                     top + ph);
  o += fmt::format("<text x=\"{}\" y=\"{}\" text-anchor=\"middle\">{}</text>\n", left + pw / 2, H - 18,
                   escape(plot.xlabel));
  o += fmt::format("<text x=\"18\" y=\"{0}\" text-anchor=\"middle\" transform=\"rotate(-90 18 {0})\">{1}</text>\n",
                   top + ph / 2, escape(plot.ylabel));
  // Series.
  for (const auto& s : plot.series) {
    std::string pts;
    for (size_t k = 0; k < s.x.size() && k < s.y.size(); ++k)
      if (std::isfinite(s.x[k]) && std::isfinite(s.y[k])) pts += fmt::format("{:.2f},{:.2f} ", X(s.x[k]), Y(s.y[k]));
    if (pts.empty()) continue;
    if (s.line)
      o += fmt::format("<polyline fill=\"none\" stroke=\"{}\" stroke-width=\"2\"{} points=\"{}\"/>\n", escape(s.color),
                       s.dashed ? " stroke-dasharray=\"6 4\"" : "", pts);
    if (s.markers)
      for (size_t k = 0; k < s.x.size() && k < s.y.size(); ++k)
        if (std::isfinite(s.x[k]) && std::isfinite(s.y[k]))
          o += fmt::format("<circle cx=\"{:.2f}\" cy=\"{:.2f}\" r=\"3.5\" fill=\"{}\"/>\n", X(s.x[k]), Y(s.y[k]),
                           escape(s.color));
  }
  // Legend, top left inside the frame.
  double ly = top + 18;
  size_t longest = 0;
  for (const auto& s : plot.series) longest = std::max(longest, s.name.size());
  if (!plot.series.empty())
    o += fmt::format(
        "<rect x=\"{}\" y=\"{}\" width=\"{}\" height=\"{}\" fill=\"white\" fill-opacity=\"0.85\" "
        "stroke=\"#bbb\"/>\n",
        left + 10, top + 6, 44 + 7.0 * longest, 18.0 * plot.series.size() + 6);
  for (const auto& s : plot.series) {
    if (s.line)
      o +=
          fmt::format("<line x1=\"{}\" y1=\"{}\" x2=\"{}\" y2=\"{}\" stroke=\"{}\" stroke-width=\"2\"{}/>\n", left + 16,
                      ly - 4, left + 40, ly - 4, escape(s.color), s.dashed ? " stroke-dasharray=\"6 4\"" : "");
    if (s.markers)
      o += fmt::format("<circle cx=\"{}\" cy=\"{}\" r=\"3.5\" fill=\"{}\"/>\n", left + 28, ly - 4, escape(s.color));
    o += fmt::format("<text x=\"{}\" y=\"{}\">{}</text>\n", left + 46, ly, escape(s.name));
    ly += 18;
  }
  o += "</svg>\n";
  return o;
}

void write_svg(const std::string& path, const Plot& plot) {
  AtomicFile f(path, "plot");
  f.stream() << render_svg(plot);
  f.commit();
}

}  // namespace dfcl::metrics
