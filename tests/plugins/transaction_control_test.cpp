// Statements that would end or restart the batch transaction are refused
// before they reach the server, whatever their case, comments or spacing;
// savepoints and everything else pass.
#include <catch2/catch.hpp>

#include "plugins/transaction_control.hpp"

using orchestratord::plugins::transaction_control_refusal;

TEST_CASE("COMMIT, ROLLBACK, BEGIN and their spellings are refused in the batch transaction", "[plugins][tx]") {
    for (const char* sql : {"COMMIT", "commit;", "  Commit work", "END", "end transaction", "ABORT", "ROLLBACK",
                            "rollback work", "ROLLBACK AND CHAIN", "BEGIN", "begin isolation level serializable",
                            "START TRANSACTION", "PREPARE TRANSACTION 'x'", "COMMIT PREPARED 'x'", "-- done\nCOMMIT",
                            "/* a /* nested */ comment */ commit", "\n\t COMMIT"}) {
        INFO(sql);
        const auto refusal = transaction_control_refusal(sql);
        REQUIRE(refusal);
        CHECK_THAT(*refusal, Catch::Contains("is refused in the batch transaction"));
    }
}

TEST_CASE("savepoints and ordinary statements run in the batch transaction", "[plugins][tx]") {
    for (const char* sql :
         {"SAVEPOINT a", "RELEASE SAVEPOINT a", "ROLLBACK TO SAVEPOINT a", "rollback to a", "ROLLBACK WORK TO a",
          "INSERT INTO commits VALUES (1)", "SELECT 'COMMIT'", "PREPARE plan AS SELECT 1", "UPDATE t SET begin = 1",
          "-- COMMIT\nSELECT 1", "", "   ", "/* unterminated"}) {
        INFO(sql);
        CHECK_FALSE(transaction_control_refusal(sql));
    }
}
