#pragma once
// `orchestratord check-config`: validates the configuration and prints every
// effective value with its source. What can be checked without running
// anything is checked always (values, rules between keys, the plugins
// directory); --plugins also loads the plugins and makes every configured
// projection's instance (plugin code runs); --connect also connects to
// PostgreSQL and checks the events table and the migrations.
#include "config/loader.hpp"

namespace orchestratord::cli {

struct CheckConfigOptions {
    bool keys_only = false;  // print the key reference instead
    bool plugins = false;
    bool connect = false;
};

// Prints the report; returns the exit code (0 valid, 1 not).
int check_config(const config::LoadOptions& options, const CheckConfigOptions& check);

}  // namespace orchestratord::cli
