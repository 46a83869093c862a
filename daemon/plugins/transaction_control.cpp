#include "plugins/transaction_control.hpp"

#include <algorithm>
#include <cctype>
#include <vector>

namespace orchestratord::plugins {
namespace {

// Skips whitespace and SQL comments (-- to the end of the line, /* */ nested
// as PostgreSQL nests them) at the start of `sql`.
std::string_view skip_blanks(std::string_view sql) {
    for (;;) {
        while (!sql.empty() && std::isspace(static_cast<unsigned char>(sql.front()))) sql.remove_prefix(1);
        if (sql.starts_with("--")) {
            const size_t end = sql.find('\n');
            sql.remove_prefix(end == std::string_view::npos ? sql.size() : end + 1);
        } else if (sql.starts_with("/*")) {
            size_t depth = 0;
            size_t i = 0;
            for (; i + 1 < sql.size(); ++i) {
                if (sql[i] == '/' && sql[i + 1] == '*') {
                    ++depth;
                    ++i;
                } else if (sql[i] == '*' && sql[i + 1] == '/') {
                    ++i;
                    if (--depth == 0) break;
                }
            }
            sql.remove_prefix(std::min(sql.size(), i + 1));
        } else {
            return sql;
        }
    }
}

// The first words of `sql`, upper-cased (up to `count`).
std::vector<std::string> first_words(std::string_view sql, size_t count) {
    std::vector<std::string> words;
    while (words.size() < count) {
        sql = skip_blanks(sql);
        std::string word;
        while (!sql.empty() && (std::isalpha(static_cast<unsigned char>(sql.front())) || sql.front() == '_')) {
            word += static_cast<char>(std::toupper(static_cast<unsigned char>(sql.front())));
            sql.remove_prefix(1);
        }
        if (word.empty()) break;
        words.push_back(std::move(word));
    }
    return words;
}

}  // namespace

std::optional<std::string> transaction_control_refusal(std::string_view sql) {
    const auto words = first_words(sql, 4);
    if (words.empty()) return std::nullopt;
    const std::string& verb = words[0];
    const auto has = [&](const char* word) { return std::find(words.begin() + 1, words.end(), word) != words.end(); };
    bool refused = verb == "BEGIN" || verb == "START" || verb == "COMMIT" || verb == "END" || verb == "ABORT";
    // ROLLBACK [WORK | TRANSACTION] TO [SAVEPOINT] name undoes part of the
    // batch's work only; a plain ROLLBACK ends the transaction.
    if (verb == "ROLLBACK" && !has("TO")) refused = true;
    if (verb == "PREPARE" && words.size() > 1 && words[1] == "TRANSACTION") refused = true;
    if (!refused) return std::nullopt;
    return verb +
           " is refused in the batch transaction: orchestratord commits the batch together with its "
           "checkpoints (a projection's own COMMIT, ROLLBACK or BEGIN would break exactly-once delivery); use "
           "a SAVEPOINT to undo part of a batch";
}

}  // namespace orchestratord::plugins
