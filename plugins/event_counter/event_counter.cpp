// Counts events per event type, two ways:
//  - event_counter: at-least-once, counts in memory and logs a summary every
//    `log_every` events (config: {log_every: 1000});
//  - event_counter_table: transactional, keeps the counts in a table (config:
//    {table: event_counts}) so they commit atomically with the checkpoint.
#include <orchestratord/projection.hpp>

#include <map>
#include <nlohmann/json.hpp>
#include <regex>

namespace {

class EventCounter : public orchestratord::Projection {
public:
    static orchestratord::ProjectionInfo describe() {
        return {.name = "event_counter", .mode = orchestratord::Mode::at_least_once};
    }

    explicit EventCounter(const orchestratord::Context& ctx) : ctx_(ctx) {
        const auto config = nlohmann::json::parse(ctx.config_json());
        log_every_ = config.value("log_every", int64_t{1000});
        if (log_every_ <= 0) throw std::invalid_argument("config.log_every must be positive");
    }

    void handle_batch(const orchestratord::Batch& batch) override {
        for (const auto event : batch) {
            ++counts_[std::string(event.event_type())];
            if (++total_ % log_every_ == 0) log_summary();
        }
    }

    void reset(const orchestratord::Transaction*) override {
        counts_.clear();
        total_ = 0;
    }

private:
    void log_summary() const {
        std::string text = "counted " + std::to_string(total_) + " events:";
        for (const auto& [type, count] : counts_) text += " " + type + "=" + std::to_string(count);
        ctx_.log_info(text);
    }

    orchestratord::Context ctx_;
    std::map<std::string, int64_t> counts_;
    int64_t total_ = 0;
    int64_t log_every_ = 1000;
};

class EventCounterTable : public orchestratord::Projection {
public:
    static orchestratord::ProjectionInfo describe() {
        return {.name = "event_counter_table", .mode = orchestratord::Mode::transactional};
    }

    explicit EventCounterTable(const orchestratord::Context& ctx) {
        const auto config = nlohmann::json::parse(ctx.config_json());
        const std::string table = config.value("table", std::string("event_counts"));
        // The table name is the only thing spliced into SQL, so it must be a
        // plain identifier; it is quoted as well.
        static const std::regex identifier("[a-z_][a-z0-9_]{0,62}");
        if (!std::regex_match(table, identifier)) {
            throw std::invalid_argument("config.table \"" + table + "\" is not a plain lowercase identifier");
        }
        create_sql_ = "CREATE TABLE IF NOT EXISTS \"" + table +
                      "\" (event_type TEXT PRIMARY KEY, events BIGINT NOT NULL, last_position BIGINT NOT NULL)";
        upsert_sql_ = "INSERT INTO \"" + table +
                      "\" AS t (event_type, events, last_position) VALUES ($1, $2, $3) "
                      "ON CONFLICT (event_type) DO UPDATE SET events = t.events + EXCLUDED.events, "
                      "last_position = GREATEST(t.last_position, EXCLUDED.last_position)";
        truncate_sql_ = "TRUNCATE \"" + table + "\"";
    }

    void handle_batch(const orchestratord::Batch& batch) override {
        std::map<std::string, std::pair<int64_t, int64_t>> per_type;  // type -> (count, last position)
        for (const auto event : batch) {
            auto& entry = per_type[std::string(event.event_type())];
            ++entry.first;
            entry.second = std::max(entry.second, event.global_position());
        }
        const auto tx = batch.transaction();
        tx.exec(create_sql_.c_str());
        for (const auto& [type, entry] : per_type) tx.exec(upsert_sql_.c_str(), type, entry.first, entry.second);
    }

    void reset(const orchestratord::Transaction* tx) override {
        if (tx == nullptr) return;
        tx->exec(create_sql_.c_str());
        tx->exec(truncate_sql_.c_str());
    }

private:
    std::string create_sql_;
    std::string upsert_sql_;
    std::string truncate_sql_;
};

}  // namespace

ORCHESTRATORD_PLUGIN("event_counter", "1.0.0", EventCounter, EventCounterTable)
