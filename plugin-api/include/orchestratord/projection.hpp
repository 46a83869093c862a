// orchestratord C++ plugin SDK (header-only, C++20).
//
// A projection derives from orchestratord::Projection, describes itself in a
// static describe() function, and the plugin exports every projection class
// with one ORCHESTRATORD_PLUGIN(...) line:
//
//   class Counter : public orchestratord::Projection {
//   public:
//     static orchestratord::ProjectionInfo describe() {
//       return {.name = "counter", .mode = orchestratord::Mode::at_least_once};
//     }
//     explicit Counter(const orchestratord::Context& ctx);
//     void handle_batch(const orchestratord::Batch& batch) override;
//   };
//   ORCHESTRATORD_PLUGIN("my_plugin", "1.0.0", Counter)
//
// Exceptions thrown by the constructor, handle_batch or reset are caught at
// the ABI boundary and reported to the host as errors with their message.
#pragma once

#include <orchestratord/plugin_abi.h>

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory>
#include <optional>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace orchestratord {

enum class Mode : int32_t {
    at_least_once = ORCH_MODE_AT_LEAST_ONCE,
    transactional = ORCH_MODE_TRANSACTIONAL,
};

// What a projection declares about itself. Empty scope lists mean "all".
struct ProjectionInfo {
    std::string name;
    Mode mode = Mode::at_least_once;
    std::vector<std::string> aggregate_types = {};
    std::vector<std::string> bounded_contexts = {};
    std::vector<std::string> event_types = {};
};

// A read-only view of one event; valid only during the callback.
class Event {
public:
    explicit Event(const orch_event& raw) : raw_(&raw) {}

    int64_t global_position() const { return raw_->global_position; }
    std::string_view bounded_context() const { return raw_->bounded_context; }
    std::string_view aggregate_type() const { return raw_->aggregate_type; }
    std::string_view aggregate_id() const { return raw_->aggregate_id; }
    int64_t aggregate_version() const { return raw_->aggregate_version; }
    std::string_view event_id() const { return raw_->event_id; }
    std::string_view event_type() const { return raw_->event_type; }
    int32_t event_version() const { return raw_->event_version; }
    std::span<const uint8_t> payload() const { return {raw_->payload, raw_->payload_size}; }
    // The payload as text (it is often JSON); no encoding check is made.
    std::string_view payload_text() const { return {reinterpret_cast<const char*>(raw_->payload), raw_->payload_size}; }
    std::optional<std::string_view> trace_id() const { return optional(raw_->trace_id); }
    std::optional<std::string_view> correlation_id() const { return optional(raw_->correlation_id); }
    std::optional<std::string_view> causation_id() const { return optional(raw_->causation_id); }
    std::optional<std::string_view> metadata() const { return optional(raw_->metadata); }
    int64_t created_at_us() const { return raw_->created_at_us; }
    const orch_event& raw() const { return *raw_; }

private:
    static std::optional<std::string_view> optional(const char* text) {
        if (text == nullptr) return std::nullopt;
        return std::string_view(text);
    }
    const orch_event* raw_;
};

// Thrown by Transaction::exec when the host reports an SQL error.
class SqlError : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

// The result of one statement; owns the host's result handle.
class Result {
public:
    Result(const orch_host_api* host, orch_result* result) : host_(host), result_(result) {}
    Result(Result&& other) noexcept : host_(other.host_), result_(std::exchange(other.result_, nullptr)) {}
    Result(const Result&) = delete;
    Result& operator=(const Result&) = delete;
    Result& operator=(Result&&) = delete;
    ~Result() {
        if (result_ != nullptr) host_->result_free(result_);
    }

    int64_t rows() const { return host_->result_rows(result_); }
    int32_t columns() const { return host_->result_columns(result_); }
    int64_t affected() const { return host_->result_affected(result_); }
    // The text of a cell, or nullopt for SQL NULL.
    std::optional<std::string_view> value(int64_t row, int32_t column) const {
        const char* text = host_->result_value(result_, row, column);
        if (text == nullptr) return std::nullopt;
        return std::string_view(text);
    }

private:
    const orch_host_api* host_;
    orch_result* result_;
};

// The batch transaction of a transactional projection. Statements are always
// parameterised: values are passed separately from the SQL text.
class Transaction {
public:
    Transaction(const orch_host_api* host, orch_tx* tx) : host_(host), tx_(tx) {}

    // Runs sql with $1..$n bound to params (std::nullopt is SQL NULL).
    Result exec(const char* sql, std::span<const std::optional<std::string>> params = {}) const {
        std::vector<const char*> values;
        values.reserve(params.size());
        for (const auto& param : params) values.push_back(param ? param->c_str() : nullptr);
        orch_result* result = host_->tx_exec(tx_, sql, static_cast<int32_t>(values.size()), values.data());
        if (result == nullptr) {
            const char* message = host_->tx_error(tx_);
            throw SqlError(message != nullptr ? message : "unknown SQL error");
        }
        return Result(host_, result);
    }

    // Convenience overload: exec(sql, "a", std::string("b"), std::nullopt, ...).
    template <typename... Args>
    requires(sizeof...(Args) > 0) Result exec(const char* sql, Args&&... args)
    const {
        std::vector<std::optional<std::string>> params{to_param(std::forward<Args>(args))...};
        return exec(sql, std::span<const std::optional<std::string>>(params));
    }

private:
    static std::optional<std::string> to_param(std::nullopt_t) { return std::nullopt; }
    static std::optional<std::string> to_param(std::string_view text) { return std::string(text); }
    static std::optional<std::string> to_param(const char* text) {
        if (text == nullptr) return std::nullopt;
        return std::string(text);
    }
    static std::optional<std::string> to_param(const std::string& text) { return text; }
    static std::optional<std::string> to_param(std::optional<std::string_view> text) {
        if (!text) return std::nullopt;
        return std::string(*text);
    }
    template <typename T>
    requires std::is_arithmetic_v<T>
    static std::optional<std::string> to_param(T number) { return std::to_string(number); }

    const orch_host_api* host_;
    orch_tx* tx_;
};

// One batch: the events plus, in transactional mode, the batch transaction.
class Batch {
public:
    Batch(const orch_host_api* host, const orch_batch& raw) : host_(host), raw_(&raw) {}

    size_t size() const { return raw_->count; }
    Event operator[](size_t i) const { return Event(*raw_->events[i]); }

    class Iterator {
    public:
        Iterator(const orch_event* const* at) : at_(at) {}
        Event operator*() const { return Event(**at_); }
        Iterator& operator++() {
            ++at_;
            return *this;
        }
        bool operator==(const Iterator&) const = default;

    private:
        const orch_event* const* at_;
    };
    Iterator begin() const { return Iterator(raw_->events); }
    Iterator end() const { return Iterator(raw_->events + raw_->count); }

    bool has_transaction() const { return raw_->tx != nullptr; }
    // The batch transaction; throws in at-least-once mode, which has none.
    Transaction transaction() const {
        if (raw_->tx == nullptr) throw std::logic_error("at-least-once projections have no batch transaction");
        return Transaction(host_, raw_->tx);
    }

private:
    const orch_host_api* host_;
    const orch_batch* raw_;
};

// What a projection instance is given when it is created.
class Context {
public:
    Context(const orch_host_api* host, void* host_ctx, const char* config_json)
        : host_(host), host_ctx_(host_ctx), config_json_(config_json != nullptr ? config_json : "{}") {}

    // The projection's `config` mapping from orchestratord.yaml, as JSON object text.
    const std::string& config_json() const { return config_json_; }
    void log_debug(const std::string& message) const { log(ORCH_LOG_DEBUG, message); }
    void log_info(const std::string& message) const { log(ORCH_LOG_INFO, message); }
    void log_warn(const std::string& message) const { log(ORCH_LOG_WARN, message); }
    void log_error(const std::string& message) const { log(ORCH_LOG_ERROR, message); }
    const orch_host_api* host() const { return host_; }

private:
    void log(int32_t level, const std::string& message) const {
        if (host_ != nullptr && host_->log != nullptr) host_->log(host_ctx_, level, message.c_str());
    }
    const orch_host_api* host_;
    void* host_ctx_;
    std::string config_json_;
};

class Projection {
public:
    virtual ~Projection() = default;
    virtual void handle_batch(const Batch& batch) = 0;
    // Drops the read model before a rebuild; tx is null in at-least-once mode.
    virtual void reset(const Transaction* /*tx*/) {}
};

namespace detail {

inline void write_error(char* error, size_t error_size, const char* message) {
    if (error == nullptr || error_size == 0) return;
    std::strncpy(error, message, error_size - 1);
    error[error_size - 1] = '\0';
}

// Runs fn and turns any exception into ORCH_ERROR plus a message.
template <typename Fn>
int32_t guarded(char* error, size_t error_size, Fn&& fn) noexcept {
    try {
        fn();
        return ORCH_OK;
    } catch (const std::exception& e) {
        write_error(error, error_size, e.what());
    } catch (...) {
        write_error(error, error_size, "unknown exception thrown by projection");
    }
    return ORCH_ERROR;
}

// One projection instance as the host sees it.
struct Instance {
    const orch_host_api* host;
    std::unique_ptr<Projection> projection;
};

// Internal linkage for everything the entry function instantiates: the
// descriptors below are function-local statics, and with external linkage
// (a projection class at namespace scope) the compiler may make them
// STB_GNU_UNIQUE, which the dynamic loader binds process-wide to the first
// loaded copy: a new version of the plugin would hand back the old
// version's descriptor, and neither could be unloaded. The SDK's CMake
// target also compiles plugins with -fvisibility=hidden -fno-gnu-unique,
// for libstdc++'s statics that no header can reach.
namespace {

template <typename T>
struct ProjectionThunks {
    static int32_t create(const orch_host_api* host, void* host_ctx, const char* config_json, void** instance,
                          char* error, size_t error_size) noexcept {
        return guarded(error, error_size, [&] {
            Context context(host, host_ctx, config_json);
            auto made = std::make_unique<Instance>(Instance{host, std::make_unique<T>(context)});
            *instance = made.release();
        });
    }
    static int32_t handle_batch(void* instance, const orch_batch* batch, char* error, size_t error_size) noexcept {
        auto* self = static_cast<Instance*>(instance);
        return guarded(error, error_size, [&] { self->projection->handle_batch(Batch(self->host, *batch)); });
    }
    static int32_t reset(void* instance, orch_tx* tx, char* error, size_t error_size) noexcept {
        auto* self = static_cast<Instance*>(instance);
        return guarded(error, error_size, [&] {
            if (tx == nullptr) {
                self->projection->reset(nullptr);
            } else {
                Transaction transaction(self->host, tx);
                self->projection->reset(&transaction);
            }
        });
    }
    static void destroy(void* instance) noexcept {
        try {
            delete static_cast<Instance*>(instance);
        } catch (...) {
            // A destructor that throws must not cross the C boundary.
        }
    }
};

// Keeps the strings and NULL-terminated arrays a descriptor points into alive.
struct ProjectionStorage {
    ProjectionInfo info;
    std::vector<const char*> aggregate_types;
    std::vector<const char*> bounded_contexts;
    std::vector<const char*> event_types;
    orch_projection_desc desc{};

    static const char* const* c_list(const std::vector<std::string>& from, std::vector<const char*>& to) {
        if (from.empty()) return nullptr;
        for (const auto& item : from) to.push_back(item.c_str());
        to.push_back(nullptr);
        return to.data();
    }
};

template <typename T>
const orch_projection_desc* describe_projection() {
    static ProjectionStorage storage = [] {
        ProjectionStorage s;
        s.info = T::describe();
        return s;
    }();
    static const bool filled = [] {
        auto& s = storage;
        s.desc.struct_size = sizeof(orch_projection_desc);
        s.desc.name = s.info.name.c_str();
        s.desc.mode = static_cast<int32_t>(s.info.mode);
        s.desc.aggregate_types = ProjectionStorage::c_list(s.info.aggregate_types, s.aggregate_types);
        s.desc.bounded_contexts = ProjectionStorage::c_list(s.info.bounded_contexts, s.bounded_contexts);
        s.desc.event_types = ProjectionStorage::c_list(s.info.event_types, s.event_types);
        s.desc.create = &ProjectionThunks<T>::create;
        s.desc.handle_batch = &ProjectionThunks<T>::handle_batch;
        s.desc.destroy = &ProjectionThunks<T>::destroy;
        s.desc.reset = &ProjectionThunks<T>::reset;
        return true;
    }();
    (void)filled;
    return &storage.desc;
}

template <typename... Ts>
const orch_plugin_desc* describe_plugin(const char* name, const char* version) noexcept {
    try {
        static const orch_projection_desc* projections[] = {describe_projection<Ts>()...};
        static const orch_plugin_desc plugin{
            sizeof(orch_plugin_desc),
            ORCH_PLUGIN_ABI_MAJOR,
            ORCH_PLUGIN_ABI_MINOR,
            name,
            version,
            sizeof...(Ts),
            projections,
        };
        return &plugin;
    } catch (...) {
        // describe() threw: report "no descriptor", which the host refuses by name.
        return nullptr;
    }
}

}  // namespace
}  // namespace detail
}  // namespace orchestratord

// Exports the plugin entry function for the listed projection classes.
#define ORCHESTRATORD_PLUGIN(plugin_name, plugin_version, ...)                                     \
    extern "C" ORCH_PLUGIN_EXPORT const orch_plugin_desc* orchestratord_plugin_entry(void) {       \
        return ::orchestratord::detail::describe_plugin<__VA_ARGS__>(plugin_name, plugin_version); \
    }
