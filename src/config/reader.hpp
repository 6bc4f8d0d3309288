#pragma once
// Internal helpers shared by the cluster-file and NIC-profile parsers: a
// checked view of one TOML table that rejects unknown keys, records the line
// of every key it holds and turns every type or range problem into a
// ConfigError naming file, line, key and what is allowed. Control plane only.

#include <toml++/toml.h>

#include <cstdint>
#include <initializer_list>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "nlbd/config/config.hpp"

namespace nlbd::config::detail {

using Lines = std::map<std::string, unsigned>;

// "<wrong>; allowed: <allowed>", the tail of every ConfigError message.
[[noreturn, gnu::cold]] void fail(const std::string& file, unsigned line, const std::string& key,
                                  const std::string& wrong, const std::string& allowed);

// Parses a TOML file; a missing file or a syntax error becomes a ConfigError.
toml::table parse_toml_file(const std::string& file);

// Resolves path against the directory of from_file (unless absolute).
std::string resolve_relative(const std::string& from_file, const std::string& path);

// "a, b, c"
std::string join(const std::vector<std::string_view>& words);
// 'text' for messages; control characters are escaped.
std::string quote(std::string_view text);
// "a string", "an integer", ...
std::string type_name(const toml::node& node);

// One TOML table at key path path_ (empty for the root).
class Section {
public:
    // Throws if the table holds a key not in allowed. Records the line of the
    // section and of each of its keys in lines.
    Section(std::string file, Lines& lines, const toml::table& table, std::string path,
            unsigned line, std::vector<std::string_view> allowed);

    const std::string& file() const noexcept { return file_; }
    const std::string& path() const noexcept { return path_; }
    unsigned line() const noexcept { return line_; }
    // Line of key, or of the section when key is absent or has no position.
    unsigned line(std::string_view key) const;
    // Dotted key path of key in this section.
    std::string key_path(std::string_view key) const;
    bool has(std::string_view key) const { return table_->contains(key); }
    const toml::node* node(std::string_view key) const { return table_->get(key); }

    [[noreturn]] void fail(std::string_view key, const std::string& wrong,
                           const std::string& allowed) const;
    [[noreturn]] void missing(std::string_view key, const std::string& allowed) const;

    std::optional<int64_t> integer(std::string_view key, int64_t lo, int64_t hi) const;
    int64_t required_integer(std::string_view key, int64_t lo, int64_t hi) const;
    std::optional<std::string> string(std::string_view key, const std::string& allowed) const;
    std::string required_string(std::string_view key, const std::string& allowed) const;
    std::optional<bool> boolean(std::string_view key) const;
    // Array under key (nullopt if absent); element type is checked by callers.
    const toml::array* array(std::string_view key, const std::string& allowed) const;

    template <class E>
    std::optional<E> choice(std::string_view key,
                            std::initializer_list<std::pair<std::string_view, E>> options) const {
        std::vector<std::string_view> names;
        for (const auto& o : options) names.push_back(o.first);
        const std::string allowed = join(names);
        auto text = string(key, allowed);
        if (!text) return std::nullopt;
        for (const auto& o : options)
            if (o.first == *text) return o.second;
        fail(key, quote(*text) + " is not a valid value", allowed);
    }

    // Sub-table under key (nullopt if absent), itself checked against allowed.
    std::optional<Section> table(std::string_view key,
                                 std::vector<std::string_view> allowed) const;

    Lines& lines() const { return *lines_; }

private:
    std::string file_;
    Lines* lines_;
    const toml::table* table_;
    std::string path_;
    unsigned line_;
};

// Element i (0-based) of an array under section key: its line (falls back to
// the key's line) and its 1-based key path "path[i+1]".
unsigned element_line(const Section& s, std::string_view key, const toml::node& element);
std::string element_path(const Section& s, std::string_view key, size_t i);

// Integer element check with the same message shape as Section::integer.
int64_t element_integer(const Section& s, std::string_view key, const toml::array& a, size_t i,
                        int64_t lo, int64_t hi);
std::string element_string(const Section& s, std::string_view key, const toml::array& a, size_t i,
                           const std::string& allowed);

}  // namespace nlbd::config::detail
