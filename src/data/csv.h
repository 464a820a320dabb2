// \brief Streaming CSV reader: RFC 4180 quoting, any one-character delimiter, a header row, line numbers.
//
// Reads the file in large blocks and yields one record at a time, so memory stays bounded whatever
// the file size. A quoted field may hold the delimiter, doubled quotes ("") and line breaks. Line
// endings may be \n or \r\n; a UTF-8 byte-order mark is dropped; empty lines are skipped (they
// still count for line numbers). Every record carries the 1-based line it starts on, so messages
// can point at it ("file.csv:17").
#pragma once
#include <cstdint>       // for int64_t
#include <cstdio>        // for FILE
#include <string>        // for std::string
#include <string_view>   // for std::string_view
#include <system_error>  // for std::errc
#include <vector>        // for std::vector

namespace dfcl::data {

struct CsvOptions {
  char delimiter = ',';
  char quote = '"';
  bool header = true;              // the first record names the columns
  bool check_field_count = true;   // next() throws DataError when a record's field count differs from the header's
};

/// One record: its fields, the line it starts on (1-based), and its data-row number (1-based, header excluded).
struct CsvRecord {
  std::vector<std::string> fields;
  int64_t line = 0;
  int64_t row = 0;
};

class CsvReader {
 public:
  /// Opens `path` and reads the header (when options.header). Throws IoError if it cannot be opened,
  /// DataError if the file is empty or the header is malformed.
  explicit CsvReader(const std::string& path, CsvOptions options = {});
  ~CsvReader();
  CsvReader(const CsvReader&) = delete;
  CsvReader& operator=(const CsvReader&) = delete;

  /// Reads the next record into `rec` (its buffers are reused). Returns false at the end of the file.
  /// Throws DataError for an unterminated quote, and (when check_field_count) for a wrong field count.
  bool next(CsvRecord& rec);

  const std::vector<std::string>& header() const { return header_; }
  /// Index of the column named `name` in the header, or -1.
  int column(const std::string& name) const;
  /// Index of the column named `name`; throws DataError naming the file, `what` (e.g. the config key
  /// that asked for it) and the columns the header does have.
  int require_column(const std::string& name, const std::string& what) const;
  /// Fields per record: the header's width, or the first record's when there is no header.
  size_t width() const { return width_; }
  /// The message for a record whose field count is wrong ("file.csv:5 (row 4): 11 fields, the header has 12; ...").
  std::string field_count_message(const CsvRecord& rec) const;

  const std::string& path() const { return path_; }
  int64_t bytes_read() const { return consumed_; }
  int64_t file_bytes() const { return file_bytes_; }

 private:
  bool fill();                      // refills buf_; false at EOF
  int get() { return pos_ < len_ || fill() ? (++consumed_, static_cast<unsigned char>(buf_[pos_++])) : -1; }
  int peek() { return pos_ < len_ || fill() ? static_cast<unsigned char>(buf_[pos_]) : -1; }
  bool read_record(CsvRecord& rec);  // raw record, no count check; false at EOF
  std::string path_;
  CsvOptions opt_;
  std::FILE* file_ = nullptr;
  std::vector<char> buf_;
  size_t pos_ = 0, len_ = 0;
  int64_t consumed_ = 0, file_bytes_ = 0;
  int64_t line_ = 1;  // line the next character is on
  int64_t rows_ = 0;
  size_t width_ = 0;
  std::vector<std::string> header_;
};

/// A field without its leading and trailing blanks (spaces and tabs).
std::string_view trim_field(std::string_view s);
/// A value as messages quote it: in single quotes, cut to 60 characters ('abc...'), with control characters and bytes
/// that are not UTF-8 written as \xHH (so a message is always valid UTF-8 and never cut by a NUL).
std::string show_field(std::string_view v);
/// The offset of the first byte of `s` that is not part of a well-formed UTF-8 sequence, or npos.
size_t invalid_utf8_at(std::string_view s);
/// Reads the whole (trimmed) field as a double with std::from_chars (a leading '+' allowed; NaN and inf parse):
/// std::errc() on success, result_out_of_range beyond double, invalid_argument for an empty field, no number, or
/// characters after it.
std::errc parse_field(std::string_view s, double& out);

}  // namespace dfcl::data
