// Basic types shared by every module of dln.
#pragma once

#include <Eigen/Dense>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

namespace dln {

using Mat = Eigen::MatrixXd;  // column-major, float64
using Vec = Eigen::VectorXd;
using Index = Eigen::Index;

// Every user-facing failure (bad config, bad data file, impossible option) is an Error whose
// what() is one line naming the field or file (and line) at fault. Control bytes that outside
// input can carry into a message (newlines, NUL; not tabs) are written as escapes (\n, \x00), so
// the line stays one line.
class Error : public std::runtime_error {
 public:
  explicit Error(const std::string& message) : std::runtime_error(one_line(message)) {}

 private:
  static std::string one_line(const std::string& m) {
    std::string out;
    out.reserve(m.size());
    for (const char ch : m) {
      const auto c = static_cast<unsigned char>(ch);
      if ((c >= 0x20 && c != 0x7f) || c == '\t') {
        out += ch;
      } else {
        static const char hex[] = "0123456789abcdef";
        out += c == '\n'   ? std::string("\\n")
               : c == '\r' ? std::string("\\r")
                           : std::string{'\\', 'x', hex[c >> 4], hex[c & 15]};
      }
    }
    return out;
  }
};

}  // namespace dln
