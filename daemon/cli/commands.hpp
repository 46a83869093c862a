#pragma once
// The command line: `orchestratord [run]`, `check-config`, `migrate`, `status`, `plugins list`.

namespace orchestratord::cli {

// Parses argv, runs the chosen subcommand and returns the process exit code.
int main(int argc, char** argv);

}  // namespace orchestratord::cli
