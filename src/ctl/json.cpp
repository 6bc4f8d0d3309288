// JSON value, reader and writer of the control channel (see json.hpp).

#include "nlbd/ctl/json.hpp"

#include <charconv>
#include <cmath>
#include <cstdio>
#include <cstring>

namespace nlbd::ctl {

namespace {

const char* type_name(Json::Type t) {
    switch (t) {
    case Json::Type::null: return "null";
    case Json::Type::boolean: return "boolean";
    case Json::Type::integer: return "integer";
    case Json::Type::number: return "number";
    case Json::Type::string: return "string";
    case Json::Type::array: return "array";
    case Json::Type::object: return "object";
    }
    return "?";
}

[[noreturn, gnu::cold]] void type_error(const char* want, Json::Type got) {
    throw JsonError(std::string("JSON: expected ") + want + ", got " + type_name(got));
}

void append_utf8(std::string& out, uint32_t cp) {
    if (cp < 0x80) {
        out += static_cast<char>(cp);
    } else if (cp < 0x800) {
        out += static_cast<char>(0xC0 | (cp >> 6));
        out += static_cast<char>(0x80 | (cp & 0x3F));
    } else if (cp < 0x10000) {
        out += static_cast<char>(0xE0 | (cp >> 12));
        out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
        out += static_cast<char>(0x80 | (cp & 0x3F));
    } else {
        out += static_cast<char>(0xF0 | (cp >> 18));
        out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
        out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
        out += static_cast<char>(0x80 | (cp & 0x3F));
    }
}

// Recursive-descent reader. Depth is bounded by limits.max_depth, so the
// recursion is bounded too.
class Reader {
public:
    Reader(std::string_view s, const ParseLimits& lim) : s_(s), lim_(lim) {}

    Json document() {
        if (s_.size() > lim_.max_bytes)
            fail("document of " + std::to_string(s_.size()) + " bytes exceeds the limit of " +
                 std::to_string(lim_.max_bytes));
        skip_ws();
        Json v = value(0);
        skip_ws();
        if (pos_ != s_.size()) fail("trailing characters after the JSON value");
        return v;
    }

private:
    [[noreturn, gnu::cold]] void fail(const std::string& what) const {
        throw JsonError("JSON: " + what + " at byte " + std::to_string(pos_));
    }

    bool eof() const { return pos_ >= s_.size(); }
    char peek() const { return eof() ? '\0' : s_[pos_]; }

    void skip_ws() {
        while (!eof()) {
            char c = s_[pos_];
            if (c == ' ' || c == '\t' || c == '\n' || c == '\r') ++pos_;
            else break;
        }
    }

    void expect_word(std::string_view w) {
        if (s_.substr(pos_, w.size()) != w) fail("invalid literal");
        pos_ += w.size();
    }

    Json value(size_t depth) {
        if (eof()) fail("unexpected end of input");
        switch (peek()) {
        case '{': return object(depth + 1);
        case '[': return array(depth + 1);
        case '"': return Json(string());
        case 't': expect_word("true"); return Json(true);
        case 'f': expect_word("false"); return Json(false);
        case 'n': expect_word("null"); return Json();
        default:
            if (peek() == '-' || (peek() >= '0' && peek() <= '9')) return number();
            fail(std::string("unexpected character '") + printable(peek()) + "'");
        }
    }

    static std::string printable(char c) {
        auto u = static_cast<unsigned char>(c);
        if (u >= 0x20 && u < 0x7F) return std::string(1, c);
        char buf[8];
        std::snprintf(buf, sizeof buf, "\\x%02x", u);
        return buf;
    }

    void check_depth(size_t depth) {
        if (depth > lim_.max_depth)
            fail("nesting deeper than " + std::to_string(lim_.max_depth));
    }

    Json object(size_t depth) {
        check_depth(depth);
        ++pos_;  // '{'
        Json::Object obj;
        skip_ws();
        if (peek() == '}') { ++pos_; return Json(std::move(obj)); }
        for (;;) {
            skip_ws();
            if (peek() != '"') fail("expected a string key");
            size_t key_at = pos_;
            std::string key = string();
            for (const auto& m : obj)
                if (m.first == key) { pos_ = key_at; fail("duplicate key \"" + key + "\""); }
            skip_ws();
            if (peek() != ':') fail("expected ':'");
            ++pos_;
            skip_ws();
            Json v = value(depth);
            obj.emplace_back(std::move(key), std::move(v));
            skip_ws();
            if (peek() == ',') { ++pos_; continue; }
            if (peek() == '}') { ++pos_; return Json(std::move(obj)); }
            fail("expected ',' or '}'");
        }
    }

    Json array(size_t depth) {
        check_depth(depth);
        ++pos_;  // '['
        Json::Array arr;
        skip_ws();
        if (peek() == ']') { ++pos_; return Json(std::move(arr)); }
        for (;;) {
            skip_ws();
            arr.push_back(value(depth));
            skip_ws();
            if (peek() == ',') { ++pos_; continue; }
            if (peek() == ']') { ++pos_; return Json(std::move(arr)); }
            fail("expected ',' or ']'");
        }
    }

    uint32_t hex4() {
        if (s_.size() - pos_ < 4) fail("truncated \\u escape");
        uint32_t v = 0;
        for (int i = 0; i < 4; ++i) {
            char c = s_[pos_++];
            v <<= 4;
            if (c >= '0' && c <= '9') v |= static_cast<uint32_t>(c - '0');
            else if (c >= 'a' && c <= 'f') v |= static_cast<uint32_t>(c - 'a' + 10);
            else if (c >= 'A' && c <= 'F') v |= static_cast<uint32_t>(c - 'A' + 10);
            else { --pos_; fail("bad hex digit in \\u escape"); }
        }
        return v;
    }

    // Validates one UTF-8 sequence starting at pos_ and appends it.
    void utf8_char(std::string& out) {
        auto b0 = static_cast<unsigned char>(s_[pos_]);
        size_t n;
        uint32_t cp;
        if (b0 < 0x80) { out += s_[pos_++]; return; }
        if ((b0 & 0xE0) == 0xC0) { n = 1; cp = b0 & 0x1F; }
        else if ((b0 & 0xF0) == 0xE0) { n = 2; cp = b0 & 0x0F; }
        else if ((b0 & 0xF8) == 0xF0) { n = 3; cp = b0 & 0x07; }
        else fail("invalid UTF-8 lead byte");
        if (s_.size() - pos_ < n + 1) fail("truncated UTF-8 sequence");
        for (size_t i = 1; i <= n; ++i) {
            auto b = static_cast<unsigned char>(s_[pos_ + i]);
            if ((b & 0xC0) != 0x80) fail("invalid UTF-8 continuation byte");
            cp = (cp << 6) | (b & 0x3F);
        }
        static constexpr uint32_t kMin[] = {0, 0x80, 0x800, 0x10000};
        if (cp < kMin[n] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
            fail("invalid UTF-8 (overlong, surrogate or out of range)");
        out.append(s_.substr(pos_, n + 1));
        pos_ += n + 1;
    }

    std::string string() {
        ++pos_;  // opening quote
        std::string out;
        for (;;) {
            if (eof()) fail("unterminated string");
            char c = s_[pos_];
            if (c == '"') { ++pos_; return out; }
            if (static_cast<unsigned char>(c) < 0x20) fail("raw control character in string");
            if (c != '\\') { utf8_char(out); continue; }
            ++pos_;
            if (eof()) fail("unterminated escape");
            char e = s_[pos_++];
            switch (e) {
            case '"': out += '"'; break;
            case '\\': out += '\\'; break;
            case '/': out += '/'; break;
            case 'b': out += '\b'; break;
            case 'f': out += '\f'; break;
            case 'n': out += '\n'; break;
            case 'r': out += '\r'; break;
            case 't': out += '\t'; break;
            case 'u': {
                uint32_t cp = hex4();
                if (cp >= 0xD800 && cp <= 0xDBFF) {
                    if (s_.substr(pos_, 2) != "\\u") fail("high surrogate without a low surrogate");
                    pos_ += 2;
                    uint32_t lo = hex4();
                    if (lo < 0xDC00 || lo > 0xDFFF) fail("high surrogate without a low surrogate");
                    cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
                } else if (cp >= 0xDC00 && cp <= 0xDFFF) {
                    fail("lone low surrogate");
                }
                append_utf8(out, cp);
                break;
            }
            default: --pos_; fail("invalid escape");
            }
        }
    }

    Json number() {
        size_t start = pos_;
        bool integral = true;
        if (peek() == '-') ++pos_;
        if (peek() == '0') {
            ++pos_;
        } else if (peek() >= '1' && peek() <= '9') {
            while (peek() >= '0' && peek() <= '9') ++pos_;
        } else {
            fail("invalid number");
        }
        if (peek() == '.') {
            integral = false;
            ++pos_;
            if (!(peek() >= '0' && peek() <= '9')) fail("digit expected after '.'");
            while (peek() >= '0' && peek() <= '9') ++pos_;
        }
        if (peek() == 'e' || peek() == 'E') {
            integral = false;
            ++pos_;
            if (peek() == '+' || peek() == '-') ++pos_;
            if (!(peek() >= '0' && peek() <= '9')) fail("digit expected in exponent");
            while (peek() >= '0' && peek() <= '9') ++pos_;
        }
        const char* b = s_.data() + start;
        const char* e = s_.data() + pos_;
        if (integral) {
            int64_t i = 0;
            auto r = std::from_chars(b, e, i);
            if (r.ec == std::errc() && r.ptr == e) return Json(i);
            // out of int64 range: fall through to double
        }
        double d = 0;
        auto r = std::from_chars(b, e, d);
        if (r.ptr != e) fail("invalid number");
        if (r.ec == std::errc::result_out_of_range) {
            // Overflow -> keep infinity's sign as the largest double; underflow -> 0.
            d = std::strtod(std::string(b, e).c_str(), nullptr);
            if (std::isinf(d)) fail("number out of range");
        }
        return Json(d);
    }

    std::string_view s_;
    const ParseLimits& lim_;
    size_t pos_ = 0;
};

void write_double(std::string& out, double d) {
    if (!std::isfinite(d)) { out += "null"; return; }
    char buf[40];
    // Shortest representation that round-trips.
    auto r = std::to_chars(buf, buf + sizeof buf, d);
    std::string_view sv(buf, static_cast<size_t>(r.ptr - buf));
    out += sv;
    // Keep it a double when read back ("2" would become an integer).
    if (sv.find_first_of(".eE") == std::string_view::npos && sv.find("inf") == std::string_view::npos)
        out += ".0";
}

void write(std::string& out, const Json& v, int indent, int level) {
    auto newline = [&](int lvl) {
        if (indent < 0) return;
        out += '\n';
        out.append(static_cast<size_t>(indent) * static_cast<size_t>(lvl), ' ');
    };
    switch (v.type()) {
    case Json::Type::null: out += "null"; break;
    case Json::Type::boolean: out += v.as_bool() ? "true" : "false"; break;
    case Json::Type::integer: {
        char buf[24];
        auto r = std::to_chars(buf, buf + sizeof buf, v.as_int());
        out.append(buf, r.ptr);
        break;
    }
    case Json::Type::number: write_double(out, v.as_double()); break;
    case Json::Type::string: json_quote(out, v.as_string()); break;
    case Json::Type::array: {
        const auto& a = v.as_array();
        out += '[';
        for (size_t i = 0; i < a.size(); ++i) {
            if (i) out += ',';
            newline(level + 1);
            write(out, a[i], indent, level + 1);
        }
        if (!a.empty()) newline(level);
        out += ']';
        break;
    }
    case Json::Type::object: {
        const auto& o = v.as_object();
        out += '{';
        for (size_t i = 0; i < o.size(); ++i) {
            if (i) out += ',';
            newline(level + 1);
            json_quote(out, o[i].first);
            out += indent < 0 ? ":" : ": ";
            write(out, o[i].second, indent, level + 1);
        }
        if (!o.empty()) newline(level);
        out += '}';
        break;
    }
    }
}

}  // namespace

void json_quote(std::string& out, std::string_view s) {
    static constexpr char kHex[] = "0123456789abcdef";
    out += '"';
    for (char c : s) {
        auto u = static_cast<unsigned char>(c);
        switch (c) {
        case '"': out += "\\\""; break;
        case '\\': out += "\\\\"; break;
        case '\n': out += "\\n"; break;
        case '\r': out += "\\r"; break;
        case '\t': out += "\\t"; break;
        case '\b': out += "\\b"; break;
        case '\f': out += "\\f"; break;
        default:
            if (u < 0x20 || u == 0x7F) {
                out += "\\u00";
                out += kHex[u >> 4];
                out += kHex[u & 0xF];
            } else {
                out += c;
            }
        }
    }
    out += '"';
}

bool Json::as_bool() const {
    if (!is_bool()) type_error("boolean", type());
    return std::get<bool>(v_);
}

int64_t Json::as_int() const {
    if (is_int()) return std::get<int64_t>(v_);
    if (type() == Type::number) {
        double d = std::get<double>(v_);
        if (d >= -9223372036854775808.0 && d < 9223372036854775808.0 && std::trunc(d) == d)
            return static_cast<int64_t>(d);
        throw JsonError("JSON: number " + std::to_string(d) + " is not an exact integer");
    }
    type_error("integer", type());
}

double Json::as_double() const {
    if (is_int()) return static_cast<double>(std::get<int64_t>(v_));
    if (type() == Type::number) return std::get<double>(v_);
    type_error("number", type());
}

const std::string& Json::as_string() const {
    if (!is_string()) type_error("string", type());
    return std::get<std::string>(v_);
}

const Json::Array& Json::as_array() const {
    if (!is_array()) type_error("array", type());
    return std::get<Array>(v_);
}

Json::Array& Json::as_array() {
    if (!is_array()) type_error("array", type());
    return std::get<Array>(v_);
}

const Json::Object& Json::as_object() const {
    if (!is_object()) type_error("object", type());
    return std::get<Object>(v_);
}

Json::Object& Json::as_object() {
    if (!is_object()) type_error("object", type());
    return std::get<Object>(v_);
}

Json& Json::operator[](std::string_view key) {
    if (is_null()) v_ = Object{};
    auto& o = as_object();
    for (auto& m : o)
        if (m.first == key) return m.second;
    o.emplace_back(std::string(key), Json());
    return o.back().second;
}

const Json* Json::find(std::string_view key) const noexcept {
    if (!is_object()) return nullptr;
    for (const auto& m : std::get<Object>(v_))
        if (m.first == key) return &m.second;
    return nullptr;
}

Json* Json::find(std::string_view key) noexcept {
    if (!is_object()) return nullptr;
    for (auto& m : std::get<Object>(v_))
        if (m.first == key) return &m.second;
    return nullptr;
}

int64_t Json::get_int(std::string_view key, int64_t fallback) const noexcept {
    const Json* v = find(key);
    if (!v) return fallback;
    if (v->is_int()) return std::get<int64_t>(v->v_);
    if (v->type() == Type::number) {
        double d = std::get<double>(v->v_);
        if (d >= -9.2e18 && d <= 9.2e18) return static_cast<int64_t>(d);
    }
    return fallback;
}

std::string Json::get_string(std::string_view key, std::string_view fallback) const {
    const Json* v = find(key);
    if (v && v->is_string()) return std::get<std::string>(v->v_);
    return std::string(fallback);
}

bool Json::get_bool(std::string_view key, bool fallback) const noexcept {
    const Json* v = find(key);
    if (v && v->is_bool()) return std::get<bool>(v->v_);
    return fallback;
}

void Json::push_back(Json v) {
    if (is_null()) v_ = Array{};
    as_array().push_back(std::move(v));
}

const Json& Json::at(size_t i) const {
    const auto& a = as_array();
    if (i >= a.size())
        throw JsonError("JSON: index " + std::to_string(i) + " out of range (size " +
                        std::to_string(a.size()) + ")");
    return a[i];
}

size_t Json::size() const noexcept {
    if (is_array()) return std::get<Array>(v_).size();
    if (is_object()) return std::get<Object>(v_).size();
    return 0;
}

std::string Json::dump() const {
    std::string out;
    write(out, *this, -1, 0);
    return out;
}

std::string Json::dump_pretty(int indent) const {
    std::string out;
    write(out, *this, indent < 0 ? 0 : indent, 0);
    return out;
}

Json Json::parse(std::string_view text, const ParseLimits& limits) {
    return Reader(text, limits).document();
}

bool operator==(const Json& a, const Json& b) noexcept {
    // Integers and doubles of the same value compare equal.
    if (a.is_number() && b.is_number() && a.type() != b.type())
        return a.as_double() == b.as_double();
    return a.v_ == b.v_;
}

}  // namespace nlbd::ctl
