#include "reader.hpp"

#include <cstdio>
#include <filesystem>
#include <system_error>

namespace nlbd::config::detail {

void fail(const std::string& file, unsigned line, const std::string& key, const std::string& wrong,
          const std::string& allowed) {
    throw ConfigError(file, line, key, wrong + "; allowed: " + allowed);
}

toml::table parse_toml_file(const std::string& file) {
    std::error_code ec;
    if (!std::filesystem::is_regular_file(file, ec))
        fail(file, 0, "file", "cannot open " + quote(file) + " (missing or not a regular file)",
             "a readable TOML file");
    try {
        return toml::parse_file(file);
    } catch (const toml::parse_error& e) {
        fail(file, e.source().begin.line, "toml",
             "syntax error: " + std::string(e.description()), "TOML 1.0 syntax");
    }
}

std::string join(const std::vector<std::string_view>& words) {
    std::string out;
    for (const auto& w : words) {
        if (!out.empty()) out += ", ";
        out += w;
    }
    return out;
}

std::string quote(std::string_view text) {
    std::string out = "'";
    for (char c : text) {
        if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) {
            char buf[8];
            std::snprintf(buf, sizeof buf, "\\x%02x", static_cast<unsigned char>(c));
            out += buf;
        } else {
            out += c;
        }
    }
    return out + "'";
}

std::string type_name(const toml::node& node) {
    switch (node.type()) {
        case toml::node_type::table: return "a table";
        case toml::node_type::array: return "an array";
        case toml::node_type::string: return "a string";
        case toml::node_type::integer: return "an integer";
        case toml::node_type::floating_point: return "a float";
        case toml::node_type::boolean: return "a boolean";
        case toml::node_type::date: return "a date";
        case toml::node_type::time: return "a time";
        case toml::node_type::date_time: return "a date-time";
        default: return "nothing";
    }
}

Section::Section(std::string file, Lines& lines, const toml::table& table, std::string path,
                 unsigned line, std::vector<std::string_view> allowed)
    : file_(std::move(file)), lines_(&lines), table_(&table), path_(std::move(path)), line_(line) {
    // The root (empty path) keeps line 0: a missing section has no line.
    if (!path_.empty() && line_ == 0) line_ = table.source().begin.line;
    if (!path_.empty()) lines.emplace(path_, line_);
    for (auto&& [k, v] : table) {
        const std::string_view name = k.str();
        unsigned key_line = k.source().begin.line;
        if (key_line == 0) key_line = v.source().begin.line;
        if (key_line == 0) key_line = line_;
        bool known = false;
        for (auto a : allowed) known = known || a == name;
        if (!known)
            detail::fail(file_, key_line, key_path(name), "unknown key",
                         allowed.empty() ? std::string("no keys here") : join(allowed));
        lines.emplace(key_path(name), key_line);
    }
}

unsigned Section::line(std::string_view key) const {
    auto it = lines_->find(key_path(key));
    if (it != lines_->end() && it->second != 0) return it->second;
    return line_;
}

std::string Section::key_path(std::string_view key) const {
    if (path_.empty()) return std::string(key);
    return path_ + "." + std::string(key);
}

void Section::fail(std::string_view key, const std::string& wrong,
                   const std::string& allowed) const {
    detail::fail(file_, line(key), key_path(key), wrong, allowed);
}

void Section::missing(std::string_view key, const std::string& allowed) const {
    const std::string where = path_.empty() ? std::string("the file") : "[" + path_ + "]";
    detail::fail(file_, line_, key_path(key), "required key is missing from " + where, allowed);
}

std::optional<int64_t> Section::integer(std::string_view key, int64_t lo, int64_t hi) const {
    const toml::node* n = node(key);
    if (n == nullptr) return std::nullopt;
    const std::string allowed = "an integer " + std::to_string(lo) + ".." + std::to_string(hi);
    const auto* v = n->as_integer();
    if (v == nullptr) fail(key, "expected an integer, got " + type_name(*n), allowed);
    const int64_t x = v->get();
    if (x < lo || x > hi) fail(key, std::to_string(x) + " is out of range", allowed);
    return x;
}

int64_t Section::required_integer(std::string_view key, int64_t lo, int64_t hi) const {
    auto v = integer(key, lo, hi);
    if (!v) missing(key, "an integer " + std::to_string(lo) + ".." + std::to_string(hi));
    return *v;
}

std::optional<std::string> Section::string(std::string_view key,
                                           const std::string& allowed) const {
    const toml::node* n = node(key);
    if (n == nullptr) return std::nullopt;
    const auto* v = n->as_string();
    if (v == nullptr) fail(key, "expected a string, got " + type_name(*n), allowed);
    return v->get();
}

std::string Section::required_string(std::string_view key, const std::string& allowed) const {
    auto v = string(key, allowed);
    if (!v) missing(key, allowed);
    return *v;
}

std::optional<bool> Section::boolean(std::string_view key) const {
    const toml::node* n = node(key);
    if (n == nullptr) return std::nullopt;
    const auto* v = n->as_boolean();
    if (v == nullptr) fail(key, "expected a boolean, got " + type_name(*n), "true, false");
    return v->get();
}

const toml::array* Section::array(std::string_view key, const std::string& allowed) const {
    const toml::node* n = node(key);
    if (n == nullptr) return nullptr;
    const auto* a = n->as_array();
    if (a == nullptr) fail(key, "expected an array, got " + type_name(*n), allowed);
    return a;
}

std::optional<Section> Section::table(std::string_view key,
                                      std::vector<std::string_view> allowed) const {
    const toml::node* n = node(key);
    if (n == nullptr) return std::nullopt;
    const auto* t = n->as_table();
    if (t == nullptr)
        fail(key, "expected a table [" + key_path(key) + "], got " + type_name(*n),
             "keys " + join(allowed));
    unsigned l = t->source().begin.line;
    if (l == 0) l = line(key);
    return Section(file_, *lines_, *t, key_path(key), l, std::move(allowed));
}

unsigned element_line(const Section& s, std::string_view key, const toml::node& element) {
    unsigned l = element.source().begin.line;
    return l != 0 ? l : s.line(key);
}

std::string element_path(const Section& s, std::string_view key, size_t i) {
    return s.key_path(key) + "[" + std::to_string(i + 1) + "]";
}

int64_t element_integer(const Section& s, std::string_view key, const toml::array& a, size_t i,
                        int64_t lo, int64_t hi) {
    const toml::node& n = a[i];
    const std::string allowed = "integers " + std::to_string(lo) + ".." + std::to_string(hi);
    const auto* v = n.as_integer();
    if (v == nullptr)
        fail(s.file(), element_line(s, key, n), element_path(s, key, i),
             "expected an integer, got " + type_name(n), allowed);
    const int64_t x = v->get();
    if (x < lo || x > hi)
        fail(s.file(), element_line(s, key, n), element_path(s, key, i),
             std::to_string(x) + " is out of range", allowed);
    return x;
}

std::string element_string(const Section& s, std::string_view key, const toml::array& a, size_t i,
                           const std::string& allowed) {
    const toml::node& n = a[i];
    const auto* v = n.as_string();
    if (v == nullptr)
        fail(s.file(), element_line(s, key, n), element_path(s, key, i),
             "expected a string, got " + type_name(n), allowed);
    return v->get();
}

}  // namespace nlbd::config::detail
