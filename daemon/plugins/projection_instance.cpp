#include "plugins/projection_instance.hpp"

#include <orchestratord/plugin_abi.h>
#include <spdlog/spdlog.h>

#include <stdexcept>

#include "plugins/plugin_library.hpp"

// The opaque handles of the C ABI. They live only here: a plugin sees
// pointers, the rest of the daemon sees SqlSession.
struct orch_tx {
    orchestratord::plugins::SqlSession* session;
    std::string last_error;
};
struct orch_result {
    orchestratord::plugins::SqlRows rows;
};

namespace orchestratord::plugins {
namespace {

// What host_ctx points to: enough to attribute a plugin's log lines.
struct HostContext {
    std::string projection;
    std::string replica_set;
};

void host_log(void* host_ctx, int32_t level, const char* message) {
    const auto* context = static_cast<const HostContext*>(host_ctx);
    const char* text = message != nullptr ? message : "";
    const std::string who = context != nullptr ? context->projection : "?";
    const std::string replica_set = context != nullptr ? context->replica_set : "?";
    switch (level) {
        case ORCH_LOG_DEBUG:
            spdlog::debug("{} projection={} replica_set={}", text, who, replica_set);
            break;
        case ORCH_LOG_WARN:
            spdlog::warn("{} projection={} replica_set={}", text, who, replica_set);
            break;
        case ORCH_LOG_ERROR:
            spdlog::error("{} projection={} replica_set={}", text, who, replica_set);
            break;
        default:
            spdlog::info("{} projection={} replica_set={}", text, who, replica_set);
            break;
    }
}

orch_result* host_tx_exec(orch_tx* tx, const char* sql, int32_t n_values, const char* const* values) {
    if (tx == nullptr || sql == nullptr) return nullptr;
    try {
        SqlParams params;
        params.reserve(static_cast<size_t>(std::max(n_values, 0)));
        for (int32_t i = 0; i < n_values; ++i) {
            params.push_back(values[i] != nullptr ? std::optional<std::string>(values[i]) : std::nullopt);
        }
        auto* result = new orch_result{tx->session->exec(sql, params)};
        tx->last_error.clear();
        return result;
    } catch (const std::exception& e) {
        tx->last_error = e.what();
    } catch (...) {
        tx->last_error = "unknown error";
    }
    return nullptr;
}

const char* host_tx_error(orch_tx* tx) {
    return tx != nullptr ? tx->last_error.c_str() : "no transaction";
}
int64_t host_result_rows(const orch_result* result) {
    return result->rows.rows;
}
int32_t host_result_columns(const orch_result* result) {
    return result->rows.columns;
}
int64_t host_result_affected(const orch_result* result) {
    return result->rows.affected;
}
const char* host_result_value(const orch_result* result, int64_t row, int32_t column) {
    const auto& rows = result->rows;
    if (row < 0 || row >= rows.rows || column < 0 || column >= rows.columns) return nullptr;
    const auto& cell = rows.cells[static_cast<size_t>(row * rows.columns + column)];
    return cell ? cell->c_str() : nullptr;
}
void host_result_free(orch_result* result) {
    delete result;
}

const orch_host_api kHostApi = {
    sizeof(orch_host_api), ORCH_PLUGIN_ABI_MAJOR, ORCH_PLUGIN_ABI_MINOR, host_log,
    host_tx_exec,          host_tx_error,         host_result_rows,      host_result_columns,
    host_result_value,     host_result_affected,  host_result_free,
};

// Plugins write their error text here; one buffer per thread so handlers
// running on different threads never share it.
thread_local char error_buffer[4096];

}  // namespace

ProjectionInstance::ProjectionInstance(const LoadedPlugin& plugin, const std::string& projection,
                                       const std::string& config_json, const std::string& replica_set)
    : library_(plugin.library),
      desc_(plugin.library->projection(projection)),
      name_(projection),
      replica_set_(replica_set),
      plugin_name_(plugin.name),
      plugin_version_(plugin.version),
      mode_(ProjectionMode::at_least_once) {
    if (desc_ == nullptr) {
        throw std::runtime_error("plugin " + plugin.file + " does not declare projection \"" + projection + "\"");
    }
    mode_ = desc_->mode == ORCH_MODE_TRANSACTIONAL ? ProjectionMode::transactional : ProjectionMode::at_least_once;
    auto* context = new HostContext{projection, replica_set};
    error_buffer[0] = '\0';
    void* instance = nullptr;
    const int32_t status =
        desc_->create(&kHostApi, context, config_json.c_str(), &instance, error_buffer, sizeof error_buffer);
    if (status != ORCH_OK || instance == nullptr) {
        delete context;
        throw std::runtime_error("projection \"" + projection + "\" of " + plugin.file + " could not be created: " +
                                 (error_buffer[0] != '\0' ? error_buffer : "no reason given"));
    }
    instance_ = instance;
    host_context_ = std::shared_ptr<HostContext>(context);
}

ProjectionInstance::~ProjectionInstance() {
    // The instance goes first, then the host context it may log through, and
    // the library (held by library_) only after both.
    if (instance_ != nullptr) desc_->destroy(instance_);
}

const std::string& ProjectionInstance::plugin_file() const {
    return library_->file();
}

CallResult ProjectionInstance::handle_batch(const std::vector<const orch_event*>& events, SqlSession* session) {
    orch_tx tx{session, {}};
    orch_batch batch{sizeof(orch_batch), events.data(), events.size(),
                     mode_ == ProjectionMode::transactional && session != nullptr ? &tx : nullptr};
    if (mode_ == ProjectionMode::transactional && session == nullptr) {
        return {false, "transactional projection called without a batch transaction"};
    }
    error_buffer[0] = '\0';
    if (desc_->handle_batch(instance_, &batch, error_buffer, sizeof error_buffer) == ORCH_OK) return {};
    return {false, error_buffer[0] != '\0' ? error_buffer : "handle_batch failed without a message"};
}

CallResult ProjectionInstance::reset(SqlSession* session) {
    if (desc_->reset == nullptr) return {};
    orch_tx tx{session, {}};
    error_buffer[0] = '\0';
    orch_tx* handle = mode_ == ProjectionMode::transactional && session != nullptr ? &tx : nullptr;
    if (desc_->reset(instance_, handle, error_buffer, sizeof error_buffer) == ORCH_OK) return {};
    return {false, error_buffer[0] != '\0' ? error_buffer : "reset failed without a message"};
}

}  // namespace orchestratord::plugins
