#include "cli/commands.hpp"

int main(int argc, char** argv) {
    return orchestratord::cli::main(argc, argv);
}
