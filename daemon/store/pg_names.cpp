#include "store/pg_names.hpp"

#include <cstdint>

namespace orchestratord::store {
namespace {

// FNV-1a (32 bit): simple, fixed by its definition, the same on every platform
// and compiler, which std::hash is not.
uint32_t fnv1a(const std::string& text) {
    uint32_t hash = 2166136261u;
    for (unsigned char c : text) {
        hash ^= c;
        hash *= 16777619u;
    }
    return hash;
}

}  // namespace

std::string fit_name(const std::string& full) {
    if (full.size() <= kMaxNameBytes) return full;
    static constexpr char kHex[] = "0123456789abcdef";
    std::string suffix = "_00000000";
    uint32_t hash = fnv1a(full);
    for (size_t i = suffix.size() - 1; i > 0; --i, hash >>= 4) suffix[i] = kHex[hash & 0xF];
    size_t keep = kMaxNameBytes - suffix.size();
    // Configured names are ASCII (the loader checks them); still, never cut a
    // UTF-8 sequence in half, which PostgreSQL would reject.
    while (keep > 0 && (static_cast<unsigned char>(full[keep]) & 0xC0) == 0x80) --keep;
    return full.substr(0, keep) + suffix;
}

std::string quote_identifier(const std::string& name) {
    std::string quoted = "\"";
    for (char c : name) {
        if (c == '"') quoted += '"';
        quoted += c;
    }
    return quoted + "\"";
}

std::string qualified(const config::EventStoreConfig& store, const std::string& table) {
    return quote_identifier(store.schema) + "." + quote_identifier(table);
}

std::string events_channel(const config::EventStoreConfig& store) {
    return fit_name("orchestratord_events_" + store.schema + "_" + store.events_table);
}

std::string notify_trigger_name(const config::EventStoreConfig& store) {
    return fit_name("orchestratord_notify_" + store.events_table);
}

std::string own_table(const config::EventStoreConfig& store, const std::string& table) {
    return qualified(store, "orchestratord_" + table);
}

}  // namespace orchestratord::store
