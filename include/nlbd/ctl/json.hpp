#pragma once
// A small JSON value, reader and writer for the control channel (nlbctl <->
// nlbd). Control plane only: allocates and throws.
//
// Contracts:
// - Objects keep insertion order; keys are unique when built through
//   operator[] (it replaces); a parsed document with a repeated key is
//   rejected (JsonError), so a request cannot carry two different "command"s.
// - Numbers: an integer literal that fits int64 is kept exactly (Type::integer);
//   any other number (fraction, exponent, out of int64 range) is a double.
//   Writers print integers exactly; doubles with up to 17 significant digits;
//   NaN / infinity are written as null (JSON has no such values).
// - Strings are UTF-8; the reader validates UTF-8 and \u escapes (surrogate
//   pairs combined, lone surrogates rejected); the writer escapes '"', '\\'
//   and control characters and never emits a raw newline, so dump() is
//   always exactly one line (the wire framing relies on this).
// - parse() enforces ParseLimits (nesting depth, input size) so hostile input
//   cannot exhaust the stack or memory. Every error names the byte offset.

#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

namespace nlbd::ctl {

class JsonError : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

struct ParseLimits {
    size_t max_depth = 64;             // nested arrays/objects
    size_t max_bytes = 16u << 20;      // input size
};

class Json {
public:
    enum class Type : uint8_t { null, boolean, integer, number, string, array, object };
    using Array = std::vector<Json>;
    using Member = std::pair<std::string, Json>;
    using Object = std::vector<Member>;

    Json() noexcept = default;                      // null
    Json(std::nullptr_t) noexcept {}
    Json(bool b) noexcept : v_(b) {}
    Json(int i) noexcept : v_(static_cast<int64_t>(i)) {}
    Json(unsigned i) noexcept : v_(static_cast<int64_t>(i)) {}
    Json(long i) noexcept : v_(static_cast<int64_t>(i)) {}
    Json(long long i) noexcept : v_(static_cast<int64_t>(i)) {}
    // Values above INT64_MAX become doubles (counters never get there).
    Json(unsigned long u) noexcept { set_unsigned(u); }
    Json(unsigned long long u) noexcept { set_unsigned(u); }
    Json(double d) noexcept : v_(d) {}
    Json(const char* s) : v_(std::string(s)) {}
    Json(std::string s) noexcept : v_(std::move(s)) {}
    Json(std::string_view s) : v_(std::string(s)) {}
    Json(Array a) noexcept : v_(std::move(a)) {}
    Json(Object o) noexcept : v_(std::move(o)) {}

    static Json array() { return Json(Array{}); }
    static Json object() { return Json(Object{}); }
    // array({1, "x", true})
    static Json array(std::initializer_list<Json> items) { return Json(Array(items)); }

    Type type() const noexcept { return static_cast<Type>(v_.index()); }
    bool is_null() const noexcept { return type() == Type::null; }
    bool is_bool() const noexcept { return type() == Type::boolean; }
    bool is_int() const noexcept { return type() == Type::integer; }
    bool is_number() const noexcept { return is_int() || type() == Type::number; }
    bool is_string() const noexcept { return type() == Type::string; }
    bool is_array() const noexcept { return type() == Type::array; }
    bool is_object() const noexcept { return type() == Type::object; }

    // Checked accessors: throw JsonError naming the expected and actual type.
    bool as_bool() const;
    int64_t as_int() const;             // integer, or a double with an exact int64 value
    double as_double() const;           // any number
    const std::string& as_string() const;
    const Array& as_array() const;
    Array& as_array();
    const Object& as_object() const;
    Object& as_object();

    // Object access. operator[] turns a null into an object and inserts a
    // null member when the key is missing; throws on other types.
    Json& operator[](std::string_view key);
    // nullptr when not an object or the key is missing.
    const Json* find(std::string_view key) const noexcept;
    Json* find(std::string_view key) noexcept;
    bool contains(std::string_view key) const noexcept { return find(key) != nullptr; }

    // Lenient getters for printers: the fallback when missing or of another type.
    int64_t get_int(std::string_view key, int64_t fallback = 0) const noexcept;
    std::string get_string(std::string_view key, std::string_view fallback = "") const;
    bool get_bool(std::string_view key, bool fallback = false) const noexcept;

    // Array access. push_back turns a null into an array; throws on other types.
    void push_back(Json v);
    const Json& at(size_t i) const;      // throws JsonError when out of range
    // Elements of an array / members of an object; 0 for scalars.
    size_t size() const noexcept;

    // Compact, one line, no trailing newline.
    std::string dump() const;
    // Multi-line, `indent` spaces per level (for nlbctl --json).
    std::string dump_pretty(int indent = 2) const;

    // Parses exactly one JSON document (surrounding whitespace allowed).
    static Json parse(std::string_view text, const ParseLimits& limits = {});

    friend bool operator==(const Json& a, const Json& b) noexcept;

private:
    void set_unsigned(unsigned long long u) noexcept {
        if (u <= static_cast<unsigned long long>(INT64_MAX)) v_ = static_cast<int64_t>(u);
        else v_ = static_cast<double>(u);
    }

    // Index order matches Type.
    std::variant<std::monostate, bool, int64_t, double, std::string, Array, Object> v_;
};

// Writes `s` as a JSON string literal (with quotes) to `out`.
void json_quote(std::string& out, std::string_view s);

}  // namespace nlbd::ctl
