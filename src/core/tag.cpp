#include "tagwho/tag.hpp"

#include <array>
#include <cstdio>

namespace tagwho {
namespace {

bool is_printable(unsigned char byte) { return byte >= 0x20 && byte <= 0x7e; }

int hex_digit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// "0x" followed by exactly eight hex digits: a numeric tag. Shorter forms such as "0x12" are ordinary
// four-character tags, which is why the length is fixed.
std::optional<uint32_t> parse_numeric(std::string_view text) {
  if (text.size() != 10 || text[0] != '0' || (text[1] != 'x' && text[1] != 'X')) return std::nullopt;
  uint32_t value = 0;
  for (char c : text.substr(2)) {
    int digit = hex_digit(c);
    if (digit < 0) return std::nullopt;
    value = value << 4 | static_cast<uint32_t>(digit);
  }
  return value;
}

std::string quoted(std::string_view text) {
  std::string out = "'";
  for (unsigned char c : text) {
    if (is_printable(c)) {
      out += static_cast<char>(c);
    } else {
      char buffer[8];
      std::snprintf(buffer, sizeof buffer, "\\x%02x", c);
      out += buffer;
    }
  }
  return out + "'";
}

}  // namespace

Result<Tag> Tag::parse(std::string_view text) {
  if (auto numeric = parse_numeric(text)) return Tag{*numeric};
  if (text.empty()) return Error{"empty tag: a tag is 1 to 4 characters, 0xXXXXXXXX, or \\xNN escapes"};

  std::array<unsigned char, 4> bytes = {' ', ' ', ' ', ' '};  // poolmon pads short tags with spaces
  size_t count = 0;
  for (size_t i = 0; i < text.size(); ++i) {
    unsigned char byte = static_cast<unsigned char>(text[i]);
    if (byte == '\\' && i + 1 < text.size() && (text[i + 1] == 'x' || text[i + 1] == 'X')) {
      int high = i + 2 < text.size() ? hex_digit(text[i + 2]) : -1;
      int low = i + 3 < text.size() ? hex_digit(text[i + 3]) : -1;
      if (high < 0 || low < 0)
        return Error{"bad escape in tag " + quoted(text) + ": \\x needs two hex digits"};
      byte = static_cast<unsigned char>(high << 4 | low);
      i += 3;
    } else if (byte == '\\' && i + 1 < text.size() && text[i + 1] == '\\') {
      i += 1;
    } else if (!is_printable(byte)) {
      return Error{"tag " + quoted(text) + " has a non-printable or non-ASCII character: write it as \\xNN"};
    }
    if (count == 4) return Error{"tag " + quoted(text) + " is longer than 4 bytes"};
    bytes[count++] = byte;
  }
  uint32_t value = 0;
  for (int i = 3; i >= 0; --i) value = value << 8 | bytes[static_cast<size_t>(i)];
  return Tag{value};
}

std::string Tag::display() const {
  std::string out;
  for (int i = 0; i < 4; ++i) {
    unsigned char byte = static_cast<unsigned char>(value >> (8 * i));
    if (is_printable(byte)) {
      out += static_cast<char>(byte);
    } else {
      char buffer[8];
      std::snprintf(buffer, sizeof buffer, "\\x%02x", byte);
      out += buffer;
    }
  }
  return out;
}

std::string Tag::hex() const {
  char buffer[16];
  std::snprintf(buffer, sizeof buffer, "0x%08x", value);
  return buffer;
}

bool Tag::looks_printable() const {
  for (int i = 0; i < 4; ++i)
    if (!is_printable(static_cast<unsigned char>(value >> (8 * i)))) return false;
  return true;
}

}  // namespace tagwho
