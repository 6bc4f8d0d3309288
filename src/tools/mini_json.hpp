#pragma once
// A small JSON reader for tools (stats files written by nlbd --stats-json).
// Control-plane/tool code: allocates, throws std::runtime_error on bad input
// with the byte offset of the problem. Numbers are kept as double and as the
// exact unsigned integer when they are one (counters).

#include <cctype>
#include <cstdint>
#include <map>
#include <memory>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace nlbd::tools {

struct JsonValue {
    enum class Type : uint8_t { null, boolean, number, string, array, object };
    Type type = Type::null;
    bool b = false;
    double num = 0;
    uint64_t u = 0;          // exact value of a non-negative integer number
    bool is_uint = false;
    std::string str;
    std::vector<JsonValue> arr;
    // Keeps file order; keys may repeat in bad files, the last one is not special.
    std::vector<std::pair<std::string, JsonValue>> obj;

    const JsonValue* get(std::string_view key) const {
        if (type != Type::object) return nullptr;
        for (const auto& [k, v] : obj)
            if (k == key) return &v;
        return nullptr;
    }
};

namespace detail {

class JsonParser {
public:
    explicit JsonParser(std::string_view text) : s_(text) {}

    JsonValue parse_document() {
        JsonValue v = parse_value(0);
        skip_ws();
        if (pos_ != s_.size()) fail("trailing characters after the JSON document");
        return v;
    }

private:
    [[noreturn]] void fail(const std::string& what) const {
        throw std::runtime_error("JSON byte " + std::to_string(pos_) + ": " + what);
    }
    void skip_ws() {
        while (pos_ < s_.size() && std::isspace(static_cast<unsigned char>(s_[pos_]))) ++pos_;
    }
    char peek() {
        skip_ws();
        if (pos_ >= s_.size()) fail("unexpected end of input");
        return s_[pos_];
    }
    void expect(char c) {
        if (peek() != c) fail(std::string("expected '") + c + "'");
        ++pos_;
    }
    bool consume_word(std::string_view w) {
        if (s_.substr(pos_, w.size()) == w) {
            pos_ += w.size();
            return true;
        }
        return false;
    }

    JsonValue parse_value(unsigned depth) {
        if (depth > 64) fail("nesting deeper than 64");
        JsonValue v;
        char c = peek();
        if (c == '{') {
            v.type = JsonValue::Type::object;
            ++pos_;
            if (peek() == '}') {
                ++pos_;
                return v;
            }
            for (;;) {
                if (peek() != '"') fail("expected an object key");
                std::string key = parse_string();
                expect(':');
                v.obj.emplace_back(std::move(key), parse_value(depth + 1));
                char d = peek();
                ++pos_;
                if (d == '}') break;
                if (d != ',') fail("expected ',' or '}' in an object");
            }
        } else if (c == '[') {
            v.type = JsonValue::Type::array;
            ++pos_;
            if (peek() == ']') {
                ++pos_;
                return v;
            }
            for (;;) {
                v.arr.push_back(parse_value(depth + 1));
                char d = peek();
                ++pos_;
                if (d == ']') break;
                if (d != ',') fail("expected ',' or ']' in an array");
            }
        } else if (c == '"') {
            v.type = JsonValue::Type::string;
            v.str = parse_string();
        } else if (consume_word("true")) {
            v.type = JsonValue::Type::boolean;
            v.b = true;
        } else if (consume_word("false")) {
            v.type = JsonValue::Type::boolean;
        } else if (consume_word("null")) {
            v.type = JsonValue::Type::null;
        } else if (c == '-' || std::isdigit(static_cast<unsigned char>(c))) {
            v.type = JsonValue::Type::number;
            size_t start = pos_;
            bool integral = true;
            if (s_[pos_] == '-') {
                integral = false;
                ++pos_;
            }
            while (pos_ < s_.size()) {
                char d = s_[pos_];
                if (std::isdigit(static_cast<unsigned char>(d))) {
                    ++pos_;
                } else if (d == '.' || d == 'e' || d == 'E' || d == '+' || d == '-') {
                    integral = false;
                    ++pos_;
                } else {
                    break;
                }
            }
            std::string text(s_.substr(start, pos_ - start));
            try {
                v.num = std::stod(text);
                if (integral) {
                    v.u = std::stoull(text);
                    v.is_uint = true;
                }
            } catch (const std::exception&) {
                fail("bad number '" + text + "'");
            }
        } else {
            fail(std::string("unexpected character '") + c + "'");
        }
        return v;
    }

    std::string parse_string() {
        expect('"');
        std::string out;
        while (pos_ < s_.size()) {
            char c = s_[pos_++];
            if (c == '"') return out;
            if (c != '\\') {
                out.push_back(c);
                continue;
            }
            if (pos_ >= s_.size()) break;
            char e = s_[pos_++];
            switch (e) {
            case 'n': out.push_back('\n'); break;
            case 't': out.push_back('\t'); break;
            case 'r': out.push_back('\r'); break;
            case 'b': out.push_back('\b'); break;
            case 'f': out.push_back('\f'); break;
            case 'u':
                // Counter names are ASCII; keep escapes verbatim.
                out += "\\u";
                break;
            default: out.push_back(e); break;
            }
        }
        fail("unterminated string");
    }

    std::string_view s_;
    size_t pos_ = 0;
};

}  // namespace detail

inline JsonValue parse_json(std::string_view text) {
    return detail::JsonParser(text).parse_document();
}

}  // namespace nlbd::tools
