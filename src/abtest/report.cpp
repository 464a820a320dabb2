// \brief The A/B report (report.h): the text table, the JSON and the SVG CI plot.
#include "abtest/report.h"

#include "core/atomic_file.h"  // for AtomicFile

#include <fmt/format.h>  // for fmt::format

#include <algorithm>  // for std::min, std::max
#include <cctype>     // for std::toupper
#include <cmath>      // for std::isfinite, std::abs, std::pow, std::floor, std::ceil, std::log10
#include <fstream>    // for std::ofstream

#include "core/error.h"  // for IoError

namespace dfcl::abtest {
namespace {

std::string upper(std::string s) {
  for (char& c : s) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return s;
}

std::string ci_header(double alpha) { return fmt::format("{:g}% CI", 100 * (1 - alpha)); }

// The method as shown: upper case, with '*' when it has warnings (printed below the table).
std::string label(const Estimate& e) { return upper(e.method) + (e.warnings.empty() ? "" : "*"); }

std::string escape(const std::string& s) {
  std::string o;
  for (char ch : s) {
    if (ch == '&')
      o += "&amp;";
    else if (ch == '<')
      o += "&lt;";
    else if (ch == '>')
      o += "&gt;";
    else if (ch == '"')
      o += "&quot;";
    else
      o += ch;
  }
  return o;
}

}  // namespace

std::string comparison_table(const Comparison& c, double alpha) {
  std::string o =
      fmt::format("{} vs {}, {}{}: n = {} vs {}, means {:.6g} vs {:.6g}\n", c.treatment, c.control, c.metric,
                  c.ratio ? " (ratio)" : "", c.n_treatment, c.n_control, c.mean_treatment, c.mean_control);
  o += fmt::format("{:<8} {:>12} {:>11} {:>27} {:>10} {:>9}\n", "method", "effect", "SE", ci_header(alpha), "p-value",
                   "var. red.");
  for (const auto& e : c.estimates)
    o += fmt::format("{:<8} {:>12.6g} {:>11.5g} {:>27} {:>10.3g} {:>9}\n", label(e), e.effect, e.se,
                     fmt::format("[{:.6g}, {:.6g}]", e.ci_low, e.ci_high), e.p_value,
                     std::isfinite(e.variance_reduction) ? fmt::format("{:.1f}%", 100 * e.variance_reduction) : "-");
  for (const auto& e : c.estimates)
    for (const auto& w : e.warnings) o += fmt::format("* {}: {}\n", upper(e.method), w);
  return o;
}

// CI bars per estimator: one panel per comparison, each with its own effect axis and a dashed line at zero.
std::string forest_svg(const std::vector<Comparison>& cs, double alpha) {
  static const char* colors[] = {"#555555", "#1f77b4", "#2ca02c", "#ff7f0e", "#d62728", "#9467bd", "#8c564b"};
  const double W = 760, left = 96, right = 28, row_h = 22, title_h = 30, axis_h = 34, gap = 14;
  const double pw = W - left - right;
  double H = 12;
  for (const auto& c : cs) H += title_h + row_h * c.estimates.size() + axis_h + gap;
  std::string o = fmt::format(
      "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{0}\" height=\"{1}\" viewBox=\"0 0 {0} {1}\" "
      "font-family=\"Helvetica, Arial, sans-serif\" font-size=\"12\">\n"
      "<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n",
      W, H);
  double top = 12;
  for (const auto& c : cs) {
    double lo = 0, hi = 0;  // zero is always on the axis
    for (const auto& e : c.estimates)
      for (double v : {e.ci_low, e.ci_high, e.effect})
        if (std::isfinite(v)) lo = std::min(lo, v), hi = std::max(hi, v);
    if (!(hi > lo)) hi = lo + 1;
    if (std::abs(lo) < 1e-9 * (hi - lo)) lo = 0;  // rounding-level values (a degenerate fit) do not move the axis
    if (std::abs(hi) < 1e-9 * (hi - lo)) hi = 0;
    const double raw = (hi - lo) / 6, p = std::pow(10.0, std::floor(std::log10(raw))), fr = raw / p;
    const double step = (fr < 1.5 ? 1 : fr < 3 ? 2 : fr < 7 ? 5 : 10) * p;
    lo = std::floor(lo / step) * step, hi = std::ceil(hi / step) * step;
    auto X = [&](double v) { return left + (v - lo) / (hi - lo) * pw; };
    const double ph = row_h * c.estimates.size(), y0 = top + title_h;
    o += fmt::format("<text x=\"{}\" y=\"{}\" font-size=\"14\">{} vs {}: {}{} ({}, n = {} vs {})</text>\n", left,
                     top + 18, escape(c.treatment), escape(c.control), escape(c.metric), c.ratio ? " (ratio)" : "",
                     escape(ci_header(alpha)), c.n_treatment, c.n_control);
    const int digits = std::max(0, -int(std::floor(std::log10(step) + 1e-9)));
    for (double v = lo; v <= hi + step * 1e-9; v += step) {
      o += fmt::format("<line x1=\"{0:.2f}\" y1=\"{1:.2f}\" x2=\"{0:.2f}\" y2=\"{2:.2f}\" stroke=\"#e5e5e5\"/>\n", X(v),
                       y0, y0 + ph);
      o += fmt::format("<text x=\"{:.2f}\" y=\"{:.2f}\" text-anchor=\"middle\">{:.{}f}</text>\n", X(v), y0 + ph + 16,
                       std::abs(v) < step * 1e-9 ? 0.0 : v, digits);
    }
    o += fmt::format("<rect x=\"{}\" y=\"{}\" width=\"{}\" height=\"{}\" fill=\"none\" stroke=\"#333\"/>\n", left, y0,
                     pw, ph);
    o += fmt::format(
        "<line x1=\"{0:.2f}\" y1=\"{1:.2f}\" x2=\"{0:.2f}\" y2=\"{2:.2f}\" stroke=\"#888\" stroke-dasharray=\"4 "
        "3\"/>\n",
        X(0), y0, y0 + ph);
    bool warned = false;
    for (const auto& e : c.estimates) warned = warned || !e.warnings.empty();
    o += fmt::format("<text x=\"{}\" y=\"{:.2f}\" text-anchor=\"middle\" fill=\"#555\">effect on {}{}</text>\n",
                     left + pw / 2, y0 + ph + 30, escape(c.metric),
                     warned ? " (* has warnings: see the table or the JSON)" : "");
    for (size_t k = 0; k < c.estimates.size(); ++k) {
      const auto& e = c.estimates[k];
      const double y = y0 + row_h * (k + 0.5);
      const char* color = colors[k % (sizeof(colors) / sizeof(colors[0]))];
      o +=
          fmt::format("<text x=\"{}\" y=\"{:.2f}\" text-anchor=\"end\">{}</text>\n", left - 8, y + 4, escape(label(e)));
      if (!std::isfinite(e.effect)) continue;
      o += fmt::format("<g><title>{}: {:.6g} [{:.6g}, {:.6g}], p = {:.3g}</title>\n", escape(upper(e.method)), e.effect,
                       e.ci_low, e.ci_high, e.p_value);
      if (std::isfinite(e.ci_low) && std::isfinite(e.ci_high)) {
        o += fmt::format(
            "<line x1=\"{:.2f}\" y1=\"{:.2f}\" x2=\"{:.2f}\" y2=\"{:.2f}\" stroke=\"{}\" "
            "stroke-width=\"2\"/>\n",
            X(e.ci_low), y, X(e.ci_high), y, color);
        for (double v : {e.ci_low, e.ci_high})
          o += fmt::format(
              "<line x1=\"{0:.2f}\" y1=\"{1:.2f}\" x2=\"{0:.2f}\" y2=\"{2:.2f}\" stroke=\"{3}\" "
              "stroke-width=\"2\"/>\n",
              X(v), y - 5, y + 5, color);
      }
      o += fmt::format("<circle cx=\"{:.2f}\" cy=\"{:.2f}\" r=\"4\" fill=\"{}\"/></g>\n", X(e.effect), y, color);
    }
    top += title_h + ph + axis_h + gap;
  }
  o += "</svg>\n";
  return o;
}

void write_forest_svg(const std::string& path, const std::string& key, const std::vector<Comparison>& cs,
                      double alpha) {
  AtomicFile f(path, key);
  f.stream() << forest_svg(cs, alpha);
  f.commit();
}

nlohmann::json comparison_json(const Comparison& c) {
  nlohmann::json j;
  j["treatment"] = c.treatment;
  j["control"] = c.control;
  j["metric"] = c.metric;
  j["ratio"] = c.ratio;
  if (c.ratio) j["numerator"] = c.numerator, j["denominator"] = c.denominator;
  j["n_treatment"] = c.n_treatment;
  j["n_control"] = c.n_control;
  j["mean_treatment"] = c.mean_treatment;
  j["mean_control"] = c.mean_control;
  j["seconds"] = c.seconds;
  j["estimates"] = nlohmann::json::array();
  for (const auto& e : c.estimates) {
    nlohmann::json ej = e.to_json();
    if (ej.contains("details") && ej["details"].contains("loglik_trace"))
      ej["details"].erase("loglik_trace");  // hundreds of numbers; its length and final value stay
    j["estimates"].push_back(ej);
  }
  return j;
}

}  // namespace dfcl::abtest
