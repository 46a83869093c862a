#pragma once
// Writers that append the way applications do: several connections at once,
// 1-5 events per transaction with pauses inside it, some transactions rolled
// back, and optionally two-phase commit (PREPARE TRANSACTION, then COMMIT
// PREPARED a little later). Each writer owns its aggregates, so versions
// never collide and each aggregate's events commit in version order.
//
// Every fourth aggregate is a User of the identity context whose events are
// UserRegistered: the recorder_scoped fixture projection sees exactly those.
#include <atomic>
#include <chrono>
#include <map>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "pg/blocking_connection.hpp"
#include "support/pg_env.hpp"

namespace orchestratord::test {

struct WriterOptions {
    int writers = 6;
    int max_sleep_ms = 40;      // per event, inside the transaction
    int rollback_percent = 10;  // transactions rolled back
    int two_phase_percent = 0;  // transactions committed with PREPARE TRANSACTION + COMMIT PREPARED
    int aggregates_per_writer = 12;
};

class ConcurrentWriters {
public:
    ConcurrentWriters(std::string schema, uint32_t seed, WriterOptions options = {})
        : schema_(std::move(schema)), seed_(seed), options_(options) {
        for (int w = 0; w < options_.writers; ++w) threads_.emplace_back([this, w] { run(w); });
    }
    ~ConcurrentWriters() { stop(); }
    ConcurrentWriters(const ConcurrentWriters&) = delete;
    ConcurrentWriters& operator=(const ConcurrentWriters&) = delete;

    void stop() {
        running_ = false;
        for (auto& thread : threads_) {
            if (thread.joinable()) thread.join();
        }
    }
    int64_t committed() const { return committed_; }
    int64_t rolled_back() const { return rolled_back_; }
    int64_t prepared() const { return prepared_; }
    int64_t errors() const { return errors_; }

private:
    void run(int writer) {
        std::mt19937 random(seed_ + static_cast<uint32_t>(writer) * 7919u);
        std::map<std::string, int64_t> versions;  // committed versions of this writer's aggregates
        std::unique_ptr<pg::BlockingConnection> db;
        int64_t transaction = 0;
        while (running_) {
            try {
                if (!db) db = std::make_unique<pg::BlockingConnection>(pg_url());
                write_one(*db, writer, ++transaction, random, versions);
            } catch (const std::exception&) {
                // A lost connection (PostgreSQL restarted): nothing of the
                // transaction committed unless it said so; start over.
                ++errors_;
                db.reset();
                std::this_thread::sleep_for(std::chrono::milliseconds(50));
            }
        }
    }

    void write_one(pg::BlockingConnection& db, int writer, int64_t transaction, std::mt19937& random,
                   std::map<std::string, int64_t>& versions) {
        std::uniform_int_distribution<int> count_of(1, 5);
        std::uniform_int_distribution<int> aggregate_of(0, options_.aggregates_per_writer - 1);
        std::uniform_int_distribution<int> sleep_of(0, options_.max_sleep_ms);
        std::uniform_int_distribution<int> percent(0, 99);
        std::map<std::string, int64_t> pending = versions;
        const int count = count_of(random);
        db.exec("BEGIN");
        for (int i = 0; i < count; ++i) {
            const int k = aggregate_of(random);
            const bool user = k % 4 == 0;
            // Appended piece by piece: GCC 12 warns falsely (-Wrestrict) on "w" + std::to_string(...).
            std::string aggregate = "w";
            aggregate += std::to_string(writer);
            aggregate += "-a";
            aggregate += std::to_string(k);
            const int64_t version = ++pending[aggregate];
            db.exec("INSERT INTO " + schema_ +
                        ".events (bounded_context, aggregate_type, aggregate_id, aggregate_version, event_id, "
                        "event_type, payload, metadata) VALUES ($1, $2, $3, $4, gen_random_uuid(), $5, "
                        "convert_to('{}', 'UTF8'), '{}'::jsonb)",
                    {std::string(user ? "identity" : "test"), std::string(user ? "User" : "Thing"), aggregate,
                     std::to_string(version), std::string(user ? "UserRegistered" : "Happened")});
            std::this_thread::sleep_for(std::chrono::milliseconds(sleep_of(random)));
        }
        const int roll = percent(random);
        if (roll < options_.rollback_percent) {
            db.exec("ROLLBACK");
            ++rolled_back_;
            return;
        }
        if (roll < options_.rollback_percent + options_.two_phase_percent) {
            std::string gid = schema_;
            gid += "-w";
            gid += std::to_string(writer);
            gid += "-t";
            gid += std::to_string(transaction);
            db.exec("PREPARE TRANSACTION '" + gid + "'");
            // Prepared: the events are not visible yet, and the writer's
            // session is no longer in a transaction.
            std::this_thread::sleep_for(std::chrono::milliseconds(sleep_of(random) * 2));
            db.exec("COMMIT PREPARED '" + gid + "'");
            ++prepared_;
        } else {
            db.exec("COMMIT");
        }
        versions = std::move(pending);
        committed_ += count;
    }

    std::string schema_;
    uint32_t seed_;
    WriterOptions options_;
    std::atomic<bool> running_{true};
    std::atomic<int64_t> committed_{0};
    std::atomic<int64_t> rolled_back_{0};
    std::atomic<int64_t> prepared_{0};
    std::atomic<int64_t> errors_{0};
    std::vector<std::thread> threads_;
};

}  // namespace orchestratord::test
