// A transactional read model: the `users` table (config: {table: users}),
// kept from JSON events of aggregate type "User":
//   UserRegistered   {"email": "...", "name": "..."}
//   UserEmailChanged {"email": "..."}
//   UserDeleted      {}
// The user id is the event's aggregate_id. Rows carry the aggregate version
// they reflect, so a replayed event (at-least-once delivery after a crash
// before the checkpoint) never moves a row backwards.
#include <orchestratord/projection.hpp>

#include <nlohmann/json.hpp>
#include <regex>

namespace {

class UserDirectory : public orchestratord::Projection {
public:
    static orchestratord::ProjectionInfo describe() {
        return {
            .name = "user_directory",
            .mode = orchestratord::Mode::transactional,
            .aggregate_types = {"User"},
            .event_types = {"UserRegistered", "UserEmailChanged", "UserDeleted"},
        };
    }

    explicit UserDirectory(const orchestratord::Context& ctx) {
        const auto config = nlohmann::json::parse(ctx.config_json());
        const std::string table = config.value("table", std::string("users"));
        static const std::regex identifier("[a-z_][a-z0-9_]{0,62}");
        if (!std::regex_match(table, identifier)) {
            throw std::invalid_argument("config.table \"" + table + "\" is not a plain lowercase identifier");
        }
        const std::string quoted = "\"" + table + "\"";
        create_sql_ = "CREATE TABLE IF NOT EXISTS " + quoted +
                      " (user_id TEXT PRIMARY KEY, email TEXT NOT NULL, name TEXT NOT NULL, version BIGINT NOT NULL, "
                      "updated_at TIMESTAMPTZ NOT NULL DEFAULT now())";
        register_sql_ = "INSERT INTO " + quoted +
                        " AS u (user_id, email, name, version) VALUES ($1, $2, $3, $4) "
                        "ON CONFLICT (user_id) DO UPDATE SET email = EXCLUDED.email, name = EXCLUDED.name, "
                        "version = EXCLUDED.version, updated_at = now() WHERE u.version < EXCLUDED.version";
        email_sql_ = "UPDATE " + quoted +
                     " SET email = $2, version = $3, updated_at = now() WHERE user_id = $1 AND version < $3";
        delete_sql_ = "DELETE FROM " + quoted + " WHERE user_id = $1 AND version < $2";
        truncate_sql_ = "TRUNCATE " + quoted;
    }

    void handle_batch(const orchestratord::Batch& batch) override {
        const auto tx = batch.transaction();
        tx.exec(create_sql_.c_str());
        for (const auto event : batch) {
            const auto type = event.event_type();
            const auto id = event.aggregate_id();
            const auto version = event.aggregate_version();
            if (type == "UserDeleted") {
                tx.exec(delete_sql_.c_str(), id, version);
                continue;
            }
            const auto payload = parse(event);
            if (type == "UserRegistered") {
                tx.exec(register_sql_.c_str(), id, text(payload, "email", event), text(payload, "name", event),
                        version);
            } else if (type == "UserEmailChanged") {
                tx.exec(email_sql_.c_str(), id, text(payload, "email", event), version);
            }
        }
    }

    void reset(const orchestratord::Transaction* tx) override {
        if (tx == nullptr) return;
        tx->exec(create_sql_.c_str());
        tx->exec(truncate_sql_.c_str());
    }

private:
    static nlohmann::json parse(const orchestratord::Event& event) {
        try {
            auto payload = nlohmann::json::parse(event.payload_text());
            if (!payload.is_object()) throw std::invalid_argument("not a JSON object");
            return payload;
        } catch (const std::exception& e) {
            throw std::invalid_argument("event " + std::string(event.event_id()) + " at position " +
                                        std::to_string(event.global_position()) + ": payload is not a JSON object (" +
                                        e.what() + ")");
        }
    }

    static std::string text(const nlohmann::json& payload, const char* field, const orchestratord::Event& event) {
        const auto found = payload.find(field);
        if (found == payload.end() || !found->is_string()) {
            throw std::invalid_argument("event " + std::string(event.event_id()) + " (" +
                                        std::string(event.event_type()) + ") lacks string field \"" + field + "\"");
        }
        return found->get<std::string>();
    }

    std::string create_sql_;
    std::string register_sql_;
    std::string email_sql_;
    std::string delete_sql_;
    std::string truncate_sql_;
};

}  // namespace

ORCHESTRATORD_PLUGIN("user_directory", "1.0.0", UserDirectory)
