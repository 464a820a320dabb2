// \brief CsvReader: block-buffered RFC 4180 parsing with line tracking (see csv.h).
#include "data/csv.h"

#include <fmt/format.h>  // for fmt::format
#include <sys/stat.h>    // for stat

#include <cerrno>    // for errno
#include <charconv>  // for std::from_chars
#include <cstring>   // for std::strerror

#include "core/error.h"  // for DataError, IoError

namespace dfcl::data {
namespace {

constexpr size_t kBlockBytes = size_t(1) << 20;  // 1 MiB reads

std::string trim(const std::string& s) {
  size_t b = s.find_first_not_of(" \t"), e = s.find_last_not_of(" \t");
  return b == std::string::npos ? std::string() : s.substr(b, e - b + 1);
}

std::string show_char(char c) {
  if (c == '\t') return "'\\t' (tab)";
  return fmt::format("'{}'", c);
}

}  // namespace

CsvReader::CsvReader(const std::string& path, CsvOptions options) : path_(path), opt_(options) {
  if (opt_.delimiter == opt_.quote || opt_.delimiter == '\n' || opt_.delimiter == '\r')
    throw DataError(fmt::format("{}: delimiter {} cannot be the quote character or a line break; choose another delimiter",
                                path_, show_char(opt_.delimiter)));
  file_ = std::fopen(path.c_str(), "rb");
  if (!file_)
    throw IoError(fmt::format("cannot open CSV file '{}': {}; check the path (relative paths start at the working directory)",
                              path, std::strerror(errno)));
  struct stat st;
  if (::stat(path.c_str(), &st) == 0) file_bytes_ = static_cast<int64_t>(st.st_size);
  buf_.resize(kBlockBytes);
  // A UTF-8 byte-order mark (Excel writes one) is not part of the first column's name.
  if (fill() && len_ >= 3 && static_cast<unsigned char>(buf_[0]) == 0xEF && static_cast<unsigned char>(buf_[1]) == 0xBB &&
      static_cast<unsigned char>(buf_[2]) == 0xBF) {
    pos_ = 3;
    consumed_ = 3;
  }
  if (opt_.header) {
    CsvRecord h;
    if (!read_record(h))
      throw DataError(fmt::format("{}: the file is empty; expected a header row naming the columns (e.g. 'x1,x2,treatment,revenue')", path_));
    for (auto& f : h.fields) header_.push_back(trim(f));
    for (size_t i = 0; i < header_.size(); ++i)
      if (header_[i].empty())
        throw DataError(fmt::format("{}:{}: header column {} has no name; name every column in the header row (delimiter {})",
                                    path_, h.line, i + 1, show_char(opt_.delimiter)));
    width_ = header_.size();
  }
}

CsvReader::~CsvReader() {
  if (file_) std::fclose(file_);
}

bool CsvReader::fill() {
  if (!file_) return false;
  len_ = std::fread(buf_.data(), 1, buf_.size(), file_);
  pos_ = 0;
  if (len_ == 0) {
    if (std::ferror(file_)) throw IoError(fmt::format("{}: read failed after {} bytes: {}", path_, consumed_, std::strerror(errno)));
    return false;
  }
  return true;
}

bool CsvReader::read_record(CsvRecord& rec) {
  for (;;) {  // skip empty lines
    int c = peek();
    if (c < 0) return false;
    if (c == '\n') {
      get();
      ++line_;
    } else if (c == '\r') {
      get();
      if (peek() == '\n') get();
      ++line_;
    } else {
      break;
    }
  }
  rec.line = line_;
  const int delim = static_cast<unsigned char>(opt_.delimiter), quote = static_cast<unsigned char>(opt_.quote);
  size_t nf = 0;
  auto start_field = [&]() -> std::string& {
    if (rec.fields.size() <= nf) rec.fields.emplace_back();
    rec.fields[nf].clear();
    return rec.fields[nf];
  };
  std::string* f = &start_field();
  bool in_quotes = false, at_start = true;
  for (;;) {
    int c = get();
    if (c < 0) {
      if (in_quotes)
        throw DataError(fmt::format("{}:{}: field {} opens a quote ({}) that is never closed before the end of the file; "
                                    "close the quote, or double quote characters inside a quoted field",
                                    path_, rec.line, nf + 1, show_char(opt_.quote)));
      break;
    }
    if (in_quotes) {
      if (c == quote) {
        if (peek() == quote) {
          get();
          f->push_back(static_cast<char>(quote));
        } else {
          in_quotes = false;
        }
      } else {
        if (c == '\n' || (c == '\r' && peek() != '\n')) ++line_;
        f->push_back(static_cast<char>(c));
      }
      continue;
    }
    if (c == delim) {
      ++nf;
      f = &start_field();
      at_start = true;
      continue;
    }
    if (c == '\n') {
      ++line_;
      break;
    }
    if (c == '\r') {
      if (peek() == '\n') get();
      ++line_;
      break;
    }
    if (c == quote && at_start) {
      in_quotes = true;
      at_start = false;
      continue;
    }
    at_start = false;
    f->push_back(static_cast<char>(c));
  }
  rec.fields.resize(nf + 1);
  return true;
}

bool CsvReader::next(CsvRecord& rec) {
  if (!read_record(rec)) return false;
  rec.row = ++rows_;
  if (width_ == 0) width_ = rec.fields.size();
  if (opt_.check_field_count && rec.fields.size() != width_) throw DataError(field_count_message(rec));
  return true;
}

std::string CsvReader::field_count_message(const CsvRecord& rec) const {
  return fmt::format("{}:{} (row {}): {} fields, but the {} has {}; quote fields that contain the delimiter {}, or fix the row",
                     path_, rec.line, rec.row, rec.fields.size(), opt_.header ? "header" : "first row", width_,
                     show_char(opt_.delimiter));
}

int CsvReader::column(const std::string& name) const {
  for (size_t i = 0; i < header_.size(); ++i)
    if (header_[i] == name) return static_cast<int>(i);
  return -1;
}

int CsvReader::require_column(const std::string& name, const std::string& what) const {
  int i = column(name);
  if (i < 0) {
    // The header as the message shows it: each name quoted and cut (show_field), at most 30 of them, so that a
    // runaway header line (a file without line breaks, 10 MB on one line) does not end up whole in the error.
    std::string have;
    for (size_t j = 0; j < header_.size() && j < 30; ++j) have += (have.empty() ? "" : ", ") + show_field(header_[j]);
    if (header_.size() > 30) have += fmt::format(", ... ({} columns)", header_.size());
    throw DataError(fmt::format("{}: {} names column '{}', but the header has no such column (it has {}); "
                                "fix the column name in the config, or check the delimiter ({})",
                                path_, what, name, have, show_char(opt_.delimiter)));
  }
  for (size_t j = i + 1; j < header_.size(); ++j)
    if (header_[j] == name)
      throw DataError(fmt::format("{}: {} names column '{}', but the header has it twice (columns {} and {}); rename one of them",
                                  path_, what, name, i + 1, j + 1));
  return i;
}

std::string_view trim_field(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

size_t invalid_utf8_at(std::string_view s) {
  size_t i = 0;
  while (i < s.size()) {
    const auto b = static_cast<unsigned char>(s[i]);
    size_t len = b < 0x80 ? 1 : (b >> 5) == 0x6 ? 2 : (b >> 4) == 0xE ? 3 : (b >> 3) == 0x1E ? 4 : 0;
    if (len == 0 || i + len > s.size()) return i;
    for (size_t k = 1; k < len; ++k)
      if ((static_cast<unsigned char>(s[i + k]) >> 6) != 0x2) return i;
    const auto b1 = len > 1 ? static_cast<unsigned char>(s[i + 1]) : 0;
    // overlong forms, surrogates and code points beyond U+10FFFF
    if ((len == 2 && b < 0xC2) || (len == 3 && b == 0xE0 && b1 < 0xA0) || (len == 3 && b == 0xED && b1 >= 0xA0) ||
        (len == 4 && b == 0xF0 && b1 < 0x90) || (len == 4 && (b > 0xF4 || (b == 0xF4 && b1 >= 0x90))))
      return i;
    i += len;
  }
  return std::string_view::npos;
}

std::string show_field(std::string_view v) {
  const bool cut = v.size() > 60;
  if (cut) v = v.substr(0, 57);
  std::string out = "'";
  size_t i = 0;
  while (i < v.size()) {
    const size_t bad = invalid_utf8_at(v.substr(i));
    const size_t good = bad == std::string_view::npos ? v.size() - i : bad;
    for (size_t k = i; k < i + good; ++k) {
      const auto c = static_cast<unsigned char>(v[k]);
      if (c < 0x20 || c == 0x7F) out += fmt::format("\\x{:02X}", c);
      else out += char(c);
    }
    i += good;
    if (i < v.size()) out += fmt::format("\\x{:02X}", static_cast<unsigned char>(v[i++]));
  }
  return out + (cut ? "...'" : "'");
}

std::errc parse_field(std::string_view s, double& out) {
  if (s.empty()) return std::errc::invalid_argument;
  const char* b = s.data();
  const char* e = b + s.size();
  if (*b == '+' && e - b > 1 && b[1] != '-') ++b;  // from_chars takes no leading '+'
  const auto [ptr, ec] = std::from_chars(b, e, out);
  if (ec != std::errc()) return ec;
  return ptr == e ? std::errc() : std::errc::invalid_argument;
}

}  // namespace dfcl::data
